// Turning host files into layer entries: everything root-owned with normalised modes (directories
// and executables 0755, other files 0644) and one fixed mtime, so content alone decides the bytes.
import { lstatSync, readdirSync, readlinkSync, statSync } from "node:fs";
import path from "node:path";
import type { PlannedEntry } from "./layer.js";

export interface EntryOptions {
  readonly mtime: number;
  readonly uid?: number;
  readonly gid?: number;
}

export function dirEntry(name: string, o: EntryOptions, mode = 0o755): PlannedEntry {
  return {
    header: { name, type: "dir", mode, uid: o.uid ?? 0, gid: o.gid ?? 0, mtime: o.mtime, size: 0 },
  };
}

export function bufferEntry(
  name: string,
  data: Buffer,
  o: EntryOptions,
  mode = 0o644,
): PlannedEntry {
  return {
    header: {
      name,
      type: "file",
      mode,
      uid: o.uid ?? 0,
      gid: o.gid ?? 0,
      mtime: o.mtime,
      size: data.length,
    },
    content: { kind: "buffer", data },
  };
}

/** A regular file from the host; `mode` defaults to 0755 if any execute bit is set, else 0644. */
export function fileEntry(
  name: string,
  source: string,
  o: EntryOptions,
  mode?: number,
): PlannedEntry {
  const st = statSync(source);
  if (!st.isFile()) throw new Error(`${source} is not a regular file`);
  return {
    header: {
      name,
      type: "file",
      mode: mode ?? normalisedMode(st.mode),
      uid: o.uid ?? 0,
      gid: o.gid ?? 0,
      mtime: o.mtime,
      size: st.size,
    },
    content: { kind: "file", path: source, offset: 0 },
  };
}

/** Decides, for a path relative to the walked root, whether to include it. */
export type WalkFilter = (rel: string, isDir: boolean) => boolean;

/**
 * Every file, directory and symlink under `sourceDir`, placed under `destPrefix` (itself included
 * as a directory). Symlinks are kept as links; sockets are skipped; device nodes are refused.
 */
export function walkTree(
  sourceDir: string,
  destPrefix: string,
  o: EntryOptions,
  filter: WalkFilter = () => true,
): PlannedEntry[] {
  const out: PlannedEntry[] = [dirEntry(destPrefix, o)];
  const visit = (rel: string): void => {
    const dir = path.join(sourceDir, rel);
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      const childRel = rel ? `${rel}/${d.name}` : d.name;
      const source = path.join(sourceDir, childRel);
      const name = `${destPrefix}/${childRel}`;
      const st = lstatSync(source);
      if (st.isDirectory()) {
        if (!filter(childRel, true)) continue;
        out.push(dirEntry(name, o));
        visit(childRel);
      } else if (!filter(childRel, false)) {
        continue;
      } else if (st.isFile()) {
        out.push(fileEntry(name, source, o));
      } else if (st.isSymbolicLink()) {
        out.push({
          header: {
            name,
            type: "symlink",
            mode: 0o777,
            uid: o.uid ?? 0,
            gid: o.gid ?? 0,
            mtime: o.mtime,
            size: 0,
            linkname: readlinkSync(source),
          },
        });
      } else if (st.isSocket()) {
        continue;
      } else {
        throw new Error(`${source}: unexpected special file in an application tree`);
      }
    }
  };
  visit("");
  return out;
}

/** Add root-owned 0755 directory entries for every missing ancestor of the given entries. */
export function withParents(entries: readonly PlannedEntry[], o: EntryOptions): PlannedEntry[] {
  const present = new Set(entries.map((e) => e.header.name));
  const added: PlannedEntry[] = [];
  for (const e of entries) {
    let parent = path.posix.dirname(e.header.name);
    while (parent !== "." && parent !== "/" && !present.has(parent)) {
      present.add(parent);
      added.push(dirEntry(parent, { mtime: o.mtime }));
      parent = path.posix.dirname(parent);
    }
  }
  return [...entries, ...added];
}

function normalisedMode(hostMode: number): number {
  return hostMode & 0o111 ? 0o755 : 0o644;
}
