// The base layer: a Debian minbase root built by mmdebstrap with the manifest's packages, the image
// user and the appliance directories, re-packed deterministically and cached by its inputs.
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { findCompilers } from "./checks.js";
import { fileDigest, writeLayer, type LayerBlob, type PlannedEntry } from "./layer.js";
import { BuildError, run } from "./proc.js";
import { compareNames, indexTar, type IndexedEntry } from "./tar.js";

/** A Debian mirror to use instead of mmdebstrap's own default (for example a local one). */
export const DEBIAN_MIRROR: string | undefined = process.env.KRUXOS_DEBIAN_MIRROR || undefined;

/**
 * mtime of every base-layer entry and SOURCE_DATE_EPOCH for mmdebstrap (2000-01-01T00:00:00Z). It is
 * a constant, not the commit time, so the cached base stays valid across commits.
 */
export const BASE_EPOCH = 946684800;

/** Bump when the way the base is built or packed changes, to invalidate old caches. */
const BASE_FORMAT = 1;

/** Documentation, manuals and translations are not needed in an appliance (copyrights stay). */
const DPKG_OPTIONS = [
  "path-exclude=/usr/share/man/*",
  "path-exclude=/usr/share/info/*",
  "path-exclude=/usr/share/doc/*",
  "path-include=/usr/share/doc/*/copyright",
  "path-exclude=/usr/share/locale/*",
  "path-include=/usr/share/locale/locale.alias",
  "path-exclude=/usr/share/lintian/*",
];

export interface BaseSpec {
  readonly suite: string;
  readonly packages: readonly string[];
  readonly uid: number;
  readonly gid: number;
  /** Account name of the image user. */
  readonly userName: string;
  /** Root-owned, read-only directories (the app and config roots). */
  readonly readOnlyDirs: readonly string[];
  /** Directories owned by the image user, mode 0750 (data, workspace). */
  readonly privateDirs: readonly string[];
  /** Directories owned by the image user, mode 0755 (the run dir). */
  readonly sharedDirs: readonly string[];
  readonly mirror?: string;
  /** OCI architecture name, part of the cache key. */
  readonly arch: string;
}

export interface BaseBuildOptions {
  readonly cacheDir: string;
  readonly tmpDir: string;
  readonly noCache: boolean;
  readonly log: (line: string) => void;
}

export interface BaseLayer extends LayerBlob {
  readonly cached: boolean;
  readonly cacheKey: string;
}

interface CacheMeta {
  readonly format: number;
  readonly key: string;
  readonly digest: string;
  readonly diffId: string;
  readonly size: number;
  readonly tarBytes: number;
  readonly suite: string;
  readonly packages: readonly string[];
  readonly names: readonly string[];
}

/** The customize hook run by mmdebstrap inside the new root's parent ($1 is the root). */
export function baseHookScript(spec: BaseSpec): string {
  const q = (p: string): string => `"$root${safePath(p)}"`;
  const parents = [...spec.privateDirs, ...spec.sharedDirs, ...spec.readOnlyDirs]
    .map((d) => path.posix.dirname(d))
    .filter((d) => d !== "/");
  const lines = [
    "# KruxOS base customisation: mmdebstrap customize hook, the new root is $1.",
    "set -eu",
    'root="$1"',
    "# The unprivileged image user: no home, no login shell.",
    `chroot "$root" groupadd --gid ${spec.gid} ${spec.userName}`,
    `chroot "$root" useradd --uid ${spec.uid} --gid ${spec.gid} --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin ${spec.userName}`,
    "# Appliance directories: app and config root-owned (read-only to the user), state owned by the user.",
    ...(parents.length > 0
      ? [`install -d -o 0 -g 0 -m 0755 ${[...new Set(parents)].map(q).join(" ")}`]
      : []),
    `install -d -o 0 -g 0 -m 0755 ${spec.readOnlyDirs.map(q).join(" ")}`,
    `install -d -o ${spec.uid} -g ${spec.gid} -m 0750 ${spec.privateDirs.map(q).join(" ")}`,
    `install -d -o ${spec.uid} -g ${spec.gid} -m 0755 ${spec.sharedDirs.map(q).join(" ")}`,
    "# No setuid/setgid programs: nothing in the appliance may gain privilege.",
    'find "$root" -xdev -type f -perm /6000 -exec chmod ug-s {} +',
    "# Package-manager caches and lists, logs, and host-specific or non-reproducible files.",
    'rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/log/*',
    'rm -f "$root"/var/cache/debconf/*-old "$root"/var/cache/ldconfig/aux-cache',
    'rm -f "$root"/etc/passwd- "$root"/etc/group- "$root"/etc/shadow- "$root"/etc/gshadow- "$root"/etc/subuid- "$root"/etc/subgid-',
    'rm -f "$root"/etc/resolv.conf "$root"/etc/hostname',
    "# Directories left empty by the dpkg path excludes.",
    'find "$root"/usr/share/doc "$root"/usr/share/man "$root"/usr/share/info "$root"/usr/share/locale -mindepth 1 -depth -type d -empty -delete',
    "",
  ];
  return lines.join("\n");
}

/** The inputs that decide the base layer's content, hashed into the cache key. */
export function baseCacheKey(spec: BaseSpec): string {
  const inputs = {
    format: BASE_FORMAT,
    suite: spec.suite,
    packages: spec.packages,
    user: `${spec.uid}:${spec.gid}`,
    hook: baseHookScript(spec),
    dpkg: DPKG_OPTIONS,
    mirror: spec.mirror ?? "mmdebstrap-default",
    arch: spec.arch,
    epoch: BASE_EPOCH,
  };
  return createHash("sha256").update(JSON.stringify(inputs)).digest("hex").slice(0, 32);
}

/** The base layer from the cache when its inputs are unchanged, else built with mmdebstrap. */
export async function baseLayer(spec: BaseSpec, opts: BaseBuildOptions): Promise<BaseLayer> {
  validateSpec(spec);
  const key = baseCacheKey(spec);
  const blobPath = path.join(opts.cacheDir, `base-${key}.tar.gz`);
  const metaPath = path.join(opts.cacheDir, `base-${key}.json`);

  if (!opts.noCache) {
    const hit = await readCache(blobPath, metaPath, key);
    if (hit) {
      opts.log(`base: using cached layer ${path.relative(process.cwd(), blobPath) || blobPath}`);
      markUsed(metaPath, opts.cacheDir);
      return { ...hit, cached: true, cacheKey: key };
    }
  }

  const rootfsTar = path.join(opts.tmpDir, "rootfs.tar");
  await runMmdebstrap(spec, rootfsTar, opts);

  opts.log("base: re-packing the root deterministically");
  const entries = repack(indexTar(rootfsTar), rootfsTar, spec);
  mkdirSync(opts.cacheDir, { recursive: true });
  const partial = path.join(opts.tmpDir, "base.tar.gz");
  const blob = await writeLayer(partial, entries);
  rmSync(rootfsTar, { force: true });

  const compilers = findCompilers(blob.names);
  if (compilers.length > 0) {
    throw new BuildError(
      `the base root contains compilers or build tools, which the image must not ship: ${compilers.join(", ")}\n` +
        `remove the package that pulls them in from [image].packages`,
    );
  }

  // Publish atomically: the blob first, then the metadata that makes it a cache hit.
  renameSync(partial, blobPath);
  const meta: CacheMeta = {
    format: BASE_FORMAT,
    key,
    digest: blob.digest,
    diffId: blob.diffId,
    size: blob.size,
    tarBytes: blob.tarBytes,
    suite: spec.suite,
    packages: spec.packages,
    names: blob.names,
  };
  const metaTmp = `${metaPath}.${process.pid}.tmp`;
  writeFileSync(metaTmp, JSON.stringify(meta) + "\n");
  renameSync(metaTmp, metaPath);
  markUsed(metaPath, opts.cacheDir);
  return { ...blob, path: blobPath, cached: false, cacheKey: key };
}

/** How many base layers (distinct suites/package sets) the cache keeps, most recently used first. */
const BASE_CACHE_KEEP = 3;

/** Record that a cache entry was used now, and drop the least recently used beyond BASE_CACHE_KEEP. */
function markUsed(metaPath: string, cacheDir: string): void {
  const now = new Date();
  utimesSync(metaPath, now, now);
  const entries = readdirSync(cacheDir)
    .filter((f) => /^base-[0-9a-f]+\.json$/.test(f))
    .map((f) => ({
      stem: f.slice(0, -".json".length),
      used: statSync(path.join(cacheDir, f)).mtimeMs,
    }))
    .sort((a, b) => b.used - a.used);
  for (const { stem } of entries.slice(BASE_CACHE_KEEP)) {
    rmSync(path.join(cacheDir, `${stem}.json`), { force: true });
    rmSync(path.join(cacheDir, `${stem}.tar.gz`), { force: true });
  }
}

async function readCache(
  blobPath: string,
  metaPath: string,
  key: string,
): Promise<LayerBlob | undefined> {
  if (!existsSync(blobPath) || !existsSync(metaPath)) return undefined;
  let meta: CacheMeta;
  try {
    meta = JSON.parse(readFileSync(metaPath, "utf8")) as CacheMeta;
  } catch {
    return undefined;
  }
  if (meta.format !== BASE_FORMAT || meta.key !== key) return undefined;
  // A cache entry that does not hash to what it claims is rebuilt, never trusted.
  if ((await fileDigest(blobPath)) !== meta.digest) return undefined;
  return {
    path: blobPath,
    digest: meta.digest,
    diffId: meta.diffId,
    size: meta.size,
    tarBytes: meta.tarBytes,
    names: meta.names,
  };
}

async function runMmdebstrap(
  spec: BaseSpec,
  outTar: string,
  opts: BaseBuildOptions,
): Promise<void> {
  const asRoot = process.getuid?.() === 0;
  const mode = asRoot ? "root" : "unshare";
  const env: NodeJS.ProcessEnv = { ...process.env, SOURCE_DATE_EPOCH: String(BASE_EPOCH) };
  // The temporary chroot lives under our build tmp dir (cleaned with it). In unshare mode the
  // unshared user must reach TMPDIR, so leave the system default there.
  if (asRoot) env.TMPDIR = opts.tmpDir;
  else delete env.TMPDIR;
  const args = [
    "--variant=minbase",
    `--mode=${mode}`,
    "--format=tar",
    "--quiet",
    `--include=${spec.packages.join(",")}`,
    ...DPKG_OPTIONS.map((o) => `--dpkgopt=${o}`),
    `--customize-hook=${baseHookScript(spec)}`,
    spec.suite,
    outTar,
    ...(spec.mirror ? [spec.mirror] : []),
  ];
  opts.log(
    `base: mmdebstrap --mode=${mode} ${spec.suite} with ${spec.packages.join(", ")} (about a minute)`,
  );
  const hint = asRoot ? "" : " (unshare mode also needs: apt-get install uidmap)";
  await run("mmdebstrap", args, {
    env,
    purpose: `build the Debian ${spec.suite} base root${hint}`,
  });
}

/**
 * mmdebstrap's entries as base-layer entries: one fixed mtime, numeric ownership, modes and xattrs
 * kept, the contents of EMPTIED_DIRS and any device node dropped, hard links re-pointed so the first
 * name of each link group in archive order carries the content (the writer sorts by name).
 */
function repack(indexed: readonly IndexedEntry[], tarFile: string, spec: BaseSpec): PlannedEntry[] {
  const kept = indexed.filter(({ header: h }) => {
    if (h.name === "") return false;
    if (EMPTIED_DIRS.some((d) => h.name.startsWith(`${d}/`))) return false;
    if (h.type === "char" || h.type === "block") return false;
    return true;
  });

  const byName = new Map(kept.map((e) => [e.header.name, e]));
  // Group hard links by the entry that holds the content.
  const groups = new Map<string, string[]>();
  const holderOf = (name: string): string => {
    let cur = name;
    for (let hops = 0; hops < 64; hops++) {
      const e = byName.get(cur);
      if (!e) throw new BuildError(`base archive: hard link target ${cur} is missing`);
      if (e.header.type !== "hardlink") return cur;
      cur = e.header.linkname ?? "";
    }
    throw new BuildError(`base archive: hard link loop at ${name}`);
  };
  for (const e of kept) {
    if (e.header.type !== "hardlink") continue;
    const holder = holderOf(e.header.name);
    const group = groups.get(holder) ?? [holder];
    group.push(e.header.name);
    groups.set(holder, group);
  }
  const linkTo = new Map<string, { first: string; holder: IndexedEntry }>();
  for (const [holder, names] of groups) {
    const sortedNames = [...names].sort(compareNames);
    const holderEntry = byName.get(holder);
    const first = sortedNames[0];
    if (!holderEntry || first === undefined) continue;
    for (const n of sortedNames) linkTo.set(n, { first, holder: holderEntry });
  }

  const entries: PlannedEntry[] = kept.map(({ header: h, dataOffset }) => {
    const link = linkTo.get(h.name);
    if (link) {
      const src = link.holder.header;
      const common = { mode: src.mode, uid: src.uid, gid: src.gid, mtime: BASE_EPOCH };
      if (h.name === link.first) {
        return {
          header: { ...src, name: h.name, ...common },
          content: { kind: "file" as const, path: tarFile, offset: link.holder.dataOffset },
        };
      }
      return {
        header: {
          name: h.name,
          type: "hardlink" as const,
          ...common,
          size: 0,
          linkname: link.first,
        },
      };
    }
    const header = { ...h, mtime: BASE_EPOCH };
    return h.type === "file"
      ? { header, content: { kind: "file" as const, path: tarFile, offset: dataOffset } }
      : { header };
  });
  return [...entries, ...missingApplianceDirs(spec, new Set(kept.map((e) => e.header.name)))];
}

/**
 * The hook creates the appliance directories, but mmdebstrap's own cleanup, which runs after the
 * hooks, empties /run; add back any that did not survive, with the same owner and mode.
 */
function missingApplianceDirs(spec: BaseSpec, present: ReadonlySet<string>): PlannedEntry[] {
  const wanted = [
    ...spec.readOnlyDirs.map((d) => ({ d, uid: 0, gid: 0, mode: 0o755 })),
    ...spec.privateDirs.map((d) => ({ d, uid: spec.uid, gid: spec.gid, mode: 0o750 })),
    ...spec.sharedDirs.map((d) => ({ d, uid: spec.uid, gid: spec.gid, mode: 0o755 })),
  ];
  return wanted
    .map(({ d, uid, gid, mode }) => ({ name: d.replace(/^\/+/, ""), uid, gid, mode }))
    .filter(({ name }) => !present.has(name))
    .map(({ name, uid, gid, mode }) => ({
      header: { name, type: "dir" as const, mode, uid, gid, mtime: BASE_EPOCH, size: 0 },
    }));
}

/**
 * Directories whose contents never go into the base: device nodes (the runtime provides /dev), and
 * the apt lists, apt cache and logs that mmdebstrap's cleanup recreates after the hook removed them.
 */
const EMPTIED_DIRS = ["dev", "var/lib/apt/lists", "var/cache/apt", "var/log"];

const SAFE_PATH = /^\/[A-Za-z0-9._/-]+$/;
const SAFE_PACKAGE = /^[a-z0-9][a-z0-9+.-]*(?::[a-z0-9-]+)?$/;
const SAFE_SUITE = /^[a-z0-9][a-z0-9.-]*$/;

function safePath(p: string): string {
  if (!SAFE_PATH.test(p) || p.split("/").includes("..")) {
    throw new BuildError(
      `image path ${JSON.stringify(p)} must be absolute and use only [A-Za-z0-9._/-]`,
    );
  }
  return p;
}

function validateSpec(spec: BaseSpec): void {
  if (!SAFE_SUITE.test(spec.suite)) {
    throw new BuildError(`[image].debian_suite ${JSON.stringify(spec.suite)} is not a suite name`);
  }
  for (const p of spec.packages) {
    if (!SAFE_PACKAGE.test(p)) {
      throw new BuildError(`[image].packages: ${JSON.stringify(p)} is not a Debian package name`);
    }
  }
  if (spec.packages.length === 0) throw new BuildError("[image].packages is empty");
  if (!/^[a-z_][a-z0-9_-]*$/.test(spec.userName)) {
    throw new BuildError(`invalid image user name ${spec.userName}`);
  }
  for (const d of [...spec.readOnlyDirs, ...spec.privateDirs, ...spec.sharedDirs]) safePath(d);
}
