// core: the shared vocabulary of the appliance. It owns the error taxonomy (KruxError, its
// catalogue, the one Recovery shape and the CapabilityError builder), pino logging with redaction,
// metrics registries, atomic files, canonical JSON and deep freezing, the health vocabulary, the
// one schema loader (ajv, each schema compiled once), token minting, hashing and constant-time
// comparison, local unix-socket IPC, the application root, how every listener is made (timeouts,
// peer faults, WebSocket protocol errors, bounded messages in flight), the bearer-token gate with
// its failure limiter, the refusal sampler, the host:port pattern grammar shared by egress rules
// and secret scopes, and the redaction of secret values (and their encodings) from text, bytes,
// JSON-like values and streams. It knows nothing of manifests, programs or agents, resolves no
// secret itself (callers hand it the values), and imports no other subsystem.
export { ERROR_CATALOGUE, KruxError, asKruxError, capabilityError } from "./errors.js";
export type { CapabilityErrorData, ErrorCode, ErrorSpec, Recovery } from "./errors.js";
export { createLogger, redactLogValues } from "./logger.js";
export type { Logger, LoggerOptions } from "./logger.js";
export { writeFileAtomic, ensureDir } from "./fs.js";
export { canonicalJson, deepFreeze } from "./canonical-json.js";
export type { Json } from "./canonical-json.js";
export {
  createRegistry,
  mergeExpositions,
  registered,
  Registry,
  Counter,
  Gauge,
  Histogram,
} from "./metrics.js";
export { unixRequest } from "./ipc.js";
export type { IpcResponse } from "./ipc.js";
export { appRoot, appVersion } from "./app-root.js";
export {
  PRECOMPILED_SCHEMAS_DIR,
  compileSchema,
  createAjv,
  readSchema,
  schemaCompilations,
  schemaKey,
  schemaValidator,
} from "./schemas.js";
export type { SchemaOptions } from "./schemas.js";
export { worst } from "./health.js";
export type { ComponentHealth, HealthStatus } from "./health.js";
export { tokenInUrl } from "./url-tokens.js";
export { matchesHostPattern, normalHost, parseHostPattern } from "./host-pattern.js";
export type { HostPattern } from "./host-pattern.js";
export { Redactor } from "./redact.js";
export type { RedactableSecret } from "./redact.js";
export { constantTimeEqual, hashToken, mintToken, tokenHashMatches } from "./tokens.js";
export { clip, setOwn } from "./bounded.js";
export {
  createHttpServer,
  createWebSocketServer,
  fastifyServerFactory,
  boundedMessages,
  refuseOnSocket,
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
} from "./servers.js";
export type {
  PeerFault,
  PeerFaultKind,
  ServerGuard,
  HttpHandlers,
  UpgradeListener,
  WebSocketAcceptor,
} from "./servers.js";
export { AuthLimiter } from "./auth-limiter.js";
export { createAuthGate, bearerToken, sourceOf } from "./auth-gate.js";
export type {
  AuthGateOptions,
  AuthRefusalReport,
  GateOutcome,
  GateRefusal,
  Verdict,
} from "./auth-gate.js";
export type { AuthLimiterOptions } from "./auth-limiter.js";
export { RefusalSampler } from "./refusal-sampler.js";
export type { RefusalEvent, RefusalSummary, RefusalSamplerOptions } from "./refusal-sampler.js";
export { openDatabase } from "./sqlite.js";
export type { Db, DbStatement } from "./sqlite.js";
