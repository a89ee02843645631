// One way every surface checks a bearer token, before any upgrade, body or call. A token that
// verifies always gets in. A failure is reported (the program audits it in bounded volume) and
// answered 401; a source with many failures in a window gets 429 for its failures — never for a
// token that verifies, so nobody can lock a client out by failing from its address. Guessing stays
// hopeless and cheap to refuse: tokens are 256 random bits, looked up by hash and compared in
// constant time by the verifier.
import type { IncomingMessage } from "node:http";
import { AuthLimiter } from "./auth-limiter.js";

export type Verdict<T> =
  { readonly ok: true; readonly who: T } | { readonly ok: false; readonly reason: string };

export interface AuthRefusalReport {
  readonly source: string;
  /** Why the token failed ("missing", "unknown", "user_token_refused", …) or "rate_limited". */
  readonly reason: string;
  readonly path: string;
}

/** What a refused request is answered with (HTTP status, JSON body, headers). */
export interface GateRefusal {
  readonly ok: false;
  readonly status: 401 | 429;
  readonly reason: string;
  readonly body: Record<string, unknown>;
  readonly headers: Record<string, string>;
}

export type GateOutcome<T> =
  { readonly ok: true; readonly who: T; readonly source: string } | GateRefusal;

export interface AuthGateOptions<T> {
  /** The bearer token from the Authorization header (undefined when absent or not Bearer). */
  readonly verify: (token: string | undefined, header: string | undefined) => Verdict<T>;
  readonly onFailure: (f: AuthRefusalReport) => void;
  /** What a 401 tells the client to send. */
  readonly hint: string;
  readonly maxFailures?: number;
  readonly windowMs?: number;
}

export function sourceOf(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? "unknown";
}

export function bearerToken(header: string | undefined): string | undefined {
  return /^Bearer (\S+)$/.exec(header ?? "")?.[1];
}

export function createAuthGate<T>(
  opts: AuthGateOptions<T>,
): (req: IncomingMessage) => GateOutcome<T> {
  const limiter = new AuthLimiter({
    maxFailures: opts.maxFailures ?? 10,
    windowMs: opts.windowMs ?? 60_000,
  });
  return (req) => {
    const source = sourceOf(req);
    const header = req.headers.authorization;
    const verdict = opts.verify(bearerToken(header), header);
    if (verdict.ok) return { ok: true, who: verdict.who, source };
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const retry = limiter.retryAfter(source);
    limiter.fail(source);
    if (retry > 0) {
      opts.onFailure({ source, reason: "rate_limited", path });
      return {
        ok: false,
        status: 429,
        reason: "rate_limited",
        body: {
          error: "too_many_auth_failures",
          retry_after_s: retry,
          message: "too many failed authentications from this address; a valid token still works",
        },
        headers: { "retry-after": String(retry) },
      };
    }
    opts.onFailure({ source, reason: verdict.reason, path });
    return {
      ok: false,
      status: 401,
      reason: verdict.reason,
      body: { error: "unauthorized", reason: verdict.reason, message: opts.hint },
      headers: { "www-authenticate": 'Bearer realm="kruxos"' },
    };
  };
}
