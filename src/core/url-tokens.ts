// Tokens never travel in URLs (they end up in logs, proxies and browser history). One check for
// every surface that accepts a token.
const TOKEN_PARAM = /[?&](token|access_token|api_key|apikey|key)=/i;

export function tokenInUrl(url: string | undefined): boolean {
  return TOKEN_PARAM.test(url ?? "");
}
