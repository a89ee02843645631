// Running git. Every invocation goes through the Launcher (the kernel sandbox in the appliance) with
// the same prelude of `-c` overrides and the same pinned environment, so that a repository's own
// configuration cannot make git run code or reach the network on its own:
//
//  - hooks: core.hooksPath=/dev/null (no hook runs, whatever .git/hooks holds);
//  - core.fsmonitor=false (a repo could name a command there), core.sshCommand=false,
//    core.askPass= and GIT_ASKPASS= / SSH_ASKPASS= (no prompt helpers), credential.helper= (none),
//    core.pager=cat / --no-pager, core.editor=false, sequence.editor=false;
//  - transports: protocol.allow=never + protocol.https.allow=always on the command line, and
//    GIT_ALLOW_PROTOCOL=https in the environment, which — unlike -c — also overrides a repository's
//    own protocol.<name>.allow (think of a promisor remote `ext::sh -c …` fetched lazily);
//  - no system or global config (GIT_CONFIG_NOSYSTEM, GIT_CONFIG_GLOBAL=/dev/null), no terminal
//    prompts, no optional index locks, literal pathspecs, signing and auto-gc off, no colour;
//  - diffs are asked for with --no-ext-diff --no-textconv, logs with --no-show-signature.
//
// What cannot be switched off wholesale: filter drivers (`filter.<name>.clean/smudge/process`) and
// diff/merge drivers a repository's .git/config defines and its .gitattributes selects, and aliases
// (never used: only built-in subcommands are run). .git/config is mandatory-deny for filesystem.*
// writes, but a cloned repository, or one changed by process.run, can still carry such settings and
// git honours them when it reads the repository. That is contained, not prevented: git runs in the
// same sandbox as process.run — no network (except clone, through the egress proxy), the workspace
// as the only writable tree — so a filter can do nothing an agent's own process.run could not.
import { identityOf, type Launcher, type SandboxResult } from "../ports/index.js";
import type { CallContext } from "../types.js";
import { capabilityError, type SandboxedErrorType } from "../process/errors.js";
import { cutChars, limitError, text } from "../process/output.js";

/** `-c` overrides on every git command line, in this order. */
export const GIT_CONFIG_OVERRIDES: readonly string[] = [
  "core.hooksPath=/dev/null",
  "core.fsmonitor=false",
  "protocol.allow=never",
  "protocol.https.allow=always",
  "credential.helper=",
  "core.sshCommand=false",
  "safe.directory=*",
  "advice.detachedHead=false",
  "core.askPass=",
  // Send the per-call proxy credential up front instead of after a 407 (one audit record, not two).
  "http.proxyAuthMethod=basic",
  "core.pager=cat",
  "core.editor=false",
  "sequence.editor=false",
  "color.ui=false",
  "commit.gpgSign=false",
  "tag.gpgSign=false",
  "log.showSignature=false",
  "gc.auto=0",
  "maintenance.auto=false",
  "submodule.recurse=false",
  "core.protectHFS=true",
  "core.protectNTFS=true",
  "i18n.logOutputEncoding=UTF-8",
];

/** The argv before the subcommand: git, each override as `-c k=v`, then --no-pager. */
export function gitPrelude(gitPath: string): string[] {
  return [gitPath, ...GIT_CONFIG_OVERRIDES.flatMap((kv) => ["-c", kv]), "--no-pager"];
}

/** The environment of every git run (on top of the launcher's safelist). */
export const GIT_ENV: Readonly<Record<string, string>> = Object.freeze({
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_CONFIG_COUNT: "0",
  GIT_TERMINAL_PROMPT: "0",
  GIT_OPTIONAL_LOCKS: "0",
  GIT_ASKPASS: "",
  SSH_ASKPASS: "",
  GIT_ALLOW_PROTOCOL: "https",
  GIT_NO_LAZY_FETCH: "1",
  GIT_LITERAL_PATHSPECS: "1",
  GIT_PAGER: "cat",
  PAGER: "cat",
  GIT_EDITOR: "false",
  GIT_SEQUENCE_EDITOR: "false",
  // Stable, parseable messages (failures are classified by their text).
  LC_ALL: "C",
});

/** The committer of everything git.* writes (reflogs included): the calling agent. */
export function committerEnv(agent: string): Record<string, string> {
  // eslint-disable-next-line no-control-regex
  const safe = agent.replace(/[<>\x00-\x1f\x7f]/g, "").trim() || "unknown";
  return {
    GIT_COMMITTER_NAME: `KruxOS agent ${safe}`,
    GIT_COMMITTER_EMAIL: "agent@kruxos.invalid",
  };
}

export interface GitDeps {
  readonly launcher: Launcher;
  readonly gitPath: string;
}

export interface GitRun {
  /** Subcommand and its arguments (after the prelude). */
  readonly args: readonly string[];
  /** Working directory under /workspace. */
  readonly cwd: string;
  readonly stdin?: string;
  readonly network?: boolean;
  readonly env?: Readonly<Record<string, string>>;
  readonly wallMs?: number;
  readonly outputBytes?: number;
  /** An output-limit stop is a truncation, not an error (bounded diffs). */
  readonly outputLimitIsTruncation?: boolean;
}

export interface GitResult {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: string;
  readonly truncated: boolean;
}

const DEFAULT_WALL_MS = 60_000;
const DEFAULT_OUTPUT = 16 * 1024 * 1024;

const NOT_A_REPO = [
  /not a git repository/i,
  /must be run in a work tree/i,
  /this operation must be run in a work tree/i,
];

/**
 * Run one git command in the sandbox. Limits become Timeout/ResourceLimit, "not a git repository"
 * becomes NotARepository; any other exit status is returned for the caller to classify.
 */
export async function runGit(
  d: GitDeps,
  ctx: CallContext,
  capability: string,
  run: GitRun,
): Promise<GitResult> {
  const wallMs = run.wallMs ?? DEFAULT_WALL_MS;
  const r: SandboxResult = await d.launcher.run(
    {
      argv: [...gitPrelude(d.gitPath), ...run.args],
      cwd: run.cwd,
      env: { ...GIT_ENV, ...committerEnv(ctx.agent), ...run.env },
      network: run.network ?? false,
      limits: { wall_ms: wallMs, output_bytes: run.outputBytes ?? DEFAULT_OUTPUT },
      ...(run.stdin === undefined ? {} : { stdin: run.stdin }),
    },
    identityOf(ctx),
    ctx.signal,
  );
  if (!(run.outputLimitIsTruncation && r.limit === "output")) {
    const limited = limitError(capability, r, wallMs);
    if (limited) throw limited;
  }
  const stderr = text(r.stderr);
  if (r.exit_code !== 0 && NOT_A_REPO.some((re) => re.test(stderr)))
    throw capabilityError(
      "NotARepository",
      capability,
      `${run.cwd} is not inside a git work tree.`,
      { path: run.cwd },
    );
  return {
    code: r.exit_code,
    stdout: r.stdout,
    stderr,
    truncated: r.truncated || r.limit === "output",
  };
}

export type Classifier = readonly (readonly [RegExp, SandboxedErrorType])[];

/** The error for a failed git run: the first matching class, else GitFailed with git's words. */
export function gitFailure(
  capability: string,
  r: GitResult,
  classes: Classifier,
  extra: Record<string, unknown> = {},
): Error {
  const said = `${r.stderr}\n${text(r.stdout)}`;
  const msg = cutChars(r.stderr.trim() || text(r.stdout).trim(), 4096);
  for (const [re, type] of classes)
    if (re.test(said)) return capabilityError(type, capability, msg || type, { ...extra });
  return capabilityError("GitFailed", capability, msg || `git exited with ${r.code}.`, {
    exit_code: r.code,
    stderr: cutChars(r.stderr, 4096),
    ...extra,
  });
}

/** Failures that mean "that ref/revision does not exist". */
export const BAD_REVISION: Classifier = [
  [/unknown revision|bad revision|invalid reference|not a valid object name/i, "InvalidRef"],
  [
    /needed a single revision|not a valid (ref|branch) name|is not a valid branch name/i,
    "InvalidRef",
  ],
  [/ambiguous argument/i, "InvalidRef"],
];

/** HEAD's commit and branch (refs/heads/ stripped), or nulls in a repository without commits. */
export async function headOf(
  d: GitDeps,
  ctx: CallContext,
  capability: string,
  cwd: string,
): Promise<{ head: string | null; branch: string | null }> {
  const r = await runGit(d, ctx, capability, {
    args: ["rev-parse", "HEAD", "--symbolic-full-name", "HEAD"],
    cwd,
  });
  if (r.code !== 0) {
    // No commits yet: HEAD may still name an unborn branch.
    const s = await runGit(d, ctx, capability, { args: ["symbolic-ref", "-q", "HEAD"], cwd });
    const ref = text(s.stdout).trim();
    return { head: null, branch: s.code === 0 ? branchOf(ref) : null };
  }
  const [head = "", full = ""] = text(r.stdout).trim().split("\n");
  return { head: head.trim() || null, branch: branchOf(full.trim()) };
}

export function branchOf(fullRef: string): string | null {
  return fullRef.startsWith("refs/heads/") ? fullRef.slice("refs/heads/".length) : null;
}
