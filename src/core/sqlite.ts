// SQLite databases of the appliance: one opener so every database (state's, the vault's, the
// approval queue's) runs in WAL mode with the same durability and busy settings.
import path from "node:path";
import Database from "better-sqlite3";
import { ensureDir } from "./fs.js";

export type Db = Database.Database;

export function openDatabase(file: string): Db {
  ensureDir(path.dirname(file), 0o750);
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.pragma("busy_timeout = 5000");
  db.pragma("foreign_keys = ON");
  return db;
}
