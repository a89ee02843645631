// What an agent may put on the wire. The input schemas already bound sizes and shapes; these checks
// are the ones a schema cannot express (or that must hold even when a handler is called without the
// registry): an absolute http(s) URL without user info, and no header that would let the agent speak
// for the appliance or split the request. Secret placeholders pass through as text: the pipeline
// checked their fields and scope, and the egress proxy places the values.
import { setOwn } from "../../core/index.js";
import { invalidInput } from "./errors.js";

const MAX_URL = 8192;

/**
 * The URL to request: absolute http:// or https://, no user info, no whitespace or control
 * characters. Returns the WHATWG-normalised form without its fragment (fragments never go on the
 * wire), so the host the proxy judges is exactly the host that is contacted.
 */
export function checkUrl(raw: string): string {
  if (raw.length > MAX_URL) throw invalidInput("/url", `url is longer than ${MAX_URL} characters.`);
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f]/.test(raw))
    throw invalidInput("/url", "url must not contain whitespace or control characters.");
  if (!/^https?:\/\//i.test(raw))
    throw invalidInput("/url", "url must be an absolute http:// or https:// URL.");
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw invalidInput("/url", "url is not a valid URL.");
  }
  if (u.protocol !== "http:" && u.protocol !== "https:")
    throw invalidInput("/url", "url must be an absolute http:// or https:// URL.");
  if (u.username !== "" || u.password !== "")
    throw invalidInput(
      "/url",
      "url must not carry user info (user:pass@); send credentials in a header as a ${secret:NAME} placeholder.",
    );
  if (u.hostname === "") throw invalidInput("/url", "url has no host.");
  u.hash = "";
  return u.href;
}

export const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;
export type Method = (typeof METHODS)[number];

export function checkMethod(method: string): Method {
  if (!(METHODS as readonly string[]).includes(method))
    throw invalidInput("/method", `method must be one of ${METHODS.join(", ")}.`);
  return method as Method;
}

const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

/**
 * Headers the appliance (or the HTTP machinery) owns. Hop-by-hop headers and framing headers would
 * let an agent smuggle a second request or change how the proxy connection behaves; Proxy-* would
 * speak for the appliance to the proxy; Host would make the request claim another host than the
 * one the policy judged; X-Kruxos-* is the appliance's own vocabulary.
 */
const RESERVED = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "te",
  "trailer",
  "upgrade",
  "http2-settings",
]);
const RESERVED_PREFIXES = ["proxy-", "x-kruxos-"];

/** Printable ASCII, obs-text and HTAB only: CR, LF, NUL and other controls could split the request. */
// eslint-disable-next-line no-control-regex
const BAD_VALUE = /[\u0000-\u0008\u000a-\u001f\u007f]/;

export function checkHeaders(
  headers: Readonly<Record<string, unknown>> | undefined,
  max: number,
): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers === undefined) return out;
  const names = Object.keys(headers);
  if (names.length > max) throw invalidInput("/headers", `At most ${max} headers are allowed.`);
  const seen = new Set<string>();
  for (const name of names) {
    const at = `/headers/${name.replaceAll("~", "~0").replaceAll("/", "~1")}`;
    const value = headers[name];
    if (!TOKEN.test(name) || name.length > 256)
      throw invalidInput(at, `${JSON.stringify(name)} is not a valid header name.`);
    const lower = name.toLowerCase();
    if (RESERVED.has(lower) || RESERVED_PREFIXES.some((p) => lower.startsWith(p)))
      throw invalidInput(at, `The ${name} header is set by the appliance and cannot be sent.`);
    if (seen.has(lower))
      throw invalidInput(at, `The ${name} header is given twice (header names ignore case).`);
    seen.add(lower);
    if (typeof value !== "string") throw invalidInput(at, `The ${name} header must be a string.`);
    if (BAD_VALUE.test(value))
      throw invalidInput(
        at,
        `The ${name} header contains a CR, LF or other control character; refused.`,
      );
    setOwn(out, name, value);
  }
  return out;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The request body as bytes; base64 must be canonical (line breaks allowed), never silently lossy. */
export function decodeBody(body: string, encoding: "utf8" | "base64"): Uint8Array {
  if (encoding === "utf8") return Buffer.from(body, "utf8");
  const compact = body.replace(/[\r\n]/g, "");
  if (!BASE64.test(compact))
    throw invalidInput("/body", 'body is not valid base64 (or set body_encoding: "utf8").');
  return Buffer.from(compact, "base64");
}

/** Response header names lower-cased; names that collide that way are joined with ", ". */
export function lowerHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    const key = k.toLowerCase();
    const prev = Object.hasOwn(out, key) ? out[key] : undefined;
    setOwn(out, key, prev === undefined ? String(v) : `${prev}, ${String(v)}`);
  }
  return out;
}

/** A non-negative integer number of milliseconds. */
export function ms(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.round(n) : 0;
}

/**
 * Settle with `p`, or reject with `onAbort()` as soon as `signal` aborts, whichever comes first. The
 * abandoned promise's rejection is swallowed. This keeps a handler within its deadline even when a
 * client does not honour the signal.
 */
export function untilAborted<T>(
  p: Promise<T>,
  signal: AbortSignal,
  onAbort: () => unknown,
): Promise<T> {
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(onAbort());
  }
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => {
      p.catch(() => undefined);
      reject(onAbort());
    };
    signal.addEventListener("abort", abort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", abort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", abort);
        reject(e);
      },
    );
  });
}
