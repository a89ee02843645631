// git.commit, git.branch, git.checkout: local changes to a workspace repository. Hooks never run
// (core.hooksPath=/dev/null, and commit also gets --no-verify); the committer is always the agent.
import type { CallContext, CapabilityHandler } from "../types.js";
import { capabilityError, invalidInput } from "../process/errors.js";
import { text } from "../process/output.js";
import {
  BAD_REVISION,
  committerEnv,
  gitFailure,
  headOf,
  runGit,
  type Classifier,
  type GitDeps,
} from "./invoke.js";
import { BRANCH_FORMAT, numstatTotals, parseBranches, type BranchEntry } from "./parse.js";
import { repoDir } from "./repo.js";
import { checkIdent, checkRefName, checkRepoPath, checkRevision } from "./validate.js";

const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

interface CommitInputs {
  repo?: string;
  message: string;
  paths?: string[];
  all?: boolean;
  allow_empty?: boolean;
  author?: { name: string; email: string };
}

const ADD_FAILURES: Classifier = [
  [/did not match any files/i, "NotFound"],
  [/outside repository|beyond a symbolic link/i, "PathOutOfScope"],
];

const COMMIT_FAILURES: Classifier = [
  [/unmerged files|unresolved conflict|fix conflicts/i, "Conflict"],
  [/nothing (added )?to commit|no changes added to commit/i, "NothingToCommit"],
];

/** The subject git records: the first line after leading blank lines (whitespace cleanup). */
function subjectOf(message: string): string {
  const lines = message.split("\n").map((l) => l.replace(/\s+$/, ""));
  return lines.find((l) => l !== "") ?? "";
}

export function createCommit(d: GitDeps): CapabilityHandler {
  const capability = "git.commit";
  return async (raw, ctx) => {
    const i = raw as CommitInputs;
    if (i.message.includes("\0"))
      throw invalidInput("/message", "The message contains a NUL byte.");
    if (i.message.trim() === "") throw invalidInput("/message", "The message is empty.");
    const committer = committerEnv(ctx.agent);
    const author = i.author
      ? {
          GIT_AUTHOR_NAME: checkIdent("/author/name", i.author.name, "name"),
          GIT_AUTHOR_EMAIL: checkIdent("/author/email", i.author.email, "email"),
        }
      : {
          GIT_AUTHOR_NAME: committer.GIT_COMMITTER_NAME ?? "",
          GIT_AUTHOR_EMAIL: committer.GIT_COMMITTER_EMAIL ?? "",
        };
    const wd = await repoDir(ctx, capability, i.repo);
    const paths = (i.paths ?? []).map((p, n) =>
      checkRepoPath(capability, `/paths/${n}`, p, wd.comps),
    );

    if (paths.length > 0) {
      const add = await runGit(d, ctx, capability, {
        args: ["add", "--all", "--", ...paths],
        cwd: wd.agentPath,
      });
      if (add.code !== 0) {
        if (/ignored by one of your \.gitignore/i.test(add.stderr))
          throw invalidInput("/paths", "A path is ignored by .gitignore; it cannot be committed.");
        throw gitFailure(capability, add, ADD_FAILURES);
      }
    }
    const commit = await runGit(d, ctx, capability, {
      args: [
        "commit",
        "--quiet",
        "--no-verify",
        "--no-gpg-sign",
        "--cleanup=whitespace",
        "--file=-",
        ...(i.all ? ["--all"] : []),
        ...(i.allow_empty ? ["--allow-empty"] : []),
      ],
      cwd: wd.agentPath,
      stdin: i.message,
      env: author,
    });
    if (commit.code !== 0) throw gitFailure(capability, commit, COMMIT_FAILURES);

    const { head, branch } = await headOf(d, ctx, capability, wd.agentPath);
    if (head === null || !SHA.test(head))
      throw capabilityError("GitFailed", capability, "The commit was made but HEAD is unreadable.");
    const stat = await runGit(d, ctx, capability, {
      args: [
        "diff-tree",
        "-r",
        "-m",
        "--first-parent",
        "--root",
        "--no-commit-id",
        "--no-renames",
        "--numstat",
        "-z",
        head,
      ],
      cwd: wd.agentPath,
    });
    const totals =
      stat.code === 0
        ? numstatTotals(text(stat.stdout))
        : { files: 0, insertions: 0, deletions: 0 };
    return {
      sha: head,
      branch,
      subject: subjectOf(i.message),
      files_changed: totals.files,
      insertions: totals.insertions,
      deletions: totals.deletions,
    };
  };
}

interface BranchInputs {
  repo?: string;
  action?: "list" | "create" | "delete";
  name?: string;
  start_point?: string;
  force?: boolean;
}

async function listBranches(
  d: GitDeps,
  ctx: CallContext,
  capability: string,
  cwd: string,
): Promise<{ current: string | null; branches: BranchEntry[] }> {
  const r = await runGit(d, ctx, capability, {
    args: ["for-each-ref", BRANCH_FORMAT, "refs/heads/"],
    cwd,
  });
  if (r.code !== 0) throw gitFailure(capability, r, []);
  const branches = parseBranches(text(r.stdout));
  const cur = branches.find((b) => b.current);
  // No branch marked: HEAD is detached, or names a branch without commits yet.
  const current = cur ? cur.name : (await headOf(d, ctx, capability, cwd)).branch;
  return { current, branches };
}

const CREATE_FAILURES: Classifier = [
  [/already exists/i, "AlreadyExists"],
  [/cannot force update the (current )?branch|used by worktree|checked out at/i, "Conflict"],
  ...BAD_REVISION,
];

const DELETE_FAILURES: Classifier = [
  [/not fully merged/i, "NotMerged"],
  [/cannot delete (the )?branch .*(checked out|currently on)|used by worktree/i, "Conflict"],
  [/branch '.*' not found/i, "NotFound"],
];

export function createBranch(d: GitDeps): CapabilityHandler {
  const capability = "git.branch";
  return async (raw, ctx) => {
    const i = raw as BranchInputs;
    const action = i.action ?? "list";
    let name: string | undefined;
    let start: string | undefined;
    if (action !== "list") {
      if (i.name === undefined) throw invalidInput("/name", `name is required to ${action}.`);
      name = checkRefName(capability, "name", i.name);
      if (i.start_point !== undefined) {
        if (action !== "create")
          throw invalidInput("/start_point", "start_point is only for create.");
        start = checkRevision(capability, "start_point", i.start_point);
      }
    }
    const wd = await repoDir(ctx, capability, i.repo);
    const cwd = wd.agentPath;
    if (action === "list" || name === undefined) return listBranches(d, ctx, capability, cwd);

    if (action === "create") {
      const r = await runGit(d, ctx, capability, {
        args: [
          "branch",
          ...(i.force ? ["--force"] : []),
          "--end-of-options",
          name,
          ...(start === undefined ? [] : [start]),
        ],
        cwd,
      });
      if (r.code !== 0) throw gitFailure(capability, r, CREATE_FAILURES, { name });
      const after = await listBranches(d, ctx, capability, cwd);
      const made = after.branches.find((b) => b.name === name);
      return {
        ...after,
        changed: { action: "create", name, sha: made?.sha ?? "" },
      };
    }

    const before = await listBranches(d, ctx, capability, cwd);
    const gone = before.branches.find((b) => b.name === name);
    if (!gone)
      throw capabilityError("NotFound", capability, `There is no local branch ${name}.`, {
        name,
        recovery: [
          { action: "check_state", description: "List branches with git.branch {action: list}." },
        ],
      });
    const r = await runGit(d, ctx, capability, {
      args: ["branch", i.force ? "-D" : "-d", "--end-of-options", name],
      cwd,
    });
    if (r.code !== 0) throw gitFailure(capability, r, DELETE_FAILURES, { name });
    return {
      current: before.current,
      branches: before.branches.filter((b) => b.name !== name),
      changed: { action: "delete", name, sha: gone.sha },
    };
  };
}

interface CheckoutInputs {
  repo?: string;
  ref: string;
  create_branch?: boolean;
  start_point?: string;
  force?: boolean;
}

const CHECKOUT_FAILURES: Classifier = [
  [/already exists/i, "AlreadyExists"],
  [/would be overwritten|resolve your current index|unmerged|you have local changes/i, "Conflict"],
  [/did not match any file|is not a commit|cannot be resolved to branch/i, "InvalidRef"],
  ...BAD_REVISION,
];

export function createCheckout(d: GitDeps): CapabilityHandler {
  const capability = "git.checkout";
  return async (raw, ctx) => {
    const i = raw as CheckoutInputs;
    const create = i.create_branch === true;
    const ref = create
      ? checkRefName(capability, "ref", i.ref)
      : checkRevision(capability, "ref", i.ref);
    let start: string | undefined;
    if (i.start_point !== undefined) {
      if (!create)
        throw invalidInput("/start_point", "start_point is only used with create_branch.");
      start = checkRevision(capability, "start_point", i.start_point);
    }
    const wd = await repoDir(ctx, capability, i.repo);
    // `--` ends the revisions: nothing after -b/ref can be read as a path (and vice versa).
    const args = create
      ? ["checkout", ...(i.force ? ["--force"] : []), "-b", ref, ...(start ? [start] : []), "--"]
      : ["checkout", ...(i.force ? ["--force"] : []), ref, "--"];
    const r = await runGit(d, ctx, capability, { args, cwd: wd.agentPath, wallMs: 120_000 });
    if (r.code !== 0) throw gitFailure(capability, r, CHECKOUT_FAILURES, { ref });
    const { head, branch } = await headOf(d, ctx, capability, wd.agentPath);
    return { branch, head: head ?? "", detached: branch === null };
  };
}
