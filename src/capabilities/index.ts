// capabilities: capability definitions (config/capabilities/<category>/<verb>.yaml, validated by
// schema/capability.schema.json), the registry that pairs them with handlers and derives MCP tools,
// input/output validation and secret-field discovery, and the handlers: filesystem, agent.* and
// system.* in process; process, git and network over the ports in ./ports (launcher, egress
// client), and secrets.list over the secrets port, which the wiring hands in. It does not decide
// policy, resolve secrets, sandbox, audit, open sockets or speak any wire protocol, and imports no
// store or effect subsystem.
export {
  loadCapabilityDefinitions,
  defaultCapabilitiesDir,
  capabilitySchema,
  CapabilityRegistry,
} from "./registry.js";
export type {
  InputValidation,
  OutputValidation,
  McpTool,
  ListOptions,
  RegistryOptions,
} from "./registry.js";
export { secretValues, SECRET_KEYWORD } from "./schemas.js";
export type { SchemaFinding } from "./schemas.js";
export { AGENT_WORKSPACE } from "./types.js";
export type {
  CallContext,
  CapabilityHandler,
  CapabilityDefinition,
  CapabilityErrorSpec,
  CommonPattern,
  JsonSchema,
  PermissionTier,
  RecoveryAction,
  RecoveryStep,
  SideEffects,
} from "./types.js";
export { createSystemHandlers } from "./builtin/system.js";
export type { SystemHandlerDeps } from "./builtin/system.js";
export { createAgentHandlers } from "./builtin/agent.js";
export { createSecretsHandlers } from "./secrets/handlers.js";
export type { SecretsHandlerDeps } from "./secrets/handlers.js";
export type { AgentHandlerDeps, SessionInfo } from "./builtin/agent.js";
export { parsePrometheusText } from "./builtin/prometheus.js";
export type { MetricFamily, MetricSample, MetricType } from "./builtin/prometheus.js";
export { createFilesystemHandlers, mandatoryDenyReason } from "./filesystem/index.js";
export type {
  SandboxLimits,
  SandboxRequest,
  SandboxResult,
  SandboxProcess,
  LimitKind,
  CallIdentity,
  Launcher,
  EgressHttpRequest,
  EgressHttpResponse,
  EgressStream,
  EgressClient,
  SecretCaller,
  SecretInfo,
  SecretsPort,
} from "./ports/index.js";
export { createNetworkHandlers } from "./network/index.js";
export { createProcessHandlers, ProcessTable, stateOf } from "./process/index.js";
export type { ProcessCapabilities, ProcessHandlerOptions } from "./process/index.js";
export { createGitHandlers } from "./git/index.js";
export type { GitHandlerOptions } from "./git/index.js";
