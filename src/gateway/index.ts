// gateway: the data plane on the agent port — probes and the runtime contract, agent
// authentication, JSON-RPC on /rpc, MCP on /mcp (WebSocket and Streamable HTTP), the sessions of
// every transport, and the call pipeline with the per-agent limits. It is the one place KruxError
// codes become wire errors. It does not hold policy, audit or execute anything itself (the
// pipeline asks policy, the approvals queue, the audit log and the handlers), never reaches into
// supervision, and data-plane subsystems never import it.
export { createAgentServer } from "./agent-server.js";
export type { AgentServerDeps } from "./agent-server.js";
export { Readiness } from "./readiness.js";
export type { ReadinessOptions, ReadyBody } from "./readiness.js";
export {
  handleMessage,
  toRpcError,
  rpcError,
  jsonDepth,
  methodNotFound,
  invalidParams,
} from "./jsonrpc.js";
export type { RpcError, RpcLimits, Dispatch, RpcId } from "./jsonrpc.js";
export type {
  AgentIdentity,
  CallOptions,
  InvokeResult,
  Pipeline,
  CapabilitySummary,
  McpTool,
} from "./pipeline-types.js";
export { createAgentAuthenticator } from "./agent-auth.js";
export type { AuthOutcome, AuthFailure, AgentAuthenticatorDeps } from "./agent-auth.js";
export { rpcDispatch, RPC_METHODS } from "./rpc-methods.js";
export { AgentCallLimiter } from "./limits.js";
export type { CallLimits, RunOptions } from "./limits.js";
export { SessionRegistry, clientFromUserAgent } from "./sessions.js";
export type { SessionEntry, SessionTransport, ClientInfo } from "./sessions.js";
export { GatewayPipeline } from "./pipeline.js";
export type { GatewayPipelineDeps, PipelineEvents } from "./pipeline.js";
export { registerMcpHttp } from "./mcp/http.js";
export type { McpHttpDeps } from "./mcp/http.js";
export { attachMcpWebSocket } from "./mcp/ws.js";
export type { McpWebSocketOptions } from "./mcp/ws.js";
export { McpSession, MCP_PROTOCOL_VERSIONS } from "./mcp/session.js";
export type { McpSessionOptions } from "./mcp/session.js";
