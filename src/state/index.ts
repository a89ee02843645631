// state: the appliance's SQLite storage — agents.db (agents and their token hashes), later session,
// persistent and shared state. It owns opening databases in WAL mode and their health; it does not decide who may read
// or write what (policy does) and never talks to the network.
export { openDatabase } from "./database.js";
export type { Db } from "./database.js";
export { stateHealth, integrityCheck } from "./health.js";
export {
  looksLikeAgentToken,
  migrateAgents,
  createAgent,
  listAgents,
  getAgent,
  revokeAgent,
  authenticateAgent,
} from "./agents.js";
export type { AgentRecord, AgentAuth, CreateAgentResult } from "./agents.js";
export {
  USER_TOKEN_PREFIX,
  adminTokenFile,
  authenticateUser,
  ensureFirstAdmin,
  migrateUsers,
} from "./users.js";
export type { AuthenticatedUser, Role } from "./users.js";
/** The agent-name rule is config's (policy shares it); kept here under its old name. */
export { AGENT_NAME as AGENT_NAME_RE } from "../config/index.js";
