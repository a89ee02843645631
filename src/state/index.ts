// state: the appliance's SQLite storage in agents.db — opening databases in WAL mode with one set of
// durability settings, their integrity and health, agents and users (operators with roles, the
// first admin) with their token hashes. It checks a presented token against what is stored; it
// does not decide who may do what (policy and supervision do), read requests off the wire (the
// auth gates do), or talk to the network.
// The one SQLite opener is core's (the vault opens its store with it too); state's callers get it here.
export { openDatabase } from "../core/index.js";
export type { Db } from "../core/index.js";
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
