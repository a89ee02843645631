// Per-call proxy credentials. The gateway mints one for each call that may reach the network; the
// proxy learns from it which agent, session, call and capability a connection serves. A credential
// is an HMAC-SHA256-signed, expiring, versioned payload: base64url(JSON) "." base64url(MAC). The key
// is handed in by whoever wires the proxy and the gateway (derived from the vault key); egress never
// reads key files itself.
import { createHmac } from "node:crypto";
import { constantTimeEqual } from "../core/index.js";
import type { CallIdentity } from "../capabilities/index.js";

/** Longest credential accepted; a payload with four bounded strings is far smaller. */
export const MAX_CREDENTIAL_CHARS = 2048;
/** Longest lifetime a credential may have: calls are bounded well below this. */
export const MAX_CREDENTIAL_TTL_MS = 24 * 60 * 60 * 1000;
const MAX_FIELD_CHARS = 256;
/** Binds MACs to this use, so the key could never validate some other kind of token. */
const CONTEXT = "kruxos-egress-credential.v1.";
const B64URL = /^[A-Za-z0-9_-]+$/;
/** The user name clients put before the token in `http://kruxos:TOKEN@proxy`. */
export const CREDENTIAL_USER = "kruxos";

interface Payload {
  readonly v: 1;
  readonly agent: string;
  readonly session: string;
  readonly call: string;
  readonly cap: string;
  readonly exp: number;
}

function checkKey(key: Buffer): void {
  if (key.length < 32) throw new RangeError("the credential key must be at least 256 bits");
}

function mac(key: Buffer, payload: string): Buffer {
  return createHmac("sha256", key)
    .update(CONTEXT + payload)
    .digest();
}

function validField(s: unknown): s is string {
  if (typeof s !== "string" || s.length === 0 || s.length > MAX_FIELD_CHARS) return false;
  // No control characters: these strings end up in logs and audit records.
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return false;
  }
  return true;
}

/** A credential for one call, valid for ttlMs. */
export function mintCredential(
  key: Buffer,
  who: CallIdentity,
  ttlMs: number,
  now: number = Date.now(),
): string {
  checkKey(key);
  if (!Number.isInteger(ttlMs) || ttlMs < 1 || ttlMs > MAX_CREDENTIAL_TTL_MS)
    throw new RangeError(`ttlMs must be an integer in 1..${MAX_CREDENTIAL_TTL_MS}`);
  for (const [k, v] of Object.entries(who))
    if (!validField(v))
      throw new RangeError(`identity field ${k} is empty, too long or has controls`);
  const payload: Payload = {
    v: 1,
    agent: who.agent,
    session: who.session,
    call: who.callId,
    cap: who.capability,
    exp: Math.floor(now) + ttlMs,
  };
  const body = Buffer.from(JSON.stringify(payload), "utf8").toString("base64url");
  return `${body}.${mac(key, body).toString("base64url")}`;
}

/** The identity a credential carries, or null when it is malformed, forged or expired. */
export function verifyCredential(
  key: Buffer,
  token: string,
  now: number = Date.now(),
): CallIdentity | null {
  checkKey(key);
  if (typeof token !== "string" || token.length > MAX_CREDENTIAL_CHARS) return null;
  const dot = token.indexOf(".");
  if (dot <= 0 || dot !== token.lastIndexOf(".")) return null;
  const body = token.slice(0, dot);
  const sig = token.slice(dot + 1);
  if (!B64URL.test(body) || !B64URL.test(sig)) return null;
  const given = Buffer.from(sig, "base64url");
  // Re-encoding must give the same text: no second spelling of one MAC.
  if (given.length !== 32 || given.toString("base64url") !== sig) return null;
  if (!constantTimeEqual(given, mac(key, body))) return null;
  let p: unknown;
  try {
    p = JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
  } catch {
    return null;
  }
  if (typeof p !== "object" || p === null || Array.isArray(p)) return null;
  const o = p as Record<string, unknown>;
  const keys = Object.keys(o).sort().join(",");
  if (keys !== "agent,call,cap,exp,session,v" || o.v !== 1) return null;
  if (!validField(o.agent) || !validField(o.session) || !validField(o.call) || !validField(o.cap))
    return null;
  if (typeof o.exp !== "number" || !Number.isSafeInteger(o.exp)) return null;
  if (now >= o.exp || o.exp - now > MAX_CREDENTIAL_TTL_MS) return null;
  return { agent: o.agent, session: o.session, callId: o.call, capability: o.cap };
}

/**
 * The token in a Proxy-Authorization header: `Basic base64("kruxos:" TOKEN)` (what curl, git and
 * pip send for `http://kruxos:TOKEN@host:3128`) or `Bearer TOKEN`. Null when absent or malformed.
 */
export function tokenFromProxyAuthorization(header: string | undefined): string | null {
  if (header === undefined || header.length > MAX_CREDENTIAL_CHARS * 2) return null;
  const m = /^\s*([A-Za-z]+)\s+(\S+)\s*$/.exec(header);
  if (!m) return null;
  const scheme = (m[1] as string).toLowerCase();
  const value = m[2] as string;
  if (scheme === "bearer") return value;
  if (scheme !== "basic" || !/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return null;
  const decoded = Buffer.from(value, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0 || decoded.slice(0, colon) !== CREDENTIAL_USER) return null;
  return decoded.slice(colon + 1);
}

/** The header value a client sends for a credential. */
export function proxyAuthorization(token: string): string {
  return `Basic ${Buffer.from(`${CREDENTIAL_USER}:${token}`, "utf8").toString("base64")}`;
}
