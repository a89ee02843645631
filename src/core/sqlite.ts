// SQLite databases of the appliance: one opener so every database (state's, the vault's, the
// approval queue's) runs in WAL mode with the same durability and busy settings.
import path from "node:path";
import Database from "better-sqlite3";
import { ensureDir } from "./fs.js";

export type Db = Database.Database;
/** A prepared statement of a Db. */
export type DbStatement = Database.Statement;

export function openDatabase(file: string, opts: { readonly readonly?: boolean } = {}): Db {
  if (opts.readonly === true) {
    // For a quick look into a database another program owns: it must exist, nothing is written.
    const ro = new Database(file, { readonly: true, fileMustExist: true });
    ro.pragma("busy_timeout = 5000");
    return ro;
  }
  ensureDir(path.dirname(file), 0o750);
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.pragma("busy_timeout = 5000");
  db.pragma("foreign_keys = ON");
  return db;
}
