// Request targets: the authority of a CONNECT line and the absolute URL of a forward request, parsed
// strictly into one host (IP literal in canonical form, or a DNS name) and one port. Anything a
// parser elsewhere could read differently — userinfo, backslashes, controls, spaces, stray brackets
// — is refused here rather than guessed at.
import { parseHost, policyHost, type IpAddress } from "./addresses.js";

export type TargetHost =
  | { readonly kind: "ip"; readonly ip: IpAddress }
  | { readonly kind: "name"; readonly name: string };

export interface Target {
  readonly host: TargetHost;
  readonly port: number;
  /** The host as policy sees it: a lowercased name, a canonical IPv4, or a bracketed IPv6. */
  readonly policyHost: string;
  /** policyHost:port */
  readonly text: string;
}

export type Parsed<T> = T | { readonly error: string };

const MAX_TARGET_CHARS = 8192;
const VISIBLE_ASCII = /^[\x21-\x7e]+$/;

function port(text: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

function targetOf(hostText: string, p: number): Parsed<Target> {
  const h = parseHost(hostText);
  if (h.kind === "invalid") return { error: h.reason };
  const ph = h.kind === "ip" ? policyHost(h.ip) : h.name;
  return { host: h, port: p, policyHost: ph, text: `${ph}:${p}` };
}

/** `host:port` or `[v6]:port` of a CONNECT request. No userinfo, no default port. */
export function parseAuthority(text: string): Parsed<Target> {
  if (text.length > 300 || !VISIBLE_ASCII.test(text)) return { error: "malformed authority" };
  if (text.includes("@")) return { error: "userinfo is not allowed in a target" };
  if (/[/\\?#]/.test(text)) return { error: "a CONNECT target is host:port only" };
  let hostText: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || text[close + 1] !== ":") return { error: "malformed IPv6 authority" };
    hostText = text.slice(0, close + 1);
    portText = text.slice(close + 2);
  } else {
    const colon = text.indexOf(":");
    if (colon <= 0 || colon !== text.lastIndexOf(":")) return { error: "target must be host:port" };
    hostText = text.slice(0, colon);
    portText = text.slice(colon + 1);
  }
  const p = port(portText);
  if (p === undefined) return { error: "port must be 1..65535" };
  return targetOf(hostText, p);
}

/**
 * An absolute-form `http://` URL of a forward request. https goes through CONNECT, so the proxy
 * never holds a plaintext copy of an agent's TLS traffic.
 */
export function parseAbsoluteUrl(text: string): Parsed<{ target: Target; url: URL }> {
  if (text.length > MAX_TARGET_CHARS || !VISIBLE_ASCII.test(text))
    return { error: "malformed request target" };
  if (/^https:\/\//i.test(text))
    return { error: "https:// goes through CONNECT, not as a forward request" };
  if (!/^http:\/\//i.test(text)) return { error: "only http:// URLs can be forwarded" };
  if (text.includes("\\")) return { error: "backslashes are not allowed in a URL" };
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { error: "malformed URL" };
  }
  // Checked on the raw text as well as the parsed URL: "http://@host/" has an empty username.
  const authority = text.slice("http://".length).split(/[/?#]/, 1)[0] ?? "";
  if (url.username !== "" || url.password !== "" || authority.includes("@"))
    return { error: "userinfo is not allowed in a target" };
  const p = url.port === "" ? 80 : port(url.port);
  if (p === undefined) return { error: "port must be 1..65535" };
  const t = targetOf(url.hostname, p);
  return "error" in t ? t : { target: t, url };
}
