// The OCI image: config, manifest and index documents, and the oci-archive (an OCI image layout in
// a tar) that `podman load` and `docker load` read. Documents are canonical JSON, so their digests
// depend only on their content.
import { createHash } from "node:crypto";
import { canonicalJson } from "../../src/core/index.js";
import type { LayerBlob, PlannedEntry } from "./layer.js";
import { writeTarFile } from "./layer.js";
import { BuildError } from "./proc.js";
import { bufferEntry, dirEntry, fileEntry } from "./tree.js";

export const MEDIA_TYPES = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar+gzip",
} as const;

export interface Platform {
  readonly architecture: string;
  readonly variant?: string;
}

/** Node's process.arch → OCI (GOARCH) platform names. */
export function ociPlatform(nodeArch: string = process.arch): Platform {
  const map: Record<string, Platform> = {
    x64: { architecture: "amd64" },
    arm64: { architecture: "arm64", variant: "v8" },
    arm: { architecture: "arm", variant: "v7" },
    ia32: { architecture: "386" },
    ppc64: { architecture: "ppc64le" },
    s390x: { architecture: "s390x" },
    riscv64: { architecture: "riscv64" },
    loong64: { architecture: "loong64" },
    mips64el: { architecture: "mips64le" },
  };
  const p = map[nodeArch];
  if (!p) {
    throw new BuildError(`no OCI architecture name known for node's process.arch ${nodeArch}`);
  }
  return p;
}

export interface Blob {
  readonly digest: string;
  readonly size: number;
}

export interface JsonBlob extends Blob {
  readonly bytes: Buffer;
}

export interface NamedLayer {
  /** base, node runtime, dependencies or app. */
  readonly name: string;
  /** What produced it, for the config's history. */
  readonly createdBy: string;
  readonly blob: LayerBlob;
}

function jsonBlob(doc: unknown): JsonBlob {
  const bytes = Buffer.from(canonicalJson(doc), "utf8");
  return {
    bytes,
    digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`,
    size: bytes.length,
  };
}

/** The image configuration: platform, runtime config (rendered from the manifest), layers, history. */
export function imageConfig(
  platform: Platform,
  runtimeConfig: Record<string, unknown>,
  layers: readonly NamedLayer[],
  created: string,
): JsonBlob {
  return jsonBlob({
    architecture: platform.architecture,
    ...(platform.variant ? { variant: platform.variant } : {}),
    os: "linux",
    created,
    config: runtimeConfig,
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.blob.diffId) },
    history: layers.map((l) => ({ created, created_by: l.createdBy, comment: l.name })),
  });
}

export function imageManifest(config: Blob, layers: readonly NamedLayer[]): JsonBlob {
  return jsonBlob({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config: { mediaType: MEDIA_TYPES.config, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({
      mediaType: MEDIA_TYPES.layer,
      digest: l.blob.digest,
      size: l.blob.size,
    })),
  });
}

/**
 * index.json naming the one manifest: `org.opencontainers.image.ref.name` is the tag (OCI layout
 * convention), `io.containerd.image.name` the full reference (what containerd/docker load use).
 */
export function imageIndex(
  manifest: Blob,
  platform: Platform,
  tag: string,
  reference: string,
): JsonBlob {
  return jsonBlob({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.index,
    manifests: [
      {
        mediaType: MEDIA_TYPES.manifest,
        digest: manifest.digest,
        size: manifest.size,
        platform: {
          architecture: platform.architecture,
          os: "linux",
          ...(platform.variant ? { variant: platform.variant } : {}),
        },
        annotations: {
          "io.containerd.image.name": reference,
          "org.opencontainers.image.ref.name": tag,
        },
      },
    ],
  });
}

export interface ArchiveInput {
  readonly out: string;
  readonly mtime: number;
  readonly index: JsonBlob;
  readonly manifest: JsonBlob;
  readonly config: JsonBlob;
  readonly layers: readonly NamedLayer[];
  readonly reference: string;
}

/**
 * Write the oci-archive: oci-layout, index.json and blobs/sha256/*, plus a docker-archive style
 * manifest.json so older `docker load` versions that predate OCI layouts read it too.
 */
export async function writeOciArchive(a: ArchiveInput): Promise<{ bytes: number }> {
  const o = { mtime: a.mtime };
  const blobName = (digest: string): string => `blobs/sha256/${digest.replace(/^sha256:/, "")}`;
  const dockerManifest = [
    {
      Config: blobName(a.config.digest),
      RepoTags: [a.reference],
      Layers: a.layers.map((l) => blobName(l.blob.digest)),
    },
  ];
  const entries: PlannedEntry[] = [
    bufferEntry("oci-layout", Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" })), o),
    bufferEntry("index.json", a.index.bytes, o),
    bufferEntry("manifest.json", Buffer.from(JSON.stringify(dockerManifest)), o),
    dirEntry("blobs", o),
    dirEntry("blobs/sha256", o),
    bufferEntry(blobName(a.manifest.digest), a.manifest.bytes, o),
    bufferEntry(blobName(a.config.digest), a.config.bytes, o),
  ];
  const seen = new Set([a.manifest.digest, a.config.digest]);
  for (const l of a.layers) {
    if (seen.has(l.blob.digest)) continue; // identical layers share one blob
    seen.add(l.blob.digest);
    entries.push(fileEntry(blobName(l.blob.digest), l.blob.path, o, 0o644));
  }
  const { bytes } = await writeTarFile(a.out, entries);
  return { bytes };
}
