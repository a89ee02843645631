// The repository directory of a git.* call: resolved like process.run's cwd (confined to the
// workspace, symlinks followed only inside). A directory that does not exist is reported the way
// the git definitions describe it: not a git work tree.
import { KruxError } from "../../core/index.js";
import type { CallContext } from "../types.js";
import { capabilityError } from "../process/errors.js";
import { resolveWorkdir, type Workdir } from "../process/workdir.js";

export async function repoDir(
  ctx: CallContext,
  capability: string,
  repo: string | undefined,
): Promise<Workdir> {
  try {
    return await resolveWorkdir(ctx, capability, repo ?? ".");
  } catch (err) {
    if (err instanceof KruxError && err.data.type === "NotFound")
      throw capabilityError(
        "NotARepository",
        capability,
        `${repo ?? "."} is not a directory in the workspace, so it is not a git work tree.`,
        { path: repo ?? "." },
      );
    throw err;
  }
}
