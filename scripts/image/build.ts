// buildImage: the appliance OCI image without Nix. Named steps, in order:
//   1. manifest      load and validate kruxos.toml; render supervisord.conf and the OCI config
//   2. base          Debian minbase + [image].packages + image user + directories (mmdebstrap, cached)
//   3. node-runtime  this node binary as /usr/local/bin/node
//   4. dependencies  production node_modules under <app>/node_modules
//   5. app           compiled app, schemas, config assets, launcher, helper; baked manifest + config
//   6. checks        no compiler or build tool anywhere in the image
//   7. archive       OCI image layout as an oci-archive tar
//   8. load          podman load + tag (optional)
// Layers 2–4 carry a constant mtime so they stay identical across commits; the app layer and the
// `created` time use the build epoch (SOURCE_DATE_EPOCH, else HEAD's commit time, else 0).
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmSync,
} from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createHash } from "node:crypto";
import { loadManifest, ociConfig, renderSupervisordConf } from "../../src/config/index.js";
import type { LoadedManifest } from "../../src/config/index.js";
import { appEntries, nodeRuntimeEntries } from "./app.js";
import { BASE_EPOCH, baseLayer, DEBIAN_MIRROR } from "./base.js";
import { findCompilers } from "./checks.js";
import { dependencyEntries, productionPackages } from "./deps.js";
import { writeLayer, writeLayerCached, type CachedLayerBlob } from "./layer.js";
import {
  imageConfig,
  imageIndex,
  imageManifest,
  ociPlatform,
  writeOciArchive,
  type NamedLayer,
} from "./oci.js";
import { loadIntoPodman } from "./podman.js";
import { BuildError, haveCommand, run } from "./proc.js";

export { BuildError } from "./proc.js";

/** Name of the unprivileged account created for [image].user. */
export const IMAGE_USER_NAME = "kruxos";

export interface BuildOptions {
  /** Manifest to build from; default `<repo>/kruxos.toml`. */
  readonly manifestPath?: string;
  /** Archive to write; default `<repo>/.kruxos-build/kruxos-<tag>.oci.tar`. */
  readonly out?: string;
  /** `podman load` and tag the result (default true). */
  readonly load?: boolean;
  /** Rebuild the base layer even when a cached one matches (default false). */
  readonly noCache?: boolean;
  /** Build epoch (seconds); default SOURCE_DATE_EPOCH, else HEAD's commit time, else 0. */
  readonly epoch?: number;
  /** Fail when native/build/kruxos-sandbox is missing instead of warning (default false). */
  readonly requireHelper?: boolean;
  /** Repository root; default the one this module was compiled into. */
  readonly repoRoot?: string;
  /** Progress lines; default stderr. */
  readonly log?: (line: string) => void;
}

export type LayerName = "base" | "node-runtime" | "dependencies" | "app";

export interface LayerSummary {
  readonly name: LayerName;
  /** sha256 of the compressed layer blob. */
  readonly digest: string;
  /** sha256 of the uncompressed layer tar. */
  readonly diffId: string;
  /** Compressed size in bytes. */
  readonly size: number;
}

export interface BuildResult {
  /** `<[image].name>:<[image].tag>`. */
  readonly reference: string;
  readonly archivePath: string;
  readonly archiveBytes: number;
  /** Image size as podman reports it; present when the image was loaded. */
  readonly imageBytes?: number;
  /** Config digest, which is podman's image id. */
  readonly imageId: string;
  /** Digest of the image manifest. */
  readonly manifestDigest: string;
  readonly layers: readonly LayerSummary[];
  readonly appLayerDigest: string;
  readonly epoch: number;
  readonly baseCached: boolean;
  readonly helperIncluded: boolean;
  readonly loaded: boolean;
  /** Milliseconds per step. */
  readonly timingsMs: Readonly<Record<string, number>>;
}

export async function buildImage(opts: BuildOptions = {}): Promise<BuildResult> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const repoRoot = path.resolve(opts.repoRoot ?? defaultRepoRoot());
  const buildDir = path.join(repoRoot, ".kruxos-build");
  const cacheDir = path.join(buildDir, "cache");
  const load = opts.load ?? true;
  const timings: Record<string, number> = {};
  const step = async <T>(name: string, fn: () => Promise<T> | T): Promise<T> => {
    const started = performance.now();
    try {
      return await fn();
    } finally {
      timings[name] = Math.round(performance.now() - started);
    }
  };

  // 1. manifest
  const manifestPath = path.resolve(opts.manifestPath ?? path.join(repoRoot, "kruxos.toml"));
  const loaded = await step("manifest", () => readManifest(manifestPath));
  const m = loaded.manifest;
  const reference = `${m.image.name}:${m.image.tag}`;
  const out = path.resolve(opts.out ?? path.join(buildDir, `kruxos-${m.image.tag}.oci.tar`));
  const manifestBytes = readFileSync(manifestPath);
  if (sha256Hex(manifestBytes) !== loaded.sha256) {
    throw new BuildError(`${manifestPath} changed while loading it`);
  }
  const [uid, gid] = parseImageUser(m.image.user);
  const epoch = await resolveEpoch(repoRoot, opts.epoch);
  const created = new Date(epoch * 1000).toISOString();
  const platform = ociPlatform();
  log(`image: ${reference} from ${manifestPath} (epoch ${epoch}, ${created})`);

  // Fail before the long steps when a needed tool is missing.
  if (load && !(await haveCommand("podman"))) {
    throw new BuildError(
      "podman is not installed (needed to load the image); install it with: apt-get install podman runc, or pass --no-load",
    );
  }

  mkdirSync(path.join(buildDir, "tmp"), { recursive: true });
  mkdirSync(cacheDir, { recursive: true });
  const tmpDir = mkdtempSync(path.join(buildDir, "tmp", "build-"));
  const partialArchive = `${out}.partial-${process.pid}`;
  const stopOnSignal = cleanupOnSignal(() => {
    removeTree(tmpDir, log);
    rmSync(partialArchive, { force: true });
  });
  try {
    // 2. base
    const base = await step("base", () =>
      baseLayer(
        {
          suite: m.image.debian_suite,
          packages: m.image.packages,
          uid,
          gid,
          userName: IMAGE_USER_NAME,
          readOnlyDirs: [m.paths.app, m.paths.etc],
          privateDirs: [m.paths.data, m.paths.workspace],
          sharedDirs: [m.paths.run],
          ...(DEBIAN_MIRROR ? { mirror: DEBIAN_MIRROR } : {}),
          arch: platform.architecture,
        },
        { cacheDir, tmpDir, noCache: opts.noCache ?? false, log },
      ),
    );
    log(`base: ${base.digest} (${mib(base.size)} compressed${base.cached ? ", cached" : ""})`);

    // 3. node-runtime
    const nodeBinary = realpathSync(process.execPath);
    const runtime = await step("node-runtime", () =>
      writeLayerCached(
        "node-runtime",
        nodeRuntimeEntries(nodeBinary, BASE_EPOCH),
        cacheDir,
        tmpDir,
      ),
    );
    log(
      `node-runtime: ${nodeBinary} ${process.version} → /usr/local/bin/node, ${runtime.digest}${cachedNote(runtime)}`,
    );

    // 4. dependencies
    const deps = await step("dependencies", async () => {
      const packages = await productionPackages(repoRoot);
      const blob = await writeLayerCached(
        "dependencies",
        dependencyEntries(repoRoot, packages, m.paths.app, BASE_EPOCH),
        cacheDir,
        tmpDir,
      );
      log(
        `dependencies: ${packages.length} production packages, ${blob.digest} (${mib(blob.size)})${cachedNote(blob)}`,
      );
      return blob;
    });

    // 5. app
    const app = await step("app", async () => {
      const plan = appEntries({
        repoRoot,
        appDir: m.paths.app,
        etcDir: m.paths.etc,
        manifest: manifestBytes,
        supervisordConf: renderSupervisordConf(m, loaded.sha256),
        mtime: epoch,
        requireHelper: opts.requireHelper ?? false,
        warn: log,
      });
      const blob = await writeLayer(path.join(tmpDir, "app.tar.gz"), plan.entries);
      log(`app: ${blob.digest} (${mib(blob.size)})`);
      return { blob, helperIncluded: plan.helperIncluded };
    });

    const layers: NamedLayer[] = [
      {
        name: "base",
        createdBy: baseCreatedBy(m.image.debian_suite, m.image.packages),
        blob: base,
      },
      {
        name: "node-runtime",
        createdBy: `node ${process.version} → /usr/local/bin/node`,
        blob: runtime,
      },
      {
        name: "dependencies",
        createdBy: `npm ls --omit=dev → ${m.paths.app}/node_modules`,
        blob: deps,
      },
      { name: "app", createdBy: `kruxos app → ${m.paths.app}, ${m.paths.etc}`, blob: app.blob },
    ];

    // 6. checks
    await step("checks", () => assertNoCompilers(layers));

    // 7. archive
    const config = imageConfig(platform, ociConfig(m, loaded.sha256), layers, created);
    const manifest = imageManifest(config, layers);
    const index = imageIndex(manifest, platform, m.image.tag, reference);
    mkdirSync(path.dirname(out), { recursive: true });
    const archive = await step("archive", async () => {
      const written = await writeOciArchive({
        out: partialArchive,
        mtime: epoch,
        index,
        manifest,
        config,
        layers,
        reference,
      });
      renameSync(partialArchive, out);
      return written;
    });
    log(`archive: ${out} (${mib(archive.bytes)})`);

    // 8. load
    let imageBytes: number | undefined;
    if (load) {
      const result = await step("load", () => loadIntoPodman(out, reference, config.digest));
      imageBytes = result.imageBytes;
      log(`load: podman has ${reference} (${mib(imageBytes)})`);
      if (result.replacedImageId) {
        log(
          `load: removed the previous, now untagged ${reference} image ${result.replacedImageId.slice(0, 12)}`,
        );
      }
    }

    const summary = layers.map((l) => ({
      name: l.name as LayerName,
      digest: l.blob.digest,
      diffId: l.blob.diffId,
      size: l.blob.size,
    }));
    return {
      reference,
      archivePath: out,
      archiveBytes: archive.bytes,
      ...(imageBytes !== undefined ? { imageBytes } : {}),
      imageId: config.digest,
      manifestDigest: manifest.digest,
      layers: summary,
      appLayerDigest: app.blob.digest,
      epoch,
      baseCached: base.cached,
      helperIncluded: app.helperIncluded,
      loaded: load,
      timingsMs: timings,
    };
  } finally {
    stopOnSignal();
    rmSync(partialArchive, { force: true });
    removeTree(tmpDir, log);
    removeIfEmpty(path.join(buildDir, "tmp"));
  }
}

function defaultRepoRoot(): string {
  // This file runs as dist/scripts/image/build.js.
  const root = fileURLToPath(new URL("../../..", import.meta.url));
  if (!existsSync(path.join(root, "package.json"))) {
    throw new BuildError(`cannot find the repository root (looked in ${root}); pass repoRoot`);
  }
  return root;
}

function readManifest(file: string): LoadedManifest {
  try {
    return loadManifest(file);
  } catch (err) {
    throw new BuildError((err as Error).message);
  }
}

/** "1000:1000" → [1000, 1000]; "1000" → [1000, 1000]. */
export function parseImageUser(user: string): [number, number] {
  const match = /^(\d+)(?::(\d+))?$/.exec(user);
  if (!match) {
    throw new BuildError(`[image].user must be numeric "uid:gid", got ${JSON.stringify(user)}`);
  }
  const uid = Number(match[1]);
  const gid = Number(match[2] ?? match[1]);
  if (uid === 0 || gid === 0) throw new BuildError("[image].user must not be root");
  return [uid, gid];
}

/** The build epoch: explicit, else SOURCE_DATE_EPOCH, else HEAD's commit time, else 0. */
export async function resolveEpoch(repoRoot: string, explicit?: number): Promise<number> {
  const check = (value: number, from: string): number => {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new BuildError(`${from} must be a non-negative integer, got ${value}`);
    }
    return value;
  };
  if (explicit !== undefined) return check(explicit, "epoch");
  const env = process.env.SOURCE_DATE_EPOCH;
  if (env !== undefined && env.trim() !== "") return check(Number(env), "SOURCE_DATE_EPOCH");
  try {
    const { stdout } = await run("git", ["-C", repoRoot, "log", "-1", "--format=%ct"], {
      purpose: "read the commit time of HEAD",
    });
    const value = Number(stdout.trim());
    return stdout.trim() === "" ? 0 : check(value, "git commit time");
  } catch {
    return 0; // not a git checkout (or no git): a fixed epoch is still reproducible
  }
}

function assertNoCompilers(layers: readonly NamedLayer[]): void {
  const found: string[] = [];
  for (const l of layers)
    found.push(...findCompilers(l.blob.names).map((n) => `${n} (${l.name} layer)`));
  if (found.length > 0) {
    throw new BuildError(
      `the image must not contain compilers or build tools, found: ${found.join(", ")}`,
    );
  }
}

function baseCreatedBy(suite: string, packages: readonly string[]): string {
  return `mmdebstrap --variant=minbase ${suite} --include=${packages.join(",")} + kruxos user and directories`;
}

/** Remove a build temp dir, but never across a mount point (an interrupted mmdebstrap may leave one). */
function removeTree(dir: string, log: (line: string) => void): void {
  if (!existsSync(dir)) return;
  const mounts = mountsUnder(dir);
  if (mounts.length > 0) {
    log(`warning: not removing ${dir}: still mounted: ${mounts.join(", ")}`);
    return;
  }
  rmSync(dir, { recursive: true, force: true });
}

function mountsUnder(dir: string): string[] {
  let info: string;
  try {
    info = readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return [];
  }
  const prefix = realpathSync(dir) + "/";
  return info
    .split("\n")
    .map((line) => (line.split(" ")[4] ?? "").replace(/\\040/g, " "))
    .filter((mountPoint) => mountPoint.startsWith(prefix));
}

function removeIfEmpty(dir: string): void {
  try {
    if (readdirSync(dir).length === 0) rmSync(dir, { recursive: true });
  } catch {
    // already gone, or another build is using it
  }
}

/** While a build runs, SIGINT/SIGTERM clean up first and then take their default action. */
function cleanupOnSignal(cleanup: () => void): () => void {
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM"];
  const handler = (signal: NodeJS.Signals): void => {
    remove();
    cleanup();
    process.kill(process.pid, signal);
  };
  const remove = (): void => {
    for (const s of signals) process.removeListener(s, handler);
  };
  for (const s of signals) process.once(s, handler);
  return remove;
}

function sha256Hex(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

function cachedNote(blob: CachedLayerBlob): string {
  return blob.cached ? ", cached" : "";
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}
