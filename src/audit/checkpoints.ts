// Keyed checkpoints: `{seq, hash, ts, mac}` lines in `<dir>/checkpoints.log`, apart from the daily
// files. The chain alone proves order and content only relative to itself — whoever can write
// the files can re-hash all of it, or cut its tail. A MAC over (seq, hash, ts) with a key the
// log's writer holds (a vault subkey) pins the chain at points a forger cannot recompute.
import { createHmac } from "node:crypto";
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from "node:fs";
import path from "node:path";
import { constantTimeEqual } from "../core/index.js";

export const CHECKPOINT_FILE = "checkpoints.log";
// Domain separation: the MAC key is handed in and may be shared with other uses; this prefix keeps
// a checkpoint MAC from ever equalling any other MAC under the same key.
const MAC_DOMAIN = Buffer.from("kruxos.audit.checkpoint.v1\0", "utf8");

export interface Checkpoint {
  readonly v: 1;
  readonly seq: number;
  readonly hash: string;
  readonly ts: string;
  readonly mac: string;
}

/** HMAC-SHA256(key, domain ‖ seq as u64 BE ‖ hash bytes ‖ ts UTF-8), hex. */
export function checkpointMac(key: Buffer, seq: number, hash: string, ts: string): string {
  const seqBytes = Buffer.alloc(8);
  seqBytes.writeBigUInt64BE(BigInt(seq));
  return createHmac("sha256", key)
    .update(MAC_DOMAIN)
    .update(seqBytes)
    .update(Buffer.from(hash, "hex"))
    .update(Buffer.from(ts, "utf8"))
    .digest("hex");
}

export function macMatches(key: Buffer, cp: Checkpoint): boolean {
  const want = Buffer.from(checkpointMac(key, cp.seq, cp.hash, cp.ts), "hex");
  const got = Buffer.from(cp.mac, "hex");
  return constantTimeEqual(got, want);
}

/** Append one checkpoint line and make it durable (the file and, when new, its directory entry). */
export function appendCheckpoint(
  dir: string,
  key: Buffer,
  seq: number,
  hash: string,
  ts: string,
): Checkpoint {
  const cp: Checkpoint = { v: 1, seq, hash, ts, mac: checkpointMac(key, seq, hash, ts) };
  const file = path.join(dir, CHECKPOINT_FILE);
  const created = !existsSync(file);
  const fd = openSync(file, "a", 0o640);
  try {
    const line = Buffer.from(`${JSON.stringify(cp)}\n`, "utf8");
    let off = 0;
    while (off < line.length) off += writeSync(fd, line, off, line.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (created) fsyncDir(dir);
  return cp;
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export type CheckpointLine =
  | { readonly ok: true; readonly line: number; readonly checkpoint: Checkpoint }
  | { readonly ok: false; readonly line: number; readonly detail: string };

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Every complete line of the checkpoint file. A last line without its newline is what a crash
 * during a checkpoint write leaves; it was never acknowledged, so it is ignored, not reported.
 */
export function readCheckpoints(dir: string): CheckpointLine[] {
  let text: string;
  try {
    text = readFileSync(path.join(dir, CHECKPOINT_FILE), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const lines = text.split("\n");
  lines.pop(); // "" after the final newline, or a torn last line
  return lines.map((raw, i): CheckpointLine => {
    const line = i + 1;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch {
      return { ok: false, line, detail: "not JSON" };
    }
    const c = v as Partial<Checkpoint> | null;
    if (
      c === null ||
      typeof c !== "object" ||
      c.v !== 1 ||
      !Number.isSafeInteger(c.seq) ||
      (c.seq ?? 0) < 1 ||
      typeof c.hash !== "string" ||
      !HEX64.test(c.hash) ||
      typeof c.ts !== "string" ||
      typeof c.mac !== "string" ||
      !HEX64.test(c.mac)
    )
      return { ok: false, line, detail: "not a v1 checkpoint" };
    return { ok: true, line, checkpoint: c as Checkpoint };
  });
}
