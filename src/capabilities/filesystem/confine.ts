// Workspace confinement: turn an agent path into something open *inside* the workspace, race-safely.
//
// Node has no openat(2), so every step goes through /proc/self/fd/<fd>/<name> instead: the kernel
// resolves /proc/self/fd/<fd> to the exact directory the descriptor holds (not to a path that may
// have been swapped since), then looks <name> up inside it. With O_NOFOLLOW on <name> this is
// openat(fd, name, O_NOFOLLOW). The algorithm (see docs/filesystem.md):
//
//  1. The agent path is normalised lexically (paths.ts); `..` may not climb above the root.
//  2. The root is realpath'd, opened O_DIRECTORY|O_NOFOLLOW and its dev/ino checked.
//  3. Each directory component is opened relative to the previous descriptor with
//     O_DIRECTORY|O_NOFOLLOW. A symlink fails that open (ELOOP/ENOTDIR); it is read with readlink,
//     its target is spliced into the remaining components and resolution restarts from the root
//     descriptor, so the target is itself resolved by this same algorithm. An absolute target must
//     lie under the workspace root, and `..` may never pop the root: either way PathOutOfScope.
//  4. The final component is used through the parent descriptor: opened O_NOFOLLOW (a symlink
//     swapped in after the check fails with ELOOP and resolution restarts), fstat'ed and compared
//     with the dev/ino that was checked; written via a temporary file and rename(2), which replaces
//     a symlink rather than following it.
//  5. After use, /proc/self/fd/<parent> is read back and must still lie under the root (catches a
//     directory moved out of the workspace while we held it).
//
// Where /proc is unavailable (a non-Linux host in host mode) paths are joined from the real root
// instead, and step 5 compares the directory's path with its descriptor (dev/ino): weaker, because
// the check and the use are then separate path lookups.
import { constants, existsSync, type Stats } from "node:fs";
import {
  lstat,
  lchown,
  mkdir,
  open,
  readFile,
  readlink,
  realpath,
  stat,
  type FileHandle,
} from "node:fs/promises";
import path from "node:path";
import { errnoOf, fsError } from "./errors.js";
import type { CallContext } from "../types.js";
import { displayOf, mandatoryDenyReason, splitTarget, type AgentPath } from "./paths.js";

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = constants;
export const O_DIR = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
/** Symlink expansions allowed in one resolution (Linux's own limit is 40). */
const MAX_HOPS = 40;

const PROC_FD = process.platform === "linux" && existsSync("/proc/self/fd");

/** One call's view of the workspace. */
export interface Workspace {
  /** realpath of the workspace root. */
  readonly root: string;
  /** The root as configured (may contain symlinks); absolute symlink targets may use either. */
  readonly configured: string;
  readonly dev: number;
  readonly ino: number;
  /** The root is the root of its own mounted filesystem, so every hard link to a file is inside. */
  readonly wholeFs: boolean;
  readonly capability: string;
  readonly ctx: CallContext;
  /**
   * Set only when the gateway runs as root and the workspace belongs to someone else (the
   * sandbox's host uid): what the handlers create is handed to that owner, so sandboxed programs
   * can keep working on it.
   */
  readonly owner?: { readonly uid: number; readonly gid: number };
}

/** Hand a just-created entry to the workspace's owner (see Workspace.owner). */
export async function adopt(ws: Workspace, p: string): Promise<void> {
  if (ws.owner) await lchown(p, ws.owner.uid, ws.owner.gid);
}

const wholeFsCache = new Map<string, boolean>();

/** Is `dir` the mount point of a filesystem mounted from its own root (mountinfo root field "/")? */
async function isWholeFilesystem(dir: string): Promise<boolean> {
  const cached = wholeFsCache.get(dir);
  if (cached !== undefined) return cached;
  let answer = false;
  try {
    const unescape = (s: string): string =>
      s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    const info = await readFile("/proc/self/mountinfo", "utf8");
    for (const line of info.split("\n")) {
      const f = line.split(" ");
      // Later lines shadow earlier mounts on the same point.
      if (f.length > 4 && unescape(f[4] ?? "") === dir) answer = f[3] === "/";
    }
  } catch {
    answer = false;
  }
  wholeFsCache.set(dir, answer);
  return answer;
}

export async function openWorkspace(ctx: CallContext, capability: string): Promise<Workspace> {
  const configured = path.resolve(ctx.workspaceRoot);
  const root = await realpath(configured);
  const st = await stat(root);
  return {
    root,
    configured,
    dev: st.dev,
    ino: st.ino,
    wholeFs: await isWholeFilesystem(root),
    capability,
    ctx,
    ...(process.geteuid?.() === 0 && st.uid !== 0 ? { owner: { uid: st.uid, gid: st.gid } } : {}),
  };
}

/** An open directory inside the workspace, addressed by descriptor. */
export class Dir {
  constructor(
    readonly fh: FileHandle,
    /** Its real path relative to the root (no symlinks). */
    readonly comps: readonly string[],
    private readonly ws: Workspace,
  ) {}

  /** The workspace this directory belongs to. */
  get workspace(): Workspace {
    return this.ws;
  }

  /** A path the kernel resolves to `name` inside this very directory. */
  at(name: string): string {
    return PROC_FD ? `/proc/self/fd/${this.fh.fd}/${name}` : path.join(this.realPath(), name);
  }

  /** A path the kernel resolves to this very directory. */
  get self(): string {
    return PROC_FD ? `/proc/self/fd/${this.fh.fd}` : this.realPath();
  }

  private realPath(): string {
    return path.join(this.ws.root, ...this.comps);
  }

  /** Still inside the workspace after use? (A directory could be moved out while we held it.) */
  async assertInside(display: string): Promise<void> {
    let inside: boolean;
    if (PROC_FD) {
      const now = await readlink(`/proc/self/fd/${this.fh.fd}`);
      inside = now === this.ws.root || now.startsWith(`${this.ws.root}/`);
    } else {
      const [a, b] = await Promise.all([
        stat(this.realPath()).catch(() => undefined),
        this.fh.stat(),
      ]);
      inside = a !== undefined && a.dev === b.dev && a.ino === b.ino;
    }
    if (!inside)
      throw fsError(
        "PathOutOfScope",
        this.ws.capability,
        display,
        "A directory on the path moved out of the workspace during the call.",
      );
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }
}

async function openRoot(ws: Workspace): Promise<Dir> {
  const fh = await open(ws.root, O_DIR);
  const st = await fh.stat();
  if (st.dev !== ws.dev || st.ino !== ws.ino) {
    await fh.close();
    throw fsError(
      "PathOutOfScope",
      ws.capability,
      ".",
      "The workspace root changed during the call.",
    );
  }
  return new Dir(fh, [], ws);
}

function outOfScope(ws: Workspace, display: string, why: string): Error {
  return fsError("PathOutOfScope", ws.capability, display, `${why}; refused.`);
}

/** Components (from the root) that a symlink in directory `dirComps` with `target` names. */
function targetComps(
  ws: Workspace,
  dirComps: readonly string[],
  target: string,
  display: string,
): string[] {
  if (target.startsWith("/")) {
    for (const base of [ws.root, ws.configured])
      if (target === base || target.startsWith(`${base}/`))
        return splitTarget(target.slice(base.length));
    throw outOfScope(ws, display, "A symlink on the path points outside the workspace");
  }
  return [...dirComps, ...splitTarget(target)];
}

/** Throw MandatoryDeny when `comps` is protected and policy does not name it. */
export function checkDeny(ws: Workspace, comps: readonly string[], display: string): void {
  const reason = mandatoryDenyReason(comps);
  if (reason === undefined) return;
  if (ws.ctx.mandatoryDenyAllowed(displayOf(comps))) return;
  const shown = displayOf(comps);
  throw fsError(
    "MandatoryDeny",
    ws.capability,
    display,
    `${shown} is mandatory-deny (${reason}): it stays unwritable unless policy names it.`,
    shown === display ? {} : { resolved: shown },
  );
}

export interface OpenDirOptions {
  /** Create missing directories (after checking each against mandatory deny). */
  readonly create?: boolean;
}

/**
 * Open the directory at `comps` (workspace-relative), following symlinks that stay inside.
 * The caller closes the result.
 */
export async function openDir(
  ws: Workspace,
  comps: readonly string[],
  display: string,
  opts: OpenDirOptions = {},
): Promise<Dir> {
  let queue = [...comps];
  let real: string[] = [];
  let cur = await openRoot(ws);
  let hops = 0;
  try {
    for (;;) {
      const name = queue.shift();
      if (name === undefined) return cur;
      if (ws.ctx.signal.aborted)
        throw fsError("Timeout", ws.capability, display, "The call was cancelled.");
      if (name === "..") {
        // Only symlink targets carry "..": pop the real parent and resolve again from the root.
        if (real.length === 0)
          throw outOfScope(ws, display, "A symlink on the path leads above the workspace root");
        queue = [...real.slice(0, -1), ...queue];
        real = [];
        await cur.close();
        cur = await openRoot(ws);
        continue;
      }
      let fh: FileHandle;
      try {
        fh = await open(cur.at(name), O_DIR);
      } catch (err) {
        const code = errnoOf(err);
        if (code === "ENOENT" && opts.create) {
          checkDeny(ws, [...real, name], display);
          await mkdir(cur.at(name)).then(
            () => adopt(ws, cur.at(name)),
            (e: unknown) => {
              if (errnoOf(e) !== "EEXIST") throw e;
            },
          );
          queue.unshift(name);
          continue;
        }
        if (code === "ENOENT")
          throw fsError(
            "NotFound",
            ws.capability,
            display,
            `${displayOf([...real, name])} does not exist.`,
          );
        if (code === "ELOOP" || code === "ENOTDIR") {
          const st = await lstat(cur.at(name)).catch(() => undefined);
          if (st?.isSymbolicLink() || st === undefined) {
            if (++hops > MAX_HOPS) throw outOfScope(ws, display, "Too many symlinks on the path");
            if (st === undefined) {
              queue.unshift(name); // it vanished between open and lstat: look again
              continue;
            }
            const target = await readlink(cur.at(name)).catch(() => undefined);
            if (target === undefined) {
              queue.unshift(name); // no longer a symlink (swapped back): look again
              continue;
            }
            queue = [...targetComps(ws, real, target, display), ...queue];
            real = [];
            await cur.close();
            cur = await openRoot(ws);
            continue;
          }
          throw fsError(
            "NotADirectory",
            ws.capability,
            display,
            `${displayOf([...real, name])} is not a directory.`,
          );
        }
        throw err;
      }
      await cur.close();
      real = [...real, name];
      cur = new Dir(fh, real, ws);
    }
  } catch (err) {
    await cur.close();
    throw err;
  }
}

/** A final path component, held through its open parent directory. */
export interface Entry {
  readonly dir: Dir;
  readonly name: string;
  /** Real path relative to the root, including `name`. */
  readonly comps: readonly string[];
  /** lstat of the entry when it was checked; undefined when it does not exist. */
  readonly st: Stats | undefined;
}

export interface LocateOptions extends OpenDirOptions {
  /** Follow a symlink in the final component (when it stays inside). */
  readonly follow: boolean;
}

/** Find `comps`' parent directory and final name. The caller closes `entry.dir`. */
export async function locate(
  ws: Workspace,
  comps: readonly string[],
  display: string,
  opts: LocateOptions,
): Promise<Entry> {
  let want = [...comps];
  for (let hops = 0; ; hops++) {
    if (hops > MAX_HOPS) throw outOfScope(ws, display, "Too many symlinks on the path");
    if (want.length === 0)
      throw fsError("IsADirectory", ws.capability, display, "The path is the workspace root.");
    const dir = await openDir(ws, want.slice(0, -1), display, opts);
    const name = want.at(-1) ?? "";
    if (name === "..") {
      await dir.close();
      if (dir.comps.length === 0)
        throw outOfScope(ws, display, "A symlink on the path leads above the workspace root");
      want = dir.comps.slice(0, -1);
      continue;
    }
    let st: Stats | undefined;
    try {
      st = await lstat(dir.at(name));
    } catch (err) {
      if (errnoOf(err) !== "ENOENT") {
        await dir.close();
        throw err;
      }
    }
    if (st?.isSymbolicLink() && opts.follow) {
      const target = await readlink(dir.at(name))
        .catch(() => undefined) // swapped back since lstat: look again
        .finally(() => dir.close());
      if (target !== undefined) want = targetComps(ws, dir.comps, target, display);
      continue;
    }
    return { dir, name, comps: [...dir.comps, name], st };
  }
}

/** Does the symlink at `entry` resolve to something that exists inside the workspace? */
export async function symlinkLeadsInside(
  ws: Workspace,
  entry: Entry,
  display: string,
): Promise<boolean> {
  try {
    const e = await locate(ws, entry.comps, display, { follow: true });
    await e.dir.close();
    return e.st !== undefined;
  } catch {
    return false;
  }
}

/**
 * Refuse to modify `entry` when it is a symlink: PathOutOfScope when it leads outside (or nowhere),
 * IsASymlink when it leads inside. Writers never write through a symlink.
 */
export async function refuseSymlinkTarget(
  ws: Workspace,
  entry: Entry,
  display: string,
): Promise<void> {
  if (!entry.st?.isSymbolicLink()) return;
  if (await symlinkLeadsInside(ws, entry, display))
    throw fsError(
      "IsASymlink",
      ws.capability,
      display,
      `${display} is a symlink; it is never written through.`,
    );
  throw outOfScope(
    ws,
    display,
    `${display} is a symlink that leads outside the workspace (or nowhere)`,
  );
}

/** An open regular file inside the workspace, read-safe. */
export interface OpenFile {
  readonly fh: FileHandle;
  readonly st: Stats;
  readonly entry: Entry;
}

/**
 * Open the regular file at `ap` for reading. Symlinks inside are followed; the opened descriptor is
 * fstat'ed and must be the inode that was checked. Hard-linked files (nlink > 1) are refused unless
 * the workspace is a whole filesystem: another link may name a file outside the workspace.
 */
export async function openFileForRead(ws: Workspace, ap: AgentPath): Promise<OpenFile> {
  if (ap.comps.length === 0)
    throw fsError("IsADirectory", ws.capability, ap.display, "The workspace root is a directory.");
  for (let attempt = 0; attempt < MAX_HOPS; attempt++) {
    const entry = await locate(ws, ap.comps, ap.display, { follow: true });
    let keep = false;
    try {
      if (!entry.st)
        throw fsError("NotFound", ws.capability, ap.display, `${ap.display} does not exist.`);
      if (entry.st.isDirectory())
        throw fsError("IsADirectory", ws.capability, ap.display, `${ap.display} is a directory.`);
      let fh: FileHandle;
      try {
        // O_NONBLOCK: opening a FIFO must not hang; it is refused below.
        fh = await open(entry.dir.at(entry.name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
      } catch (err) {
        const code = errnoOf(err);
        if (code === "ELOOP" || code === "ENOENT") continue; // swapped or removed since the check
        throw err;
      }
      const st = await fh.stat();
      try {
        if (st.dev !== entry.st.dev || st.ino !== entry.st.ino) continue; // replaced since the check
        if (st.isDirectory())
          throw fsError("IsADirectory", ws.capability, ap.display, `${ap.display} is a directory.`);
        if (!st.isFile())
          throw fsError(
            "NotAFile",
            ws.capability,
            ap.display,
            `${ap.display} is not a regular file.`,
          );
        assertNotHardLinked(ws, st, ap.display);
        await entry.dir.assertInside(ap.display);
        keep = true;
        return { fh, st, entry };
      } finally {
        if (!keep) await fh.close();
      }
    } finally {
      if (!keep) await entry.dir.close();
    }
  }
  throw outOfScope(ws, ap.display, "The file kept changing while it was opened");
}

export function assertNotHardLinked(ws: Workspace, st: Stats, display: string): void {
  if (st.nlink > 1 && !ws.wholeFs)
    throw outOfScope(
      ws,
      display,
      `${display} has ${st.nlink} hard links and one may be a file outside the workspace`,
    );
}

export { outOfScope };
