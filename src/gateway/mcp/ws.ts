// MCP over WebSocket (`WS /mcp`): one JSON-RPC message (or batch) per text frame, replies as text
// frames. The agent server authenticates the upgrade; this file only binds an already-authenticated
// socket to an McpSession for as long as the socket lives. Messages run concurrently, so a long
// approvals.wait never holds up a ping; closing the socket aborts whatever is still running.
import type { WebSocket } from "ws";
import type { RpcLimits } from "../jsonrpc.js";
import type { AgentIdentity, Pipeline } from "../pipeline-types.js";
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
  /** Wraps every tools/call (per-agent rate and concurrency), see McpSessionOptions.runCall. */
  readonly runCall?: <T>(agent: string, fn: () => Promise<T>) => Promise<T>;
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
    ...(opts.runCall ? { runCall: opts.runCall } : {}),
  });
  ws.on("message", (data, isBinary) => {
    if (isBinary) {
      ws.close(UNSUPPORTED_DATA, "MCP over WebSocket takes JSON text frames only");
      return;
    }
    const text = Array.isArray(data)
      ? Buffer.concat(data).toString("utf8")
      : Buffer.isBuffer(data)
        ? data.toString("utf8")
        : Buffer.from(data).toString("utf8");
    void session.handle(text).then((reply) => {
      if (reply !== undefined && ws.readyState === ws.OPEN) ws.send(reply);
    });
  });
  ws.once("close", () => {
    session.close();
    opts.onClose?.();
  });
  return session;
}
