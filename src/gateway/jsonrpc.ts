// JSON-RPC 2.0, exactly: parse errors, invalid requests, an empty batch answered by one -32600,
// mixed batches, notifications that get no reply, method-not-found, invalid params with schema
// paths — plus the appliance's limits (message size, batch size, nesting depth) as clear errors.
// Only this file turns KruxError codes into JSON-RPC numbers.
import { randomBytes } from "node:crypto";
import { KruxError, asKruxError, clip, type Recovery } from "../core/index.js";

export type RpcId = string | number | null;

export interface RpcError {
  readonly code: number;
  readonly message: string;
  readonly data: {
    readonly type: string;
    readonly recovery: readonly Recovery[];
    readonly [k: string]: unknown;
  };
}

export interface RpcLimits {
  readonly maxMessageBytes: number;
  readonly maxBatch: number;
  readonly maxDepth: number;
}

export type Dispatch = (
  method: string,
  params: unknown,
  isNotification: boolean,
) => Promise<unknown>;

/**
 * Called with every failure that becomes -32603, and the reference the reply carries, so the
 * "it has been logged" in the reply is true.
 */
export type InternalErrorSink = (err: unknown, ref: string, method: string | undefined) => void;

/** Wire codes of SPEC §4. A server-internal failure is never reported with a client-fault code. */
const WIRE: ReadonlyMap<string, { code: number; type?: string }> = new Map([
  ["ParseError", { code: -32700 }],
  ["InvalidRequest", { code: -32600 }],
  ["MethodNotFound", { code: -32601 }],
  ["InvalidParams", { code: -32602 }],
  ["Unauthorized", { code: -32000 }],
  ["PolicyDenied", { code: -32001 }],
  ["ApprovalRequired", { code: -32002 }],
  ["ApprovalRejected", { code: -32003 }],
  ["ApprovalExpired", { code: -32003 }],
  ["RateLimited", { code: -32004 }],
  ["CapabilityError", { code: -32005 }],
  ["VersionConflict", { code: -32006 }],
  ["Unavailable", { code: -32007 }],
  ["AuditUnavailable", { code: -32007, type: "Unavailable" }],
]);

const RECOVERY: Readonly<Record<string, readonly Recovery[]>> = {
  ParseError: [
    { action: "fix_inputs", description: "Send one JSON value per message (UTF-8 JSON text)." },
  ],
  InvalidRequest: [
    {
      action: "fix_inputs",
      description:
        'Send {"jsonrpc":"2.0","method":…,"id":…} objects, or a non-empty array of them.',
    },
  ],
  MethodNotFound: [
    { action: "use_other_capability", description: "Call capabilities.list to see what exists." },
  ],
  InvalidParams: [
    {
      action: "fix_inputs",
      description:
        "Correct the fields named in data.errors; capabilities.describe shows the schema.",
    },
  ],
  PolicyDenied: [
    {
      action: "use_other_capability",
      description: "Policy does not allow this call; choose a capability or inputs policy allows.",
    },
    {
      action: "ask_operator",
      description: "An operator can change the policy if this call is needed.",
    },
  ],
  ApprovalRequired: [
    {
      action: "wait_for_approval",
      description: "Call approvals.wait with data.approval_id, or approvals.check later.",
    },
  ],
  ApprovalRejected: [
    {
      action: "ask_operator",
      description: "An operator rejected the call; data.reason says why. Do not retry unchanged.",
    },
  ],
  ApprovalExpired: [
    {
      action: "request_approval",
      description: "Nobody decided in time; invoke again to queue a new approval.",
    },
  ],
  RateLimited: [
    { action: "retry_later", description: "Wait data.retry_after_s seconds before calling again." },
  ],
  CapabilityError: [
    { action: "fix_inputs", description: "See data.type and the capability's documented errors." },
  ],
  VersionConflict: [
    {
      action: "retry",
      description: "Read the current value and version, then set again with expected_version.",
    },
  ],
  Unavailable: [
    {
      action: "retry_later",
      description: "A component the call needs is unavailable; data.component says which.",
    },
  ],
  Unauthorized: [
    {
      action: "fix_credentials",
      description:
        "Send a valid agent token as Authorization: Bearer <64 hex>; an operator creates one with kruxos agent create.",
    },
  ],
  InternalError: [
    {
      action: "retry_later",
      description:
        "An internal error occurred; it has been logged under data.ref for the operator. Retry later.",
    },
  ],
};
const DEFAULT_RECOVERY: ReadonlyMap<string, readonly Recovery[]> = new Map(
  Object.entries(RECOVERY),
);

/** How much of a message, or of a string a client sent, an error reply carries. */
const MAX_MESSAGE_CHARS = 512;
const MAX_ECHO_CHARS = 256;
const MAX_LISTED_ERRORS = 20;
/** Fields of error data that echo what the client named. */
const ECHO_FIELDS = ["method", "tool", "name", "capability", "approval_id", "path"] as const;

/**
 * Error data as sent: fields that echo client input are clipped and error lists bounded, so no
 * reply carries more than a bounded prefix of what a client sent.
 */
function boundedData(data: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...data };
  for (const k of ECHO_FIELDS) {
    const v = out[k];
    if (typeof v === "string") out[k] = clip(v, MAX_ECHO_CHARS);
  }
  const errors = out.errors;
  if (Array.isArray(errors)) {
    out.errors = errors.slice(0, MAX_LISTED_ERRORS).map((e: unknown) => {
      if (typeof e !== "object" || e === null) return e;
      const r: Record<string, unknown> = { ...(e as Record<string, unknown>) };
      if (typeof r.path === "string") r.path = clip(r.path, MAX_ECHO_CHARS);
      if (typeof r.message === "string") r.message = clip(r.message, MAX_MESSAGE_CHARS);
      return r;
    });
    if (errors.length > MAX_LISTED_ERRORS) out.more_errors = errors.length - MAX_LISTED_ERRORS;
  }
  return out;
}

export function rpcError(
  code: number,
  type: string,
  message: string,
  extra: Record<string, unknown> = {},
): RpcError {
  const recovery =
    (extra.recovery as Recovery[] | undefined) ??
    DEFAULT_RECOVERY.get(type) ??
    DEFAULT_RECOVERY.get("InternalError") ??
    [];
  return {
    code,
    message: clip(message, MAX_MESSAGE_CHARS),
    data: { ...boundedData(extra), type, recovery },
  };
}

/** A reference an operator can find in the logs, carried by every -32603 reply. */
function internalRef(): string {
  return `err_${randomBytes(6).toString("hex")}`;
}

/**
 * Map any thrown value to a JSON-RPC error object. A failure with no wire code is server-internal:
 * -32603 with a reference, and `onInternal` (when given) logs it under that reference.
 */
export function toRpcError(
  err: unknown,
  onInternal?: InternalErrorSink,
  method?: string,
): RpcError {
  const e = asKruxError(err);
  const wire = WIRE.get(e.code);
  if (!wire) {
    const ref = internalRef();
    onInternal?.(err, ref, method);
    return rpcError(-32603, "InternalError", `internal error (ref ${ref})`, { ref });
  }
  const type =
    wire.type ?? (e.code === "CapabilityError" ? String(e.data.type ?? "CapabilityError") : e.code);
  const recovery =
    (e.data.recovery as Recovery[] | undefined) ?? DEFAULT_RECOVERY.get(wire.type ?? e.code);
  return rpcError(wire.code, type, e.message, { ...e.data, ...(recovery ? { recovery } : {}) });
}

/** Nesting depth of a JSON text, scanned without parsing (so a hostile document never reaches JSON.parse). */
export function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > max) max = depth;
      if (max > limit) return max;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

interface Response {
  jsonrpc: "2.0";
  id: RpcId;
  result?: unknown;
  error?: RpcError;
}

/** Longest string id accepted: a reply echoes the id whole, so it must be small. */
export const MAX_ID_CHARS = 256;

function isValidId(id: unknown): id is RpcId {
  return (
    id === null ||
    (typeof id === "string" && id.length <= MAX_ID_CHARS) ||
    (typeof id === "number" && Number.isFinite(id))
  );
}

async function handleOne(
  req: unknown,
  dispatch: Dispatch,
  onInternal: InternalErrorSink | undefined,
): Promise<Response | undefined> {
  if (typeof req !== "object" || req === null || Array.isArray(req))
    return {
      jsonrpc: "2.0",
      id: null,
      error: rpcError(-32600, "InvalidRequest", "a request must be a JSON object"),
    };
  const r = req as Record<string, unknown>;
  const hasId = Object.hasOwn(r, "id");
  const id = hasId && isValidId(r.id) ? r.id : null;
  if (r.jsonrpc !== "2.0" || typeof r.method !== "string" || (hasId && !isValidId(r.id)))
    return {
      jsonrpc: "2.0",
      id,
      error: rpcError(
        -32600,
        "InvalidRequest",
        `a request needs "jsonrpc":"2.0", a string "method" and an optional "id" (a string of at most ${MAX_ID_CHARS} characters, a number or null)`,
      ),
    };
  if (Object.hasOwn(r, "params") && (typeof r.params !== "object" || r.params === null))
    return {
      jsonrpc: "2.0",
      id,
      error: rpcError(-32600, "InvalidRequest", '"params" must be an object or an array'),
    };
  const isNotification = !hasId;
  try {
    const result = await dispatch(r.method, r.params ?? {}, isNotification);
    return isNotification ? undefined : { jsonrpc: "2.0", id, result };
  } catch (err) {
    const error = toRpcError(err, onInternal, r.method);
    return isNotification ? undefined : { jsonrpc: "2.0", id, error };
  }
}

/**
 * One incoming message → the reply text, or undefined when nothing is to be sent (notifications).
 * Never throws: every failure is a JSON-RPC error.
 */
export async function handleMessage(
  text: string,
  dispatch: Dispatch,
  limits: RpcLimits,
  onInternal?: InternalErrorSink,
): Promise<string | undefined> {
  const reply = (v: unknown): string => JSON.stringify(v);
  if (Buffer.byteLength(text, "utf8") > limits.maxMessageBytes)
    return reply({
      jsonrpc: "2.0",
      id: null,
      error: rpcError(
        -32600,
        "InvalidRequest",
        `message larger than ${limits.maxMessageBytes} bytes`,
        { limit: "max_message_bytes", max: limits.maxMessageBytes },
      ),
    });
  if (jsonDepth(text, limits.maxDepth) > limits.maxDepth)
    return reply({
      jsonrpc: "2.0",
      id: null,
      error: rpcError(
        -32600,
        "InvalidRequest",
        `JSON nested deeper than ${limits.maxDepth} levels`,
        { limit: "max_depth", max: limits.maxDepth },
      ),
    });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return reply({
      jsonrpc: "2.0",
      id: null,
      error: rpcError(-32700, "ParseError", `parse error: ${(err as Error).message}`),
    });
  }
  if (Array.isArray(parsed)) {
    if (parsed.length === 0)
      return reply({
        jsonrpc: "2.0",
        id: null,
        error: rpcError(-32600, "InvalidRequest", "empty batch"),
      });
    if (parsed.length > limits.maxBatch)
      return reply({
        jsonrpc: "2.0",
        id: null,
        error: rpcError(
          -32600,
          "InvalidRequest",
          `batch of ${parsed.length} requests; at most ${limits.maxBatch}`,
          { limit: "max_batch", max: limits.maxBatch },
        ),
      });
    const out = (await Promise.all(parsed.map((r) => handleOne(r, dispatch, onInternal)))).filter(
      (r): r is Response => r !== undefined,
    );
    return out.length === 0 ? undefined : reply(out);
  }
  const one = await handleOne(parsed, dispatch, onInternal);
  return one === undefined ? undefined : reply(one);
}

/** Errors raised by method handlers for the protocol itself. */
export function methodNotFound(method: string): KruxError {
  const shown = clip(method, MAX_ECHO_CHARS);
  return new KruxError("MethodNotFound", `method "${shown}" does not exist`, { method: shown });
}

export function invalidParams(
  message: string,
  errors: readonly { path: string; message: string }[],
): KruxError {
  return new KruxError("InvalidParams", message, { errors });
}
