// The ports capabilities are written against: each is an interface whose implementation lives in
// an effect subsystem (sandbox, egress) or a store and is handed in by whoever wires the handlers.
// Handlers never look a launcher, a socket, a secret or a database up by a global name — a lint
// rule keeps capabilities from importing those subsystems at all — and tests can hand in a fake
// where a fake is the point of the test. One file per port.
export { identityOf } from "./identity.js";
export type { CallIdentity } from "./identity.js";
export type {
  Launcher,
  LimitKind,
  SandboxLimits,
  SandboxProcess,
  SandboxRequest,
  SandboxResult,
} from "./launcher.js";
export type {
  EgressClient,
  EgressHttpRequest,
  EgressHttpResponse,
  EgressStream,
} from "./egress.js";
export type { SecretCaller, SecretInfo, SecretsPort } from "./secrets.js";
