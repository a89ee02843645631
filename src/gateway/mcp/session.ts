// One MCP server session bound to one authenticated agent. It speaks the lifecycle (initialize,
// notifications/initialized, ping) and the tools feature on top of the shared JSON-RPC framing in
// ../jsonrpc.ts, and maps tools/call onto the call pipeline. Transports (WebSocket, Streamable HTTP)
// own framing, authentication and session ids; this file owns what the messages mean.
//
// Error split (SPEC §4, MCP "tools" error handling): anything the pipeline decides about a call —
// denial, pending approval, rejection, rate limit, capability failure, an unavailable component — is
// a tool RESULT with isError: true, so the model sees it and can follow `recovery`. Problems with
// the protocol itself (unknown method, malformed tools/call, unknown tool, server-internal failure)
// are JSON-RPC errors.
import { KruxError } from "../../core/index.js";
import {
  handleMessage,
  invalidParams,
  jsonDepth,
  methodNotFound,
  toRpcError,
  type InternalErrorSink,
  type RpcLimits,
} from "../jsonrpc.js";
import type { AgentIdentity, McpTool, Pipeline } from "../pipeline-types.js";
import type { SessionRegistry } from "../sessions.js";

/** Newest first. The first entry is what we answer when a client asks for a revision we lack. */
export const MCP_PROTOCOL_VERSIONS = [
  "2025-11-25",
  "2025-06-18",
  "2025-03-26",
  "2024-11-05",
] as const;
export const MCP_LATEST_PROTOCOL_VERSION = MCP_PROTOCOL_VERSIONS[0];

/** How tool names are shown in tools/list. Both forms are always accepted by tools/call. */
export type ToolNameStyle = "dotted" | "underscore";

export interface McpSessionOptions {
  /** serverInfo.version (the appliance version). */
  readonly version: string;
  readonly limits: RpcLimits;
  /** "dotted" (default): tool name = capability name. "underscore": `fs.read` → `fs_read`. */
  readonly toolNames?: ToolNameStyle;
  /** Default timeout_s for approvals.wait when the caller gives none (30, as on /rpc). */
  readonly defaultWaitS?: number;
  /** Longest approvals.wait in seconds (300, as on /rpc); longer requests are clamped. */
  readonly maxWaitS?: number;
  /** The gateway's sessions: initialize's clientInfo is recorded on this session's entry. */
  readonly sessions?: SessionRegistry;
  /** How long a tools/list answer is reused to resolve tools/call names (ms). */
  readonly toolCacheMs?: number;
  /** Failures that become -32603, with the reference the reply carries. */
  readonly onInternalError?: InternalErrorSink;
}

export const MCP_INSTRUCTIONS = [
  "KruxOS runs every tool call through policy, an optional human approval, a sandbox and a tamper-evident audit log.",
  "Tools are KruxOS capabilities; tools/list shows only those your policy lets you call.",
  "When a call is not allowed the result has isError: true and structuredContent {type, recovery, ...}: read `type` (PolicyDenied, ApprovalRequired, ApprovalRejected, ApprovalExpired, RateLimited, CapabilityError, Unavailable, ...) and follow one of the `recovery` actions instead of retrying blindly.",
  "ApprovalRequired means an operator must accept the call: call the approvals.wait tool with the approval_id (or approvals.check later); once accepted, it returns the call's result — do not invoke the capability again.",
  "RateLimited carries retry_after_s; Unavailable names the component that is down.",
].join(" ");

const TOOL_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/** Is this parsed JSON-RPC member a response (result/error, no method)? Those are not for us. */
function isResponse(m: unknown): boolean {
  return (
    typeof m === "object" &&
    m !== null &&
    !Array.isArray(m) &&
    !Object.hasOwn(m, "method") &&
    (Object.hasOwn(m, "result") || Object.hasOwn(m, "error"))
  );
}

export interface MessageShape {
  /** The text is not valid JSON-RPC we could look into; handle() answers it with an error. */
  readonly opaque: boolean;
  /** Requests (members with an id) — a reply will be produced. */
  readonly requests: number;
  readonly hasInitialize: boolean;
  /** A tools/call to approvals.wait: may take minutes; transports may stream it. */
  readonly longRunning: boolean;
}

/** Look into one incoming message without acting on it (transports decide status codes with this). */
export function inspectMessage(text: string, limits: RpcLimits): MessageShape {
  const opaque: MessageShape = {
    opaque: true,
    requests: 1,
    hasInitialize: false,
    longRunning: false,
  };
  if (Buffer.byteLength(text, "utf8") > limits.maxMessageBytes) return opaque;
  if (jsonDepth(text, limits.maxDepth) > limits.maxDepth) return opaque;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return opaque;
  }
  const members = Array.isArray(parsed) ? parsed : [parsed];
  if (members.length === 0) return opaque;
  let requests = 0;
  let hasInitialize = false;
  let longRunning = false;
  for (const m of members) {
    if (isResponse(m)) continue;
    if (typeof m !== "object" || m === null || Array.isArray(m)) {
      requests++;
      continue;
    }
    const r = m as Record<string, unknown>;
    if (Object.hasOwn(r, "id") || typeof r.method !== "string") requests++;
    if (r.method === "initialize") hasInitialize = true;
    if (r.method === "tools/call") {
      const name = (r.params as { name?: unknown } | undefined)?.name;
      if (name === "approvals.wait" || name === "approvals_wait") longRunning = true;
    }
  }
  return { opaque: false, requests, hasInitialize, longRunning };
}

function underscoreAlias(name: string): string {
  return name.replaceAll(".", "_");
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function protocolError(code: "InvalidRequest" | "InvalidParams", message: string): KruxError {
  return new KruxError(code, message);
}

/** Codes that are a verdict on the call (tool result, isError) rather than a protocol fault. */
const TOOL_ERROR_TYPES = new Set([
  "PolicyDenied",
  "ApprovalRequired",
  "ApprovalRejected",
  "ApprovalExpired",
  "RateLimited",
  "CapabilityError",
  "VersionConflict",
  "Unavailable",
  "AuditUnavailable",
]);

interface ToolTable {
  readonly at: number;
  readonly tools: readonly McpTool[];
  /** Every accepted spelling → canonical capability name. */
  readonly names: ReadonlyMap<string, string>;
  /** Canonical → the name shown in tools/list. */
  readonly shown: ReadonlyMap<string, string>;
}

export class McpSession {
  readonly agent: AgentIdentity;
  private readonly pipeline: Pipeline;
  private readonly opts: McpSessionOptions;
  private negotiated: string | undefined;
  private clientReady = false;
  private closed = false;
  private readonly life = new AbortController();
  private readonly inflight = new Map<string, AbortController>();
  private table: ToolTable | undefined;

  constructor(agent: AgentIdentity, pipeline: Pipeline, opts: McpSessionOptions) {
    this.agent = agent;
    this.pipeline = pipeline;
    this.opts = opts;
  }

  /** The negotiated protocol revision, once initialize has succeeded. */
  get protocolVersion(): string | undefined {
    return this.negotiated;
  }

  get initialized(): boolean {
    return this.negotiated !== undefined;
  }

  /** The client sent notifications/initialized. */
  get ready(): boolean {
    return this.clientReady;
  }

  /**
   * One incoming message (single or batch) → the reply text, or undefined when none is due
   * (notifications, responses). Never throws. `signal` aborts long calls (transport went away).
   */
  async handle(text: string, signal?: AbortSignal): Promise<string | undefined> {
    if (this.closed) return undefined;
    const limits = this.opts.limits;
    let body = text;
    // Drop JSON-RPC responses (we never send requests, so they answer nothing) and find request
    // ids for notifications/cancelled — only when the text is within limits; handleMessage
    // answers everything else with the right error without us parsing it.
    let requestId: string | undefined;
    if (
      Buffer.byteLength(text, "utf8") <= limits.maxMessageBytes &&
      jsonDepth(text, limits.maxDepth) <= limits.maxDepth
    ) {
      try {
        const parsed: unknown = JSON.parse(text);
        if (Array.isArray(parsed)) {
          const kept = parsed.filter((m) => !isResponse(m));
          if (parsed.length > 0 && kept.length === 0) return undefined;
          if (kept.length !== parsed.length) body = JSON.stringify(kept);
        } else if (isResponse(parsed)) {
          return undefined;
        } else if (
          isPlainObject(parsed) &&
          (typeof parsed.id === "string" || typeof parsed.id === "number")
        ) {
          requestId = String(parsed.id);
        }
      } catch {
        // handleMessage answers with -32700.
      }
    }
    const ctl = new AbortController();
    const signals = [this.life.signal, ctl.signal, ...(signal ? [signal] : [])];
    const callSignal = AbortSignal.any(signals);
    if (requestId !== undefined) this.inflight.set(requestId, ctl);
    try {
      return await handleMessage(
        body,
        (method, params, isNotification) =>
          this.dispatch(method, params, isNotification, callSignal),
        limits,
        this.opts.onInternalError,
      );
    } finally {
      if (requestId !== undefined && this.inflight.get(requestId) === ctl)
        this.inflight.delete(requestId);
    }
  }

  /** End the session: in-flight calls (approvals.wait) are aborted, later messages ignored. */
  close(): void {
    this.closed = true;
    this.life.abort(new Error("MCP session closed"));
    this.inflight.clear();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private async dispatch(
    method: string,
    params: unknown,
    isNotification: boolean,
    signal: AbortSignal,
  ): Promise<unknown> {
    if (isNotification) {
      this.notify(method, params);
      return undefined;
    }
    if (method === "initialize") return this.initialize(params);
    if (method === "ping") return {};
    if (!this.initialized)
      throw protocolError("InvalidRequest", `send "initialize" before "${method}"`);
    switch (method) {
      case "tools/list":
        return this.toolsList();
      case "tools/call":
        return this.toolsCall(params, signal);
      default:
        throw methodNotFound(method);
    }
  }

  private notify(method: string, params: unknown): void {
    if (method === "notifications/initialized") {
      if (this.initialized) this.clientReady = true;
      return;
    }
    if (method === "notifications/cancelled" && isPlainObject(params)) {
      const id = params.requestId;
      if (typeof id === "string" || typeof id === "number") {
        this.inflight.get(String(id))?.abort(new Error("cancelled by the client"));
        this.inflight.delete(String(id));
      }
    }
    // Other notifications (progress, roots/list_changed, …) need nothing from a tools-only server.
  }

  private initialize(params: unknown): Record<string, unknown> {
    if (this.initialized)
      throw protocolError("InvalidRequest", "this session is already initialized");
    if (!isPlainObject(params) || typeof params.protocolVersion !== "string")
      throw invalidParams("initialize needs params.protocolVersion (string)", [
        { path: "/protocolVersion", message: "must be a string" },
      ]);
    const asked = params.protocolVersion;
    const info = params.clientInfo;
    if (isPlainObject(info) && typeof info.name === "string")
      this.opts.sessions?.announce(this.agent.session, {
        name: info.name,
        ...(typeof info.version === "string" ? { version: info.version } : {}),
      });
    const version = (MCP_PROTOCOL_VERSIONS as readonly string[]).includes(asked)
      ? asked
      : MCP_LATEST_PROTOCOL_VERSION;
    this.negotiated = version;
    return {
      protocolVersion: version,
      capabilities: { tools: { listChanged: false } },
      serverInfo: { name: "kruxos", title: "KruxOS", version: this.opts.version },
      instructions: MCP_INSTRUCTIONS,
    };
  }

  private async tools(fresh: boolean): Promise<ToolTable> {
    const ttl = this.opts.toolCacheMs ?? 5000;
    if (!fresh && this.table && Date.now() - this.table.at < ttl) return this.table;
    const tools = await this.pipeline.tools(this.agent);
    const names = new Map<string, string>();
    const shown = new Map<string, string>();
    for (const t of tools) names.set(t.name, t.name);
    for (const t of tools) {
      const alias = underscoreAlias(t.name);
      // An alias that collides with another tool's name (or another alias) is not offered.
      const free = !names.has(alias) || names.get(alias) === t.name;
      if (free) names.set(alias, t.name);
      shown.set(t.name, this.opts.toolNames === "underscore" && free ? alias : t.name);
    }
    this.table = { at: Date.now(), tools, names, shown };
    return this.table;
  }

  private async toolsList(): Promise<Record<string, unknown>> {
    const table = await this.tools(true);
    return {
      tools: table.tools
        .filter((t) => TOOL_NAME.test(table.shown.get(t.name) ?? t.name))
        .map((t) => ({
          name: table.shown.get(t.name) ?? t.name,
          description: t.description,
          inputSchema: t.inputSchema,
          ...(t.annotations ? { annotations: t.annotations } : {}),
        })),
    };
  }

  private async resolve(name: string): Promise<string | undefined> {
    const cached = (await this.tools(false)).names.get(name);
    if (cached !== undefined) return cached;
    // A tool may have appeared since the cached list (policy reload): look once more.
    return (await this.tools(true)).names.get(name);
  }

  private async toolsCall(params: unknown, signal: AbortSignal): Promise<Record<string, unknown>> {
    if (!isPlainObject(params) || typeof params.name !== "string")
      throw invalidParams("tools/call needs params.name (string)", [
        { path: "/name", message: "must be a string" },
      ]);
    if (params.arguments !== undefined && !isPlainObject(params.arguments))
      throw invalidParams("tools/call params.arguments must be an object", [
        { path: "/arguments", message: "must be an object" },
      ]);
    const requested = params.name;
    const args = (params.arguments ?? {}) as Record<string, unknown>;
    const name = await this.resolve(requested);
    if (name === undefined)
      throw new KruxError("InvalidParams", `unknown tool: ${requested}`, {
        tool: requested,
        errors: [{ path: "/name", message: "not a tool of this session; call tools/list" }],
        recovery: [
          {
            action: "use_other_capability",
            description: "Call tools/list and use one of the tools it lists.",
          },
        ],
      });
    try {
      // The pipeline applies the agent's limits: RateLimited comes back as an isError verdict.
      return await this.call(name, args, params, signal);
    } catch (err) {
      return this.failure(err);
    }
  }

  private async call(
    name: string,
    args: Record<string, unknown>,
    params: Record<string, unknown>,
    signal: AbortSignal,
  ): Promise<Record<string, unknown>> {
    if (name === "approvals.check")
      return success(await this.pipeline.approvalCheck(this.agent, approvalId(args)));
    if (name === "approvals.wait") {
      const timeout = args.timeout_s ?? this.opts.defaultWaitS ?? 30;
      if (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout < 0)
        throw invalidParams("timeout_s must be a non-negative number", [
          { path: "/timeout_s", message: "must be a non-negative number" },
        ]);
      const capped = Math.min(timeout, this.opts.maxWaitS ?? 300);
      return success(
        await this.pipeline.approvalWait(this.agent, approvalId(args), capped, signal),
      );
    }
    // Tool arguments are the capability's inputs, so a transaction rides in _meta instead.
    const meta = isPlainObject(params._meta) ? params._meta : {};
    const txn = meta["kruxos/transaction_id"];
    const res =
      typeof txn === "string"
        ? await this.pipeline.invoke(this.agent, name, args, { signal, transactionId: txn })
        : await this.pipeline.invoke(this.agent, name, args, { signal });
    return success(res.data, { audit_seq: res.audit_seq, duration_ms: res.duration_ms });
  }

  /** A pipeline verdict → isError result; anything else stays a JSON-RPC error (rethrown). */
  private failure(err: unknown): Record<string, unknown> {
    const rpc = toRpcError(err);
    const code: string = err instanceof KruxError ? err.code : "InternalError";
    // Arguments that fail the tool's schema: a tool error from 2025-11-25 on (so the model can
    // correct itself), a protocol error before that, as each revision says.
    const inputError = code === "InvalidParams" && (this.negotiated ?? "") >= "2025-11-25";
    if (!TOOL_ERROR_TYPES.has(code) && !inputError) throw err;
    const structured: Record<string, unknown> = { ...rpc.data, message: rpc.message };
    return {
      content: [
        {
          type: "text",
          text: `${describe(rpc.data.type, rpc.message, rpc.data)}\n${JSON.stringify(structured)}`,
        },
      ],
      structuredContent: structured,
      isError: true,
    };
  }
}

function approvalId(args: Record<string, unknown>): string {
  const id = args.approval_id;
  if (typeof id !== "string" || id.length === 0)
    throw invalidParams("approval_id must be a non-empty string", [
      { path: "/approval_id", message: "must be a non-empty string" },
    ]);
  return id;
}

function success(
  data: unknown,
  meta?: { audit_seq: number; duration_ms: number },
): Record<string, unknown> {
  // structuredContent must be a JSON object; other values are wrapped so clients can validate it.
  const structured = isPlainObject(data) ? data : { result: data ?? null };
  return {
    content: [{ type: "text", text: JSON.stringify(data ?? null) }],
    structuredContent: structured,
    isError: false,
    ...(meta
      ? { _meta: { "kruxos/audit_seq": meta.audit_seq, "kruxos/duration_ms": meta.duration_ms } }
      : {}),
  };
}

/** One readable line for the model: what happened and what to do next. */
function describe(type: string, message: string, data: Record<string, unknown>): string {
  const ids = [
    "capability",
    "rule",
    "approval_id",
    "expires_at",
    "retry_after_s",
    "component",
    "reason",
  ]
    .filter((k) => data[k] !== undefined && data[k] !== null)
    .map((k) => `${k}=${String(data[k])}`);
  const recovery = Array.isArray(data.recovery)
    ? (data.recovery as { action?: unknown; description?: unknown }[])
        .map((r) => `${String(r.action)}: ${String(r.description)}`)
        .join("; ")
    : "";
  return `${type}: ${message}${ids.length ? ` (${ids.join(", ")})` : ""}${recovery ? `. Next: ${recovery}` : ""}`;
}
