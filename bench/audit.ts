// Audit log throughput, each figure beside an anchor measured in the same run on the same disk:
// - durable appends/s (fsync per record) vs raw writeSync + fsyncSync of the same frame size;
// - concurrent durable appends/s (the writer shares fsyncs between waiting appends) vs the same anchor;
// - verification records/s vs plain SHA-256 over the same record bytes.
import { createHash } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { AuditLog, verifyAudit, type AuditEntry } from "../src/audit/index.js";

const KEY = Buffer.alloc(32, 1);

function entry(i: number): AuditEntry {
  return {
    kind: "capability.intent",
    agent: `agent-${i % 8}`,
    session: "s-0123456789abcdef",
    capability: "fs.write",
    inputs_digest: createHash("sha256").update(String(i)).digest("hex"),
    decision: {
      tier: "autonomous",
      rule: "workspace-writes",
      file: "default.yaml",
      line: 12,
      generation: 1,
    },
  };
}

const rate = (n: number, ms: number): number => (n * 1000) / ms;
const fmt = (x: number): string => x.toFixed(0).padStart(8);

function line(
  name: string,
  value: number,
  unit: string,
  anchorName: string,
  anchor: number,
): string {
  return `${name.padEnd(46)} ${fmt(value)} ${unit}   anchor ${anchorName}: ${fmt(anchor).trim()} ${unit} (${(value / anchor).toFixed(2)}×)`;
}

/** Raw append + fsync of `size`-byte frames: the floor any durable log pays. */
function rawFsyncRate(dir: string, size: number, n: number): number {
  const fd = openSync(path.join(dir, "anchor.bin"), "w");
  const buf = Buffer.alloc(size, 0xab);
  try {
    const start = performance.now();
    for (let i = 0; i < n; i++) {
      writeSync(fd, buf);
      fsyncSync(fd);
    }
    return rate(n, performance.now() - start);
  } finally {
    closeSync(fd);
  }
}

function framesOf(dir: string): Buffer[] {
  const out: Buffer[] = [];
  for (const f of readdirSync(dir)
    .filter((n) => /^audit-.*\.log$/.test(n))
    .sort()) {
    const buf = readFileSync(path.join(dir, f));
    for (let off = 0; off < buf.length;) {
      const len = buf.readUInt32BE(off);
      out.push(buf.subarray(off + 4, off + 4 + len));
      off += 4 + len;
    }
  }
  return out;
}

export async function benchAudit(
  opts: { durable?: number; verify?: number } = {},
): Promise<string> {
  const nDurable = opts.durable ?? 500;
  const nVerify = opts.verify ?? 20_000;
  const root = mkdtempSync(path.join(os.tmpdir(), "kruxos-bench-audit-"));
  const out: string[] = [];
  try {
    // Sequential durable appends: one fsync per record, as for side-effecting intents. The disk's
    // fsync cost drifts (shared hosts), so appends and the anchor alternate in rounds.
    const seqDir = path.join(root, "sequential");
    const log = await AuditLog.open(seqDir, { checkpointKey: KEY });
    await log.append(entry(0), { durable: true }); // file creation out of the timing
    const frameBytes = 4 + framesOf(seqDir)[0]!.length;
    const rounds = 5;
    const perRound = Math.ceil(nDurable / rounds);
    let logMs = 0;
    let anchorMs = 0;
    let start: number;
    for (let r = 0; r < rounds; r++) {
      start = performance.now();
      for (let i = 1; i <= perRound; i++)
        await log.append(entry(r * perRound + i), { durable: true });
      logMs += performance.now() - start;
      anchorMs += perRound / (rawFsyncRate(root, frameBytes, perRound) / 1000);
    }
    await log.close();
    const seqRate = rate(rounds * perRound, logMs);
    const anchor = rate(rounds * perRound, anchorMs);
    out.push(
      line(
        "audit durable append, sequential",
        seqRate,
        "rec/s",
        `write+fsync ${frameBytes} B`,
        anchor,
      ),
    );

    // Concurrent durable appends: callers waiting together share an fsync.
    const conDir = path.join(root, "concurrent");
    const con = await AuditLog.open(conDir, { checkpointKey: KEY });
    await con.append(entry(0), { durable: true });
    start = performance.now();
    await Promise.all(
      Array.from({ length: nDurable }, (_, i) => con.append(entry(i + 1), { durable: true })),
    );
    const conRate = rate(nDurable, performance.now() - start);
    await con.close();
    out.push(
      line(
        `audit durable append, ${nDurable} concurrent`,
        conRate,
        "rec/s",
        `write+fsync ${frameBytes} B`,
        anchor,
      ),
    );

    // Verification of a large log vs hashing the same bytes.
    const verDir = path.join(root, "verify");
    const big = await AuditLog.open(verDir, { checkpointKey: KEY });
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < nVerify; i++) pending.push(big.append(entry(i)));
    await Promise.all(pending);
    await big.close();
    start = performance.now();
    const v = await verifyAudit(verDir, KEY);
    const verRate = rate(nVerify, performance.now() - start);
    if (!v.ok || v.count !== nVerify)
      throw new Error(`bench log did not verify: ${JSON.stringify(v)}`);
    const payloads = framesOf(verDir);
    start = performance.now();
    for (const p of payloads) createHash("sha256").update(p).digest();
    const shaRate = rate(payloads.length, performance.now() - start);
    out.push(
      line(
        `audit verify, ${nVerify} records`,
        verRate,
        "rec/s",
        "SHA-256 of the same bytes",
        shaRate,
      ),
    );
    return out.join("\n");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
