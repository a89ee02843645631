// What an agent may hand to git. Nothing from inputs reaches git's command line unless it passed one
// of these checks, which run before any sandbox starts:
//
//  - ref names (branches, clone --branch): a strict character set plus `git check-ref-format` rules
//    re-implemented here, so that no name can be read as an option ("-D", "--upload-pack=…"), a
//    reflog expression ("@{1}"), a pathspec ("x:y"), a glob, or something outside refs/;
//  - revisions (log ref, diff from/to, start points, checkout targets): a ref name or SHA followed
//    by ~N / ^N suffixes; git.log also accepts one `a..b` or `a...b` range;
//  - paths: workspace/repository-relative, lexically normalised, never above the repository, never
//    option-looking; they are passed after `--` and git reads them literally (GIT_LITERAL_PATHSPECS);
//  - clone URLs: https:// only, no user info, no transport-helper syntax;
//  - author identities: no newlines, angle brackets or control characters.
//
// `--end-of-options` is added where git (2.39) honours it, as a second guard behind these checks.
import { AGENT_WORKSPACE } from "../types.js";
import { capabilityError, invalidInput } from "../process/errors.js";

const MAX_REF = 255;
const MAX_REVISION = 512;

/** Characters allowed in a ref name: stricter than git (no spaces, no unicode, no shell specials). */
const REF_CHARS = /^[A-Za-z0-9_][A-Za-z0-9._/+@#,=-]*$/;

/** Why `name` is not an acceptable ref name, or undefined when it is. */
export function refNameProblem(name: string): string | undefined {
  if (name.length === 0) return "is empty";
  if (name.length > MAX_REF) return `is longer than ${MAX_REF} characters`;
  if (name.startsWith("-")) return 'must not start with "-"';
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20\x7f]/.test(name)) return "must not contain spaces or control characters";
  if (/[~^:?*[\\]/.test(name)) return "must not contain ~ ^ : ? * [ or \\";
  if (name.includes("..")) return 'must not contain ".."';
  if (name.includes("@{")) return 'must not contain "@{"';
  if (name === "@") return 'must not be "@"';
  if (name.endsWith("/") || name.startsWith("/")) return 'must not start or end with "/"';
  if (name.includes("//")) return 'must not contain "//"';
  if (name.endsWith(".")) return 'must not end with "."';
  for (const c of name.split("/")) {
    if (c.startsWith(".")) return 'no part may start with "."';
    if (c.endsWith(".lock")) return 'no part may end with ".lock"';
  }
  if (!REF_CHARS.test(name)) return "may contain only letters, digits and . _ / + @ # , = -";
  return undefined;
}

/** Why `rev` is not an acceptable revision (ref name or SHA, then ~N/^N suffixes), if it is not. */
export function revisionProblem(rev: string): string | undefined {
  if (rev.length > MAX_REVISION) return `is longer than ${MAX_REVISION} characters`;
  const m = /^(.*?)((?:[~^][0-9]{0,6})*)$/.exec(rev);
  const base = m?.[1] ?? "";
  return refNameProblem(base);
}

function refused(capability: string, field: string, value: string, problem: string): Error {
  return capabilityError(
    "InvalidRef",
    capability,
    `${field} ${JSON.stringify(value)} ${problem}; refused before running git.`,
    {
      field,
      recovery: [
        {
          action: "fix_inputs",
          description:
            "Use a branch, tag or commit SHA (letters, digits, / . _ -), optionally with ~N or ^N; no leading -, no .., no @{, no :.",
        },
      ],
    },
  );
}

/** A branch or tag name (create, delete, clone --branch, checkout -b). */
export function checkRefName(capability: string, field: string, name: string): string {
  const p = refNameProblem(name);
  if (p !== undefined) throw refused(capability, field, name, p);
  return name;
}

/** A revision: ref name or SHA with optional ~N / ^N. */
export function checkRevision(capability: string, field: string, rev: string): string {
  const p = revisionProblem(rev);
  if (p !== undefined) throw refused(capability, field, rev, p);
  return rev;
}

/** A revision or one `a..b` / `a...b` range (git.log). */
export function checkRevisionRange(capability: string, field: string, spec: string): string {
  const m = /^(.+?)(\.\.\.?)(.+)$/.exec(spec);
  if (!m) return checkRevision(capability, field, spec);
  const [, a = "", , b = ""] = m;
  const pa = revisionProblem(a);
  if (pa !== undefined) throw refused(capability, field, spec, `(left side) ${pa}`);
  const pb = revisionProblem(b);
  if (pb !== undefined) throw refused(capability, field, spec, `(right side) ${pb}`);
  return spec;
}

/**
 * A path relative to the repository directory `repoComps` (workspace-relative components), as an
 * agent wrote it: relative to the repository, or absolute under /workspace inside the repository.
 * Returns the normalised repository-relative path ("." for the repository itself).
 */
export function checkRepoPath(
  capability: string,
  pointer: string,
  input: string,
  repoComps: readonly string[],
): string {
  if (input.includes("\0")) throw invalidInput(pointer, "The path contains a NUL byte.");
  if (input.startsWith("-"))
    throw invalidInput(pointer, `${JSON.stringify(input)} looks like an option; refused.`);
  const outside = (): Error =>
    capabilityError(
      "PathOutOfScope",
      capability,
      `${JSON.stringify(input)} lies outside the repository directory; refused.`,
      {
        path: input,
        recovery: [
          { action: "fix_inputs", description: "Use paths relative to the repository directory." },
        ],
      },
    );
  let comps: string[];
  if (input.startsWith("/")) {
    if (input !== AGENT_WORKSPACE && !input.startsWith(`${AGENT_WORKSPACE}/`)) throw outside();
    const abs = normalise(input.slice(AGENT_WORKSPACE.length), outside);
    const inside = abs.length >= repoComps.length && repoComps.every((c, i) => abs[i] === c);
    if (!inside) throw outside();
    comps = abs.slice(repoComps.length);
  } else {
    comps = normalise(input, outside);
  }
  const out = comps.length === 0 ? "." : comps.join("/");
  if (out.startsWith("-"))
    throw invalidInput(pointer, `${JSON.stringify(input)} names an option-looking path; refused.`);
  return out;
}

function normalise(p: string, outside: () => Error): string[] {
  const comps: string[] = [];
  for (const c of p.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..") {
      if (comps.length === 0) throw outside();
      comps.pop();
      continue;
    }
    comps.push(c);
  }
  return comps;
}

/** A clone URL: https only, host present, no user info, no whitespace or transport helpers. */
export function checkCloneUrl(url: string): URL {
  const bad = (why: string): Error => invalidInput("/url", `The URL ${why}; refused.`);
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20\x7f\\]/.test(url)) throw bad("contains spaces, control characters or \\");
  if (url.startsWith("-")) throw bad("looks like an option");
  if (!url.startsWith("https://"))
    throw bad("is not https:// (ssh, git, http, file and ext:: transports are not allowed)");
  const authority = url.slice("https://".length).split(/[/?#]/, 1)[0] ?? "";
  if (authority.includes("@")) throw bad("carries user info; pass credentials instead");
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw bad("is not a valid URL");
  }
  if (u.protocol !== "https:") throw bad("is not https://");
  if (u.username !== "" || u.password !== "") throw bad("carries user info");
  if (u.hostname === "") throw bad("has no host");
  if (u.pathname === "/" || u.pathname === "") throw bad("names no repository");
  return u;
}

/** The directory name git would choose: the last path segment without ".git". */
export function defaultCloneDir(u: URL): string | undefined {
  const segs = u.pathname.split("/").filter((s) => s !== "");
  let last = segs.at(-1) ?? "";
  try {
    last = decodeURIComponent(last);
  } catch {
    return undefined;
  }
  last = last.replace(/\.git$/, "").replace(/\/$/, "");
  // eslint-disable-next-line no-control-regex
  if (last === "" || last === "." || last === ".." || /[/\x00-\x1f\x7f]/.test(last))
    return undefined;
  if (last.startsWith("-") || last.startsWith(".")) return undefined;
  return last;
}

/** A name or email for a commit identity: no newlines, angle brackets or control characters. */
export function checkIdent(pointer: string, value: string, kind: "name" | "email"): string {
  // eslint-disable-next-line no-control-regex
  if (/[<>\x00-\x1f\x7f]/.test(value))
    throw invalidInput(
      pointer,
      `The author ${kind} must not contain <, >, newlines or control characters.`,
    );
  const v = value.trim();
  if (v === "") throw invalidInput(pointer, `The author ${kind} is empty.`);
  if (kind === "email" && (/\s/.test(v) || !v.includes("@")))
    throw invalidInput(pointer, "The author email must be one address without spaces.");
  return v;
}
