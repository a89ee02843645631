// filesystem.list, filesystem.mkdir, filesystem.delete: directories, walked through descriptors.
import { type Stats } from "node:fs";
import { lstat, mkdir, open, readdir, rmdir, unlink, type FileHandle } from "node:fs/promises";
import { checkDenyBoth, handler, isoTime } from "./common.js";
import { adopt, Dir, locate, O_DIR, openDir, type Workspace } from "./confine.js";
import { errnoOf, fsError } from "./errors.js";
import type { CapabilityHandler } from "../types.js";
import { typeOf, walk } from "./io.js";
import type { FilesystemOptions } from "./options.js";
import { displayOf, parseAgentPath } from "./paths.js";

/** Deepest directory level the tree operations enter. */
export const MAX_DEPTH = 256;

/**
 * One level of a descriptor-relative tree walk (copy, recursive delete): each entry of `dir`, in
 * name order, with its lstat. Entries that vanish meanwhile are skipped; a cancelled call stops
 * with Timeout, and a directory below MAX_DEPTH with TooLarge.
 */
export async function* treeLevel(
  ws: Workspace,
  dir: Dir,
  display: string,
  depth: number,
): AsyncGenerator<{ name: string; st: Stats }> {
  for (const name of (await readdir(dir.self)).sort()) {
    if (ws.ctx.signal.aborted)
      throw fsError("Timeout", ws.capability, display, "The call was cancelled.");
    const st = await lstat(dir.at(name)).catch(() => undefined);
    if (!st) continue;
    if (st.isDirectory() && depth >= MAX_DEPTH)
      throw fsError(
        "TooLarge",
        ws.capability,
        display,
        `The tree is deeper than ${MAX_DEPTH} levels.`,
      );
    yield { name, st };
  }
}

interface ListInputs {
  path?: string;
  recursive?: boolean;
  include_hidden?: boolean;
}

export function createList(o: FilesystemOptions): CapabilityHandler {
  return handler<ListInputs>("filesystem.list", async (inputs, ws) => {
    const ap = parseAgentPath(inputs.path ?? ".", ws.capability);
    const dir = await openDir(ws, ap.comps, ap.display);
    try {
      const entries: Record<string, unknown>[] = [];
      let truncated = false;
      await walk(
        ws,
        dir,
        {
          recursive: inputs.recursive === true,
          includeHidden: inputs.include_hidden === true,
          signal: ws.ctx.signal,
          maxDepth: MAX_DEPTH,
        },
        (v) => {
          if (entries.length >= o.maxListEntries) {
            truncated = true;
            return "stop";
          }
          entries.push({
            name: v.name,
            path: displayOf([...ap.comps, ...v.rel]),
            type: typeOf(v.st),
            size: v.st.size,
            mtime: isoTime(v.st.mtimeMs),
          });
          return undefined;
        },
        ap.display,
      );
      await dir.assertInside(ap.display);
      return { entries, truncated };
    } finally {
      await dir.close();
    }
  });
}

export function createMkdir(): CapabilityHandler {
  return handler<{ path: string; parents?: boolean }>("filesystem.mkdir", async (inputs, ws) => {
    const ap = parseAgentPath(inputs.path, ws.capability);
    const parents = inputs.parents === true;
    if (ap.comps.length === 0) {
      if (parents) return { path: ap.display, created: false };
      throw fsError("AlreadyExists", ws.capability, ap.display, "The workspace root exists.");
    }
    checkDenyBoth(ws, ap.comps, ap.comps, ap.display);
    const entry = await locate(ws, ap.comps, ap.display, { follow: false, create: parents });
    try {
      checkDenyBoth(ws, ap.comps, entry.comps, ap.display);
      if (entry.st) {
        if (entry.st.isDirectory() && parents) return { path: ap.display, created: false };
        throw fsError("AlreadyExists", ws.capability, ap.display, `${ap.display} already exists.`, {
          recovery: [
            {
              action: "fix_inputs",
              description: entry.st.isDirectory()
                ? "The directory exists; set parents: true to accept an existing directory."
                : "A file or symlink has this name; choose another.",
            },
          ],
        });
      }
      try {
        await mkdir(entry.dir.at(entry.name));
        await adopt(ws, entry.dir.at(entry.name));
      } catch (err) {
        if (errnoOf(err) === "EEXIST" && parents) return { path: ap.display, created: false };
        throw err;
      }
      await entry.dir.assertInside(ap.display);
      return { path: ap.display, created: true };
    } finally {
      await entry.dir.close();
    }
  });
}

/** Open `name` in `dir` as a directory whose inode must still be `st`'s. */
export async function openSubdir(
  ws: Workspace,
  dir: Dir,
  name: string,
  st: Stats,
): Promise<Dir | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(dir.at(name), O_DIR);
  } catch {
    return undefined;
  }
  const s = await fh.stat();
  if (s.dev !== st.dev || s.ino !== st.ino) {
    await fh.close();
    return undefined;
  }
  return new Dir(fh, [...dir.comps, name], ws);
}

/**
 * Remove everything inside `dir`, never following a symlink: each subdirectory is opened through
 * its parent's descriptor with O_NOFOLLOW, and names are unlinked relative to the open directory, so
 * a directory swapped for a symlink mid-way is unlinked as a symlink (its target is untouched).
 */
async function emptyTree(ws: Workspace, dir: Dir, display: string, depth: number): Promise<number> {
  let removed = 0;
  for await (const { name, st } of treeLevel(ws, dir, display, depth)) {
    if (st.isDirectory()) {
      const sub = await openSubdir(ws, dir, name, st);
      if (sub) {
        try {
          removed += await emptyTree(ws, sub, display, depth + 1);
        } finally {
          await sub.close();
        }
        await rmdir(dir.at(name));
      } else {
        await unlink(dir.at(name)); // no longer the directory we saw: remove the name only
      }
    } else {
      await unlink(dir.at(name));
    }
    removed += 1;
  }
  return removed;
}

export function createDelete(): CapabilityHandler {
  return handler<{ path: string; recursive?: boolean }>("filesystem.delete", async (inputs, ws) => {
    const ap = parseAgentPath(inputs.path, ws.capability);
    if (ap.comps.length === 0)
      throw fsError(
        "PathOutOfScope",
        ws.capability,
        ap.display,
        "The workspace root cannot be deleted.",
        {
          recovery: [
            { action: "fix_inputs", description: "Delete entries inside the workspace instead." },
          ],
        },
      );
    checkDenyBoth(ws, ap.comps, ap.comps, ap.display);
    // The final component is not followed: deleting a symlink removes the link, not its target.
    const entry = await locate(ws, ap.comps, ap.display, { follow: false });
    try {
      if (!entry.st)
        throw fsError("NotFound", ws.capability, ap.display, `${ap.display} does not exist.`);
      checkDenyBoth(ws, ap.comps, entry.comps, ap.display);
      const type = typeOf(entry.st);
      if (!entry.st.isDirectory()) {
        await unlink(entry.dir.at(entry.name));
        return { path: ap.display, type, entries: 1 };
      }
      if (inputs.recursive !== true) {
        try {
          await rmdir(entry.dir.at(entry.name));
        } catch (err) {
          if (errnoOf(err) === "ENOTEMPTY" || errnoOf(err) === "EEXIST")
            throw fsError(
              "DirectoryNotEmpty",
              ws.capability,
              ap.display,
              `${ap.display} is not empty.`,
            );
          throw err;
        }
        return { path: ap.display, type, entries: 1 };
      }
      const sub = await openSubdir(ws, entry.dir, entry.name, entry.st);
      if (!sub)
        throw fsError(
          "NotFound",
          ws.capability,
          ap.display,
          `${ap.display} changed during the call.`,
        );
      let removed: number;
      try {
        // First pass: refuse before removing anything if a mandatory-deny file is inside.
        await walk(
          ws,
          sub,
          { recursive: true, includeHidden: true, signal: ws.ctx.signal, maxDepth: MAX_DEPTH },
          (v) => checkDenyBoth(ws, [...ap.comps, ...v.rel], [...entry.comps, ...v.rel], ap.display),
          ap.display,
        );
        await sub.assertInside(ap.display);
        removed = await emptyTree(ws, sub, ap.display, 1);
      } finally {
        await sub.close();
      }
      await rmdir(entry.dir.at(entry.name));
      return { path: ap.display, type, entries: removed + 1 };
    } finally {
      await entry.dir.close();
    }
  });
}
