// `verifyAudit`: walk the whole chain and the keyed checkpoints and name the first thing wrong.
//
// The walk accepts a record when it is intact by itself (canonical bytes, hash matches content)
// and continues the chain (seq = expected, prev_hash = previous hash). At the first record that
// does not, one look at the rest of the log decides the class:
//
//   modified   a record's bytes changed: undecodable, not canonical, its hash does not match its
//              content, damaged framing, or a record substituted (re-hashed alone) so that its
//              successor's prev_hash no longer matches it — reported at the substituted seq.
//   missing    a seq gap that nothing later fills: a record was deleted. Reported at the absent seq.
//   inserted   an extra record: a second record claiming a seq already taken (reported at that
//              seq), or a record the chain continues around, claimed by nothing after it
//              (reported at the seq where it sits).
//   reordered  the expected seq does appear, but later: records were moved or swapped.
//   truncated  the newest file ends inside a record (a torn write), or the log ends before the
//              seq of the last keyed checkpoint (its tail was cut). Reported at the first absent seq.
//   forged     the chain is internally consistent but disagrees with a checkpoint: a checkpoint's
//              hash differs from the chain's at its seq (the chain was re-hashed), or, with the
//              key, a checkpoint's MAC is wrong. Reported at the first seq no good checkpoint
//              vouches for (last matching checkpoint's seq + 1).
//
// Without the key, checkpoints are still compared by seq and hash (which catches truncation and a
// careless re-hash) but their MACs are not checked, so a forger who also rewrote them goes unseen.
import { readCheckpoints, macMatches, type Checkpoint } from "./checkpoints.js";
import { listDailyFiles, readAllFrames, type Frame } from "./frames.js";
import { GENESIS_HASH, decodeRecord, type AuditRecord } from "./record.js";

export const TAMPER_CLASSES = [
  "modified",
  "missing",
  "inserted",
  "reordered",
  "truncated",
  "forged",
] as const;
export type TamperClass = (typeof TAMPER_CLASSES)[number];

export type VerifyResult =
  | {
      readonly ok: true;
      readonly count: number;
      readonly head: { readonly seq: number; readonly hash: string };
      /** Checkpoints that matched the chain (MAC-checked when a key was given). */
      readonly checkpoints: number;
      /** The highest seq a matching checkpoint vouches for (0 when none). */
      readonly attested_seq: number;
    }
  | {
      readonly ok: false;
      readonly first_bad_seq: number;
      readonly class: TamperClass;
      readonly detail: string;
    };

type Failure = Extract<VerifyResult, { ok: false }>;

const fail = (first_bad_seq: number, cls: TamperClass, detail: string): Failure => ({
  ok: false,
  first_bad_seq,
  class: cls,
  detail,
});

/** Verify the log in `dir`; with `key`, checkpoint MACs too. Clean logs never fail. */
export async function verifyAudit(dir: string, key?: Buffer): Promise<VerifyResult> {
  const { byseq, failure: cpFailure, maxSeq: maxCheckpointSeq } = loadCheckpoints(dir, key);
  const pick = (f: Failure): Failure =>
    cpFailure && cpFailure.first_bad_seq <= f.first_bad_seq ? cpFailure : f;

  const files = listDailyFiles(dir);
  const newest = files[files.length - 1];
  let expected = 1;
  let prevHash = GENESIS_HASH;
  let last: AuditRecord | undefined;
  let attested = 0;
  let matched = 0;
  for (const item of readAllFrames(dir)) {
    if (item.type === "tear") {
      const where = `${item.file} at offset ${item.offset}: ${item.detail}`;
      return pick(
        item.kind === "torn" && item.file === newest
          ? fail(expected, "truncated", `the log ends inside a record (${where})`)
          : fail(expected, "modified", `record framing is damaged (${where})`),
      );
    }
    const decoded = decodeRecord(item.bytes);
    if (!decoded.ok)
      return pick(
        fail(expected, "modified", `${item.file} at offset ${item.offset}: ${decoded.problem}`),
      );
    const r = decoded.record;
    if (r.seq !== expected || r.prev_hash !== prevHash)
      return pick(classify(dir, item, r, expected, prevHash, last));
    const cp = byseq.get(r.seq);
    if (cp) {
      if (cp.hash !== r.hash)
        return pick(
          fail(
            attested + 1,
            "forged",
            `the checkpoint at seq ${cp.seq} vouches for hash ${cp.hash.slice(0, 16)}… but the chain has ${r.hash.slice(0, 16)}…: records after seq ${attested} were re-hashed`,
          ),
        );
      attested = r.seq;
      matched++;
    }
    last = r;
    expected++;
    prevHash = r.hash;
  }
  const headSeq = expected - 1;
  if (maxCheckpointSeq > headSeq)
    return pick(
      fail(
        expected,
        "truncated",
        `a checkpoint vouches for seq ${maxCheckpointSeq} but the log ends at seq ${headSeq}`,
      ),
    );
  if (cpFailure) return cpFailure;
  return {
    ok: true,
    count: headSeq,
    head: { seq: headSeq, hash: prevHash },
    checkpoints: matched,
    attested_seq: attested,
  };
}

function loadCheckpoints(
  dir: string,
  key: Buffer | undefined,
): { byseq: Map<number, Checkpoint>; failure: Failure | undefined; maxSeq: number } {
  const byseq = new Map<number, Checkpoint>();
  let prev = 0;
  let maxSeq = 0;
  for (const line of readCheckpoints(dir)) {
    const bad = (detail: string): Failure =>
      fail(prev + 1, "forged", `checkpoints.log line ${line.line}: ${detail}`);
    if (!line.ok) return { byseq, failure: bad(line.detail), maxSeq };
    const cp = line.checkpoint;
    if (cp.seq <= prev)
      return { byseq, failure: bad(`seq ${cp.seq} does not follow seq ${prev}`), maxSeq };
    if (key && !macMatches(key, cp))
      return { byseq, failure: bad(`the MAC of the checkpoint at seq ${cp.seq} is wrong`), maxSeq };
    byseq.set(cp.seq, cp);
    prev = cp.seq;
    maxSeq = cp.seq;
  }
  return { byseq, failure: undefined, maxSeq };
}

/**
 * The chain broke at `r` (expected seq `e` after hash `p`). Look at the rest of the log once to
 * tell a deletion from a move from an insertion.
 */
function classify(
  dir: string,
  at: Frame,
  r: AuditRecord,
  e: number,
  p: string,
  last: AuditRecord | undefined,
): Failure {
  const where = `${at.file} at offset ${at.offset}`;
  let next: AuditRecord | undefined;
  let seqLater = false;
  let chainsToR = false;
  let predecessorLater = false;
  for (const item of readAllFrames(dir, { file: at.file, offset: at.end })) {
    if (item.type === "tear") break;
    const d = decodeRecord(item.bytes);
    if (!d.ok) continue;
    const x = d.record;
    next ??= x;
    if (x.seq === e) seqLater = true;
    if (x.prev_hash === r.hash) chainsToR = true;
    if (x.hash === r.prev_hash && x.seq === r.seq - 1) predecessorLater = true;
  }
  const chainSkipsR = next !== undefined && next.seq === e && next.prev_hash === p;

  if (r.seq === e) {
    if (chainSkipsR)
      return fail(
        e,
        "inserted",
        `an extra record claiming seq ${e} (${where}); the chain continues around it`,
      );
    if (next && next.seq === e + 1 && next.prev_hash === r.hash && e > 1)
      return fail(
        e - 1,
        "modified",
        `seq ${e} does not chain to the record before it: seq ${e - 1} was replaced`,
      );
    return fail(e, "modified", `seq ${e} does not chain to seq ${e - 1} (${where})`);
  }
  if (r.seq < e) {
    if (last && r.seq === last.seq && r.prev_hash === last.prev_hash)
      return fail(r.seq, "inserted", `two records claim seq ${r.seq} (${where})`);
    return fail(
      e,
      "inserted",
      `a record claiming seq ${r.seq} where seq ${e} was expected (${where})`,
    );
  }
  if (!seqLater)
    return fail(
      e,
      "missing",
      `seq ${e}${r.seq > e + 1 ? `…${r.seq - 1}` : ""} absent: the log goes on at seq ${r.seq} (${where})`,
    );
  if (!(predecessorLater || chainsToR) && chainSkipsR)
    return fail(e, "inserted", `an extra record claiming seq ${r.seq} before seq ${e} (${where})`);
  return fail(
    e,
    "reordered",
    `seq ${r.seq} appears where seq ${e} was expected; seq ${e} comes later (${where})`,
  );
}
