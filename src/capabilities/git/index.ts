// capabilities/git: the seven git.* handlers. It owns what reaches git's command line — validated
// refs and revisions, `--`-separated literal paths, https-only clone URLs — the pinned prelude and
// environment that keep a repository's configuration from running hooks, monitors, pagers, editors
// or other transports, and the parsing of git's machine-readable output. Every git command runs in
// the sandbox through the Launcher it is handed; it does not sandbox, resolve secrets (clone
// credentials are refused with SecretDenied), or decide egress (the proxy does).
import type { Launcher } from "../ports/index.js";
import type { CapabilityHandler } from "../types.js";
import { createClone } from "./clone.js";
import type { GitDeps } from "./invoke.js";
import { createDiff, createLog, createStatus } from "./read.js";
import { createBranch, createCheckout, createCommit } from "./write.js";

export { GIT_CONFIG_OVERRIDES, GIT_ENV, gitPrelude } from "./invoke.js";
export { refNameProblem, revisionProblem } from "./validate.js";

export interface GitHandlerOptions {
  readonly launcher: Launcher;
  /** git as the sandbox finds it (argv[0]); default "git" from the sandbox PATH. */
  readonly gitPath?: string;
}

/** git.log|diff|status|commit|branch|checkout|clone, keyed by capability name. */
export function createGitHandlers(deps: GitHandlerOptions): Record<string, CapabilityHandler> {
  const d: GitDeps = { launcher: deps.launcher, gitPath: deps.gitPath ?? "git" };
  return {
    "git.log": createLog(d),
    "git.diff": createDiff(d),
    "git.status": createStatus(d),
    "git.commit": createCommit(d),
    "git.branch": createBranch(d),
    "git.checkout": createCheckout(d),
    "git.clone": createClone(d),
  };
}
