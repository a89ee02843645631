// network.http_request: one HTTP exchange through the egress client, answered as text when the body
// is UTF-8 and as base64 otherwise.
import { identityOf } from "../ports/index.js";
import { isUtf8 } from "node:buffer";
import type { EgressClient } from "../ports/index.js";
import type { CallContext, CapabilityHandler } from "../types.js";
import { fromEgressError, netError } from "./errors.js";
import {
  checkHeaders,
  checkUrl,
  decodeBody,
  checkMethod,
  lowerHeaders,
  ms,
  untilAborted,
} from "./request.js";

const CAPABILITY = "network.http_request";
const MAX_REDIRECTS = 5;
const MAX_HEADERS = 64;
const MAX_RESPONSE_BYTES = 10 * 1024 * 1024;

interface HttpRequestInputs {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  body_encoding?: "utf8" | "base64";
  timeout_s?: number;
  follow_redirects?: boolean;
  max_response_bytes?: number;
}

/**
 * The body as the agent should see it. Text is returned as text; anything that is not valid UTF-8,
 * or holds NUL bytes, as base64. A cut body may end inside a multi-byte character: those trailing
 * bytes are dropped (the answer says truncated anyway) rather than turning a text answer into base64.
 */
export function encodeBody(
  body: Buffer,
  truncated: boolean,
): { body: string; body_encoding: "utf8" | "base64" } {
  const text = truncated ? withoutPartialChar(body) : body;
  if (isUtf8(text) && !text.includes(0))
    return { body: text.toString("utf8"), body_encoding: "utf8" };
  return { body: body.toString("base64"), body_encoding: "base64" };
}

/** `buf` without an incomplete UTF-8 sequence at its very end (at most 3 bytes). */
function withoutPartialChar(buf: Buffer): Buffer {
  for (let back = 1; back <= Math.min(3, buf.length); back++) {
    const b = buf[buf.length - back] ?? 0;
    if ((b & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead byte
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? buf.subarray(0, buf.length - back) : buf;
  }
  return buf;
}

export function createHttpRequest(egress: EgressClient): CapabilityHandler {
  return async (raw: unknown, ctx: CallContext) => {
    const inputs = raw as HttpRequestInputs;
    const bodyEncoding = inputs.body_encoding ?? "utf8";
    const url = checkUrl(inputs.url);
    const method = checkMethod(inputs.method ?? "GET");
    const headers = checkHeaders(inputs.headers, MAX_HEADERS);
    const body = inputs.body === undefined ? undefined : decodeBody(inputs.body, bodyEncoding);
    const timeoutS = inputs.timeout_s ?? 30;
    const maxBytes = Math.min(inputs.max_response_bytes ?? 1024 * 1024, MAX_RESPONSE_BYTES);
    const follow = inputs.follow_redirects ?? true;

    const timeoutMessage = `${CAPABILITY} did not complete within ${timeoutS} s.`;
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutS * 1000)]);
    const started = performance.now();
    let res;
    try {
      res = await untilAborted(
        egress.http(
          {
            method,
            url,
            headers,
            ...(body !== undefined ? { body } : {}),
            timeout_ms: timeoutS * 1000,
            max_body_bytes: maxBytes,
            follow_redirects: follow,
            max_redirects: follow ? MAX_REDIRECTS : 0,
          },
          identityOf(ctx),
          signal,
        ),
        signal,
        () => netError("Timeout", CAPABILITY, timeoutMessage),
      );
    } catch (err) {
      throw fromEgressError(err, CAPABILITY, signal, timeoutMessage);
    }
    // The client promises to cut at max_body_bytes; hold it to that rather than trust it.
    const over = res.body.length > maxBytes;
    const kept = over ? res.body.subarray(0, maxBytes) : res.body;
    const truncated = res.truncated || over;
    return {
      status: res.status,
      headers: lowerHeaders(res.headers),
      ...encodeBody(kept, truncated),
      truncated,
      final_url: res.url,
      duration_ms: ms(
        Number.isFinite(res.duration_ms) ? res.duration_ms : performance.now() - started,
      ),
    };
  };
}
