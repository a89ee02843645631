// filesystem.read, filesystem.write, filesystem.stat: single files, always through confine.ts.
import { isUtf8 } from "node:buffer";
import { open } from "node:fs/promises";
import { handler, checkDenyBoth, isoTime, modeString } from "./common.js";
import { locate, O_DIR, openFileForRead, refuseSymlinkTarget, type Workspace } from "./confine.js";
import { fsError } from "./errors.js";
import type { CapabilityHandler } from "../types.js";
import { readBounded, typeOf, writeAtomicAt } from "./io.js";
import type { FilesystemOptions } from "./options.js";
import { parseAgentPath } from "./paths.js";

export function createRead(o: FilesystemOptions): CapabilityHandler {
  return handler<{ path: string }>("filesystem.read", async (inputs, ws) => {
    const ap = parseAgentPath(inputs.path, ws.capability);
    const f = await openFileForRead(ws, ap);
    try {
      const tooLarge = (size: number): Error =>
        fsError(
          "TooLarge",
          ws.capability,
          ap.display,
          `${ap.display} is ${size} bytes; filesystem.read returns at most ${o.maxReadBytes}.`,
          { size, limit: o.maxReadBytes },
        );
      if (f.st.size > o.maxReadBytes) throw tooLarge(f.st.size);
      const buf = await readBounded(f.fh, o.maxReadBytes);
      if (buf.length > o.maxReadBytes) throw tooLarge(buf.length);
      await f.entry.dir.assertInside(ap.display);
      return isUtf8(buf)
        ? { content: buf.toString("utf8"), encoding: "utf8", size: buf.length }
        : { content: buf.toString("base64"), encoding: "base64", size: buf.length };
    } finally {
      await f.fh.close();
      await f.entry.dir.close();
    }
  });
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decode write content; base64 must be canonical (line breaks allowed), never silently lossy. */
export function decodeContent(
  content: string,
  encoding: "utf8" | "base64",
  capability: string,
  display: string,
): Buffer {
  if (encoding === "utf8") return Buffer.from(content, "utf8");
  const compact = content.replace(/[\r\n]/g, "");
  if (!BASE64.test(compact))
    throw fsError("InvalidEncoding", capability, display, "content is not valid base64.");
  return Buffer.from(compact, "base64");
}

interface WriteInputs {
  path: string;
  content: string;
  encoding?: "utf8" | "base64";
  create_dirs?: boolean;
}

export function createWrite(o: FilesystemOptions): CapabilityHandler {
  return handler<WriteInputs>("filesystem.write", async (inputs, ws) => {
    const ap = parseAgentPath(inputs.path, ws.capability);
    if (ap.comps.length === 0)
      throw fsError(
        "IsADirectory",
        ws.capability,
        ap.display,
        "The workspace root is a directory.",
      );
    checkDenyBoth(ws, ap.comps, ap.comps, ap.display);
    const encoding = inputs.encoding ?? "utf8";
    // Cheap bound before decoding: base64 decodes to about 3/4 of its length.
    const estimate = Math.floor((inputs.content.length * 3) / 4) - 2;
    if (encoding === "base64" && estimate > o.maxWriteBytes)
      throw tooLargeWrite(ws, ap.display, estimate, o);
    const data = decodeContent(inputs.content, encoding, ws.capability, ap.display);
    if (data.length > o.maxWriteBytes) throw tooLargeWrite(ws, ap.display, data.length, o);
    const entry = await locate(ws, ap.comps, ap.display, {
      follow: false,
      create: inputs.create_dirs === true,
    });
    try {
      checkDenyBoth(ws, ap.comps, entry.comps, ap.display);
      const st = entry.st;
      if (st?.isSymbolicLink()) await refuseSymlinkTarget(ws, entry, ap.display);
      if (st?.isDirectory())
        throw fsError("IsADirectory", ws.capability, ap.display, `${ap.display} is a directory.`);
      if (st && !st.isFile())
        throw fsError(
          "NotAFile",
          ws.capability,
          ap.display,
          `${ap.display} is not a regular file.`,
        );
      await writeAtomicAt(entry.dir, entry.name, data, st ? st.mode & 0o777 : undefined, false);
      await entry.dir.assertInside(ap.display);
      return { path: ap.display, size: data.length, created: st === undefined };
    } finally {
      await entry.dir.close();
    }
  });
}

function tooLargeWrite(ws: Workspace, display: string, size: number, o: FilesystemOptions): Error {
  return fsError(
    "TooLarge",
    ws.capability,
    display,
    `The content is ${size} bytes; filesystem.write writes at most ${o.maxWriteBytes}.`,
    { size, limit: o.maxWriteBytes },
  );
}

export function createStat(): CapabilityHandler {
  return handler<{ path: string }>("filesystem.stat", async (inputs, ws) => {
    const ap = parseAgentPath(inputs.path, ws.capability);
    if (ap.comps.length === 0) {
      const fh = await open(ws.root, O_DIR);
      try {
        const st = await fh.stat();
        return describe(ap.display, st);
      } finally {
        await fh.close();
      }
    }
    // The final component is not followed: a symlink is reported as one (never its target's data).
    const entry = await locate(ws, ap.comps, ap.display, { follow: false });
    try {
      if (!entry.st)
        throw fsError("NotFound", ws.capability, ap.display, `${ap.display} does not exist.`);
      await entry.dir.assertInside(ap.display);
      return describe(ap.display, entry.st);
    } finally {
      await entry.dir.close();
    }
  });
}

function describe(
  display: string,
  st: { mode: number; size: number; mtimeMs: number; nlink: number } & Parameters<typeof typeOf>[0],
): Record<string, unknown> {
  return {
    path: display,
    type: typeOf(st),
    size: st.size,
    mode: modeString(st.mode),
    mtime: isoTime(st.mtimeMs),
    nlink: st.nlink,
  };
}
