// Mandatory-deny files inside the sandbox. Landlock and mounts can only grant whole trees, so a
// sandboxed program could otherwise write .git/hooks/pre-commit or .bashrc inside its own
// workspace. Before a run, every existing mandatory-deny path is found (a bounded walk) and bound
// read-only over itself inside the sandbox; after the run, any mandatory-deny path that did not
// exist before is removed and reported. The walk and the list are the filesystem capabilities'
// (mandatoryDenyReason), so both routes into the workspace protect exactly the same names.
import { lstat, readdir, rm } from "node:fs/promises";
import path from "node:path";
import { mandatoryDenyReason } from "../capabilities/index.js";

/** Bounds of one walk: a huge workspace is walked partly, and the result says so. */
export interface GuardBounds {
  readonly maxEntries: number;
  readonly maxDepth: number;
}

export const DEFAULT_GUARD_BOUNDS: GuardBounds = { maxEntries: 50_000, maxDepth: 12 };

export interface DenyScan {
  /** Workspace-relative paths ("a/.git/config") of existing mandatory-deny entries, top-most only. */
  readonly paths: readonly string[];
  /** Each path's inode, so an entry replaced under the same name counts as new. */
  readonly inodes: ReadonlyMap<string, string>;
  /** The walk stopped at a bound; entries beyond it were not examined. */
  readonly partial: boolean;
}

const GIT_KEEP = new Set(["hooks", "config", "info", "modules"]);

/** Find the existing mandatory-deny entries under root (symlinks are never followed). */
export async function scanMandatoryDeny(
  root: string,
  bounds: GuardBounds = DEFAULT_GUARD_BOUNDS,
): Promise<DenyScan> {
  const found: string[] = [];
  const inodes = new Map<string, string>();
  let seen = 0;
  let partial = false;
  const queue: { comps: string[]; depth: number }[] = [{ comps: [], depth: 0 }];
  while (queue.length > 0) {
    const { comps, depth } = queue.shift() as { comps: string[]; depth: number };
    let names: string[];
    try {
      names = await readdir(path.join(root, ...comps));
    } catch {
      continue; // vanished or unreadable: nothing of it can be bound either
    }
    // Inside a .git directory only what can run code matters; objects and refs are left unwalked.
    if (comps.at(-1)?.toLowerCase() === ".git") names = names.filter((n) => GIT_KEEP.has(n));
    for (const name of names.sort()) {
      if (++seen > bounds.maxEntries) {
        partial = true;
        return { paths: found, inodes, partial };
      }
      const next = [...comps, name];
      let isDir: boolean;
      let inode: string;
      try {
        const st = await lstat(path.join(root, ...next), { bigint: true });
        isDir = st.isDirectory();
        inode = `${st.dev}:${st.ino}`;
      } catch {
        continue;
      }
      if (mandatoryDenyReason(next) !== undefined) {
        // The whole entry is bound read-only, directories included: nothing below needs a look.
        found.push(next.join("/"));
        inodes.set(next.join("/"), inode);
        continue;
      }
      if (!isDir) continue;
      if (depth + 1 >= bounds.maxDepth) {
        partial = true;
        continue;
      }
      queue.push({ comps: next, depth: depth + 1 });
    }
  }
  return { paths: found, inodes, partial };
}

/**
 * Remove mandatory-deny entries that appeared during a run (present in `after`, absent from
 * `before` or replaced under the same name). Returns the removed workspace-relative paths.
 */
export async function removeNewDenied(
  root: string,
  before: DenyScan,
  after: DenyScan,
): Promise<string[]> {
  const removed: string[] = [];
  for (const rel of after.paths) {
    // Same name and same inode: the entry that was bound read-only. A different inode under an
    // old name means the protected one was moved away and a new one planted.
    if (before.inodes.get(rel) === after.inodes.get(rel)) continue;
    // A new entry inside an old protected directory cannot exist (it was read-only); a new
    // top-level one is removed whole.
    await rm(path.join(root, rel), { recursive: true, force: true });
    removed.push(rel);
  }
  return removed;
}
