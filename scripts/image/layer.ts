// Writing layers and archives: a sorted list of planned entries becomes a tar stream, hashed as it
// is written (diff_id), and for layers gzip-compressed with a fixed header and hashed again (digest).
import { createHash } from "node:crypto";
import {
  createWriteStream,
  existsSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { open } from "node:fs/promises";
import { once } from "node:events";
import path from "node:path";
import { Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { constants as zlibConstants, createGzip } from "node:zlib";
import { compareNames, encodeHeader, END_OF_ARCHIVE, padding, type TarHeader } from "./tar.js";

/** Where an entry's content comes from: bytes in memory, or a byte range of a file on disk. */
export type Content =
  | { readonly kind: "buffer"; readonly data: Buffer }
  | { readonly kind: "file"; readonly path: string; readonly offset: number };

export interface PlannedEntry {
  readonly header: TarHeader;
  readonly content?: Content;
}

export interface LayerBlob {
  /** The gzip-compressed layer on disk. */
  readonly path: string;
  /** sha256 of the compressed bytes (the manifest's layer digest). */
  readonly digest: string;
  /** sha256 of the uncompressed tar (the config's rootfs.diff_ids entry). */
  readonly diffId: string;
  /** Compressed size in bytes. */
  readonly size: number;
  /** Uncompressed tar size in bytes. */
  readonly tarBytes: number;
  /** Every path in the layer, in archive order. */
  readonly names: readonly string[];
}

/** gzip level for layers. Node's zlib writes no name and mtime 0, so output depends on bytes only. */
const GZIP_LEVEL = 6;
const CHUNK = 1 << 20;

/** Entries in archive order; throws on duplicate paths or hard links that point forwards. */
export function sortEntries(entries: readonly PlannedEntry[]): PlannedEntry[] {
  const sorted = [...entries].sort((a, b) => compareNames(a.header.name, b.header.name));
  const seen = new Set<string>();
  for (const e of sorted) {
    if (seen.has(e.header.name)) throw new Error(`duplicate path in layer: ${e.header.name}`);
    if (e.header.type === "hardlink" && !seen.has(e.header.linkname ?? "")) {
      throw new Error(
        `hard link ${e.header.name} points to ${e.header.linkname}, which is not before it`,
      );
    }
    seen.add(e.header.name);
  }
  return sorted;
}

/** Write `entries` (sorted here) as a gzip-compressed layer at `file`. */
export async function writeLayer(
  file: string,
  entries: readonly PlannedEntry[],
): Promise<LayerBlob> {
  const sorted = sortEntries(entries);
  const gzip = createGzip({ level: GZIP_LEVEL, strategy: zlibConstants.Z_DEFAULT_STRATEGY });
  const compressedHash = createHash("sha256");
  let compressedBytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      compressedHash.update(chunk);
      compressedBytes += chunk.length;
      callback(null, chunk);
    },
  });
  const done = pipeline(gzip, counter, createWriteStream(file, { mode: 0o644 }));
  const tar = await writeTarStream(gzip, sorted, done);
  return {
    path: file,
    digest: `sha256:${compressedHash.digest("hex")}`,
    diffId: tar.digest,
    size: compressedBytes,
    tarBytes: tar.bytes,
    names: sorted.map((e) => e.header.name),
  };
}

/** Write `entries` (sorted here) as a plain tar at `file`; returns its digest and size. */
export async function writeTarFile(
  file: string,
  entries: readonly PlannedEntry[],
): Promise<{ digest: string; bytes: number }> {
  const sorted = sortEntries(entries);
  const out = createWriteStream(file, { mode: 0o644 });
  const done = once(out, "finish").then(() => undefined);
  return writeTarStream(out, sorted, done);
}

/** The diff_id a layer of `entries` would have, computed without compressing or writing anything. */
export async function layerDiffId(entries: readonly PlannedEntry[]): Promise<string> {
  const sink = new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
  const done = once(sink, "finish").then(() => undefined);
  return (await writeTarStream(sink, sortEntries(entries), done)).digest;
}

export interface CachedLayerBlob extends LayerBlob {
  readonly cached: boolean;
}

/**
 * Like writeLayer, but keyed by content: the uncompressed digest is computed first (cheap), and a
 * compressed layer with that diff_id in `cacheDir` is reused. One entry is kept per `slot`.
 */
export async function writeLayerCached(
  slot: string,
  entries: readonly PlannedEntry[],
  cacheDir: string,
  tmpDir: string,
): Promise<CachedLayerBlob> {
  const diffId = await layerDiffId(entries);
  const stem = path.join(cacheDir, `${slot}-${diffId.replace(/^sha256:/, "").slice(0, 32)}`);
  const blobPath = `${stem}.tar.gz`;
  const metaPath = `${stem}.json`;
  if (existsSync(blobPath) && existsSync(metaPath)) {
    try {
      const meta = JSON.parse(readFileSync(metaPath, "utf8")) as Omit<LayerBlob, "path">;
      if (meta.diffId === diffId && (await fileDigest(blobPath)) === meta.digest) {
        return { ...meta, path: blobPath, cached: true };
      }
    } catch {
      // unreadable metadata: rebuild below
    }
  }
  const partial = path.join(tmpDir, `${slot}.tar.gz`);
  const blob = await writeLayer(partial, entries);
  if (blob.diffId !== diffId) throw new Error(`layer ${slot} changed while it was being written`);
  for (const old of readdirSync(cacheDir)) {
    if (old.startsWith(`${slot}-`)) rmSync(path.join(cacheDir, old), { force: true });
  }
  renameSync(partial, blobPath);
  const { path: _path, ...meta } = blob;
  writeFileSync(`${metaPath}.${process.pid}.tmp`, JSON.stringify(meta) + "\n");
  renameSync(`${metaPath}.${process.pid}.tmp`, metaPath);
  return { ...blob, path: blobPath, cached: false };
}

async function writeTarStream(
  dest: Writable,
  sorted: readonly PlannedEntry[],
  done: Promise<void>,
): Promise<{ digest: string; bytes: number }> {
  // Surface a failure of the downstream pipeline while we are still writing.
  let failure: unknown;
  done.catch((err: unknown) => {
    failure = err;
  });
  const hash = createHash("sha256");
  let bytes = 0;
  const write = async (buf: Buffer): Promise<void> => {
    if (buf.length === 0) return;
    if (failure) throw failure;
    hash.update(buf);
    bytes += buf.length;
    if (!dest.write(buf)) await Promise.race([once(dest, "drain"), done]);
  };

  for (const { header, content } of sorted) {
    await write(encodeHeader(header));
    if (header.type !== "file" || header.size === 0) continue;
    if (!content) throw new Error(`no content for ${header.name}`);
    if (content.kind === "buffer") {
      if (content.data.length !== header.size) throw new Error(`size mismatch for ${header.name}`);
      await write(content.data);
    } else {
      await copyRange(content.path, content.offset, header.size, header.name, write);
    }
    await write(padding(header.size));
  }
  await write(END_OF_ARCHIVE);
  dest.end();
  await done;
  if (failure) throw failure;
  return { digest: `sha256:${hash.digest("hex")}`, bytes };
}

async function copyRange(
  file: string,
  offset: number,
  size: number,
  name: string,
  write: (buf: Buffer) => Promise<void>,
): Promise<void> {
  const fh = await open(file, "r");
  try {
    let done = 0;
    while (done < size) {
      const buf = Buffer.alloc(Math.min(CHUNK, size - done));
      const { bytesRead } = await fh.read(buf, 0, buf.length, offset + done);
      if (bytesRead === 0) {
        throw new Error(`${file} changed while packing ${name}: expected ${size} bytes`);
      }
      await write(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
      done += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

/** sha256 of a file, as "sha256:<hex>". */
export async function fileDigest(file: string): Promise<string> {
  const hash = createHash("sha256");
  const fh = await open(file, "r");
  try {
    const buf = Buffer.alloc(CHUNK);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return `sha256:${hash.digest("hex")}`;
}
