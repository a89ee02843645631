// Reading the log: `queryAudit` (filters through the derived index, records re-read from the log
// and re-checked) and `tailAudit` (`kruxos audit tail -f`). Neither trusts the index for content:
// it only says where to look, and records past the last indexed one are found by scanning.
import { closeSync, existsSync, openSync, readSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { KruxError } from "../core/index.js";
import { readAllFrames } from "./frames.js";
import {
  AuditIndex,
  INDEX_FILE,
  rowMatches,
  rowOf,
  type IndexFilters,
  type IndexRow,
} from "./index-db.js";
import {
  MAX_RECORD_BYTES,
  decodeRecord,
  type AuditKind,
  type AuditOutcomeStatus,
  type AuditRecord,
} from "./record.js";

export interface AuditQuery {
  /** Records at or after this instant. */
  readonly since?: string | Date;
  /** Records at or before this instant. */
  readonly until?: string | Date;
  readonly kind?: AuditKind;
  readonly agent?: string;
  readonly capability?: string;
  readonly outcome?: AuditOutcomeStatus;
  /** At most this many records… */
  readonly limit?: number;
  /** …taken from the oldest ("asc", the default) or the newest end; results are in this order. */
  readonly order?: "asc" | "desc";
}

const iso = (t: string | Date): string => (t instanceof Date ? t : new Date(t)).toISOString();

function modified(seq: number, detail: string): KruxError {
  return new KruxError(
    "AuditUnavailable",
    `audit record ${seq} cannot be trusted (${detail}); run kruxos audit verify`,
    { reason: "modified", seq },
  );
}

/** Matching records, each re-read from its daily file and checked against its own hash. */
export async function queryAudit(dir: string, q: AuditQuery = {}): Promise<AuditRecord[]> {
  const f: IndexFilters = {
    ...(q.since !== undefined && { since: iso(q.since) }),
    ...(q.until !== undefined && { until: iso(q.until) }),
    ...(q.kind !== undefined && { kind: q.kind }),
    ...(q.agent !== undefined && { agent: q.agent }),
    ...(q.capability !== undefined && { capability: q.capability }),
    ...(q.outcome !== undefined && { outcome: q.outcome }),
  };
  const limit = q.limit ?? Infinity;
  if (limit <= 0) return [];
  const index = existsSync(path.join(dir, INDEX_FILE)) ? AuditIndex.open(dir) : undefined;
  const reader = new FrameReader(dir);
  try {
    const lastIndexed = index?.last();
    const tail = unindexedTail(dir, lastIndexed, f);
    const byIndex = (n: number, order: "asc" | "desc"): AuditRecord[] =>
      index && n > 0
        ? index
            .query({ ...f, order, ...(Number.isFinite(n) && { limit: n }) })
            .map((row) => reader.read(row))
        : [];
    if (q.order === "desc") {
      const newest = tail.reverse().slice(0, limit);
      return [...newest, ...byIndex(limit - newest.length, "desc")];
    }
    const oldest = byIndex(limit, "asc");
    return [...oldest, ...tail.slice(0, limit - oldest.length)];
  } finally {
    reader.close();
    index?.close();
  }
}

/** Records the index does not have yet (it is committed in batches), filtered in memory. */
function unindexedTail(dir: string, last: IndexRow | undefined, f: IndexFilters): AuditRecord[] {
  const out: AuditRecord[] = [];
  let skipFirst = last !== undefined;
  for (const item of readAllFrames(dir, last && { file: last.file, offset: last.offset })) {
    if (item.type === "tear") break; // a torn tail is verify's to report; it holds no record
    if (skipFirst) {
      skipFirst = false;
      continue;
    }
    const d = decodeRecord(item.bytes);
    if (!d.ok) throw modified(-1, `${item.file} at offset ${item.offset}: ${d.problem}`);
    if (rowMatches(rowOf(d.record, item.file, item.offset), f)) out.push(d.record);
  }
  return out;
}

class FrameReader {
  private readonly fds = new Map<string, number>();
  constructor(private readonly dir: string) {}

  read(row: IndexRow): AuditRecord {
    let fd = this.fds.get(row.file);
    if (fd === undefined) {
      fd = openSync(path.join(this.dir, row.file), "r");
      this.fds.set(row.file, fd);
    }
    const head = Buffer.alloc(4);
    if (readSync(fd, head, 0, 4, row.offset) !== 4) throw modified(row.seq, "its frame is gone");
    const len = head.readUInt32BE(0);
    if (len === 0 || len > MAX_RECORD_BYTES) throw modified(row.seq, "impossible length");
    const bytes = Buffer.alloc(len);
    if (readSync(fd, bytes, 0, len, row.offset + 4) !== len)
      throw modified(row.seq, "its frame is short");
    const d = decodeRecord(bytes);
    if (!d.ok) throw modified(row.seq, d.problem);
    if (d.record.seq !== row.seq)
      throw modified(row.seq, `the log holds seq ${d.record.seq} there`);
    return d.record;
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}

export interface TailOptions {
  /** Keep waiting for new records (`tail -f`). */
  readonly follow?: boolean;
  /** First seq to yield (default 1). */
  readonly fromSeq?: number;
  /** How often to look for new bytes when following (default 250 ms). */
  readonly pollMs?: number;
  /** Stops following. */
  readonly signal?: AbortSignal;
}

/** Records in chain order from `fromSeq`; with `follow`, new ones as they are written. */
export async function* tailAudit(dir: string, opts: TailOptions = {}): AsyncGenerator<AuditRecord> {
  const fromSeq = opts.fromSeq ?? 1;
  let pos: { file: string; offset: number } | undefined;
  if (fromSeq > 1 && existsSync(path.join(dir, INDEX_FILE))) {
    const index = AuditIndex.open(dir);
    try {
      // The greatest indexed record at or before fromSeq: reading resumes there.
      const row = index.rowAtOrBefore(fromSeq);
      if (row) pos = { file: row.file, offset: row.offset };
    } finally {
      index.close();
    }
  }
  for (;;) {
    for (const item of readAllFrames(dir, pos)) {
      if (item.type === "tear") {
        // A record being written right now; wait for the rest of it.
        if (item.kind === "torn") break;
        throw modified(-1, `${item.file} at offset ${item.offset}: ${item.detail}`);
      }
      const d = decodeRecord(item.bytes);
      if (!d.ok) throw modified(-1, `${item.file} at offset ${item.offset}: ${d.problem}`);
      pos = { file: item.file, offset: item.end };
      if (d.record.seq >= fromSeq) yield d.record;
    }
    if (!opts.follow || opts.signal?.aborted) return;
    try {
      await sleep(opts.pollMs ?? 250, undefined, opts.signal ? { signal: opts.signal } : {});
    } catch {
      return; // aborted
    }
  }
}
