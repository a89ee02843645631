// Agent paths and the mandatory-deny list. Everything here is lexical: it decides what an agent's
// path string means and whether a workspace-relative path is protected. Resolving it against the
// real filesystem (symlinks, hard links, races) is confine.ts's job.
import { fsError } from "./errors.js";

/** The absolute prefix agents use for the workspace, in every mode. */
export const AGENT_ROOT = "/workspace";

/** An agent path turned into workspace-relative components (never "", ".", or ".."). */
export interface AgentPath {
  readonly comps: readonly string[];
  /** The normalised relative path ("." for the root): what errors and outputs show. */
  readonly display: string;
}

export function displayOf(comps: readonly string[]): string {
  return comps.length === 0 ? "." : comps.join("/");
}

/**
 * Parse a path as an agent wrote it. Relative paths are relative to the workspace; absolute ones must
 * be `/workspace` or lie under `/workspace/`. `..` may not climb above the root (it is applied
 * lexically: confine.ts then resolves the result component by component, so a symlink cannot turn a
 * lexically-inside path into an outside one). NUL bytes are refused (the kernel would truncate).
 */
export function parseAgentPath(input: string, capability: string): AgentPath {
  if (input.includes("\0"))
    throw fsError(
      "PathOutOfScope",
      capability,
      input.replaceAll("\0", "\\0"),
      "Path contains a NUL byte.",
    );
  let rest = input;
  if (rest.startsWith("/")) {
    if (rest !== AGENT_ROOT && !rest.startsWith(`${AGENT_ROOT}/`))
      throw fsError(
        "PathOutOfScope",
        capability,
        input,
        `Absolute paths must lie under ${AGENT_ROOT}; ${JSON.stringify(input)} does not.`,
      );
    rest = rest.slice(AGENT_ROOT.length);
  }
  const comps: string[] = [];
  for (const c of rest.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..") {
      if (comps.length === 0)
        throw fsError(
          "PathOutOfScope",
          capability,
          input,
          "The path climbs above the workspace root.",
        );
      comps.pop();
      continue;
    }
    comps.push(c);
  }
  return { comps, display: displayOf(comps) };
}

/** Split a symlink target into components ("." dropped, ".." kept for the resolver). */
export function splitTarget(target: string): string[] {
  return target.split("/").filter((c) => c !== "" && c !== ".");
}

// ---------------------------------------------------------------------------------------------
// Mandatory deny: files that run code or hold credentials when a human or tool later uses the
// workspace (git hooks and config, shell start-up files, editor/agent tool config, credentials).
// They stay unwritable, at any depth, whether or not they exist yet, unless policy names them.

/** A directory name whose whole subtree (and the directory itself) is protected, at any depth. */
const DENY_DIRS = [".ssh", ".gnupg", ".vscode", ".idea", ".devcontainer"];

/** A file name protected at any depth. */
const DENY_FILES = [
  ".bashrc",
  ".bash_profile",
  ".bash_login",
  ".bash_logout",
  ".profile",
  ".zshrc",
  ".zshenv",
  ".zprofile",
  ".zlogin",
  ".envrc",
  ".gitconfig",
  ".git-credentials",
  ".netrc",
  ".npmrc",
  ".yarnrc",
  ".yarnrc.yml",
  ".pypirc",
  ".mcp.json",
];

/** Multi-component suffixes protected at any depth (the last component is the file). */
const DENY_SUFFIXES: readonly (readonly string[])[] = [
  [".cursor", "mcp.json"],
  [".claude", "settings.json"],
  [".claude", "settings.local.json"],
];

/**
 * Fold a component for comparison: case-insensitive, NFC, without characters that case-insensitive
 * or Unicode-normalising filesystems ignore (zero-width and bidi marks), and without the trailing
 * dots/spaces Windows-style filesystems drop. `.GIT`, `.git.` and `.g\u200cit` all fold to `.git`.
 */
function fold(c: string): string {
  return c
    .normalize("NFC")
    .replace(/[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u206a-\u206f\ufeff]/g, "")
    .replace(/[. ]+$/, (m) => (m.length === c.length ? m : ""))
    .toLowerCase();
}

/** Why a workspace-relative path is mandatory-deny, or undefined when it is not. */
export function mandatoryDenyReason(comps: readonly string[]): string | undefined {
  const f = comps.map(fold);
  for (let i = 0; i < f.length; i++) {
    const c = f[i] ?? "";
    if (DENY_DIRS.includes(c)) return `${c}/ and everything under it`;
    if (c === ".git") {
      // Inside any .git directory (including .git/modules/<name>/ of submodules): hooks, config,
      // and info/attributes can each make a later git command run code.
      const tail = f.slice(i + 1);
      if (tail.includes("hooks")) return ".git/hooks/ and everything under it";
      if (tail.at(-1) === "config") return ".git/config";
      if (tail.length >= 2 && tail.at(-2) === "info" && tail.at(-1) === "attributes")
        return ".git/info/attributes";
    }
  }
  const last = f.at(-1);
  if (last !== undefined && DENY_FILES.includes(last)) return last;
  for (const suffix of DENY_SUFFIXES)
    if (f.length >= suffix.length && suffix.every((s, k) => f[f.length - suffix.length + k] === s))
      return suffix.join("/");
  return undefined;
}

/** The list, for docs and tests. */
export const MANDATORY_DENY = {
  directories: DENY_DIRS,
  files: DENY_FILES,
  suffixes: DENY_SUFFIXES.map((s) => s.join("/")),
  git: [
    ".git/hooks/**",
    ".git/config",
    ".git/info/attributes",
    ".git/modules/**/{hooks/**,config}",
  ],
} as const;
