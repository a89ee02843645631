// The audit log's single writer.
//
// - `append` assigns seq, ts, prev_hash and hash at once, in call order, so the chain is the call
//   order; the bytes are written by one serialized drain loop. Appends that arrive while a write or
//   fsync is in flight share the next write and fsync (group commit).
// - `{durable: true}` resolves only after the record's bytes are fsynced — used for the intent of a
//   side-effecting call, which must be on disk before the call executes. Other records are written
//   at once and fsynced by the next durable append, checkpoint, the sync timer or `close`.
// - The ts never goes backwards (a clock step back is clamped to the previous record's ts), so the
//   daily files, sorted by name, are always in chain order.
//
// Torn tail decision: a newest daily file that ends inside a record, when that is the only thing
// wrong, is what a crash mid-write leaves (kill -9, OOM). `open` moves the partial bytes into a
// quarantine file beside the log, truncates, and writes an `audit.tail_repaired` record first, so
// the appliance comes back by itself and the cut is in the chain. Anything else — a damaged frame,
// a damaged last record, keyed checkpoints naming a seq past the end of the log — is evidence, not
// a crash: `open` succeeds but every append is refused with AuditUnavailable and health is failing
// until an operator looks (`repairTornTail` is the operator's tool for a tear left behind).
//
// Fail modes, on a write or fsync failure: "halt" rejects the failing appends and everything queued
// behind them (the head rolls back to the last record on disk, so no gap is ever written), then
// refuses every append at once while a background probe, backing off, tries to write an
// `audit.halted` record; once it lands, an `audit.resumed` record follows and appends go on — the
// outage is one record pair in the chain. "degrade" keeps the records, in order, in a bounded ring,
// resolves their appends with `written: false`, and retries on the next append and on a timer. A
// full ring rejects new appends — records are never dropped.
import { constants, type FileHandle, open } from "node:fs/promises";
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readSync,
} from "node:fs";
import path from "node:path";
import {
  Counter,
  Gauge,
  Histogram,
  KruxError,
  registered,
  type ComponentHealth,
  type HealthStatus,
  type Logger,
  type Registry,
  writeFileAtomic,
} from "../core/index.js";
import { appendCheckpoint, fsyncDir, readCheckpoints } from "./checkpoints.js";
import {
  dailyFileName,
  frame,
  listDailyFiles,
  readAllFrames,
  readFrames,
  type Tear,
} from "./frames.js";
import { AuditIndex, rowOf, type IndexRow } from "./index-db.js";
import {
  AUDIT_RECORD_VERSION,
  GENESIS_HASH,
  chainHash,
  decodeRecord,
  encodeCanonical,
  entryProblem,
  type AuditEntry,
  type AuditRecord,
} from "./record.js";

export type AuditFailMode = "halt" | "degrade";

export interface AuditLogOptions {
  /** What a write failure does to appends (default "halt"). */
  readonly failMode?: AuditFailMode;
  /** HMAC key for checkpoints; without it no checkpoints are written. */
  readonly checkpointKey?: Buffer;
  /** A checkpoint after this many records (default 1000)… */
  readonly checkpointEvery?: number;
  /** …or this long after the last one, if records arrived since (default 60 s). */
  readonly checkpointIntervalMs?: number;
  /** Records kept in memory while writes fail, in degrade mode (default 10,000). */
  readonly ringSize?: number;
  /** How often a failing writer retries on its own, in degrade mode (default 1 s). */
  readonly retryIntervalMs?: number;
  /** Halt mode: a halted writer first retries this long after the failure (default 100 ms)… */
  readonly haltRetryStartMs?: number;
  /** …and each failed retry doubles the wait, up to this bound (default 2 s). */
  readonly haltRetryMaxMs?: number;
  /**
   * Called when `health().status` changes (not for the status at open), so /ready can follow at
   * once. Called synchronously from the writer: keep it cheap. A throw is logged and ignored.
   */
  readonly onHealthChange?: (status: HealthStatus) => void;
  /** How long a non-durable record may sit in the page cache before an fsync (default 1 s). */
  readonly syncIntervalMs?: number;
  /** Index rows are committed in batches at least this often (default 250 ms). */
  readonly indexFlushMs?: number;
  /** Epoch milliseconds; tests inject a clock. */
  readonly now?: () => number;
  readonly registry?: Registry;
  readonly logger?: Logger;
}

export interface AppendOptions {
  /** Resolve only once the record is fsynced. */
  readonly durable?: boolean;
}

export interface AppendResult {
  readonly seq: number;
  readonly hash: string;
  readonly ts: string;
  /** False only in degrade mode: the record is held in the ring, not yet on disk. */
  readonly written: boolean;
}

export interface AuditHead {
  readonly seq: number;
  readonly hash: string;
}

interface Pending {
  readonly record: AuditRecord;
  readonly frame: Buffer;
  readonly file: string;
  readonly durable: boolean;
  /** Written by the writer itself (tail repair, outage records), not for a caller. */
  readonly recovery: boolean;
  readonly started: number;
  settled: boolean;
  readonly resolve: (r: AppendResult) => void;
  readonly reject: (e: Error) => void;
}

interface Blocked {
  readonly reason: "torn_tail" | "damaged_tail" | "truncated";
  readonly detail: string;
  readonly file?: string;
  readonly offset?: number;
}

/** A halted writer (halt mode, a write failure noted): what the recovery records will say. */
interface Halt {
  /** When the failure was noted (ISO). */
  readonly since: string;
  /** The failure, bounded: it goes into the halted record. */
  readonly reason: string;
  /** Appends turned away at once while halted. */
  refused: number;
  /** Appends whose write failed (the one that halted the writer and any queued behind it). */
  failed: number;
  /** Wait before the next retry. */
  delayMs: number;
  /** The halted record is on disk; only the resumed record is left to write. */
  haltedWritten: boolean;
  /** Records the recovery writes before the halted one (an open-time repair record that failed). */
  readonly owed: AuditEntry[];
}

const MAX_REASON_CHARS = 256;

interface AuditMetrics {
  readonly records: Counter<"kind">;
  readonly appendSeconds: Histogram<string>;
  readonly failures: Counter<string>;
  readonly halted: Gauge<string>;
}

function metricsOn(registry: Registry | undefined): AuditMetrics | undefined {
  if (!registry) return undefined;
  return {
    records: registered(
      registry,
      "kruxos_audit_records_total",
      () =>
        new Counter<"kind">({
          name: "kruxos_audit_records_total",
          help: "Audit records written, by kind.",
          labelNames: ["kind"],
          registers: [registry],
        }),
    ),
    appendSeconds: registered(
      registry,
      "kruxos_audit_append_seconds",
      () =>
        new Histogram({
          name: "kruxos_audit_append_seconds",
          help: "Time from append to the record being written (and fsynced when durable).",
          buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
          registers: [registry],
        }),
    ),
    failures: registered(
      registry,
      "kruxos_audit_write_failures_total",
      () =>
        new Counter({
          name: "kruxos_audit_write_failures_total",
          help: "Failed audit writes (log, fsync, checkpoint, or a halted writer's retry).",
          registers: [registry],
        }),
    ),
    halted: registered(
      registry,
      "kruxos_audit_halted",
      () =>
        new Gauge({
          name: "kruxos_audit_halted",
          help: "1 while the audit writer is halted (halt mode, writes failing, appends refused).",
          registers: [registry],
        }),
    ),
  };
}

const FILE_FLAGS = constants.O_WRONLY | constants.O_CREAT;
const INDEX_BATCH = 512;

function unavailable(message: string, data: Record<string, unknown>, cause?: unknown): KruxError {
  return new KruxError(
    "AuditUnavailable",
    message,
    data,
    cause === undefined ? undefined : { cause },
  );
}

export class AuditLog {
  private readonly failMode: AuditFailMode;
  private readonly now: () => number;
  private readonly metrics: AuditMetrics | undefined;
  private readonly logger: Logger | undefined;

  /** Last assigned record (pending ones included). */
  private assigned: { seq: number; hash: string; ts: string };
  /** Last record whose bytes are in the file. */
  private written: { seq: number; hash: string };
  private file: { name: string; size: number } | undefined;
  private fh: FileHandle | undefined;
  private unsynced = false;
  private dirUnsynced = false;

  private readonly pending: Pending[] = [];
  private drainScheduled = false;
  private lock: Promise<unknown> = Promise.resolve();
  private failure: { message: string; since: string } | undefined;
  /** Set only in halt mode, from the failure until the resumed record is written. */
  private halt: Halt | undefined;
  private closed = false;
  private blocked: Blocked | undefined;
  /** The status onHealthChange last reported (or the one at open). */
  private status: HealthStatus;

  private lastCheckpoint: { seq: number; at: number };
  private indexRows: IndexRow[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private retryTimer: NodeJS.Timeout | undefined;

  private constructor(
    readonly dir: string,
    private readonly opts: AuditLogOptions,
    recovered: Recovered,
    private index: AuditIndex | undefined,
  ) {
    this.failMode = opts.failMode ?? "halt";
    this.now = opts.now ?? Date.now;
    this.metrics = metricsOn(opts.registry);
    this.logger = opts.logger;
    this.assigned = { ...recovered.head };
    this.written = { seq: recovered.head.seq, hash: recovered.head.hash };
    this.file = recovered.file;
    this.blocked = recovered.blocked;
    this.lastCheckpoint = { seq: recovered.checkpointSeq, at: performance.now() };
    this.status = this.statusNow();
  }

  /**
   * Open (or create) the log in `dir`, recovering the head from the newest daily files. A tail torn
   * by a crash, and nothing else wrong, is cut here (see the file header).
   */
  static async open(dir: string, opts: AuditLogOptions = {}): Promise<AuditLog> {
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    let recovered = recover(dir);
    let cut: QuarantinedTail | undefined;
    if (recovered.crashTear) {
      const { file, offset } = recovered.crashTear;
      try {
        // Cut to the last whole record, which is where the recovered head and file already end.
        cut = quarantineTornTail(dir, file, offset);
      } catch (err) {
        // Not cut (a read-only or failing disk): refuse appends, as for any tail not vouched for.
        recovered = {
          ...recovered,
          blocked: {
            reason: "torn_tail",
            detail: `${file} at offset ${offset}: could not be cut: ${(err as Error).message}`,
            file,
            offset,
          },
        };
      }
    }
    let index: AuditIndex | undefined;
    try {
      index = AuditIndex.open(dir);
      catchUpIndex(dir, index, recovered.head.seq);
    } catch (err) {
      // The index is derived; queries fall back to scanning the log.
      opts.logger?.warn({ event: "AuditIndexUnavailable", err }, "audit index unavailable");
      index?.close();
      index = undefined;
    }
    const log = new AuditLog(dir, opts, recovered, index);
    if (recovered.blocked)
      log.logger?.error(
        { event: "AuditTailUnusable", ...recovered.blocked },
        "audit log tail is not intact; appends refused until an operator repairs it",
      );
    log.startTimers();
    if (cut) await log.recordTailRepair(cut);
    return log;
  }

  /** The first record of a session that found a crash-torn tail: what was cut, where it went. */
  private async recordTailRepair(cut: QuarantinedTail): Promise<void> {
    this.logger?.warn(
      { event: "AuditTailRepaired", ...cut },
      "audit log ended inside a record (a crash mid-write); partial bytes quarantined",
    );
    const entry: AuditEntry = { kind: "audit.tail_repaired", detail: { ...cut } };
    const done = this.enqueue(entry, true, true);
    this.kick();
    try {
      await done;
    } catch (err) {
      // The cut is made and cannot be undone: its record is owed to the chain, not dropped.
      if (!this.halt) {
        await this.close().catch(() => undefined);
        throw err;
      }
      this.halt.owed.push(entry);
    }
  }

  /** The chain's head: the last record assigned a seq (written or about to be). */
  head(): AuditHead {
    return { seq: this.assigned.seq, hash: this.assigned.hash };
  }

  healthy(): boolean {
    return this.health().status === "ok";
  }

  health(): ComponentHealth {
    const facts = {
      fail_mode: this.failMode,
      head_seq: this.assigned.seq,
      written_seq: this.written.seq,
      ring: this.failure ? this.pending.length : 0,
      ...(this.halt && { refused: this.halt.refused }),
    };
    if (this.blocked)
      return {
        name: "audit",
        status: "failing",
        detail: `audit log ${this.blocked.reason}: ${this.blocked.detail}`,
        facts,
      };
    if (this.closed) return { name: "audit", status: "failing", detail: "audit log closed", facts };
    if (this.failure)
      return {
        name: "audit",
        status: this.failMode === "halt" ? "failing" : "degraded",
        detail: this.halt
          ? `audit writes halted since ${this.halt.since}, ${this.halt.refused} appends refused, retrying: ${this.failure.message}`
          : `audit writes failing since ${this.failure.since}; ${this.pending.length} records held in memory: ${this.failure.message}`,
        facts,
      };
    return { name: "audit", status: "ok", facts };
  }

  private statusNow(): HealthStatus {
    if (this.blocked || this.closed) return "failing";
    if (this.failure) return this.failMode === "halt" ? "failing" : "degraded";
    return "ok";
  }

  /** Tell onHealthChange if the status flipped since it was last told. */
  private healthMayHaveChanged(): void {
    const status = this.statusNow();
    if (status === this.status) return;
    this.status = status;
    try {
      this.opts.onHealthChange?.(status);
    } catch (err) {
      this.logger?.warn({ event: "AuditHealthListenerFailed", err }, "onHealthChange threw");
    }
  }

  /** Record `entry`; see the file header for what resolving means in each mode. */
  append(entry: AuditEntry, opts: AppendOptions = {}): Promise<AppendResult> {
    if (this.closed)
      return Promise.reject(unavailable("the audit log is closed", { reason: "closed" }));
    if (this.blocked)
      return Promise.reject(
        unavailable(`audit log ${this.blocked.reason}: ${this.blocked.detail}`, {
          ...this.blocked,
        }),
      );
    const problem = entryProblem(entry);
    if (problem)
      return Promise.reject(new KruxError("InternalError", `invalid audit entry: ${problem}`));
    if (this.halt) {
      // Nothing may slip in ahead of the outage's records: refused without touching the disk.
      this.halt.refused++;
      return Promise.reject(
        unavailable(`audit writes halted since ${this.halt.since}: ${this.halt.reason}`, {
          reason: "write_failed",
          halted_since: this.halt.since,
        }),
      );
    }
    if (this.failMode === "degrade" && this.failure && this.pending.length >= this.ringSize()) {
      this.metrics?.failures.inc();
      return Promise.reject(
        unavailable(`audit ring full (${this.pending.length} records held) and writes failing`, {
          reason: "ring_full",
          ring: this.pending.length,
        }),
      );
    }
    const result = this.enqueue(entry, opts.durable === true, false);
    this.kick();
    return result;
  }

  /** Assign the next seq to `entry` and queue it; the caller starts (or is) the drain. */
  private enqueue(entry: AuditEntry, durable: boolean, recovery: boolean): Promise<AppendResult> {
    const ts = new Date(Math.max(this.now(), Date.parse(this.assigned.ts) || 0)).toISOString();
    const body = {
      ...entry,
      v: AUDIT_RECORD_VERSION,
      seq: this.assigned.seq + 1,
      ts,
      prev_hash: this.assigned.hash,
    } as Omit<AuditRecord, "hash">;
    const record = { ...body, hash: chainHash(body) } as AuditRecord;
    const bytes = frame(encodeCanonical(record));
    this.assigned = { seq: record.seq, hash: record.hash, ts };
    return new Promise<AppendResult>((resolve, reject) => {
      this.pending.push({
        record,
        frame: bytes,
        file: dailyFileName(ts),
        durable,
        recovery,
        started: performance.now(),
        settled: false,
        resolve,
        reject,
      });
    });
  }

  /** Write and fsync everything queued; rejects if records remain unwritten. */
  async flush(): Promise<void> {
    await this.exclusive(async () => {
      await this.drainOnce();
      if (this.pending.length > 0)
        throw unavailable(`${this.pending.length} audit records not yet written`, {
          reason: "unwritten",
          ring: this.pending.length,
        });
      if (this.unsynced) await this.syncFile();
    });
    this.flushIndex();
  }

  /**
   * Flush, checkpoint and close. In degrade mode, records the ring still holds make close reject
   * with AuditUnavailable (they are reported, never dropped quietly).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    // A closed log is not halted any more, it is closed (health says so).
    if (this.halt) this.metrics?.halted.set(0);
    this.healthMayHaveChanged();
    let lost = 0;
    await this.exclusive(async () => {
      await this.drainOnce();
      lost = this.pending.length;
      try {
        if (this.unsynced) await this.syncFile();
        await this.checkpoint();
      } catch (err) {
        this.logger?.error({ event: "AuditCloseFailed", err }, "audit close could not sync");
      }
      await this.fh?.close().catch(() => undefined);
      this.fh = undefined;
    });
    this.flushIndex();
    this.index?.close();
    this.index = undefined;
    if (lost > 0) {
      const err = unavailable(`${lost} audit records could not be written before close`, {
        reason: "unwritten",
        ring: lost,
      });
      for (const p of this.pending.splice(0)) if (!p.settled) p.reject(err);
      throw err;
    }
  }

  private ringSize(): number {
    return this.opts.ringSize ?? 10_000;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  private kick(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    void this.exclusive(() => this.drainOnce());
  }

  private startTimers(): void {
    const every = (ms: number, fn: () => Promise<void>): void => {
      const t = setInterval(() => {
        if (!this.closed) void this.exclusive(fn).catch(() => undefined);
      }, ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.opts.syncIntervalMs ?? 1000, async () => {
      if (this.unsynced)
        await this.syncFile().catch((err: unknown) => this.noteFailure(err, "fsync"));
    });
    if (this.opts.checkpointKey)
      every(this.opts.checkpointIntervalMs ?? 60_000, async () => {
        if (
          performance.now() - this.lastCheckpoint.at >=
          (this.opts.checkpointIntervalMs ?? 60_000) - 5
        )
          await this.checkpoint();
      });
    const flushIndex = setInterval(() => this.flushIndex(), this.opts.indexFlushMs ?? 250);
    flushIndex.unref();
    this.timers.push(flushIndex);
  }

  /** Write every queued record, oldest first, one daily file at a time. Runs under the lock. */
  private async drainOnce(): Promise<void> {
    this.drainScheduled = false;
    while (this.pending.length > 0) {
      const first = this.pending[0] as Pending;
      let n = 1;
      while (n < this.pending.length && (this.pending[n] as Pending).file === first.file) n++;
      const batch = this.pending.slice(0, n);
      let offsets: number[];
      try {
        offsets = await this.writeBatch(first.file, batch);
      } catch (err) {
        await this.onWriteFailure(err);
        return;
      }
      this.pending.splice(0, n);
      this.onWritten(batch, first.file, offsets);
    }
    if (this.written.seq - this.lastCheckpoint.seq >= (this.opts.checkpointEvery ?? 1000))
      await this.checkpoint();
  }

  private async writeBatch(name: string, batch: readonly Pending[]): Promise<number[]> {
    if (this.file?.name !== name) await this.switchFile(name);
    const file = this.file as { name: string; size: number };
    const fh = await this.ensureOpen(file);
    const buf =
      batch.length === 1 ? (batch[0] as Pending).frame : Buffer.concat(batch.map((p) => p.frame));
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await fh.write(buf, off, buf.length - off, file.size + off);
      off += bytesWritten;
    }
    this.unsynced = true;
    if (batch.some((p) => p.durable)) await this.syncFile();
    const offsets: number[] = [];
    let at = file.size;
    for (const p of batch) {
      offsets.push(at);
      at += p.frame.length;
    }
    file.size = at;
    return offsets;
  }

  /** A new day: the previous file is made durable first, so a crash never leaves a gap. */
  private async switchFile(name: string): Promise<void> {
    if (this.fh) {
      if (this.unsynced) await this.syncFile();
      const fh = this.fh;
      this.fh = undefined;
      await fh.close();
    } else if (this.unsynced && this.file) {
      // Written through a handle a failure closed: fsync through a fresh one (same inode).
      const old = await open(path.join(this.dir, this.file.name), "r");
      try {
        await old.datasync();
      } finally {
        await old.close();
      }
      this.unsynced = false;
    }
    // The ts never goes backwards, so a later day's file can only hold what a failed attempt of
    // ours left (a partial frame, cut on open). Whole records there were not written by us.
    let foreign = false;
    try {
      for (const item of readFrames(this.dir, name)) if (item.type === "frame") foreign = true;
    } catch {
      // Missing (a new day) or unreadable: opening it for writing decides.
    }
    if (foreign) throw new Error(`${name} already holds records this writer did not write`);
    this.file = { name, size: 0 };
    this.dirUnsynced = true;
  }

  private async ensureOpen(file: { name: string; size: number }): Promise<FileHandle> {
    if (this.fh) return this.fh;
    const fh = await open(path.join(this.dir, file.name), FILE_FLAGS, 0o640);
    try {
      // Cut whatever a failed earlier attempt left past the last good frame.
      if ((await fh.stat()).size !== file.size) await fh.truncate(file.size);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
    this.fh = fh;
    return fh;
  }

  private async syncFile(): Promise<void> {
    // Without an open handle (closed after a failure) the dirty pages wait for the next one.
    if (!this.fh) return;
    await this.fh.datasync();
    if (this.dirUnsynced) {
      fsyncDir(this.dir);
      this.dirUnsynced = false;
    }
    this.unsynced = false;
  }

  private onWritten(batch: readonly Pending[], file: string, offsets: readonly number[]): void {
    const last = batch[batch.length - 1] as Pending;
    this.written = { seq: last.record.seq, hash: last.record.hash };
    // A halted writer recovers only through its resumed record (`probe`).
    if (this.failure && !this.halt) {
      this.logger?.info(
        { event: "AuditWritesRecovered", since: this.failure.since, seq: this.written.seq },
        "audit writes recovered",
      );
      this.failure = undefined;
      if (this.retryTimer) clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      this.healthMayHaveChanged();
    }
    batch.forEach((p, i) => {
      this.metrics?.records.inc({ kind: p.record.kind });
      if (this.index) this.indexRows.push(rowOf(p.record, file, offsets[i] as number));
      if (!p.settled) {
        p.settled = true;
        this.metrics?.appendSeconds.observe((performance.now() - p.started) / 1000);
        p.resolve({ seq: p.record.seq, hash: p.record.hash, ts: p.record.ts, written: true });
      }
    });
    if (this.indexRows.length >= INDEX_BATCH) this.flushIndex();
  }

  private noteFailure(err: unknown, what: string): void {
    this.metrics?.failures.inc();
    const message = `${what}: ${(err as Error).message ?? String(err)}`;
    if (this.failMode === "degrade") {
      this.failure ??= { message, since: new Date(this.now()).toISOString() };
      this.logger?.error(
        { event: "AuditWriteFailed", err, fail_mode: this.failMode },
        "audit write failed",
      );
      this.healthMayHaveChanged();
      return;
    }
    if (this.halt) {
      // One error line per outage; the retries' failures are only the metric and this.
      this.logger?.debug(
        { event: "AuditHaltRetryFailed", err, retry_delay_ms: this.halt.delayMs },
        "audit write still failing",
      );
      return;
    }
    const since = new Date(this.now()).toISOString();
    this.failure = { message, since };
    this.halt = {
      since,
      reason: message.slice(0, MAX_REASON_CHARS),
      refused: 0,
      failed: 0,
      delayMs: Math.max(0, this.opts.haltRetryStartMs ?? 100),
      haltedWritten: false,
      owed: [],
    };
    this.metrics?.halted.set(1);
    this.logger?.error(
      { event: "AuditHalted", err, since },
      "audit writes failing; appends refused until the log can be written again",
    );
    this.healthMayHaveChanged();
    this.scheduleProbe();
  }

  private async onWriteFailure(err: unknown): Promise<void> {
    this.noteFailure(err, "write");
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close().catch(() => undefined);
    if (this.halt) {
      const rejected = this.pending.splice(0);
      this.halt.failed += rejected.filter((p) => !p.recovery).length;
      // Nothing after the last record on disk was written: the chain continues from there.
      this.assigned = { ...this.written, ts: this.assigned.ts };
      const e = unavailable(
        `audit record could not be written: ${(err as Error).message}`,
        { reason: "write_failed", seq: rejected[0]?.record.seq },
        err,
      );
      for (const p of rejected) {
        p.settled = true;
        p.reject(e);
      }
      return;
    }
    for (const p of this.pending)
      if (!p.settled) {
        p.settled = true;
        p.resolve({ seq: p.record.seq, hash: p.record.hash, ts: p.record.ts, written: false });
      }
    if (!this.retryTimer && !this.closed) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        if (!this.closed && this.pending.length > 0) this.kick();
      }, this.opts.retryIntervalMs ?? 1000);
      this.retryTimer.unref();
    }
  }

  private scheduleProbe(): void {
    const halt = this.halt;
    if (!halt || this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.exclusive(() => this.probe()).catch(() => undefined);
    }, halt.delayMs);
    this.retryTimer.unref();
  }

  /**
   * A halted writer's retry, under the lock: write what is owed, then the halted record, then the
   * resumed record, each durably; a step that fails is retried, alone, after a longer wait.
   * Appends stay refused until the last step is on disk, so the pair is adjacent in the chain.
   */
  private async probe(): Promise<void> {
    const halt = this.halt;
    if (!halt || this.closed) return;
    let ok = true;
    while (ok && halt.owed.length > 0) {
      ok = await this.writeRecovery(halt.owed[0] as AuditEntry);
      if (ok) halt.owed.shift();
    }
    if (ok && !halt.haltedWritten) {
      ok = await this.writeRecovery({
        kind: "audit.halted",
        detail: {
          since: halt.since,
          reason: halt.reason,
          refused: halt.refused,
          failed: halt.failed,
        },
      });
      halt.haltedWritten = ok;
    }
    const resumedAt = new Date(this.now()).toISOString();
    const outageMs = Math.max(0, Date.parse(resumedAt) - Date.parse(halt.since));
    if (ok)
      ok = await this.writeRecovery({
        kind: "audit.resumed",
        detail: {
          halted_since: halt.since,
          resumed_at: resumedAt,
          outage_ms: outageMs,
          refused: halt.refused,
          failed: halt.failed,
        },
      });
    if (!ok) {
      halt.delayMs = Math.min(Math.max(1, halt.delayMs * 2), this.opts.haltRetryMaxMs ?? 2000);
      this.scheduleProbe();
      return;
    }
    this.halt = undefined;
    this.failure = undefined;
    this.metrics?.halted.set(0);
    this.logger?.info(
      {
        event: "AuditResumed",
        halted_since: halt.since,
        outage_ms: outageMs,
        refused: halt.refused,
        seq: this.written.seq,
      },
      "audit writes resumed",
    );
    this.healthMayHaveChanged();
  }

  /** One durable record of the writer's own; true once it is on disk. Runs under the lock. */
  private async writeRecovery(entry: AuditEntry): Promise<boolean> {
    const written = this.enqueue(entry, true, true).then(
      () => true,
      () => false,
    );
    await this.drainOnce();
    return written;
  }

  /** A keyed checkpoint at the last written record, once that record is durable. */
  private async checkpoint(): Promise<void> {
    const key = this.opts.checkpointKey;
    // A checkpoint vouches for the chain up to its seq: never over a tail we know is not intact.
    if (!key || this.blocked || this.written.seq <= this.lastCheckpoint.seq) return;
    try {
      if (this.unsynced) await this.syncFile();
      if (this.unsynced) return; // not durable yet: the next checkpoint covers it
      appendCheckpoint(
        this.dir,
        key,
        this.written.seq,
        this.written.hash,
        new Date(this.now()).toISOString(),
      );
      this.lastCheckpoint = { seq: this.written.seq, at: performance.now() };
    } catch (err) {
      this.metrics?.failures.inc();
      this.logger?.error({ event: "AuditCheckpointFailed", err }, "audit checkpoint failed");
    }
  }

  private flushIndex(): void {
    if (!this.index || this.indexRows.length === 0) return;
    const rows = this.indexRows;
    this.indexRows = [];
    try {
      this.index.insert(rows);
    } catch (err) {
      // Derived data: a query scans the log past the last indexed row, so nothing is lost.
      this.logger?.warn({ event: "AuditIndexWriteFailed", err }, "audit index write failed");
    }
  }
}

interface Recovered {
  readonly head: { seq: number; hash: string; ts: string };
  readonly file: { name: string; size: number } | undefined;
  readonly blocked: Blocked | undefined;
  /** A crash-shaped tear ending the newest file, when nothing else is wrong: open cuts it. */
  readonly crashTear: { readonly file: string; readonly offset: number } | undefined;
  readonly checkpointSeq: number;
}

/**
 * The head from the newest daily file that holds a record; the newest file's tail is checked. The
 * head and file are those of the last whole record, so they stay right once a tear is cut.
 */
function recover(dir: string): Recovered {
  const files = listDailyFiles(dir);
  const problems: Blocked[] = [];
  let torn: { file: string; offset: number } | undefined;
  let head = { seq: 0, hash: GENESIS_HASH, ts: new Date(0).toISOString() };
  let file: { name: string; size: number } | undefined;
  for (let i = files.length - 1; i >= 0; i--) {
    const name = files[i] as string;
    let last: { bytes: Buffer; offset: number; end: number } | undefined;
    let tear: Tear | undefined;
    for (const item of readFrames(dir, name)) {
      if (item.type === "tear") tear = item;
      else last = item;
    }
    // Only the newest file can end mid-record after a crash; older tears are verify's business.
    if (tear && i === files.length - 1) {
      problems.push({
        reason: tear.kind === "torn" ? "torn_tail" : "damaged_tail",
        detail: `${name} at offset ${tear.offset}: ${tear.detail}`,
        file: name,
        offset: tear.offset,
      });
      if (tear.kind === "torn") torn = { file: name, offset: tear.offset };
    }
    if (!last) continue;
    const decoded = decodeRecord(last.bytes);
    if (!decoded.ok) {
      problems.push({
        reason: "damaged_tail",
        detail: `${name} at offset ${last.offset}: last record ${decoded.problem}`,
        file: name,
        offset: last.offset,
      });
      break;
    }
    head = { seq: decoded.record.seq, hash: decoded.record.hash, ts: decoded.record.ts };
    file = { name, size: last.end };
    break;
  }
  let checkpointSeq = 0;
  for (const line of readCheckpoints(dir))
    if (line.ok) checkpointSeq = Math.max(checkpointSeq, line.checkpoint.seq);
  if (checkpointSeq > head.seq)
    problems.push({
      reason: "truncated",
      detail: `a keyed checkpoint covers seq ${checkpointSeq} but the log ends at seq ${head.seq}`,
    });
  // A tear alone is what a crash leaves; a tear beside anything else is evidence to keep as found,
  // and the other problem is the one to name.
  const crashOnly = torn !== undefined && problems.length === 1;
  return {
    head,
    file,
    blocked: crashOnly
      ? undefined
      : (problems.find((p) => p.reason !== "torn_tail") ?? problems[0]),
    crashTear: crashOnly ? torn : undefined,
    checkpointSeq: Math.min(checkpointSeq, head.seq),
  };
}

/** Bring the derived index level with the log: drop rows past the head, add missing ones. */
function catchUpIndex(dir: string, index: AuditIndex, headSeq: number): void {
  index.deleteAbove(headSeq);
  const last = index.last();
  let rows: IndexRow[] = [];
  let skipFirst = last !== undefined;
  const from = last ? { file: last.file, offset: last.offset } : undefined;
  for (const item of readAllFrames(dir, from)) {
    if (item.type === "tear") break;
    if (skipFirst) {
      skipFirst = false;
      continue;
    }
    const decoded = decodeRecord(item.bytes);
    if (!decoded.ok || decoded.record.seq > headSeq) break;
    rows.push(rowOf(decoded.record, item.file, item.offset));
    if (rows.length >= 1000) {
      index.insert(rows);
      rows = [];
    }
  }
  index.insert(rows);
}

export interface TornTailRepair {
  readonly file: string;
  readonly offset: number;
  readonly bytes: number;
  readonly quarantine: string;
  readonly seq: number;
}

interface QuarantinedTail {
  readonly file: string;
  readonly offset: number;
  readonly bytes: number;
  readonly quarantine: string;
}

/**
 * Keep the bytes of `file` from `offset` on in `<file>.torn-<offset>` beside it (a `.N` suffix if
 * an earlier cut at the same offset is already kept), then cut the file back to `offset`; all of it
 * durable before returning. Shared by `open` (a crash-torn tail) and `repairTornTail` (operator).
 */
function quarantineTornTail(dir: string, file: string, offset: number): QuarantinedTail {
  const full = path.join(dir, file);
  let quarantine = `${file}.torn-${offset}`;
  for (let n = 2; existsSync(path.join(dir, quarantine)); n++)
    quarantine = `${file}.torn-${offset}.${n}`;
  const fd = openSync(full, "r+");
  let bytes: number;
  try {
    bytes = fstatSync(fd).size - offset;
    const partial = Buffer.alloc(bytes);
    for (let at = 0; at < bytes;) {
      const n = readSync(fd, partial, at, bytes - at, offset + at);
      if (n === 0) throw new Error(`${file} shrank while its torn tail was being kept`);
      at += n;
    }
    writeFileAtomic(path.join(dir, quarantine), partial, 0o640);
    ftruncateSync(fd, offset);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  fsyncDir(dir);
  return { file, offset, bytes, quarantine };
}

/**
 * The operator's answer to a torn tail that `open` left in place (a tool opened the log, or the
 * tear came with other damage that an operator has now judged): quarantine the partial bytes as
 * `open` would, and append an `operator.action` record naming what was cut. Refuses anything but a
 * crash-shaped tear (a damaged frame or a truncated log is evidence).
 */
export async function repairTornTail(
  dir: string,
  actor: string,
  opts: AuditLogOptions = {},
): Promise<TornTailRepair | undefined> {
  const files = listDailyFiles(dir);
  const name = files[files.length - 1];
  if (!name) return undefined;
  let tear: Tear | undefined;
  for (const item of readFrames(dir, name)) if (item.type === "tear") tear = item;
  if (!tear) return undefined;
  if (tear.kind !== "torn")
    throw unavailable(
      `${name} at offset ${tear.offset} is damaged, not torn; run kruxos audit verify`,
      {
        reason: "damaged_tail",
        file: name,
        offset: tear.offset,
      },
    );
  const cut = quarantineTornTail(dir, name, tear.offset);
  const log = await AuditLog.open(dir, opts);
  try {
    const r = await log.append(
      {
        kind: "operator.action",
        actor,
        detail: { action: "audit.repair_torn_tail", ...cut },
      },
      { durable: true },
    );
    return { ...cut, seq: r.seq };
  } finally {
    await log.close();
  }
}
