// Working directories of sandboxed runs (process.run cwd, git.* repo): the agent's path is resolved
// with the filesystem capabilities' confinement code — lexically first (no `..` above the root, no
// absolute path outside /workspace), then component by component through directory descriptors,
// following symlinks only while they stay inside — and handed to the launcher as the *resolved*
// path under /workspace. The sandbox resolves that path again inside its own mount namespace, where
// /workspace is the only writable tree: a symlink swapped in between our check and its use can only
// name something the sandbox can already see (the workspace, or read-only system directories), so
// the remaining race cannot reach host paths.
import { KruxError } from "../../core/index.js";
import { openDir, openWorkspace, type Workspace } from "../filesystem/confine.js";
import { displayOf, parseAgentPath } from "../filesystem/paths.js";
import { AGENT_WORKSPACE, type CallContext } from "../types.js";
import { capabilityError } from "./errors.js";

export interface Workdir {
  /** The directory as the sandbox sees it: `/workspace` or `/workspace/<real path>`. */
  readonly agentPath: string;
  /** Workspace-relative real path ("." for the root). */
  readonly display: string;
  /** Real components relative to the workspace root. */
  readonly comps: readonly string[];
}

export function agentPathOf(comps: readonly string[]): string {
  return comps.length === 0 ? AGENT_WORKSPACE : `${AGENT_WORKSPACE}/${comps.join("/")}`;
}

/**
 * Resolve an existing directory for `capability`. Throws PathOutOfScope (escapes) or NotFound
 * (missing, or not a directory).
 */
export async function resolveWorkdir(
  ctx: CallContext,
  capability: string,
  input: string | undefined,
): Promise<Workdir> {
  const ws = await openWorkspace(ctx, capability);
  return resolveIn(ws, input ?? ".");
}

export async function resolveIn(ws: Workspace, input: string): Promise<Workdir> {
  const ap = parseAgentPath(input, ws.capability);
  let dir;
  try {
    dir = await openDir(ws, ap.comps, ap.display);
  } catch (err) {
    // The definitions document a missing or non-directory cwd/repo as NotFound.
    if (err instanceof KruxError && err.data.type === "NotADirectory")
      throw capabilityError("NotFound", ws.capability, `${ap.display} is not a directory.`, {
        path: ap.display,
      });
    throw err;
  }
  try {
    await dir.assertInside(ap.display);
    return { agentPath: agentPathOf(dir.comps), display: displayOf(dir.comps), comps: dir.comps };
  } finally {
    await dir.close();
  }
}
