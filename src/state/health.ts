import { existsSync } from "node:fs";
import type { ComponentHealth } from "../core/index.js";
import { openDatabase } from "./database.js";

/** The state store is healthy when agents.db opens in WAL mode and passes SQLite's quick check. */
export function stateHealth(agentsDb: string): ComponentHealth {
  if (!existsSync(agentsDb))
    return { name: "state", status: "failing", detail: `${agentsDb} does not exist` };
  try {
    const db = openDatabase(agentsDb);
    try {
      const mode = db.pragma("journal_mode", { simple: true });
      const check = db.pragma("quick_check", { simple: true });
      if (check !== "ok")
        return { name: "state", status: "failing", detail: `quick_check: ${String(check)}` };
      return { name: "state", status: "ok", facts: { journal_mode: mode } };
    } finally {
      db.close();
    }
  } catch (err) {
    return { name: "state", status: "failing", detail: (err as Error).message };
  }
}
