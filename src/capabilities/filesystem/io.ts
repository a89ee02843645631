// File and tree primitives on top of confine.ts: bounded reads, atomic writes through the parent
// descriptor, and a tree walk that never follows symlinks.
import { randomBytes } from "node:crypto";
import { constants, type Stats } from "node:fs";
import { link, lstat, open, readdir, rename, unlink, type FileHandle } from "node:fs/promises";
import { Dir, O_DIR, type Workspace } from "./confine.js";
import { errnoOf, fsError } from "./errors.js";

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;

/** Read up to `limit` bytes from an open file (it may grow while we read; we stop at the limit). */
export async function readBounded(fh: FileHandle, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const buf = Buffer.allocUnsafe(Math.min(1 << 20, limit - total + 1));
    const { bytesRead } = await fh.read(buf, 0, buf.length, null);
    if (bytesRead === 0) break;
    chunks.push(buf.subarray(0, bytesRead));
    total += bytesRead;
    if (total > limit) break;
  }
  return Buffer.concat(chunks, total);
}

/** A temporary name in the same directory (short enough for NAME_MAX whatever the target's name). */
export function tempName(): string {
  return `.krux-${randomBytes(8).toString("hex")}.tmp`;
}

/**
 * Write `data` as `name` inside `dir`: a new temporary file (O_EXCL|O_NOFOLLOW) renamed over the
 * target. rename(2) replaces whatever is at `name` (a file, or a symlink swapped in after our checks)
 * and never writes through it, so an outside file reachable by a link is never modified. With
 * `noClobber` the temporary file is hard-linked to `name` instead (link(2) fails with EEXIST
 * atomically if anything appeared there meanwhile) and then removed.
 */
export async function writeAtomicAt(
  dir: Dir,
  name: string,
  data: Uint8Array,
  mode: number | undefined,
  noClobber: boolean,
): Promise<void> {
  const tmp = tempName();
  const fh = await open(dir.at(tmp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o666);
  try {
    try {
      const owner = dir.workspace.owner;
      if (owner) await fh.chown(owner.uid, owner.gid);
      let off = 0;
      while (off < data.length) off += (await fh.write(data, off, data.length - off)).bytesWritten;
      if (mode !== undefined) await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (noClobber) {
      await link(dir.at(tmp), dir.at(name));
      await unlink(dir.at(tmp));
    } else {
      await rename(dir.at(tmp), dir.at(name));
    }
  } catch (err) {
    await unlink(dir.at(tmp)).catch(() => undefined);
    throw err;
  }
}

export type EntryType = "file" | "directory" | "symlink" | "other";

export function typeOf(st: Stats): EntryType {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "directory";
  if (st.isSymbolicLink()) return "symlink";
  return "other";
}

export interface Visit {
  /** The open directory holding the entry. */
  readonly dir: Dir;
  readonly name: string;
  /** Path relative to the walk's start. */
  readonly rel: readonly string[];
  readonly st: Stats;
}

export interface WalkOptions {
  readonly recursive: boolean;
  readonly includeHidden: boolean;
  readonly signal: AbortSignal;
  /** Directory levels below the start; deeper directories are not entered. */
  readonly maxDepth?: number;
  /** Called after a directory's children were visited (for post-order work such as rmdir). */
  readonly after?: (v: Visit) => Promise<void>;
}

/**
 * Visit every entry under `start` (sorted by name, depth-first). Symlinks are reported, never
 * followed; subdirectories are opened through their parent's descriptor with O_NOFOLLOW, so a
 * directory swapped for a symlink mid-walk is skipped rather than followed. `visit` answers "stop"
 * to end the walk or "skip" to not descend into a directory.
 */
export async function walk(
  ws: Workspace,
  start: Dir,
  opts: WalkOptions,
  visit: (v: Visit) => Promise<"stop" | "skip" | void> | "stop" | "skip" | void,
  display: string,
): Promise<"stop" | void> {
  const maxDepth = opts.maxDepth ?? 256;
  const inner = async (dir: Dir, rel: readonly string[]): Promise<"stop" | void> => {
    let names: string[];
    try {
      names = (await readdir(dir.self)).sort();
    } catch (err) {
      if (errnoOf(err) === "ENOENT") return;
      throw err;
    }
    for (const name of names) {
      if (opts.signal.aborted)
        throw fsError("Timeout", ws.capability, display, "The call was cancelled.");
      if (!opts.includeHidden && name.startsWith(".")) continue;
      let st: Stats;
      try {
        st = await lstat(dir.at(name));
      } catch {
        continue; // removed since readdir
      }
      const v: Visit = { dir, name, rel: [...rel, name], st };
      const answer = await visit(v);
      if (answer === "stop") return "stop";
      if (answer === "skip" || !st.isDirectory() || !opts.recursive || rel.length + 1 > maxDepth) {
        continue;
      }
      let fh: FileHandle;
      try {
        fh = await open(dir.at(name), O_DIR);
      } catch {
        continue; // replaced by a symlink or removed since lstat: not followed
      }
      const sub = new Dir(fh, [...dir.comps, name], ws);
      try {
        const s = await fh.stat();
        if (s.dev !== st.dev || s.ino !== st.ino) continue;
        if ((await inner(sub, v.rel)) === "stop") return "stop";
        if (opts.after) await opts.after(v);
      } finally {
        await sub.close();
      }
    }
  };
  return inner(start, []);
}
