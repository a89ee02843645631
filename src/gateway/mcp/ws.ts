// MCP over WebSocket (`WS /mcp`): one JSON-RPC message (or batch) per text frame, replies as text
// frames. The agent server authenticates the upgrade; this file only binds an already-authenticated
// socket to an McpSession for as long as the socket lives. Messages run concurrently, so a long
// approvals.wait never holds up a ping; closing the socket aborts whatever is still running.
import type { WebSocket } from "ws";
import { boundedMessages } from "../../core/index.js";
import type { InternalErrorSink, RpcLimits } from "../jsonrpc.js";
import type { AgentIdentity, Pipeline } from "../pipeline-types.js";
import type { SessionRegistry } from "../sessions.js";
import { McpSession, type ToolNameStyle } from "./session.js";

export interface McpWebSocketOptions {
  /** serverInfo.version. */
  readonly version: string;
  readonly limits: RpcLimits;
  /**
   * The upgrade request's URL (e.g. `/mcp?tool_names=underscore`); only `tool_names` is read.
   * Tokens never travel here — the agent server refuses them before upgrading.
   */
  readonly requestUrl?: string;
  /** Overrides `tool_names` from the URL. */
  readonly toolNames?: ToolNameStyle;
  /** Called once when the socket closes (e.g. to release per-agent connection counts). */
  readonly onClose?: () => void;
  /** The gateway's sessions (see McpSessionOptions.sessions). */
  readonly sessions?: SessionRegistry;
  /** Messages in flight before the socket stops reading (default 64). */
  readonly maxInflight?: number;
  /** Failures that become -32603, with the reference the reply carries. */
  readonly onInternalError?: InternalErrorSink;
}

/** `?tool_names=underscore` on the endpoint URL → "underscore"; anything else → "dotted". */
export function toolNameStyleFromUrl(url: string | undefined): ToolNameStyle {
  if (!url) return "dotted";
  const q = url.indexOf("?");
  if (q < 0) return "dotted";
  return new URLSearchParams(url.slice(q + 1)).get("tool_names") === "underscore"
    ? "underscore"
    : "dotted";
}

/** Close code for binary frames: RFC 6455 1003 "unsupported data". */
const UNSUPPORTED_DATA = 1003;

export function attachMcpWebSocket(
  ws: WebSocket,
  agent: AgentIdentity,
  pipeline: Pipeline,
  opts: McpWebSocketOptions,
): McpSession {
  const session = new McpSession(agent, pipeline, {
    version: opts.version,
    limits: opts.limits,
    toolNames: opts.toolNames ?? toolNameStyleFromUrl(opts.requestUrl),
    ...(opts.sessions ? { sessions: opts.sessions } : {}),
    ...(opts.onInternalError ? { onInternalError: opts.onInternalError } : {}),
  });
  boundedMessages(ws, opts.maxInflight ?? 64, async (data, isBinary) => {
    if (isBinary) {
      ws.close(UNSUPPORTED_DATA, "MCP over WebSocket takes JSON text frames only");
      return;
    }
    const reply = await session.handle(data.toString("utf8"));
    if (reply !== undefined && ws.readyState === ws.OPEN) ws.send(reply);
  });
  ws.once("close", () => {
    session.close();
    opts.onClose?.();
  });
  return session;
}
