// The on-disk layout: daily files `audit-YYYY-MM-DD.log` (UTC date of each record's ts), each a
// sequence of frames = 4-byte big-endian length ‖ canonical CBOR record. Reading is chunked so a
// large day never has to fit in memory.
import { closeSync, openSync, readSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { MAX_RECORD_BYTES, decodeCbor } from "./record.js";

const DAILY = /^audit-\d{4}-\d{2}-\d{2}\.log$/;
const CHUNK = 1 << 20;

export function dailyFileName(ts: string): string {
  return `audit-${ts.slice(0, 10)}.log`;
}

/** The daily files in `dir`, oldest first (the names sort by date). */
export function listDailyFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  return names.filter((n) => DAILY.test(n) && statSync(path.join(dir, n)).isFile()).sort();
}

export function frame(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.set(payload, 4);
  return out;
}

export interface Frame {
  readonly type: "frame";
  readonly file: string;
  readonly offset: number;
  /** Offset just past this frame. */
  readonly end: number;
  readonly bytes: Buffer;
}

/**
 * Where a file stops making sense. `torn`: the file ends inside a frame whose bytes so far are a
 * prefix of a record (what a crash mid-write leaves). `damaged`: the framing itself is wrong (an
 * impossible length, or a length prefix that overruns a complete record) — someone changed bytes.
 */
export interface Tear {
  readonly type: "tear";
  readonly file: string;
  readonly offset: number;
  readonly kind: "torn" | "damaged";
  readonly detail: string;
}

/** Frames of one daily file from `start`; a tear, if any, is the last item. */
export function* readFrames(dir: string, file: string, start = 0): Generator<Frame | Tear> {
  const fd = openSync(path.join(dir, file), "r");
  try {
    let buf = Buffer.alloc(0);
    let bufAt = start; // file offset of buf[0]
    let eof = false;
    const fill = (need: number): void => {
      while (!eof && buf.length < need) {
        const chunk = Buffer.allocUnsafe(Math.max(CHUNK, need - buf.length));
        const n = readSync(fd, chunk, 0, chunk.length, bufAt + buf.length);
        if (n === 0) eof = true;
        else
          buf =
            buf.length === 0 ? chunk.subarray(0, n) : Buffer.concat([buf, chunk.subarray(0, n)]);
      }
    };
    for (;;) {
      fill(4);
      if (buf.length === 0) return;
      const offset = bufAt;
      if (buf.length < 4) {
        yield {
          type: "tear",
          file,
          offset,
          kind: "torn",
          detail: `${buf.length} bytes of a length prefix`,
        };
        return;
      }
      const len = buf.readUInt32BE(0);
      if (len === 0 || len > MAX_RECORD_BYTES) {
        fill(MAX_RECORD_BYTES);
        if (eof && buf.every((b) => b === 0)) {
          // Some filesystems expose a crash-interrupted extension of the file as zeros.
          yield { type: "tear", file, offset, kind: "torn", detail: `${buf.length} zero bytes` };
          return;
        }
        yield {
          type: "tear",
          file,
          offset,
          kind: "damaged",
          detail: `impossible record length ${len}`,
        };
        return;
      }
      fill(4 + len);
      if (buf.length < 4 + len) {
        const rest = buf.subarray(4);
        yield {
          type: "tear",
          file,
          offset,
          ...(holdsCompleteItem(rest)
            ? {
                kind: "damaged" as const,
                detail: `length prefix ${len} overruns a complete record`,
              }
            : { kind: "torn" as const, detail: `${rest.length} of ${len} record bytes` }),
        };
        return;
      }
      const bytes = Buffer.from(buf.subarray(4, 4 + len));
      buf = buf.subarray(4 + len);
      bufAt += 4 + len;
      yield { type: "frame", file, offset, end: bufAt, bytes };
    }
  } finally {
    closeSync(fd);
  }
}

/** A crash leaves a strict prefix of a CBOR map, which never decodes as a complete item. */
function holdsCompleteItem(bytes: Buffer): boolean {
  if (bytes.length === 0) return false;
  try {
    decodeCbor(bytes);
    return true;
  } catch (err) {
    return !(err as { incomplete?: boolean }).incomplete;
  }
}

/** Every frame of every daily file, oldest first, from an optional (file, offset) position. */
export function* readAllFrames(
  dir: string,
  from?: { readonly file: string; readonly offset: number },
): Generator<Frame | Tear> {
  const files = listDailyFiles(dir);
  for (const file of files) {
    if (from && file < from.file) continue;
    const start = from && file === from.file ? from.offset : 0;
    let torn = false;
    for (const item of readFrames(dir, file, start)) {
      yield item;
      if (item.type === "tear") torn = true;
    }
    if (torn) return;
  }
}
