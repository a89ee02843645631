// Loading the archive into podman's local store under the manifest's name and tag.
import { BuildError, run } from "./proc.js";

export interface LoadResult {
  /** Image size as podman reports it (uncompressed, all layers). */
  readonly imageBytes: number;
  /** podman's image id (the config digest, hex). */
  readonly imageId: string;
}

/** `podman load` the archive, tag the loaded image `reference`, and read back its id and size. */
export async function loadIntoPodman(archive: string, reference: string, configDigest: string): Promise<LoadResult> {
  const loaded = await run("podman", ["load", "--quiet", "--input", archive], { purpose: "load the image archive" });
  const expectedId = configDigest.replace(/^sha256:/, "");
  // podman names the image from the archive's annotations; tagging by id is exact either way.
  await run("podman", ["tag", expectedId, reference], { purpose: `tag the loaded image as ${reference}` });
  const { stdout } = await run("podman", ["image", "inspect", "--format", "{{.Id}} {{.Size}}", reference], {
    purpose: `inspect ${reference}`,
  });
  const [id = "", size = ""] = stdout.trim().split(/\s+/);
  if (id !== expectedId) {
    throw new BuildError(
      `podman has ${reference} as image ${id}, expected ${expectedId} (load said: ${loaded.stdout.trim()})`,
    );
  }
  const imageBytes = Number(size);
  if (!Number.isFinite(imageBytes)) throw new BuildError(`podman reported an unreadable image size: ${size}`);
  return { imageBytes, imageId: id };
}
