import { existsSync } from "node:fs";
import type { ComponentHealth } from "../core/index.js";
import type { Db } from "../core/index.js";

/** SQLite's integrity check of the whole file: run once when a program opens the store. */
export function integrityCheck(db: Db): string {
  return String(db.pragma("quick_check", { simple: true }));
}

/**
 * The state store is healthy when its file is still there, it runs in WAL mode and answers a read.
 * Cheap enough for the once-a-second readiness loop; the full integrity check result (taken at
 * open) is passed in, so a damaged file stays failing.
 */
export function stateHealth(db: Db, file: string, integrity: string): ComponentHealth {
  if (!existsSync(file))
    return { name: "state", status: "failing", detail: `${file} does not exist` };
  if (integrity !== "ok")
    return { name: "state", status: "failing", detail: `quick_check: ${integrity}` };
  try {
    const mode = db.pragma("journal_mode", { simple: true });
    db.prepare("SELECT count(*) FROM sqlite_master").get();
    return mode === "wal"
      ? { name: "state", status: "ok", facts: { journal_mode: mode } }
      : { name: "state", status: "failing", detail: `journal_mode is ${String(mode)}, not wal` };
  } catch (err) {
    return { name: "state", status: "failing", detail: (err as Error).message };
  }
}
