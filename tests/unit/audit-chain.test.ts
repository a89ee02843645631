// The audit log as a library: deterministic records, one chain across daily files, durability,
// recovery, queries, the derived index, and what each fail mode does when the disk refuses writes.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
  appendFileSync,
} from "node:fs";
import { open } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import { Registry } from "prom-client";
import {
  AuditLog,
  encodeCanonical,
  queryAudit,
  repairTornTail,
  tailAudit,
  verifyAudit,
  type AuditEntry,
  type AuditLogOptions,
  type AuditRecord,
} from "../../src/audit/index.js";
import { KruxError, createLogger, type Logger } from "../../src/core/index.js";
import { tempDir } from "../helpers/repo.js";

const KEY = Buffer.alloc(32, 7);

/** Wait (generously: shared CI hosts stall) until `cond` holds. */
async function eventually(
  cond: () => boolean | Promise<boolean>,
  what: string,
  ms = 5000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A clock the test moves by hand. */
function clock(startIso: string): {
  now: () => number;
  set: (iso: string) => void;
  tick: (ms: number) => void;
} {
  let t = Date.parse(startIso);
  return { now: () => t, set: (iso) => (t = Date.parse(iso)), tick: (ms) => (t += ms) };
}

/** Every record in file order, parsed from the bytes with no help from the library. */
function readRecords(
  dir: string,
): { file: string; record: Record<string, unknown>; raw: Buffer }[] {
  const out: { file: string; record: Record<string, unknown>; raw: Buffer }[] = [];
  for (const file of readdirSync(dir)
    .filter((n) => /^audit-\d{4}-\d{2}-\d{2}\.log$/.test(n))
    .sort()) {
    const buf = readFileSync(path.join(dir, file));
    let off = 0;
    while (off < buf.length) {
      const len = buf.readUInt32BE(off);
      const raw = buf.subarray(off + 4, off + 4 + len);
      out.push({ file, record: decodeMap(raw), raw });
      off += 4 + len;
    }
  }
  return out;
}

// A minimal CBOR reader for what records contain, so the test does not trust the writer's decoder.
function decodeMap(buf: Buffer): Record<string, unknown> {
  let i = 0;
  const arg = (info: number): number => {
    if (info < 24) return info;
    if (info === 24) return buf[i++] as number;
    if (info === 25) return ((i += 2), buf.readUInt16BE(i - 2));
    if (info === 26) return ((i += 4), buf.readUInt32BE(i - 4));
    throw new Error(`unexpected length ${info}`);
  };
  const item = (): unknown => {
    const b = buf[i++] as number;
    const major = b >> 5;
    const info = b & 31;
    if (major === 0) return arg(info);
    if (major === 1) return -1 - arg(info);
    if (major === 3) {
      const n = arg(info);
      return buf.toString("utf8", i, (i += n));
    }
    if (major === 4) return Array.from({ length: arg(info) }, item);
    if (major === 5) {
      const o: Record<string, unknown> = {};
      for (let n = arg(info); n > 0; n--) o[item() as string] = item();
      return o;
    }
    if (b === 0xf4) return false;
    if (b === 0xf5) return true;
    if (b === 0xf6) return null;
    if (b === 0xfb) return ((i += 8), buf.readDoubleBE(i - 8));
    throw new Error(`unexpected CBOR byte ${b.toString(16)}`);
  };
  const v = item();
  assert.equal(i, buf.length, "one item per frame");
  return v as Record<string, unknown>;
}

/** A logger whose lines the test reads back. */
function capturedLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    program: "test",
    level: "debug",
    destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
  });
  return { logger, lines };
}

function isUnavailable(reason?: string): (e: unknown) => boolean {
  return (e) =>
    e instanceof KruxError &&
    e.code === "AuditUnavailable" &&
    (reason === undefined || (e.data as { reason?: unknown } | undefined)?.reason === reason);
}

function entry(i: number): AuditEntry {
  const kinds = [
    "capability.intent",
    "capability.result",
    "auth.failure",
    "egress.connection",
  ] as const;
  return {
    kind: kinds[i % kinds.length] as AuditEntry["kind"],
    agent: `agent-${i % 3}`,
    capability: i % 2 === 0 ? "fs.read" : "http.request",
    outcome: { status: i % 5 === 0 ? "denied" : "ok" },
    detail: { i },
  };
}

test("the same record encodes to the same bytes whatever order its keys were written in", () => {
  const a = encodeCanonical({
    v: 1,
    seq: 1,
    kind: "boot.started",
    detail: { b: [1, "x"], a: { d: 2, c: 1.5 } },
  });
  const b = encodeCanonical({
    detail: { a: { c: 1.5, d: 2 }, b: [1, "x"] },
    kind: "boot.started",
    seq: 1,
    v: 1,
  });
  assert.deepEqual(a, b);
  // Plain CBOR maps, keys shortest-first then bytewise (RFC 8949 §4.2.1), minimal headers.
  assert.equal(
    encodeCanonical({ kind: "boot.started", seq: 1, v: 1 }).toString("hex"),
    "a3" + "617601" + "6373657101" + "646b696e64" + "6c626f6f742e73746172746564",
  );
});

test("each record's hash is SHA-256 of the previous hash and the record without its hash", async () => {
  const { dir, cleanup } = tempDir("kruxos-audit-");
  try {
    const log = await AuditLog.open(dir);
    for (let i = 0; i < 3; i++) await log.append(entry(i));
    await log.close();
    let prev = Buffer.alloc(32);
    for (const [i, { record, raw }] of readRecords(dir).entries()) {
      assert.equal(record.v, 1);
      assert.equal(record.seq, i + 1);
      assert.equal(record.prev_hash, prev.toString("hex"));
      const { hash, ...body } = record;
      const want = createHash("sha256").update(prev).update(encodeCanonical(body)).digest();
      assert.equal(hash, want.toString("hex"));
      assert.deepEqual(encodeCanonical(record), raw, "stored bytes are the canonical encoding");
      prev = want;
    }
  } finally {
    cleanup();
  }
});

test("strings with lone surrogates (an agent's transaction id) are written as they read back, so the chain verifies", async () => {
  const { dir, cleanup } = tempDir("kruxos-audit-");
  try {
    const log = await AuditLog.open(dir);
    // Found by the fuzz campaign: "\ud800" was written as bytes ED A0 80 (not UTF-8), read back as
    // U+FFFD, and the record then failed verification as modified.
    await log.append({
      kind: "capability.intent",
      agent: "fuzzer",
      detail: { transaction_id: "[M\ud800*\t\\\ud83d\ude00", ["k\udfff"]: "\udc00" },
    });
    await log.append(entry(1));
    await log.close();
    const [first] = readRecords(dir);
    assert.deepEqual(first?.record.detail, {
      transaction_id: "[M\ufffd*\t\\\ud83d\ude00",
      ["k\ufffd"]: "\ufffd",
    });
    const r = await verifyAudit(dir);
    assert.equal(r.ok, true, JSON.stringify(r));
  } finally {
    cleanup();
  }
});

test("one chain runs across a day boundary into the next day's file", async () => {
  const { dir, cleanup } = tempDir("kruxos-audit-");
  try {
    const c = clock("2025-01-01T23:59:59.500Z");
    const log = await AuditLog.open(dir, { now: c.now });
    for (let i = 0; i < 3; i++) await log.append(entry(i));
    c.set("2025-01-02T00:00:00.100Z");
    for (let i = 3; i < 5; i++) await log.append(entry(i));
    c.set("2025-01-01T12:00:00.000Z"); // the clock steps back: the ts must not
    await log.append(entry(5));
    await log.close();
    const recs = readRecords(dir);
    assert.deepEqual(
      recs.map((r) => [r.file, r.record.seq]),
      [
        ["audit-2025-01-01.log", 1],
        ["audit-2025-01-01.log", 2],
        ["audit-2025-01-01.log", 3],
        ["audit-2025-01-02.log", 4],
        ["audit-2025-01-02.log", 5],
        ["audit-2025-01-02.log", 6],
      ],
    );
    assert.equal(recs[3]?.record.prev_hash, recs[2]?.record.hash);
    assert.ok((recs[5]?.record.ts as string) >= (recs[4]?.record.ts as string));
    const v = await verifyAudit(dir);
    assert.deepEqual(v.ok && [v.count, v.head.seq], [6, 6]);
  } finally {
    cleanup();
  }
});

test("a durable append is fsynced and readable from another descriptor when it resolves", async () => {
  const { dir, cleanup } = tempDir("kruxos-audit-");
  const probe = await open(path.join(dir, "probe"), "w");
  const proto = Object.getPrototypeOf(probe) as {
    sync: () => Promise<void>;
    datasync: () => Promise<void>;
  };
  await probe.close();
  const { sync, datasync } = proto;
  let syncs = 0;
  proto.sync = function (this: unknown) {
    return sync.call(this).then(() => void syncs++);
  };
  proto.datasync = function (this: unknown) {
    return datasync.call(this).then(() => void syncs++);
  };
  try {
    const c = clock("2025-02-03T10:00:00.000Z");
    const log = await AuditLog.open(dir, { now: c.now, syncIntervalMs: 60_000 });
    await log.append(entry(1)); // not durable: written, fsync may wait
    const before = syncs;
    const r = await log.append(
      { kind: "capability.intent", agent: "a", capability: "git.commit" },
      { durable: true },
    );
    assert.ok(syncs > before, "an fsync completed before the durable append resolved");
    const onDisk = readRecords(dir);
    assert.equal(onDisk.at(-1)?.record.seq, r.seq);
    assert.equal(onDisk.at(-1)?.record.hash, r.hash);
    assert.equal(r.written, true);
    await log.close();
  } finally {
    proto.sync = sync;
    proto.datasync = datasync;
    cleanup();
  }
});

test("the head is recovered when the log is reopened and the chain continues from it", async () => {
  const { dir, cleanup } = tempDir("kruxos-audit-");
  try {
    const c = clock("2025-03-01T23:00:00.000Z");
    let log = await AuditLog.open(dir, { now: c.now });
    for (let i = 0; i < 7; i++) await log.append(entry(i));
    const head = log.head();
    await log.close();
    c.set("2025-03-02T01:00:00.000Z");
    log = await AuditLog.open(dir, { now: c.now });
    assert.deepEqual(log.head(), head);
    const r = await log.append(entry(7));
    assert.equal(r.seq, 8);
    await log.close();
    const v = await verifyAudit(dir);
    assert.equal(v.ok && v.count, 8);
  } finally {
    cleanup();
  }
});

test("a crash-torn last record is cut at open, kept beside the log, and the cut is the session's first record", async () => {
  const { dir, cleanup } = tempDir("kruxos-audit-");
  try {
    const c = clock("2025-03-05T08:00:00.000Z");
    let log = await AuditLog.open(dir, { now: c.now });
    for (let i = 0; i < 4; i++) await log.append(entry(i));
    await log.close();
    const file = path.join(dir, "audit-2025-03-05.log");
    const whole = readFileSync(file);
    appendFileSync(file, whole.subarray(0, 30)); // a crash part-way through a fifth record
    const torn = await verifyAudit(dir);
    assert.deepEqual(!torn.ok && [torn.class, torn.first_bad_seq], ["truncated", 5]);

    const { logger, lines } = capturedLogger();
    log = await AuditLog.open(dir, { now: c.now, logger });
    assert.equal(log.healthy(), true, "no operator needed");
    const quarantine = `audit-2025-03-05.log.torn-${whole.length}`;
    assert.deepEqual(readFileSync(path.join(dir, quarantine)), whole.subarray(0, 30));
    const repaired = readRecords(dir).at(-1)?.record;
    assert.equal(repaired?.seq, 5);
    assert.equal(repaired?.kind, "audit.tail_repaired");
    assert.deepEqual(repaired?.detail, {
      file: "audit-2025-03-05.log",
      offset: whole.length,
      bytes: 30,
      quarantine,
    });
    assert.ok(
      lines.some((l) => l.event === "AuditTailRepaired" && l.level === "warn"),
      "the repair is logged as a warning",
    );
    const r = await log.append(entry(9), { durable: true });
    assert.equal(r.seq, 6);
    await log.close();
    const after = await verifyAudit(dir);
    assert.equal(after.ok && after.count, 6);
  } finally {
    cleanup();
  }
});

test("a damaged tail, or a torn one the checkpoints say lost records, still refuses appends and is left as found", async () => {
  const quarantined = (dir: string): string[] =>
    readdirSync(dir).filter((n) => n.includes(".torn-"));
  const damaged = tempDir("kruxos-audit-");
  const cut = tempDir("kruxos-audit-");
  try {
    const c = clock("2025-03-06T08:00:00.000Z");
    // An impossible length prefix after the last record: someone changed bytes.
    let log = await AuditLog.open(damaged.dir, { now: c.now });
    for (let i = 0; i < 4; i++) await log.append(entry(i));
    await log.close();
    const file = path.join(damaged.dir, "audit-2025-03-06.log");
    appendFileSync(file, Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    const before = readFileSync(file);
    log = await AuditLog.open(damaged.dir, { now: c.now });
    assert.equal(log.health().status, "failing");
    await assert.rejects(log.append(entry(9)), isUnavailable("damaged_tail"));
    await log.close();
    await assert.rejects(
      repairTornTail(damaged.dir, "operator:alice", { now: c.now }),
      isUnavailable("damaged_tail"),
    );
    assert.deepEqual(readFileSync(file), before);
    assert.deepEqual(quarantined(damaged.dir), []);

    // A crash-shaped tear, but a keyed checkpoint vouches for the record it cut into.
    log = await AuditLog.open(cut.dir, { now: c.now, checkpointKey: KEY });
    for (let i = 0; i < 4; i++) await log.append(entry(i));
    await log.close(); // checkpoints seq 4
    const cutFile = path.join(cut.dir, "audit-2025-03-06.log");
    const whole = readFileSync(cutFile);
    writeFileSync(cutFile, whole.subarray(0, whole.length - 5));
    const cutBefore = readFileSync(cutFile);
    log = await AuditLog.open(cut.dir, { now: c.now, checkpointKey: KEY });
    assert.equal(log.health().status, "failing");
    await assert.rejects(log.append(entry(9)), isUnavailable("truncated"));
    await log.close();
    assert.deepEqual(readFileSync(cutFile), cutBefore);
    assert.deepEqual(quarantined(cut.dir), []);
    const v = await verifyAudit(cut.dir, KEY);
    assert.deepEqual(!v.ok && v.class, "truncated");
  } finally {
    damaged.cleanup();
    cut.cleanup();
  }
});

test("an operator can cut a torn tail before the log is opened, and the repair is audited under their name", async () => {
  const { dir, cleanup } = tempDir("kruxos-audit-");
  try {
    const c = clock("2025-03-07T08:00:00.000Z");
    const log = await AuditLog.open(dir, { now: c.now });
    for (let i = 0; i < 4; i++) await log.append(entry(i));
    await log.close();
    const file = path.join(dir, "audit-2025-03-07.log");
    const whole = readFileSync(file);
    appendFileSync(file, whole.subarray(0, 30));
    const repaired = await repairTornTail(dir, "operator:alice", { now: c.now });
    assert.equal(repaired?.bytes, 30);
    assert.equal(repaired?.seq, 5);
    assert.deepEqual(
      readFileSync(path.join(dir, repaired?.quarantine ?? "")),
      whole.subarray(0, 30),
    );
    const after = await verifyAudit(dir);
    assert.equal(after.ok && after.count, 5);
    const last = readRecords(dir).at(-1)?.record;
    assert.equal(last?.kind, "operator.action");
    assert.equal(last?.actor, "operator:alice");
    assert.equal((last?.detail as { action?: unknown }).action, "audit.repair_torn_tail");
  } finally {
    cleanup();
  }
});

test("queries filter by time, kind, agent, capability and outcome, oldest or newest first", async () => {
  const { dir, cleanup } = tempDir("kruxos-audit-");
  try {
    const c = clock("2025-04-01T00:00:00.000Z");
    const log = await AuditLog.open(dir, { now: c.now });
    const entries: AuditEntry[] = [];
    for (let i = 0; i < 30; i++) {
      entries.push(entry(i));
      await log.append(entry(i));
      c.tick(60_000);
    }
    await log.close();
    const seqs = (rs: readonly AuditRecord[]): number[] => rs.map((r) => r.seq);
    const where = (p: (e: AuditEntry, i: number) => boolean): number[] =>
      entries.flatMap((e, i) => (p(e, i) ? [i + 1] : []));
    assert.deepEqual(
      seqs(await queryAudit(dir)),
      where(() => true),
    );
    assert.deepEqual(
      seqs(await queryAudit(dir, { kind: "auth.failure" })),
      where((e) => e.kind === "auth.failure"),
    );
    assert.deepEqual(
      seqs(await queryAudit(dir, { agent: "agent-1" })),
      where((e) => e.agent === "agent-1"),
    );
    assert.deepEqual(
      seqs(await queryAudit(dir, { capability: "fs.read" })),
      where((e) => e.capability === "fs.read"),
    );
    assert.deepEqual(
      seqs(await queryAudit(dir, { outcome: "denied" })),
      where((e) => e.outcome?.status === "denied"),
    );
    assert.deepEqual(
      seqs(
        await queryAudit(dir, {
          since: "2025-04-01T00:10:00.000Z",
          until: new Date("2025-04-01T00:12:00.000Z"),
        }),
      ),
      [11, 12, 13],
    );
    assert.deepEqual(
      seqs(await queryAudit(dir, { agent: "agent-0", outcome: "ok", limit: 3 })),
      [4, 7, 10],
    );
    assert.deepEqual(seqs(await queryAudit(dir, { limit: 2, order: "desc" })), [30, 29]);
    const full = await queryAudit(dir, { kind: "egress.connection", limit: 1 });
    assert.deepEqual(full[0]?.detail, { i: 3 });
  } finally {
    cleanup();
  }
});

test("records are queryable as soon as they are written, before the index catches up", async () => {
  const { dir, cleanup } = tempDir("kruxos-audit-");
  try {
    const log = await AuditLog.open(dir, { indexFlushMs: 60_000 });
    for (let i = 0; i < 5; i++) await log.append(entry(i));
    assert.deepEqual(
      (await queryAudit(dir)).map((r) => r.seq),
      [1, 2, 3, 4, 5],
    );
    assert.deepEqual(
      (await queryAudit(dir, { limit: 2, order: "desc" })).map((r) => r.seq),
      [5, 4],
    );
    await log.close();
  } finally {
    cleanup();
  }
});

test("a query refuses a record whose bytes were changed", async () => {
  const { dir, cleanup } = tempDir("kruxos-audit-");
  try {
    const c = clock("2025-04-02T00:00:00.000Z");
    const log = await AuditLog.open(dir, { now: c.now });
    for (let i = 0; i < 5; i++) await log.append(entry(i));
    await log.close();
    const file = path.join(dir, "audit-2025-04-02.log");
    const buf = readFileSync(file);
    const at = buf.indexOf(Buffer.from("agent-2"));
    buf[at + 6] = "9".charCodeAt(0);
    writeFileSync(file, buf);
    await assert.rejects(
      queryAudit(dir),
      (e: unknown) => e instanceof KruxError && e.code === "AuditUnavailable",
    );
  } finally {
    cleanup();
  }
});

test("the index holds exactly the log's records and is rebuilt when lost", async () => {
  const { dir, cleanup } = tempDir("kruxos-audit-");
  try {
    const c = clock("2025-05-01T23:59:00.000Z");
    const log = await AuditLog.open(dir, { now: c.now });
    for (let i = 0; i < 40; i++) {
      await log.append({ ...entry(i), ...(i % 4 === 0 && { approval_id: `ap-${i}` }) });
      c.tick(3_000);
    }
    await log.close();
    const expected = (() => {
      const rows: unknown[] = [];
      const offsets = new Map<string, number>();
      for (const { file, record, raw } of readRecords(dir)) {
        const offset = offsets.get(file) ?? 0;
        offsets.set(file, offset + 4 + raw.length);
        const outcome = record.outcome as { status: string } | undefined;
        rows.push({
          seq: record.seq,
          ts: record.ts,
          kind: record.kind,
          agent: record.agent ?? null,
          capability: record.capability ?? null,
          outcome: outcome?.status ?? null,
          approval_id: record.approval_id ?? null,
          file,
          offset,
        });
      }
      return rows;
    })();
    const indexed = (): unknown[] => {
      const db = new Database(path.join(dir, "audit-index.db"), { readonly: true });
      try {
        return db
          .prepare(
            "SELECT seq, ts, kind, agent, capability, outcome, approval_id, file, offset FROM records ORDER BY seq",
          )
          .all();
      } finally {
        db.close();
      }
    };
    assert.deepEqual(indexed(), expected);
    for (const f of readdirSync(dir)) if (f.startsWith("audit-index.db")) rmSync(path.join(dir, f));
    await (await AuditLog.open(dir, { now: c.now })).close();
    assert.deepEqual(indexed(), expected);
  } finally {
    cleanup();
  }
});

/** A log in `dir` whose next day's file cannot be created: that path is a directory. */
async function logWithBlockedNextDay(
  dir: string,
  failMode: "halt" | "degrade",
  extra: Omit<AuditLogOptions, "now" | "failMode"> = {},
): Promise<{ log: AuditLog; c: ReturnType<typeof clock>; unblock: () => void }> {
  const c = clock("2025-06-01T23:59:00.000Z");
  const log = await AuditLog.open(dir, { now: c.now, failMode, retryIntervalMs: 30, ...extra });
  for (let i = 0; i < 3; i++) await log.append(entry(i));
  const blocked = path.join(dir, "audit-2025-06-02.log");
  mkdirSync(blocked);
  c.set("2025-06-02T00:00:01.000Z");
  return { log, c, unblock: () => rmSync(blocked, { recursive: true }) };
}

test("halt: the log recovers by itself once the disk is writable again, and the outage is one halted/resumed record pair", async () => {
  const { dir, cleanup } = tempDir("kruxos-audit-");
  try {
    const registry = new Registry();
    const { logger, lines } = capturedLogger();
    const { log, unblock } = await logWithBlockedNextDay(dir, "halt", {
      registry,
      logger,
      haltRetryStartMs: 10,
      haltRetryMaxMs: 50,
    });
    await assert.rejects(log.append(entry(3), { durable: true }), isUnavailable("write_failed"));
    assert.equal(log.health().status, "failing");
    assert.equal(log.head().seq, 3, "nothing unwritten stays in the chain");
    // Refused at once while halted, whatever the retries are doing.
    await assert.rejects(log.append(entry(4)), isUnavailable("write_failed"));
    await assert.rejects(log.append(entry(5), { durable: true }), isUnavailable("write_failed"));
    assert.equal(log.head().seq, 3);
    let text = await registry.metrics();
    assert.match(text, /^kruxos_audit_halted 1$/m);
    assert.match(text, /^kruxos_audit_write_failures_total [1-9]\d*$/m);

    unblock();
    await eventually(() => log.healthy(), "the halted log to recover without any append");
    const recs = readRecords(dir).map((x) => x.record);
    assert.deepEqual(
      recs.map((r) => [r.seq, r.kind]),
      [
        [1, "capability.intent"],
        [2, "capability.result"],
        [3, "auth.failure"],
        [4, "audit.halted"],
        [5, "audit.resumed"],
      ],
    );
    const halted = recs[3]?.detail as Record<string, unknown>;
    const resumed = recs[4]?.detail as Record<string, unknown>;
    assert.equal(typeof halted.since, "string");
    assert.ok(!Number.isNaN(Date.parse(halted.since as string)), "since is a time");
    assert.match(halted.reason as string, /^write: /);
    assert.equal(halted.refused, 2);
    assert.equal(halted.failed, 1);
    assert.equal(resumed.halted_since, halted.since);
    assert.ok(!Number.isNaN(Date.parse(resumed.resumed_at as string)), "resumed_at is a time");
    assert.equal(typeof resumed.outage_ms, "number");
    assert.ok((resumed.outage_ms as number) >= 0);
    assert.equal(resumed.refused, 2);
    const v = await verifyAudit(dir);
    assert.equal(v.ok && v.count, 5);

    const r = await log.append(entry(6), { durable: true });
    assert.equal(r.seq, 6);
    text = await registry.metrics();
    assert.match(text, /^kruxos_audit_halted 0$/m);
    assert.match(text, /^kruxos_audit_records_total\{kind="audit\.halted"\} 1$/m);
    await log.close();
    assert.equal(lines.filter((l) => l.event === "AuditHalted").length, 1, "one line per outage");
    assert.equal(lines.filter((l) => l.event === "AuditResumed").length, 1);
    const after = await verifyAudit(dir);
    assert.equal(after.ok && after.count, 6);
  } finally {
    cleanup();
  }
});

test("halt: while the disk still refuses, the retries back off up to their bound and write nothing", async () => {
  const { dir, cleanup } = tempDir("kruxos-audit-");
  try {
    const { logger, lines } = capturedLogger();
    const { log, unblock } = await logWithBlockedNextDay(dir, "halt", {
      logger,
      haltRetryStartMs: 5,
      haltRetryMaxMs: 40,
    });
    await assert.rejects(log.append(entry(3)), isUnavailable("write_failed"));
    const retries = (): number[] =>
      lines
        .filter((l) => l.event === "AuditHaltRetryFailed")
        .map((l) => l.retry_delay_ms as number);
    await eventually(() => retries().length >= 6, "several failed retries");
    assert.deepEqual(retries().slice(0, 6), [5, 10, 20, 40, 40, 40]);
    assert.equal(log.health().status, "failing");
    assert.equal(log.head().seq, 3);
    assert.equal(log.health().facts?.written_seq, 3, "no retry left a record behind");
    assert.equal(lines.filter((l) => l.event === "AuditHalted").length, 1);

    unblock();
    await eventually(() => log.healthy(), "the log to recover");
    await log.close();
    assert.deepEqual(
      readRecords(dir).map((x) => x.record.kind),
      ["capability.intent", "capability.result", "auth.failure", "audit.halted", "audit.resumed"],
    );
    const v = await verifyAudit(dir);
    assert.equal(v.ok && v.count, 5);
  } finally {
    cleanup();
  }
});

test("halt: a retry that lands the halted record but not the resumed one writes only the resumed record next", async () => {
  const { dir, cleanup } = tempDir("kruxos-audit-");
  const probe = await open(path.join(dir, "probe"), "w");
  const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
  await probe.close();
  const { datasync } = proto;
  // One entry per fsync from now on: true makes it fail with EIO.
  const failSyncs: boolean[] = [];
  proto.datasync = function (this: unknown) {
    if (failSyncs.shift() === true)
      return Promise.reject(Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" }));
    return datasync.call(this);
  };
  try {
    const c = clock("2025-06-10T12:00:00.000Z");
    const log = await AuditLog.open(dir, {
      now: c.now,
      failMode: "halt",
      syncIntervalMs: 60_000,
      haltRetryStartMs: 5,
    });
    for (let i = 0; i < 3; i++) await log.append(entry(i));
    // The append's fsync fails; the halted record's succeeds; the resumed record's fails.
    failSyncs.push(true, false, true);
    await assert.rejects(log.append(entry(3), { durable: true }), isUnavailable("write_failed"));
    await eventually(() => log.healthy(), "the log to recover");
    assert.deepEqual(failSyncs, [], "every planned fsync happened");
    await log.close();
    assert.deepEqual(
      readRecords(dir).map((x) => [x.record.seq, x.record.kind]),
      [
        [1, "capability.intent"],
        [2, "capability.result"],
        [3, "auth.failure"],
        [4, "audit.halted"],
        [5, "audit.resumed"],
      ],
    );
    const v = await verifyAudit(dir);
    assert.equal(v.ok && v.count, 5);
  } finally {
    proto.datasync = datasync;
    cleanup();
  }
});

test("health changes are reported as they happen: failing or degraded when writes fail, ok when they recover", async () => {
  for (const mode of ["halt", "degrade"] as const) {
    const { dir, cleanup } = tempDir("kruxos-audit-");
    try {
      const seen: string[] = [];
      const { log, unblock } = await logWithBlockedNextDay(dir, mode, {
        haltRetryStartMs: 10,
        onHealthChange: (s) => seen.push(s),
      });
      assert.deepEqual(seen, [], "nothing reported while nothing changed");
      await log.append(entry(3)).catch(() => undefined);
      await log.append(entry(4)).catch(() => undefined);
      assert.deepEqual(seen, [mode === "halt" ? "failing" : "degraded"], `${mode}: one flip`);
      unblock();
      await eventually(() => log.healthy(), `${mode}: recovery`);
      assert.deepEqual(seen, [mode === "halt" ? "failing" : "degraded", "ok"]);
      await log.close();
    } finally {
      cleanup();
    }
  }
});

test("degrade: records wait in memory in order, are written once the disk recovers, and a full ring refuses", async () => {
  const { dir, cleanup } = tempDir("kruxos-audit-");
  try {
    const { log, unblock } = await logWithBlockedNextDay(dir, "degrade", { ringSize: 5 });
    const held = [];
    for (let i = 3; i < 8; i++) held.push(await log.append(entry(i), { durable: i % 2 === 0 }));
    assert.deepEqual(
      held.map((r) => [r.seq, r.written]),
      [
        [4, false],
        [5, false],
        [6, false],
        [7, false],
        [8, false],
      ],
    );
    const h = log.health();
    assert.equal(h.status, "degraded");
    assert.equal(h.facts?.ring, 5);
    await assert.rejects(
      log.append(entry(8)),
      (e: unknown) => e instanceof KruxError && e.code === "AuditUnavailable",
    );
    unblock();
    await eventually(() => log.healthy(), "the retry timer to write the ring");
    const r = await log.append(entry(9), { durable: true });
    assert.equal(r.seq, 9);
    await log.close();
    assert.deepEqual(
      readRecords(dir).map((x) => x.record.seq),
      [1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    const v = await verifyAudit(dir);
    assert.equal(v.ok && v.count, 9);
  } finally {
    cleanup();
  }
});

test("keyed checkpoints are written every N records and after T idle time, and verify with the key", async () => {
  const { dir, cleanup } = tempDir("kruxos-audit-");
  try {
    const seqsNow = (): number[] =>
      readFileSync(path.join(dir, "checkpoints.log"), "utf8")
        .trim()
        .split("\n")
        .map((l) => (JSON.parse(l) as { seq: number }).seq);
    // Every N records: the idle interval is far away, so only the count decides (however slow
    // the machine is), and closing checkpoints the rest.
    const counted = await AuditLog.open(dir, {
      checkpointKey: KEY,
      checkpointEvery: 10,
      checkpointIntervalMs: 600_000,
    });
    for (let i = 0; i < 25; i++) await counted.append(entry(i));
    await eventually(() => seqsNow().length >= 2, "two count checkpoints");
    assert.deepEqual(seqsNow().slice(0, 2), [10, 20]);
    await counted.close();
    assert.equal(seqsNow().at(-1), 25, "close checkpoints the rest");
    // After T idle: the count is far away, so only the timer decides.
    const idle = await AuditLog.open(dir, {
      checkpointKey: KEY,
      checkpointEvery: 1000,
      checkpointIntervalMs: 40,
    });
    for (let i = 0; i < 3; i++) await idle.append(entry(i));
    await eventually(() => seqsNow().at(-1) === 28, "the idle checkpoint");
    await idle.close();
    const v = await verifyAudit(dir, KEY);
    assert.ok(v.ok);
    assert.equal(v.attested_seq, 28);
    const wrongKey = await verifyAudit(dir, Buffer.alloc(32, 8));
    assert.deepEqual(!wrongKey.ok && [wrongKey.class, wrongKey.first_bad_seq], ["forged", 1]);
  } finally {
    cleanup();
  }
});

test("tail -f yields existing records, then new ones as they are written", async () => {
  const { dir, cleanup } = tempDir("kruxos-audit-");
  try {
    const log = await AuditLog.open(dir);
    for (let i = 0; i < 3; i++) await log.append(entry(i));
    const ac = new AbortController();
    const seen: number[] = [];
    const done = (async () => {
      for await (const r of tailAudit(dir, {
        follow: true,
        fromSeq: 2,
        pollMs: 20,
        signal: ac.signal,
      })) {
        seen.push(r.seq);
        if (seen.length === 4) ac.abort();
      }
    })();
    await new Promise((r) => setTimeout(r, 60));
    await log.append(entry(3));
    await log.append(entry(4));
    await done;
    assert.deepEqual(seen, [2, 3, 4, 5]);
    await log.close();
  } finally {
    cleanup();
  }
});
