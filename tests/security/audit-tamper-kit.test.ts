// Audit tamper kit: build a clean, keyed log of 50 records over two days, tamper with it the way an
// intruder with write access to the files would, and check that verification names the first bad
// seq and the right class. The tampering works on the documented format only (4-byte length ‖
// canonical CBOR, hash = SHA-256(prev ‖ record without hash)), with its own CBOR code.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { AuditLog, verifyAudit, type AuditEntry } from "../../src/audit/index.js";
import { mulberry32 as rng } from "../helpers/rng.js";

const KEY = Buffer.alloc(32, 0x5a);

/**
 * Scratch directories on tmpfs when there is one: these tests are about what verification
 * concludes from bytes, not about the disk, and hundreds of logs' fsyncs would dominate the run.
 */
function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const base = existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir();
  const dir = mkdtempSync(path.join(base, prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
const DAILY = /^audit-\d{4}-\d{2}-\d{2}\.log$/;

type Rec = Record<string, unknown>;
interface Framed {
  file: string;
  bytes: Buffer;
}

// ---- the format, written from the documentation ----------------------------------------------

function cborHead(major: number, n: number): Buffer {
  if (n < 24) return Buffer.from([(major << 5) | n]);
  if (n < 0x100) return Buffer.from([(major << 5) | 24, n]);
  if (n < 0x10000) return Buffer.from([(major << 5) | 25, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(n, 1);
  return b;
}

function cbor(v: unknown): Buffer {
  if (v === null) return Buffer.from([0xf6]);
  if (v === true) return Buffer.from([0xf5]);
  if (v === false) return Buffer.from([0xf4]);
  if (typeof v === "number") {
    if (Number.isInteger(v) && v >= 0 && v < 2 ** 32) return cborHead(0, v);
    if (Number.isInteger(v) && v < 0 && v >= -(2 ** 32)) return cborHead(1, -1 - v);
    const b = Buffer.alloc(9);
    b[0] = 0xfb;
    b.writeDoubleBE(v, 1);
    return b;
  }
  if (typeof v === "string") {
    const s = Buffer.from(v, "utf8");
    return Buffer.concat([cborHead(3, s.length), s]);
  }
  if (Array.isArray(v)) return Buffer.concat([cborHead(4, v.length), ...v.map(cbor)]);
  const keys = Object.keys(v as Rec)
    .map((k) => Buffer.from(k, "utf8"))
    .sort((a, b) => a.length - b.length || Buffer.compare(a, b));
  return Buffer.concat([
    cborHead(5, keys.length),
    ...keys.flatMap((k) => [cbor(k.toString("utf8")), cbor((v as Rec)[k.toString("utf8")])]),
  ]);
}

function uncbor(buf: Buffer): Rec {
  let i = 0;
  const arg = (info: number): number => {
    if (info < 24) return info;
    if (info === 24) return buf[i++] as number;
    if (info === 25) return ((i += 2), buf.readUInt16BE(i - 2));
    if (info === 26) return ((i += 4), buf.readUInt32BE(i - 4));
    throw new Error(`length ${info}`);
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
      const o: Rec = {};
      for (let n = arg(info); n > 0; n--) o[item() as string] = item();
      return o;
    }
    if (b === 0xf4) return false;
    if (b === 0xf5) return true;
    if (b === 0xf6) return null;
    if (b === 0xfb) return ((i += 8), buf.readDoubleBE(i - 8));
    throw new Error(`byte ${b}`);
  };
  return item() as Rec;
}

function sealed(record: Rec, prevHash: string): Rec {
  const body: Rec = { ...record, prev_hash: prevHash };
  delete body.hash;
  const hash = createHash("sha256")
    .update(Buffer.from(prevHash, "hex"))
    .update(cbor(body))
    .digest("hex");
  return { ...body, hash };
}

// ---- building and rewriting logs -----------------------------------------------------------

/** 50 records, 25 on 2025-07-01 and 25 on 2025-07-02, checkpoints every 10 records. */
async function cleanLog(dir: string): Promise<void> {
  let t = Date.parse("2025-07-01T23:59:35.000Z");
  const log = await AuditLog.open(dir, {
    now: () => t,
    checkpointKey: KEY,
    checkpointEvery: 10,
  });
  for (let i = 0; i < 50; i++) {
    await log.append({
      kind: i % 2 === 0 ? "capability.intent" : "capability.result",
      agent: `agent-${i % 4}`,
      capability: "fs.write",
      detail: { n: i },
    });
    t += 1000;
  }
  await log.close();
}

function load(dir: string): Framed[] {
  const out: Framed[] = [];
  for (const file of readdirSync(dir)
    .filter((n) => DAILY.test(n))
    .sort()) {
    const buf = readFileSync(path.join(dir, file));
    for (let off = 0; off < buf.length;) {
      const len = buf.readUInt32BE(off);
      out.push({ file, bytes: Buffer.from(buf.subarray(off + 4, off + 4 + len)) });
      off += 4 + len;
    }
  }
  return out;
}

function save(dir: string, frames: readonly Framed[]): void {
  for (const f of readdirSync(dir)) if (DAILY.test(f)) rmSync(path.join(dir, f));
  const byFile = new Map<string, Buffer[]>();
  for (const { file, bytes } of frames) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(bytes.length);
    byFile.set(file, [...(byFile.get(file) ?? []), len, bytes]);
  }
  for (const [file, parts] of byFile) writeFileSync(path.join(dir, file), Buffer.concat(parts));
}

const seqOf = (f: Framed): number => uncbor(f.bytes).seq as number;
const indexOfSeq = (frames: readonly Framed[], seq: number): number =>
  frames.findIndex((f) => seqOf(f) === seq);

/** Re-seal every record from `seq` on so the chain is internally consistent again. */
function rehashFrom(frames: Framed[], seq: number, change: (r: Rec) => Rec = (r) => r): void {
  const start = indexOfSeq(frames, seq);
  let prev =
    start === 0 ? "0".repeat(64) : (uncbor((frames[start - 1] as Framed).bytes).hash as string);
  for (let i = start; i < frames.length; i++) {
    const f = frames[i] as Framed;
    const r = sealed(i === start ? change(uncbor(f.bytes)) : uncbor(f.bytes), prev);
    f.bytes = cbor(r);
    prev = r.hash as string;
  }
}

async function expectFailure(
  dir: string,
  cls: string,
  seq: number,
  key: Buffer | undefined = KEY,
): Promise<void> {
  const v = await verifyAudit(dir, key);
  assert.equal(v.ok, false, "verification must fail");
  if (!v.ok)
    assert.deepEqual(
      { class: v.class, first_bad_seq: v.first_bad_seq },
      { class: cls, first_bad_seq: seq },
      v.detail,
    );
}

/** Build a clean log, check it verifies, tamper with it, and assert what verification says. */
async function tampered(
  /** Edits the frames in place (or returns new ones), or writes the files itself ("written"). */
  tamper: (frames: Framed[], dir: string) => Framed[] | void | "written",
  cls: string,
  seq: number,
  key?: Buffer,
): Promise<void> {
  const { dir, cleanup } = tempDir("kruxos-tamper-");
  try {
    await cleanLog(dir);
    const clean = await verifyAudit(dir, KEY);
    assert.ok(clean.ok, "the untouched log verifies");
    const frames = load(dir);
    assert.equal(new Set(frames.map((f) => f.file)).size, 2, "the log spans two days");
    const out = tamper(frames, dir) ?? frames;
    if (out !== "written") save(dir, out);
    await expectFailure(dir, cls, seq, key);
  } finally {
    cleanup();
  }
}

// ---- one test per tamper class ----------------------------------------------------------------

test("a flipped byte anywhere in a record is reported as modified at its seq", async () => {
  const { dir, cleanup } = tempDir("kruxos-tamper-");
  try {
    await cleanLog(dir);
    const pristine = new Map(
      readdirSync(dir)
        .filter((n) => DAILY.test(n))
        .map((n) => [n, readFileSync(path.join(dir, n))]),
    );
    const frames = load(dir);
    // Record 23 (middle of the first day) and record 50 (the very end of the log), every byte of
    // each frame including its length prefix (low bit or whole byte, alternating).
    for (const seq of [23, 50]) {
      const at = indexOfSeq(frames, seq);
      const file = (frames[at] as Framed).file;
      const start = frames
        .slice(0, at)
        .reduce((n, f) => n + (f.file === file ? 4 + f.bytes.length : 0), 0);
      const size = 4 + (frames[at] as Framed).bytes.length;
      for (let off = start; off < start + size; off++) {
        const buf = Buffer.from(pristine.get(file) as Buffer);
        buf[off] = (buf[off] as number) ^ (off % 2 === 0 ? 0x01 : 0xff);
        writeFileSync(path.join(dir, file), buf);
        await expectFailure(dir, "modified", seq);
      }
      writeFileSync(path.join(dir, file), pristine.get(file) as Buffer);
    }
  } finally {
    cleanup();
  }
});

test("a deleted record is reported as missing at its seq", async () => {
  await tampered((f) => void f.splice(indexOfSeq(f, 23), 1), "missing", 23);
});

test("deleting the first record of a day is reported as missing at its seq", async () => {
  await tampered((f) => void f.splice(indexOfSeq(f, 26), 1), "missing", 26);
});

test("deleting the very first record is reported as missing at seq 1", async () => {
  await tampered((f) => void f.splice(0, 1), "missing", 1);
});

test("a forged record slipped in ahead of the real one is reported as inserted at the seq it claims", async () => {
  await tampered(
    (f) => {
      const at = indexOfSeq(f, 23);
      const real = uncbor((f[at] as Framed).bytes);
      const prev = uncbor((f[at - 1] as Framed).bytes);
      const forged = sealed(
        { ...real, kind: "operator.action", actor: "intruder" },
        prev.hash as string,
      );
      f.splice(at, 0, { file: (f[at] as Framed).file, bytes: cbor(forged) });
    },
    "inserted",
    23,
  );
});

test("a forged record placed right after the real one is reported as inserted at the seq it claims", async () => {
  await tampered(
    (f) => {
      const at = indexOfSeq(f, 23);
      const real = uncbor((f[at] as Framed).bytes);
      const forged = sealed({ ...real, detail: { n: -1 } }, real.prev_hash as string);
      f.splice(at + 1, 0, { file: (f[at] as Framed).file, bytes: cbor(forged) });
    },
    "inserted",
    23,
  );
});

test("a copy of an old record replayed later is reported as inserted where it appears", async () => {
  await tampered(
    (f) => {
      const copy = f[indexOfSeq(f, 5)] as Framed;
      f.splice(indexOfSeq(f, 31), 0, {
        file: (f[indexOfSeq(f, 31)] as Framed).file,
        bytes: copy.bytes,
      });
    },
    "inserted",
    31,
  );
});

test("two swapped records are reported as reordered at the first displaced seq", async () => {
  await tampered(
    (f) => {
      const a = indexOfSeq(f, 23);
      [f[a], f[a + 1]] = [f[a + 1] as Framed, f[a] as Framed];
    },
    "reordered",
    23,
  );
});

test("records swapped across the day boundary are reported as reordered", async () => {
  await tampered(
    (f) => {
      const a = indexOfSeq(f, 25);
      const [x, y] = [f[a] as Framed, f[a + 1] as Framed];
      f[a] = { file: x.file, bytes: y.bytes };
      f[a + 1] = { file: y.file, bytes: x.bytes };
    },
    "reordered",
    25,
  );
});

test("the last two records swapped are reported as reordered", async () => {
  await tampered(
    (f) => {
      const a = indexOfSeq(f, 49);
      [f[a], f[a + 1]] = [f[a + 1] as Framed, f[a] as Framed];
    },
    "reordered",
    49,
  );
});

test("a record moved far ahead is reported as reordered where it went missing", async () => {
  await tampered(
    (f) => {
      const [moved] = f.splice(indexOfSeq(f, 10), 1);
      f.splice(indexOfSeq(f, 40) + 1, 0, {
        ...(moved as Framed),
        file: (f[indexOfSeq(f, 40)] as Framed).file,
      });
    },
    "reordered",
    10,
  );
});

test("a log cut inside its last record is reported as truncated", async () => {
  await tampered(
    (f, dir) => {
      save(dir, f);
      const file = path.join(dir, (f[f.length - 1] as Framed).file);
      const buf = readFileSync(file);
      writeFileSync(file, buf.subarray(0, buf.length - 10));
      return "written";
    },
    "truncated",
    50,
  );
});

test("whole records cut from the tail are reported as truncated at the first missing seq", async () => {
  await tampered((f) => void f.splice(-3), "truncated", 48);
});

test("a deleted newest daily file is reported as truncated", async () => {
  await tampered((f) => f.filter((x) => x.file === (f[0] as Framed).file), "truncated", 26);
});

test("a truncated tail is detected from checkpoints even without the key", async () => {
  await tampered((f) => void f.splice(-3), "truncated", 48, undefined);
});

test("a chain re-hashed after an edit is reported as forged from the last good checkpoint", async () => {
  await tampered((f) => rehashFrom(f, 37, (r) => ({ ...r, detail: { n: 999 } })), "forged", 31);
});

test("a chain re-hashed from its first record is reported as forged at seq 1", async () => {
  await tampered((f) => rehashFrom(f, 1, (r) => ({ ...r, agent: "someone-else" })), "forged", 1);
});

test("a re-hashed chain with rewritten checkpoint hashes is still caught by the MAC", async () => {
  await tampered(
    (f, dir) => {
      rehashFrom(f, 12, (r) => ({ ...r, outcome: { status: "ok" } }));
      const hashes = new Map(f.map((x) => [seqOf(x), uncbor(x.bytes).hash as string]));
      const cpFile = path.join(dir, "checkpoints.log");
      const lines = readFileSync(cpFile, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Rec);
      writeFileSync(
        cpFile,
        lines.map((c) => JSON.stringify({ ...c, hash: hashes.get(c.seq as number) })).join("\n") +
          "\n",
      );
    },
    "forged",
    11,
  );
});

// ---- clean logs --------------------------------------------------------------------------------

test("200 random clean logs always verify intact", async () => {
  const kinds = [
    "capability.intent",
    "capability.result",
    "auth.failure",
    "approval.requested",
    "policy.reload",
    "vault.access",
  ] as const;
  const words = ["a", "fs.read", "ünïcødé", "", "x".repeat(40), "emoji 🚀"];
  // Independent logs, built 20 at a time (their fsyncs overlap).
  const one = async (run: number): Promise<void> => {
    const seed = 1000 + run;
    const r = rng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
    const { dir, cleanup } = tempDir("kruxos-clean-");
    try {
      let t = Date.parse("2025-01-01T00:00:00.000Z") + Math.floor(r() * 400 * 86_400_000);
      const n = 1 + Math.floor(r() * 30);
      const key = r() < 0.8 ? KEY : undefined;
      const log = await AuditLog.open(dir, {
        now: () => t,
        ...(key && { checkpointKey: key }),
        checkpointEvery: 1 + Math.floor(r() * 12),
      });
      for (let i = 0; i < n; i++) {
        const e: Record<string, unknown> = { kind: pick(kinds) };
        if (r() < 0.7) e.agent = pick(words);
        if (r() < 0.5) e.capability = pick(words);
        if (r() < 0.3) e.inputs_digest = createHash("sha256").update(String(r())).digest("hex");
        if (r() < 0.3)
          e.decision = {
            tier: "notify",
            rule: pick(words),
            file: "policy.yaml",
            line: Math.floor(r() * 500),
            generation: 3,
          };
        if (r() < 0.5)
          e.outcome = r() < 0.5 ? { status: "ok" } : { status: "error", error_type: pick(words) };
        if (r() < 0.4) e.duration_ms = r() < 0.5 ? Math.floor(r() * 5000) : r() * 100;
        if (r() < 0.3)
          e.detail = { z: pick(words), a: [1, -2, r(), null, true], m: { y: 1, b: "x" } };
        await log.append(e as unknown as AuditEntry, { durable: r() < 0.1 });
        t += pick([0, 1, 999, 60_000, 3_600_000, 86_400_000]);
      }
      await log.close();
      const v = await verifyAudit(dir, key);
      assert.ok(
        v.ok,
        `seed ${seed}: ${v.ok ? "" : `${v.class} at ${v.first_bad_seq}: ${v.detail}`}`,
      );
      assert.equal(v.count, n, `seed ${seed}`);
    } finally {
      cleanup();
    }
  };
  for (let run = 0; run < 200; run += 20)
    await Promise.all(Array.from({ length: 20 }, (_, i) => one(run + i)));
});
