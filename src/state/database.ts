// The state subsystem's databases are opened with core's one SQLite opener.
export { openDatabase, type Db } from "../core/index.js";
