// state: the appliance's SQLite storage — agents.db (agents and their token hashes), later session,
// persistent and shared state. It owns opening databases in WAL mode and their health; it does not decide who may read
// or write what (policy does) and never talks to the network.
export { openDatabase } from "./database.js";
export type { Db } from "./database.js";
export { stateHealth, integrityCheck } from "./health.js";
export {
  AGENT_NAME_RE,
  migrateAgents,
  createAgent,
  listAgents,
  getAgent,
  revokeAgent,
  authenticateAgent,
} from "./agents.js";
export type { AgentRecord, AgentAuth, CreateAgentResult } from "./agents.js";
