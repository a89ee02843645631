// supervision: what operators use — user authentication on every surface (the token gate over the
// users state stores), the user API, the live event stream and the dashboard server. It observes
// and approves; it never executes agent calls itself, refuses agent tokens on every surface, and
// does not store users (state does; the storage functions are re-exported here for old callers).
export { createUserAuthenticator } from "./users.js";
export type { UserAuthenticatorOptions } from "./users.js";
// Users' storage moved to state (beside the agents); re-exported so existing callers keep working.
export {
  ensureFirstAdmin,
  authenticateUser,
  adminTokenFile,
  migrateUsers,
} from "../state/index.js";
export type { Role, AuthenticatedUser } from "../state/index.js";
export { createUserApi, openApiDocument } from "./user-api.js";
export type { OperatorRouteDeps } from "./operator-routes.js";
export type { VaultRouteDeps } from "./vault-routes.js";
export type { UserApiDeps } from "./user-api.js";
export { createEventStream } from "./event-stream.js";
export type { EventStream, EventStreamOptions, SupervisionEvent } from "./event-stream.js";
export { createDashboardServer } from "./dashboard.js";
export type { DashboardDeps } from "./dashboard.js";
