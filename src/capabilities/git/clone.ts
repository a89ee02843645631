// git.clone: an https:// repository, through the egress proxy (the sandbox's only way out when the
// call is granted network), into a new or empty directory of the workspace. No templates (so no
// sample hooks copied in), no submodules, no credentials except vault placeholders, which the
// egress proxy replaces on the way out (only toward hosts in the secret's scope).
import { readdir } from "node:fs/promises";
import { KruxError } from "../../core/index.js";
import { checkDeny, openDir, openWorkspace } from "../filesystem/confine.js";
import { parseAgentPath } from "../filesystem/paths.js";
import type { CallContext, CapabilityHandler } from "../types.js";
import { capabilityError, invalidInput } from "../process/errors.js";
import { agentPathOf } from "../process/workdir.js";
import { gitFailure, headOf, runGit, type Classifier, type GitDeps } from "./invoke.js";
import { checkCloneUrl, checkRefName, defaultCloneDir } from "./validate.js";

interface CloneInputs {
  url: string;
  path?: string;
  ref?: string;
  depth?: number;
  credentials?: { username?: string; password: string };
}

const CLONE_WALL_MS = 1_800_000;
const PLACEHOLDER_ONLY = /^\$\{secret:[A-Za-z0-9_.-]{1,128}\}$/;

const CLONE_FAILURES: Classifier = [
  [
    /from proxy after CONNECT|CONNECT tunnel failed|Proxy CONNECT aborted|policy_denied|X-Kruxos-Policy/i,
    "EgressDenied",
  ],
  [/Remote branch .* not found|couldn't find remote ref|not our ref/i, "InvalidRef"],
  [
    /Authentication failed|could not read (Username|Password)|terminal prompts disabled|returned error: 40[13]/i,
    "AuthenticationFailed",
  ],
  [
    /repository '.*' not found|returned error: 404|does not appear to be a git repository/i,
    "NotFound",
  ],
  [/already exists and is not an empty directory/i, "AlreadyExists"],
  [/No space left|File too large|Disk quota exceeded/i, "ResourceLimit"],
];

/** Where the clone goes: an existing parent (created if missing) and a new or empty leaf. */
async function destination(
  ctx: CallContext,
  capability: string,
  input: string,
): Promise<{ cwd: string; target: string; agentPath: string }> {
  const ap = parseAgentPath(input, capability);
  if (ap.comps.some((c) => c.toLowerCase() === ".git"))
    throw invalidInput("/path", "A clone cannot go inside a .git directory.");
  const ws = await openWorkspace(ctx, capability);
  checkDeny(ws, ap.comps, ap.display);
  const exists = (): Error =>
    capabilityError(
      "AlreadyExists",
      capability,
      `${ap.display} exists and is not an empty directory.`,
      { path: ap.display },
    );
  if (ap.comps.length === 0) {
    const root = await openDir(ws, [], ap.display);
    try {
      if ((await readdir(root.self)).length > 0) throw exists();
      return { cwd: agentPathOf([]), target: ".", agentPath: agentPathOf([]) };
    } finally {
      await root.close();
    }
  }
  const name = ap.comps.at(-1) ?? "";
  const parent = await openDir(ws, ap.comps.slice(0, -1), ap.display, { create: true });
  try {
    checkDeny(ws, [...parent.comps, name], ap.display);
    const entries = await readdir(parent.self, { withFileTypes: true });
    const hit = entries.find((e) => e.name === name);
    if (hit) {
      if (!hit.isDirectory()) throw exists();
      if ((await readdir(parent.at(name))).length > 0) throw exists();
    }
    await parent.assertInside(ap.display);
    return {
      cwd: agentPathOf(parent.comps),
      // Relative to cwd, so the path means the same inside the sandbox and out.
      target: name,
      agentPath: agentPathOf([...parent.comps, name]),
    };
  } finally {
    await parent.close();
  }
}

export function createClone(d: GitDeps): CapabilityHandler {
  const capability = "git.clone";
  return async (raw, ctx) => {
    const i = raw as CloneInputs;
    const url = checkCloneUrl(i.url);
    const ref = i.ref === undefined ? undefined : checkRefName(capability, "ref", i.ref);
    if (i.depth !== undefined && (!Number.isInteger(i.depth) || i.depth < 1 || i.depth > 100000))
      throw invalidInput("/depth", "depth must be an integer from 1 to 100000.");
    if (i.credentials) {
      const { username, password } = i.credentials;
      // eslint-disable-next-line no-control-regex
      if (username !== undefined && /[:\u0000-\u001f\u007f]/.test(username))
        throw invalidInput(
          "/credentials/username",
          "The user name cannot hold a colon or control characters (it goes into a Basic credential).",
        );
      if (!PLACEHOLDER_ONLY.test(password))
        throw invalidInput(
          "/credentials/password",
          "The password must be a ${secret:NAME} placeholder, never a literal token.",
        );
    }
    // The sandbox holds only the placeholder, in a Basic credential git sends with every request;
    // the egress proxy opens that credential and places the value, for hosts in the secret's
    // scope only. `-c` keeps it out of the clone's .git/config.
    const auth =
      i.credentials === undefined
        ? []
        : [
            "-c",
            `http.extraHeader=Authorization: Basic ${Buffer.from(
              `${i.credentials.username ?? "x-access-token"}:${i.credentials.password}`,
              "utf8",
            ).toString("base64")}`,
          ];
    const dirInput = i.path ?? defaultCloneDir(url);
    if (dirInput === undefined)
      throw invalidInput("/path", "No directory name can be derived from the URL; pass path.");

    let dest;
    try {
      dest = await destination(ctx, capability, dirInput);
    } catch (err) {
      if (err instanceof KruxError && err.data.type === "NotADirectory")
        throw capabilityError("AlreadyExists", capability, `${dirInput}: ${err.message}`, {
          path: dirInput,
        });
      throw err;
    }
    const started = Date.now();
    const r = await runGit(d, ctx, capability, {
      args: [
        ...auth,
        "clone",
        "--quiet",
        "--template=",
        "--no-recurse-submodules",
        ...(i.depth === undefined ? [] : [`--depth=${i.depth}`]),
        ...(ref === undefined ? [] : [`--branch=${ref}`]),
        "--",
        i.url,
        dest.target,
      ],
      cwd: dest.cwd,
      network: true,
      wallMs: CLONE_WALL_MS,
      outputBytes: 1024 * 1024,
    });
    if (r.code !== 0)
      throw gitFailure(capability, r, CLONE_FAILURES, { url: i.url, host: url.host });
    const { head, branch } = await headOf(d, ctx, capability, dest.agentPath);
    return {
      path: dest.agentPath,
      head: head ?? "",
      branch,
      duration_ms: Math.max(0, Date.now() - started),
    };
  };
}
