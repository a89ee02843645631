// git.log, git.status, git.diff: read-only views of a workspace repository, parsed from git's
// machine-readable formats.
import type { CapabilityHandler } from "../types.js";
import { invalidInput } from "../process/errors.js";
import { headBytes, text } from "../process/output.js";
import { BAD_REVISION, gitFailure, headOf, runGit, type GitDeps } from "./invoke.js";
import { LOG_FORMAT, parseLog, parseRawNumstat, parseStatus } from "./parse.js";
import { repoDir } from "./repo.js";
import { checkRepoPath, checkRevision, checkRevisionRange } from "./validate.js";

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

function checkPaths(
  capability: string,
  paths: readonly string[] | undefined,
  repoComps: readonly string[],
): string[] {
  return (paths ?? []).map((p, i) => checkRepoPath(capability, `/paths/${i}`, p, repoComps));
}

interface LogInputs {
  repo?: string;
  ref?: string;
  paths?: string[];
  since?: string;
  max_count?: number;
  skip?: number;
}

export function createLog(d: GitDeps): CapabilityHandler {
  const capability = "git.log";
  return async (raw, ctx) => {
    const i = raw as LogInputs;
    const ref = checkRevisionRange(capability, "ref", i.ref ?? "HEAD");
    const max = i.max_count ?? 20;
    const skip = i.skip ?? 0;
    let maxAge: number | undefined;
    if (i.since !== undefined) {
      const t = Date.parse(i.since);
      if (!RFC3339.test(i.since) || Number.isNaN(t))
        throw invalidInput("/since", "since must be an RFC 3339 date-time.");
      // As a Unix time: git's date parser silently ignores dates it cannot read (years >= 2100),
      // which would answer the whole history instead of none of it.
      maxAge = Math.max(0, Math.ceil(t / 1000));
    }
    const wd = await repoDir(ctx, capability, i.repo);
    const paths = checkPaths(capability, i.paths, wd.comps);
    const r = await runGit(d, ctx, capability, {
      args: [
        "log",
        "-z",
        LOG_FORMAT,
        "--no-color",
        "--no-show-signature",
        `--max-count=${max + 1}`,
        `--skip=${skip}`,
        ...(maxAge === undefined ? [] : [`--max-age=${maxAge}`]),
        "--end-of-options",
        ref,
        "--",
        ...paths,
      ],
      cwd: wd.agentPath,
    });
    if (r.code !== 0) {
      // A repository without commits has no history yet: that is an empty answer, not an error.
      if (ref === "HEAD" && (await headOf(d, ctx, capability, wd.agentPath)).head === null)
        return { commits: [], truncated: false };
      throw gitFailure(capability, r, BAD_REVISION, { ref });
    }
    const { commits, complete } = parseLog(text(r.stdout));
    return {
      commits: commits.slice(0, max),
      truncated: commits.length > max || !complete || r.truncated,
    };
  };
}

interface StatusInputs {
  repo?: string;
  include_untracked?: boolean;
  max_entries?: number;
}

export function createStatus(d: GitDeps): CapabilityHandler {
  const capability = "git.status";
  return async (raw, ctx) => {
    const i = raw as StatusInputs;
    const max = i.max_entries ?? 1000;
    const wd = await repoDir(ctx, capability, i.repo);
    const r = await runGit(d, ctx, capability, {
      args: [
        "status",
        "--porcelain=v2",
        "-z",
        "--branch",
        "--renames",
        "--ignored=no",
        `--untracked-files=${i.include_untracked === false ? "no" : "all"}`,
      ],
      cwd: wd.agentPath,
    });
    if (r.code !== 0) throw gitFailure(capability, r, []);
    const st = parseStatus(text(r.stdout));
    const complete = st.complete && !r.truncated;
    return {
      branch: st.branch,
      head: st.head,
      upstream: st.upstream,
      ahead: st.ahead,
      behind: st.behind,
      clean: st.entries.length === 0 && complete,
      entries: st.entries.slice(0, max),
      truncated: st.entries.length > max || !complete,
    };
  };
}

interface DiffInputs {
  repo?: string;
  from?: string;
  to?: string;
  staged?: boolean;
  paths?: string[];
  context_lines?: number;
  stat_only?: boolean;
  max_bytes?: number;
}

export function createDiff(d: GitDeps): CapabilityHandler {
  const capability = "git.diff";
  return async (raw, ctx) => {
    const i = raw as DiffInputs;
    if (i.to !== undefined && i.from === undefined) throw invalidInput("/to", "to requires from.");
    const revs: string[] = [];
    if (i.from !== undefined) revs.push(checkRevision(capability, "from", i.from));
    if (i.to !== undefined) revs.push(checkRevision(capability, "to", i.to));
    const mode = revs.length === 0 && i.staged ? ["--cached"] : [];
    const maxBytes = i.max_bytes ?? 262144;
    const context = i.context_lines ?? 3;
    const wd = await repoDir(ctx, capability, i.repo);
    const paths = checkPaths(capability, i.paths, wd.comps);
    const tail = ["--end-of-options", ...revs, "--", ...paths];
    const common = ["--no-color", "--no-ext-diff", "--no-textconv", "-M"];

    const sum = await runGit(d, ctx, capability, {
      args: ["diff", ...mode, "--raw", "--numstat", "-z", ...common, ...tail],
      cwd: wd.agentPath,
    });
    if (sum.code !== 0) throw gitFailure(capability, sum, BAD_REVISION);
    const { files } = parseRawNumstat(text(sum.stdout));
    if (i.stat_only) return { diff: "", files, truncated: sum.truncated };

    const patch = await runGit(d, ctx, capability, {
      args: ["diff", ...mode, "--patch", `--unified=${context}`, ...common, ...tail],
      cwd: wd.agentPath,
      // One byte more than asked, to tell "exactly max_bytes" from "cut".
      outputBytes: maxBytes + 1,
      outputLimitIsTruncation: true,
    });
    if (patch.code !== 0 && !patch.truncated) throw gitFailure(capability, patch, BAD_REVISION);
    const cut = patch.stdout.length > maxBytes;
    return {
      diff: text(headBytes(patch.stdout, maxBytes)),
      files,
      truncated: cut || patch.truncated || sum.truncated,
    };
  };
}
