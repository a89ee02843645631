// state: the appliance's SQLite storage (agents.db now; session, persistent and shared state
// later). It owns opening databases in WAL mode and their health; it does not decide who may read
// or write what (policy does) and never talks to the network.
export { openDatabase } from "./database.js";
export type { Db } from "./database.js";
export { stateHealth } from "./health.js";
