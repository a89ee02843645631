// filesystem.move and filesystem.copy: two confined paths at once. Both refuse when the source or
// the destination — or, for a directory, any path inside either — is mandatory-deny.
import { constants, type Stats } from "node:fs";
import { link, mkdir, open, lstat, rename, unlink, type FileHandle } from "node:fs/promises";
import { checkDenyBoth, handler } from "./common.js";
import {
  adopt,
  assertNotHardLinked,
  locate,
  openDir,
  openFileForRead,
  refuseSymlinkTarget,
  type Dir,
  type Entry,
  type Workspace,
} from "./confine.js";
import { errnoOf, fsError } from "./errors.js";
import type { CapabilityHandler } from "../types.js";
import { readBounded, typeOf, walk, writeAtomicAt } from "./io.js";
import type { FilesystemOptions } from "./options.js";
import { parseAgentPath, type AgentPath } from "./paths.js";
import { MAX_DEPTH, openSubdir, treeLevel } from "./tree.js";

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = constants;

interface TwoPaths {
  from: string;
  to: string;
  overwrite?: boolean;
}

function isInside(inner: readonly string[], outer: readonly string[]): boolean {
  return inner.length >= outer.length && outer.every((c, i) => inner[i] === c);
}

/** Check an existing destination before replacing it. */
async function checkDestination(
  ws: Workspace,
  dst: Entry,
  b: AgentPath,
  overwrite: boolean,
  srcIsDir: boolean,
): Promise<void> {
  const st = dst.st;
  if (!st) return;
  if (!overwrite)
    throw fsError("AlreadyExists", ws.capability, b.display, `${b.display} already exists.`);
  if (st.isSymbolicLink()) await refuseSymlinkTarget(ws, dst, b.display);
  if (st.isDirectory())
    throw fsError(
      "IsADirectory",
      ws.capability,
      b.display,
      `${b.display} is a directory and is never replaced.`,
      {
        recovery: [
          {
            action: "fix_inputs",
            description: "Name the new path itself, not a directory to put it in.",
          },
        ],
      },
    );
  if (srcIsDir)
    throw fsError(
      "NotADirectory",
      ws.capability,
      b.display,
      `${b.display} is a file; a directory cannot replace it.`,
    );
}

export function createMove(): CapabilityHandler {
  return handler<TwoPaths>("filesystem.move", async (inputs, ws) => {
    const a = parseAgentPath(inputs.from, ws.capability);
    const b = parseAgentPath(inputs.to, ws.capability);
    if (a.comps.length === 0 || b.comps.length === 0)
      throw fsError(
        "PathOutOfScope",
        ws.capability,
        a.comps.length === 0 ? a.display : b.display,
        "The workspace root cannot be moved or replaced.",
      );
    checkDenyBoth(ws, a.comps, a.comps, a.display);
    checkDenyBoth(ws, b.comps, b.comps, b.display);
    const src = await locate(ws, a.comps, a.display, { follow: false });
    try {
      if (!src.st)
        throw fsError("NotFound", ws.capability, a.display, `${a.display} does not exist.`);
      checkDenyBoth(ws, a.comps, src.comps, a.display);
      const dst = await locate(ws, b.comps, b.display, { follow: false });
      try {
        checkDenyBoth(ws, b.comps, dst.comps, b.display);
        const srcIsDir = src.st.isDirectory();
        if (srcIsDir && isInside(dst.comps, src.comps))
          throw fsError(
            "InvalidTarget",
            ws.capability,
            b.display,
            "A directory cannot be moved into itself.",
          );
        await checkDestination(ws, dst, b, inputs.overwrite === true, srcIsDir);
        if (srcIsDir) {
          // Every path inside the directory is checked at its old and its new place.
          const sub = await openSubdir(ws, src.dir, src.name, src.st);
          if (!sub)
            throw fsError(
              "NotFound",
              ws.capability,
              a.display,
              `${a.display} changed during the call.`,
            );
          try {
            await walk(
              ws,
              sub,
              { recursive: true, includeHidden: true, signal: ws.ctx.signal, maxDepth: MAX_DEPTH },
              (v) => {
                checkDenyBoth(ws, [...a.comps, ...v.rel], [...src.comps, ...v.rel], a.display);
                checkDenyBoth(ws, [...b.comps, ...v.rel], [...dst.comps, ...v.rel], b.display);
              },
              a.display,
            );
          } finally {
            await sub.close();
          }
        }
        const from = src.dir.at(src.name);
        const to = dst.dir.at(dst.name);
        if (!dst.st && !srcIsDir) {
          // No-clobber for files: link(2) fails atomically if the name appeared meanwhile.
          try {
            await link(from, to);
            await unlink(from);
          } catch (err) {
            if (errnoOf(err) === "EEXIST")
              throw fsError(
                "AlreadyExists",
                ws.capability,
                b.display,
                `${b.display} already exists.`,
              );
            if (!["EPERM", "EXDEV", "ENOTSUP", "EOPNOTSUPP", "EMLINK"].includes(errnoOf(err) ?? ""))
              throw err;
            await rename(from, to);
          }
        } else {
          await rename(from, to);
        }
        await src.dir.assertInside(a.display);
        await dst.dir.assertInside(b.display);
        return {
          from: a.display,
          to: b.display,
          type: typeOf(src.st),
          overwritten: dst.st !== undefined,
        };
      } finally {
        await dst.dir.close();
      }
    } finally {
      await src.dir.close();
    }
  });
}

interface CopyTotals {
  files: number;
  directories: number;
  bytes: number;
  skipped: number;
}

async function readFileIn(
  ws: Workspace,
  dir: Dir,
  name: string,
  st: Stats,
  display: string,
  limit: number,
): Promise<Buffer | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(dir.at(name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const now = await fh.stat();
    if (now.dev !== st.dev || now.ino !== st.ino || !now.isFile()) return undefined;
    assertNotHardLinked(ws, now, display);
    const buf = await readBounded(fh, limit);
    if (buf.length > limit)
      throw fsError("TooLarge", ws.capability, display, `A file is larger than ${limit} bytes.`, {
        limit,
      });
    return buf;
  } finally {
    await fh.close();
  }
}

async function copyTree(
  ws: Workspace,
  from: Dir,
  to: Dir,
  display: string,
  o: FilesystemOptions,
  totals: CopyTotals,
  depth: number,
): Promise<void> {
  for await (const { name, st } of treeLevel(ws, from, display, depth)) {
    if (st.isDirectory()) {
      const s = await openSubdir(ws, from, name, st);
      if (!s) {
        totals.skipped += 1;
        continue;
      }
      try {
        await mkdir(to.at(name));
        await adopt(ws, to.at(name));
        const lst = await lstat(to.at(name));
        const d = await openSubdir(ws, to, name, lst);
        if (!d)
          throw fsError(
            "PathOutOfScope",
            ws.capability,
            display,
            "The destination changed during the copy.",
          );
        try {
          totals.directories += 1;
          await copyTree(ws, s, d, display, o, totals, depth + 1);
        } finally {
          await d.close();
        }
      } finally {
        await s.close();
      }
    } else if (st.isFile()) {
      const data = await readFileIn(ws, from, name, st, display, o.maxWriteBytes);
      if (!data) {
        totals.skipped += 1;
        continue;
      }
      totals.bytes += data.length;
      if (totals.bytes > o.maxCopyBytes)
        throw fsError(
          "TooLarge",
          ws.capability,
          display,
          `The copy exceeds ${o.maxCopyBytes} bytes.`,
          { limit: o.maxCopyBytes },
        );
      await writeAtomicAt(to, name, data, st.mode & 0o777, true);
      totals.files += 1;
    } else {
      totals.skipped += 1; // symlinks, FIFOs, devices are not copied
    }
  }
}

export function createCopy(o: FilesystemOptions): CapabilityHandler {
  return handler<TwoPaths>("filesystem.copy", async (inputs, ws) => {
    const a = parseAgentPath(inputs.from, ws.capability);
    const b = parseAgentPath(inputs.to, ws.capability);
    if (b.comps.length === 0)
      throw fsError(
        "PathOutOfScope",
        ws.capability,
        b.display,
        "The workspace root cannot be replaced.",
      );
    checkDenyBoth(ws, b.comps, b.comps, b.display);
    const overwrite = inputs.overwrite === true;
    // The source follows symlinks that stay inside (like read); find out whether it is a directory.
    let srcDir: Dir | undefined;
    try {
      srcDir = await openDir(ws, a.comps, a.display);
    } catch (err) {
      const t = (err as { data?: { type?: unknown } }).data?.type;
      if (t !== "NotADirectory") throw err;
    }
    if (!srcDir) {
      const f = await openFileForRead(ws, a);
      try {
        const data = await readBounded(f.fh, o.maxWriteBytes);
        if (data.length > o.maxWriteBytes)
          throw fsError(
            "TooLarge",
            ws.capability,
            a.display,
            `${a.display} is larger than ${o.maxWriteBytes} bytes.`,
            { limit: o.maxWriteBytes },
          );
        await f.entry.dir.assertInside(a.display);
        const dst = await locate(ws, b.comps, b.display, { follow: false });
        try {
          checkDenyBoth(ws, b.comps, dst.comps, b.display);
          await checkDestination(ws, dst, b, overwrite, false);
          await writeAtomicAt(dst.dir, dst.name, data, f.st.mode & 0o777, dst.st === undefined);
          await dst.dir.assertInside(b.display);
          return {
            from: a.display,
            to: b.display,
            type: "file",
            files: 1,
            directories: 0,
            bytes: data.length,
            skipped: 0,
          };
        } finally {
          await dst.dir.close();
        }
      } finally {
        await f.fh.close();
        await f.entry.dir.close();
      }
    }
    try {
      const dst = await locate(ws, b.comps, b.display, { follow: false });
      try {
        checkDenyBoth(ws, b.comps, dst.comps, b.display);
        if (dst.st)
          throw fsError(
            "AlreadyExists",
            ws.capability,
            b.display,
            `${b.display} already exists; a directory is copied only to a new path.`,
          );
        if (isInside(dst.comps, srcDir.comps))
          throw fsError(
            "InvalidTarget",
            ws.capability,
            b.display,
            "A directory cannot be copied into itself.",
          );
        // Dry run: bounds, hard links and mandatory deny, before anything is written.
        let entries = 0;
        let bytes = 0;
        await walk(
          ws,
          srcDir,
          { recursive: true, includeHidden: true, signal: ws.ctx.signal, maxDepth: MAX_DEPTH },
          (v) => {
            if (++entries > o.maxListEntries)
              throw fsError(
                "TooLarge",
                ws.capability,
                a.display,
                `The directory holds more than ${o.maxListEntries} entries.`,
                { limit: o.maxListEntries },
              );
            if (v.st.isFile()) {
              bytes += v.st.size;
              assertNotHardLinked(ws, v.st, [a.display, ...v.rel].join("/"));
            }
            if (bytes > o.maxCopyBytes)
              throw fsError(
                "TooLarge",
                ws.capability,
                a.display,
                `The directory holds more than ${o.maxCopyBytes} bytes.`,
                { limit: o.maxCopyBytes },
              );
            if (!v.st.isSymbolicLink())
              checkDenyBoth(ws, [...b.comps, ...v.rel], [...dst.comps, ...v.rel], b.display);
          },
          a.display,
        );
        await mkdir(dst.dir.at(dst.name));
        await adopt(ws, dst.dir.at(dst.name));
        const made = await lstat(dst.dir.at(dst.name));
        const to = await openSubdir(ws, dst.dir, dst.name, made);
        if (!to)
          throw fsError(
            "PathOutOfScope",
            ws.capability,
            b.display,
            "The destination changed during the copy.",
          );
        const totals: CopyTotals = { files: 0, directories: 0, bytes: 0, skipped: 0 };
        try {
          await copyTree(ws, srcDir, to, b.display, o, totals, 1);
          await to.assertInside(b.display);
        } finally {
          await to.close();
        }
        return { from: a.display, to: b.display, type: "directory", ...totals };
      } finally {
        await dst.dir.close();
      }
    } finally {
      await srcDir.close();
    }
  });
}
