// Loading the archive into podman's local store under the manifest's name and tag.
import { BuildError, run } from "./proc.js";

export interface LoadResult {
  /** Image size as podman reports it (uncompressed, all layers). */
  readonly imageBytes: number;
  /** podman's image id (the config digest, hex). */
  readonly imageId: string;
  /** The image that held the reference before, removed because nothing else used it. */
  readonly replacedImageId?: string;
}

/**
 * `podman load` the archive, tag the loaded image `reference`, read back its id and size, and remove
 * the image that held the reference before when it is left untagged and unused.
 */
export async function loadIntoPodman(
  archive: string,
  reference: string,
  configDigest: string,
): Promise<LoadResult> {
  const expectedId = configDigest.replace(/^sha256:/, "");
  const previousId = await imageId(reference);
  const loaded = await run("podman", ["load", "--quiet", "--input", archive], {
    purpose: "load the image archive",
  });
  // podman names the image from the archive's annotations; tagging by id is exact either way.
  await run("podman", ["tag", expectedId, reference], {
    purpose: `tag the loaded image as ${reference}`,
  });
  const { stdout } = await run(
    "podman",
    ["image", "inspect", "--format", "{{.Id}} {{.Size}}", reference],
    { purpose: `inspect ${reference}` },
  );
  const [id = "", size = ""] = stdout.trim().split(/\s+/);
  if (id !== expectedId) {
    throw new BuildError(
      `podman has ${reference} as image ${id}, expected ${expectedId} (load said: ${loaded.stdout.trim()})`,
    );
  }
  const imageBytes = Number(size);
  if (!Number.isFinite(imageBytes)) {
    throw new BuildError(`podman reported an unreadable image size: ${size}`);
  }
  const replaced = previousId && previousId !== id && (await removeIfDangling(previousId));
  return { imageBytes, imageId: id, ...(replaced ? { replacedImageId: previousId } : {}) };
}

async function imageId(reference: string): Promise<string | undefined> {
  try {
    const { stdout } = await run("podman", ["image", "inspect", "--format", "{{.Id}}", reference], {
      purpose: `look up ${reference}`,
    });
    return stdout.trim() || undefined;
  } catch {
    return undefined; // not present yet
  }
}

/** Remove an image that has no names left; podman refuses (and we keep it) if a container uses it. */
async function removeIfDangling(id: string): Promise<boolean> {
  try {
    const { stdout } = await run(
      "podman",
      ["image", "inspect", "--format", "{{len .RepoTags}}", id],
      {
        purpose: `inspect image ${id}`,
      },
    );
    if (stdout.trim() !== "0") return false;
    await run("podman", ["image", "rm", id], { purpose: `remove the replaced image ${id}` });
    return true;
  } catch {
    return false;
  }
}
