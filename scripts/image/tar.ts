// A small, deterministic tar codec for image layers: it writes POSIX (pax) archives whose bytes
// depend only on the entries given, and reads the GNU/pax archives mmdebstrap produces so the base
// root can be re-packed. Only what image layers need is supported: regular files, directories,
// symlinks, hard links, device nodes and FIFOs, long names and extended attributes.
import { closeSync, openSync, readSync } from "node:fs";

export type EntryType = "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo";

export interface TarHeader {
  /** Path inside the archive: relative, no leading "./" or "/", no trailing "/". */
  readonly name: string;
  readonly type: EntryType;
  /** Permission bits including setuid/setgid/sticky (0o7777). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtime: number;
  /** Bytes of content; 0 for everything but regular files. */
  readonly size: number;
  /** Target of a symlink, or the archive path a hard link points to. */
  readonly linkname?: string;
  readonly devmajor?: number;
  readonly devminor?: number;
  /** Extended attributes, written as pax `SCHILY.xattr.<name>` records. */
  readonly xattrs?: ReadonlyMap<string, Buffer>;
}

export const BLOCK = 512;
/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

const TYPEFLAG: Record<EntryType, string> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
};

/** Zero bytes that pad `size` bytes of content to a whole block. */
export function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest);
}

/** Byte-wise order of archive paths (what GNU tar's --sort=name gives for full paths). */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

// ---- writing ---------------------------------------------------------------------------------

/** The header block(s) for one entry: a pax extended header when needed, then the ustar header. */
export function encodeHeader(h: TarHeader): Buffer {
  const records: Buffer[] = [];
  const fullName = h.type === "dir" ? `${h.name}/` : h.name;
  const nameBytes = Buffer.from(fullName, "utf8");
  let ustarName: Buffer = nameBytes;
  let ustarPrefix: Buffer = Buffer.alloc(0);
  if (nameBytes.length > 100) {
    const split = splitUstarName(nameBytes);
    if (split) {
      [ustarPrefix, ustarName] = split;
    } else {
      records.push(paxRecord("path", nameBytes));
      ustarName = nameBytes.subarray(nameBytes.length - 100);
    }
  }
  const linkBytes = Buffer.from(h.linkname ?? "", "utf8");
  if (linkBytes.length > 100) records.push(paxRecord("linkpath", linkBytes));
  const size = h.type === "file" ? h.size : 0;
  if (size > 0o77777777777) records.push(paxRecord("size", Buffer.from(String(size))));
  if (h.uid > 0o7777777) records.push(paxRecord("uid", Buffer.from(String(h.uid))));
  if (h.gid > 0o7777777) records.push(paxRecord("gid", Buffer.from(String(h.gid))));
  for (const [key, value] of [...(h.xattrs ?? new Map<string, Buffer>())].sort((a, b) =>
    compareNames(a[0], b[0]),
  )) {
    records.push(paxRecord(`SCHILY.xattr.${key}`, value));
  }

  const ustar = ustarBlock({
    name: ustarName,
    prefix: ustarPrefix,
    mode: h.mode & 0o7777,
    uid: h.uid > 0o7777777 ? 0 : h.uid,
    gid: h.gid > 0o7777777 ? 0 : h.gid,
    size: size > 0o77777777777 ? 0 : size,
    mtime: h.mtime,
    typeflag: TYPEFLAG[h.type],
    linkname: linkBytes.subarray(0, 100),
    devmajor: h.devmajor ?? 0,
    devminor: h.devminor ?? 0,
  });
  if (records.length === 0) return ustar;

  const body = Buffer.concat(records);
  const paxHeader = ustarBlock({
    name: Buffer.from(paxHeaderName(h.name), "utf8"),
    prefix: Buffer.alloc(0),
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: body.length,
    mtime: h.mtime,
    typeflag: "x",
    linkname: Buffer.alloc(0),
    devmajor: 0,
    devminor: 0,
  });
  return Buffer.concat([paxHeader, body, padding(body.length), ustar]);
}

/** GNU tar's `exthdr.name=%d/PaxHeaders/%f`, without the process id that would break determinism. */
function paxHeaderName(name: string): string {
  const slash = name.lastIndexOf("/");
  const dir = slash < 0 ? "." : name.slice(0, slash);
  const base = slash < 0 ? name : name.slice(slash + 1);
  const full = Buffer.from(`${dir}/PaxHeaders/${base}`, "utf8");
  return full
    .subarray(0, 100)
    .toString("utf8")
    .replace(/\uFFFD+$/, "");
}

/** Split a long name into ustar prefix (≤155) and name (≤100) at a "/", when possible. */
function splitUstarName(name: Buffer): [Buffer, Buffer] | undefined {
  for (let i = Math.min(155, name.length - 2); i > 0; i--) {
    if (name[i] !== 0x2f) continue;
    const rest = name.length - i - 1;
    if (rest > 100) return undefined;
    if (rest > 0) return [name.subarray(0, i), name.subarray(i + 1)];
  }
  return undefined;
}

/** One pax record, "<len> <key>=<value>\n", where <len> counts the whole record. */
function paxRecord(key: string, value: Buffer): Buffer {
  const fixed = Buffer.byteLength(key) + value.length + 3; // space, "=", newline
  let len = fixed + String(fixed).length;
  if (String(len).length !== String(fixed).length) len = fixed + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`, "utf8"), value, Buffer.from("\n")]);
}

interface UstarFields {
  name: Buffer;
  prefix: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: Buffer;
  devmajor: number;
  devminor: number;
}

function ustarBlock(f: UstarFields): Buffer {
  const b = Buffer.alloc(BLOCK);
  f.name.copy(b, 0, 0, 100);
  octal(b, 100, 8, f.mode);
  octal(b, 108, 8, f.uid);
  octal(b, 116, 8, f.gid);
  octal(b, 124, 12, f.size);
  octal(b, 136, 12, Math.max(0, Math.floor(f.mtime)));
  b.write("        ", 148, "ascii"); // checksum placeholder
  b.write(f.typeflag, 156, "ascii");
  f.linkname.copy(b, 157, 0, 100);
  b.write("ustar\u000000", 257, "ascii");
  // uname/gname stay empty: ownership is numeric only.
  octal(b, 329, 8, f.devmajor);
  octal(b, 337, 8, f.devminor);
  f.prefix.copy(b, 345, 0, 155);
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(sum.toString(8).padStart(6, "0") + "\u0000 ", 148, "ascii");
  return b;
}

function octal(b: Buffer, offset: number, width: number, value: number): void {
  const digits = value.toString(8);
  if (digits.length > width - 1) throw new RangeError(`tar field overflow: ${value}`);
  b.write(digits.padStart(width - 1, "0") + "\u0000", offset, "ascii");
}

// ---- reading ---------------------------------------------------------------------------------

/** One entry of an archive on disk: its header and where its content starts in the file. */
export interface IndexedEntry {
  readonly header: TarHeader;
  readonly dataOffset: number;
}

/**
 * Read every header of a tar file (GNU, ustar or pax), normalising names. Content is not read; the
 * returned offsets let a caller stream it later. Throws on anything it cannot represent faithfully.
 */
export function indexTar(file: string): IndexedEntry[] {
  const fd = openSync(file, "r");
  try {
    const out: IndexedEntry[] = [];
    const block = Buffer.alloc(BLOCK);
    let pos = 0;
    let pax = new Map<string, Buffer>();
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      if (readSync(fd, block, 0, BLOCK, pos) !== BLOCK) {
        throw new Error(`${file}: truncated archive`);
      }
      pos += BLOCK;
      if (block.every((x) => x === 0)) break;
      verifyChecksum(block, file, pos - BLOCK);
      const typeflag = String.fromCharCode(block[156] ?? 0);
      let size = readNumber(block, 124, 12);
      const paxSize = pax.get("size");
      if (paxSize && !"xgLK".includes(typeflag)) size = Number(paxSize.toString("utf8"));
      const dataOffset = pos;
      pos += size + padding(size).length;

      if (typeflag === "x" || typeflag === "g" || typeflag === "L" || typeflag === "K") {
        const data = Buffer.alloc(size);
        if (size > 0 && readSync(fd, data, 0, size, dataOffset) !== size) {
          throw new Error(`${file}: truncated archive`);
        }
        if (typeflag === "x") pax = new Map([...pax, ...parsePax(data)]);
        else if (typeflag === "L") longName = cString(data);
        else if (typeflag === "K") longLink = cString(data);
        // "g" (global pax header) carries nothing an image layer needs.
        continue;
      }

      const magic = block.toString("latin1", 257, 263);
      const ustarPrefix = magic === "ustar\u0000" ? cString(block.subarray(345, 500)) : "";
      let name = cString(block.subarray(0, 100));
      if (ustarPrefix) name = `${ustarPrefix}/${name}`;
      name = pax.get("path")?.toString("utf8") ?? longName ?? name;
      const linkname =
        pax.get("linkpath")?.toString("utf8") ?? longLink ?? cString(block.subarray(157, 257));
      const xattrs = new Map<string, Buffer>();
      for (const [k, v] of pax) {
        if (k.startsWith("SCHILY.xattr.")) xattrs.set(k.slice("SCHILY.xattr.".length), v);
      }
      const type = entryType(typeflag, name, file);
      const header: TarHeader = {
        name: normaliseName(name),
        type,
        mode: readNumber(block, 100, 8) & 0o7777,
        uid: pax.has("uid") ? Number(pax.get("uid")?.toString()) : readNumber(block, 108, 8),
        gid: pax.has("gid") ? Number(pax.get("gid")?.toString()) : readNumber(block, 116, 8),
        mtime: readNumber(block, 136, 12),
        size: type === "file" ? size : 0,
        ...(type === "symlink" ? { linkname } : {}),
        ...(type === "hardlink" ? { linkname: normaliseName(linkname) } : {}),
        ...(type === "char" || type === "block"
          ? { devmajor: readNumber(block, 329, 8), devminor: readNumber(block, 337, 8) }
          : {}),
        ...(xattrs.size > 0 ? { xattrs } : {}),
      };
      out.push({ header, dataOffset });
      pax = new Map();
      longName = undefined;
      longLink = undefined;
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/** "./usr/bin/" → "usr/bin"; "./" → "". */
export function normaliseName(name: string): string {
  let n = name;
  while (n.startsWith("./") || n.startsWith("/")) n = n.startsWith("./") ? n.slice(2) : n.slice(1);
  while (n.endsWith("/")) n = n.slice(0, -1);
  return n === "." ? "" : n;
}

function entryType(typeflag: string, name: string, file: string): EntryType {
  switch (typeflag) {
    case "0":
    case "\u0000":
    case "7":
      return name.endsWith("/") ? "dir" : "file";
    case "1":
      return "hardlink";
    case "2":
      return "symlink";
    case "3":
      return "char";
    case "4":
      return "block";
    case "5":
    case "D":
      return "dir";
    case "6":
      return "fifo";
    default:
      throw new Error(`${file}: unsupported tar entry type '${typeflag}' for ${name}`);
  }
}

function verifyChecksum(block: Buffer, file: string, offset: number): void {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0);
  if (readNumber(block, 148, 8) !== sum) {
    throw new Error(`${file}: bad tar header checksum at ${offset}`);
  }
}

/** Octal, or GNU base-256 when the high bit of the first byte is set. */
function readNumber(block: Buffer, offset: number, width: number): number {
  const first = block[offset] ?? 0;
  if (first & 0x80) {
    let v = first & 0x7f;
    for (let i = 1; i < width; i++) v = v * 256 + (block[offset + i] ?? 0);
    return v;
  }
  // Octal digits, possibly led by spaces and ended by NUL or space.
  let text = "";
  for (let i = offset; i < offset + width; i++) {
    const c = block[i] ?? 0;
    if (c === 0x20 && text === "") continue;
    if (c < 0x30 || c > 0x37) break;
    text += String.fromCharCode(c);
  }
  return text === "" ? 0 : parseInt(text, 8);
}

function cString(b: Buffer): string {
  const end = b.indexOf(0);
  return b.toString("utf8", 0, end < 0 ? b.length : end);
}

function parsePax(data: Buffer): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space < 0) break;
    const len = parseInt(data.toString("ascii", pos, space), 10);
    if (!Number.isFinite(len) || len <= 0) throw new Error("malformed pax record");
    const record = data.subarray(space + 1, pos + len - 1); // drop trailing newline
    const eq = record.indexOf(0x3d);
    if (eq > 0) records.set(record.toString("utf8", 0, eq), Buffer.from(record.subarray(eq + 1)));
    pos += len;
  }
  return records;
}
