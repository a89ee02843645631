// `audit-index.db`: a SQLite (WAL) index of the log for queries. It is derived data — the daily
// files are the record of truth, the index is rebuilt from them when it lags or is lost, and a
// query re-reads each record from the log and re-checks its hash rather than trusting a row.
import path from "node:path";
import Database from "better-sqlite3";
import type { AuditRecord } from "./record.js";

export const INDEX_FILE = "audit-index.db";
const SCHEMA_VERSION = 1;

export interface IndexRow {
  readonly seq: number;
  readonly ts: string;
  readonly kind: string;
  readonly agent: string | null;
  readonly capability: string | null;
  readonly outcome: string | null;
  readonly approval_id: string | null;
  readonly file: string;
  readonly offset: number;
}

export interface IndexFilters {
  readonly since?: string;
  readonly until?: string;
  readonly kind?: string;
  readonly agent?: string;
  readonly capability?: string;
  readonly outcome?: string;
  readonly limit?: number;
  readonly order?: "asc" | "desc";
}

export function rowOf(record: AuditRecord, file: string, offset: number): IndexRow {
  return {
    seq: record.seq,
    ts: record.ts,
    kind: record.kind,
    agent: record.agent ?? null,
    capability: record.capability ?? null,
    outcome: record.outcome?.status ?? null,
    approval_id: record.approval_id ?? null,
    file,
    offset,
  };
}

export function rowMatches(row: IndexRow, f: IndexFilters): boolean {
  return (
    (f.since === undefined || row.ts >= f.since) &&
    (f.until === undefined || row.ts <= f.until) &&
    (f.kind === undefined || row.kind === f.kind) &&
    (f.agent === undefined || row.agent === f.agent) &&
    (f.capability === undefined || row.capability === f.capability) &&
    (f.outcome === undefined || row.outcome === f.outcome)
  );
}

export class AuditIndex {
  private readonly insertStmt: Database.Statement;
  private readonly insertMany: (rows: readonly IndexRow[]) => void;

  private constructor(private readonly db: Database.Database) {
    this.insertStmt = db.prepare(
      `INSERT OR REPLACE INTO records (seq, ts, kind, agent, capability, outcome, approval_id, file, offset)
       VALUES (@seq, @ts, @kind, @agent, @capability, @outcome, @approval_id, @file, @offset)`,
    );
    this.insertMany = db.transaction((rows: readonly IndexRow[]) => {
      for (const r of rows) this.insertStmt.run(r);
    });
  }

  static open(dir: string): AuditIndex {
    const db = new Database(path.join(dir, INDEX_FILE));
    try {
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = FULL");
      db.pragma("busy_timeout = 5000");
      const version = db.pragma("user_version", { simple: true }) as number;
      if (version !== 0 && version !== SCHEMA_VERSION) {
        // Derived data from another format: start over, the log rebuilds it.
        db.exec("DROP TABLE IF EXISTS records");
      }
      db.exec(`
        CREATE TABLE IF NOT EXISTS records (
          seq INTEGER PRIMARY KEY,
          ts TEXT NOT NULL,
          kind TEXT NOT NULL,
          agent TEXT,
          capability TEXT,
          outcome TEXT,
          approval_id TEXT,
          file TEXT NOT NULL,
          offset INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS records_ts ON records (ts);
        CREATE INDEX IF NOT EXISTS records_kind ON records (kind, seq);
        CREATE INDEX IF NOT EXISTS records_agent ON records (agent, seq);
        CREATE INDEX IF NOT EXISTS records_capability ON records (capability, seq);
        CREATE INDEX IF NOT EXISTS records_approval ON records (approval_id);
      `);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
      return new AuditIndex(db);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** The highest indexed record and where it lives. */
  last(): IndexRow | undefined {
    return this.db.prepare("SELECT * FROM records ORDER BY seq DESC LIMIT 1").get() as
      IndexRow | undefined;
  }

  rowAtOrBefore(seq: number): IndexRow | undefined {
    return this.db
      .prepare("SELECT * FROM records WHERE seq <= ? ORDER BY seq DESC LIMIT 1")
      .get(seq) as IndexRow | undefined;
  }

  insert(rows: readonly IndexRow[]): void {
    if (rows.length > 0) this.insertMany(rows);
  }

  /** Forget rows past the log's head (after a repair cut a torn tail). */
  deleteAbove(seq: number): void {
    this.db.prepare("DELETE FROM records WHERE seq > ?").run(seq);
  }

  query(f: IndexFilters): IndexRow[] {
    const where: string[] = [];
    const args: Record<string, unknown> = {};
    const add = (cond: string, name: string, value: unknown): void => {
      where.push(cond);
      args[name] = value;
    };
    if (f.since !== undefined) add("ts >= @since", "since", f.since);
    if (f.until !== undefined) add("ts <= @until", "until", f.until);
    if (f.kind !== undefined) add("kind = @kind", "kind", f.kind);
    if (f.agent !== undefined) add("agent = @agent", "agent", f.agent);
    if (f.capability !== undefined) add("capability = @capability", "capability", f.capability);
    if (f.outcome !== undefined) add("outcome = @outcome", "outcome", f.outcome);
    const order = f.order === "desc" ? "DESC" : "ASC";
    const limit = f.limit !== undefined ? ` LIMIT ${Math.max(0, Math.floor(f.limit))}` : "";
    const sql = `SELECT * FROM records${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY seq ${order}${limit}`;
    return this.db.prepare(sql).all(args) as IndexRow[];
  }

  close(): void {
    this.db.close();
  }
}
