// The git.* capabilities against real repositories in a temporary workspace, run through a launcher
// without a sandbox (tests/helpers/plain-launcher.ts). They check that outputs are parsed from git's
// machine-readable formats and match the published output schemas, that failures map to the
// documented error types, that no input can smuggle an option or reflog/pathspec syntax onto git's
// command line (refused before git runs), that a repository's hooks and fsmonitor never run, and that
// clone accepts only https:// and asks for network.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import {
  CapabilityRegistry,
  createGitHandlers,
  loadCapabilityDefinitions,
  type CallContext,
  type CapabilityHandler,
  type Launcher,
  type SandboxRequest,
  type SandboxResult,
} from "../../src/capabilities/index.js";
import { PlainLauncher } from "../helpers/plain-launcher.js";
import { REPO } from "../helpers/repo.js";

const DEFS = loadCapabilityDefinitions(path.join(REPO, "config", "capabilities"));
const SHA = /^[0-9a-f]{40}$/;

// The prelude and environment every git run must carry (SPEC §5: hooks disabled, https only).
const PRELUDE = [
  "git",
  "-c",
  "core.hooksPath=/dev/null",
  "-c",
  "core.fsmonitor=false",
  "-c",
  "protocol.allow=never",
  "-c",
  "protocol.https.allow=always",
  "-c",
  "credential.helper=",
  "-c",
  "core.sshCommand=false",
  "-c",
  "safe.directory=*",
  "-c",
  "advice.detachedHead=false",
];
const PINNED_ENV = {
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_TERMINAL_PROMPT: "0",
  GIT_OPTIONAL_LOCKS: "0",
  GIT_ALLOW_PROTOCOL: "https",
};

let base: string;
let ws: string;
let marker: string;

/** Real git for fixtures, isolated from the host's configuration. */
function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", args, {
    cwd,
    encoding: "utf8",
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_CONFIG_GLOBAL: "/dev/null",
      GIT_AUTHOR_NAME: "Fixture",
      GIT_AUTHOR_EMAIL: "fixture@example.com",
      GIT_COMMITTER_NAME: "Fixture",
      GIT_COMMITTER_EMAIL: "fixture@example.com",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

function write(rel: string, content: string | Buffer): void {
  const p = path.join(ws, rel);
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, content);
}

let n = 0;
/** A fresh workspace holding repo/ with one commit (README.md) on main. */
function freshRepo(): string {
  ws = path.join(base, `ws${n++}`);
  const repo = path.join(ws, "repo");
  mkdirSync(repo, { recursive: true });
  git(repo, "init", "-q", "-b", "main");
  write("repo/README.md", "hello\n");
  git(repo, "add", "README.md");
  git(repo, "commit", "-q", "-m", "Initial commit");
  return repo;
}

before(() => {
  base = mkdtempSync(path.join(os.tmpdir(), "krux-git-unit-"));
});
after(() => rmSync(base, { recursive: true, force: true }));
beforeEach(() => {
  marker = path.join(base, `marker-${n}-${Math.random().toString(36).slice(2)}`);
});

interface Rig {
  reg: CapabilityRegistry;
  launcher: PlainLauncher;
  handlers: Record<string, CapabilityHandler>;
}

function rig(launcher: Launcher = new PlainLauncher(ws)): Rig {
  const handlers = createGitHandlers({ launcher });
  return {
    reg: new CapabilityRegistry(DEFS, handlers),
    launcher: launcher as PlainLauncher,
    handlers,
  };
}

function ctx(agent = "alice"): CallContext {
  return {
    agent,
    session: "s1",
    callId: "call-7",
    capability: "git",
    workspaceRoot: ws,
    signal: new AbortController().signal,
    egress: false,
    mandatoryDenyAllowed: () => false,
  };
}

async function call(
  r: Rig,
  name: string,
  inputs: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const v = r.reg.validateInputs(name, inputs);
  assert.ok(v.ok, `${name} inputs: ${JSON.stringify(v)}`);
  const out = await (r.reg.handler(name) as CapabilityHandler)(v.inputs, ctx());
  const check = r.reg.validateOutputs(name, out);
  assert.ok(check.ok, `${name} output ${JSON.stringify(out)}: ${JSON.stringify(check)}`);
  return out as Record<string, unknown>;
}

/** The handler alone, skipping the gateway's schema check: the handler must defend itself too. */
async function direct(
  r: Rig,
  name: string,
  inputs: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  return (await (r.handlers[name] as CapabilityHandler)(inputs, ctx())) as Record<string, unknown>;
}

async function refused(p: Promise<unknown>, expected: string): Promise<Record<string, unknown>> {
  try {
    await p;
  } catch (err) {
    const e = err as { code?: string; data?: Record<string, unknown>; message?: string };
    const got = e.code === "CapabilityError" ? String(e.data?.type) : String(e.code);
    assert.equal(got, expected, `${e.message ?? String(err)} ${JSON.stringify(e.data)}`);
    return e.data ?? {};
  }
  assert.fail(`expected ${expected}`);
}

describe("every git run", () => {
  test("carries the hardening prelude and pinned environment, with no network", async () => {
    freshRepo();
    const r = rig();
    await call(r, "git.status", { repo: "repo" });
    await call(r, "git.log", { repo: "repo" });
    await call(r, "git.diff", { repo: "repo" });
    await call(r, "git.branch", { repo: "repo" });
    assert.ok(r.launcher.requests.length >= 4);
    for (const req of r.launcher.requests) {
      assert.deepEqual(req.argv.slice(0, PRELUDE.length), PRELUDE);
      for (const [k, v] of Object.entries(PINNED_ENV)) assert.equal(req.env?.[k], v, k);
      assert.equal(req.network, false);
      assert.equal(req.cwd, "/workspace/repo");
      assert.equal(req.env?.GIT_COMMITTER_NAME, "KruxOS agent alice");
    }
  });
});

describe("git.commit", () => {
  test("stages paths, commits with the message from stdin, and the agent is the committer", async () => {
    const repo = freshRepo();
    const r = rig();
    write("repo/src/a.ts", "one\ntwo\n");
    write("repo/notes.txt", "n\n");
    const out = await call(r, "git.commit", {
      repo: "repo",
      message: "Add a.ts\n\nWith a body that says why.",
      paths: ["src/a.ts"],
    });
    assert.match(out.sha as string, SHA);
    assert.equal(out.branch, "main");
    assert.equal(out.subject, "Add a.ts");
    assert.equal(out.files_changed, 1);
    assert.equal(out.insertions, 2);
    assert.equal(out.deletions, 0);
    assert.equal(
      git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%B").trim(),
      "KruxOS agent alice <agent@kruxos.invalid>|KruxOS agent alice <agent@kruxos.invalid>|Add a.ts\n\nWith a body that says why.",
    );
    assert.match(git(repo, "status", "--porcelain"), /\?\? notes\.txt/, "only the named path");
    const commitReq = r.launcher.requests.find((q) => q.argv.includes("commit"));
    assert.equal(commitReq?.stdin, "Add a.ts\n\nWith a body that says why.");
    assert.ok(commitReq?.argv.includes("--no-verify"));
    const addReq = r.launcher.requests.find((q) => q.argv.includes("add"));
    assert.deepEqual(addReq?.argv.slice(-2), ["--", "src/a.ts"]);
  });

  test("all stages tracked changes; an author input is recorded as the author only", async () => {
    const repo = freshRepo();
    const r = rig();
    write("repo/README.md", "hello\nworld\n");
    const out = await call(r, "git.commit", {
      repo: "/workspace/repo",
      message: "Update README",
      all: true,
      author: { name: "Ada Lovelace", email: "ada@example.com" },
    });
    assert.equal(out.insertions, 1);
    assert.equal(
      git(repo, "log", "-1", "--format=%an <%ae>|%cn").trim(),
      "Ada Lovelace <ada@example.com>|KruxOS agent alice",
    );
  });

  test("nothing staged is NothingToCommit; allow_empty commits anyway", async () => {
    freshRepo();
    const r = rig();
    await refused(call(r, "git.commit", { repo: "repo", message: "nothing" }), "NothingToCommit");
    const out = await call(r, "git.commit", {
      repo: "repo",
      message: "empty",
      allow_empty: true,
    });
    assert.equal(out.files_changed, 0);
  });

  test("a path that does not exist is NotFound; one outside the repository is PathOutOfScope", async () => {
    freshRepo();
    const r = rig();
    await refused(
      call(r, "git.commit", { repo: "repo", message: "m", paths: ["missing.txt"] }),
      "NotFound",
    );
    const before = r.launcher.requests.length;
    for (const p of ["../x", "/workspace/other/x", "/etc/passwd", "a/../../x"])
      await refused(
        call(r, "git.commit", { repo: "repo", message: "m", paths: [p] }),
        "PathOutOfScope",
      );
    assert.equal(r.launcher.requests.length, before, "refused before git ran");
  });

  test("an author with a newline or angle brackets is refused", async () => {
    freshRepo();
    const r = rig();
    for (const name of ["Eve\nX", "Eve <e@x>"])
      await refused(
        direct(r, "git.commit", {
          repo: "repo",
          message: "m",
          allow_empty: true,
          author: { name, email: "e@example.com" },
        }),
        "InvalidParams",
      );
    assert.equal(r.launcher.requests.length, 0);
  });

  test("unmerged paths are a Conflict", async () => {
    const repo = freshRepo();
    git(repo, "checkout", "-q", "-b", "other");
    write("repo/README.md", "other\n");
    git(repo, "commit", "-q", "-am", "other");
    git(repo, "checkout", "-q", "main");
    write("repo/README.md", "mine\n");
    git(repo, "commit", "-q", "-am", "mine");
    try {
      git(repo, "merge", "-q", "other");
    } catch {
      /* the conflict is the point */
    }
    const r = rig();
    await refused(call(r, "git.commit", { repo: "repo", message: "merge" }), "Conflict");
    const st = await call(r, "git.status", { repo: "repo" });
    assert.deepEqual(st.entries, [{ path: "README.md", staged: "unmerged", unstaged: "unmerged" }]);
  });
});

describe("hooks and repository configuration never run code", () => {
  test("a pre-commit (and every other) hook does not run on commit or checkout", async () => {
    const repo = freshRepo();
    for (const hook of [
      "pre-commit",
      "commit-msg",
      "prepare-commit-msg",
      "post-commit",
      "post-checkout",
      "reference-transaction",
    ]) {
      const p = path.join(repo, ".git", "hooks", hook);
      writeFileSync(p, `#!/bin/sh\necho ${hook} >> '${marker}'\n`);
      chmodSync(p, 0o755);
    }
    // Control: plain git does run it, so the test below means something.
    git(repo, "commit", "-q", "--allow-empty", "-m", "control");
    assert.ok(existsSync(marker), "plain git ran the hook");
    rmSync(marker);

    const r = rig();
    write("repo/b.txt", "b\n");
    await call(r, "git.commit", { repo: "repo", message: "With hooks present", paths: ["b.txt"] });
    await call(r, "git.checkout", { repo: "repo", ref: "side", create_branch: true });
    await call(r, "git.branch", { repo: "repo", action: "create", name: "x" });
    assert.equal(existsSync(marker), false, "no hook ran");
  });

  test("core.fsmonitor set to a command in .git/config does not run", async () => {
    const repo = freshRepo();
    const monitor = path.join(base, `fsmonitor-${n}.sh`);
    writeFileSync(monitor, `#!/bin/sh\necho ran >> '${marker}'\nexit 1\n`);
    chmodSync(monitor, 0o755);
    git(repo, "config", "core.fsmonitor", monitor);
    git(repo, "status", "--porcelain");
    assert.ok(existsSync(marker), "plain git ran the fsmonitor");
    rmSync(marker);

    const r = rig();
    write("repo/c.txt", "c\n");
    await call(r, "git.status", { repo: "repo" });
    await call(r, "git.diff", { repo: "repo" });
    await call(r, "git.commit", { repo: "repo", message: "c", paths: ["c.txt"] });
    assert.equal(existsSync(marker), false, "the fsmonitor never ran");
  });

  test("a pager, external diff and textconv from .git/config are not used", async () => {
    const repo = freshRepo();
    const tool = path.join(base, `tool-${n}.sh`);
    writeFileSync(tool, `#!/bin/sh\necho ran >> '${marker}'\ncat\n`);
    chmodSync(tool, 0o755);
    git(repo, "config", "core.pager", tool);
    git(repo, "config", "diff.external", tool);
    git(repo, "config", "diff.evil.textconv", tool);
    write("repo/.gitattributes", "*.txt diff=evil\n");
    write("repo/d.txt", "1\n");
    git(repo, "add", ".");
    git(repo, "commit", "-q", "-m", "d");
    write("repo/d.txt", "2\n");
    const r = rig();
    const out = await call(r, "git.diff", { repo: "repo" });
    assert.match(out.diff as string, /^-1$/m);
    await call(r, "git.log", { repo: "repo" });
    assert.equal(existsSync(marker), false);
  });
});

describe("git.log", () => {
  test("lists commits newest first with parents, dates, subject and body", async () => {
    const repo = freshRepo();
    write("repo/a.txt", "a\n");
    git(repo, "add", "a.txt");
    git(repo, "commit", "-q", "-m", "Second\n\nBody line 1\nBody line 2\n");
    const r = rig();
    const out = await call(r, "git.log", { repo: "repo" });
    const commits = out.commits as Record<string, unknown>[];
    assert.equal(commits.length, 2);
    assert.equal(out.truncated, false);
    const [second, first] = commits;
    assert.equal(second?.subject, "Second");
    assert.equal(second?.body, "Body line 1\nBody line 2");
    assert.deepEqual(second?.parents, [first?.sha]);
    assert.deepEqual(first?.parents, []);
    assert.equal(first?.author_name, "Fixture");
    assert.equal(first?.author_email, "fixture@example.com");
    assert.match(second?.sha as string, SHA);

    const one = await call(r, "git.log", { repo: "repo", max_count: 1 });
    assert.equal((one.commits as unknown[]).length, 1);
    assert.equal(one.truncated, true);
    const skipped = await call(r, "git.log", { repo: "repo", max_count: 1, skip: 1 });
    assert.equal((skipped.commits as { sha: string }[])[0]?.sha, first?.sha);
    const byPath = await call(r, "git.log", { repo: "repo", paths: ["a.txt"] });
    assert.equal((byPath.commits as unknown[]).length, 1);
    const range = await call(r, "git.log", { repo: "repo", ref: "HEAD~1..HEAD" });
    assert.equal((range.commits as { subject: string }[])[0]?.subject, "Second");
    const future = await call(r, "git.log", { repo: "repo", since: "2999-01-01T00:00:00Z" });
    assert.deepEqual(future.commits, []);
    const past = await call(r, "git.log", { repo: "repo", since: "2001-02-03T04:05:06+02:00" });
    assert.equal((past.commits as unknown[]).length, 2);
    const logReq = r.launcher.requests.find((q) => q.argv.includes("a.txt"));
    assert.deepEqual(logReq?.argv.slice(-4), ["--end-of-options", "HEAD", "--", "a.txt"]);
  });

  test("a ref that does not exist is InvalidRef; a repository without commits has no history", async () => {
    freshRepo();
    const r = rig();
    await refused(call(r, "git.log", { repo: "repo", ref: "no-such-branch" }), "InvalidRef");
    mkdirSync(path.join(ws, "empty"));
    git(path.join(ws, "empty"), "init", "-q", "-b", "main");
    const out = await call(r, "git.log", { repo: "empty" });
    assert.deepEqual(out, { commits: [], truncated: false });
  });

  test("a directory that is not a repository is NotARepository; an escape is PathOutOfScope", async () => {
    freshRepo();
    mkdirSync(path.join(ws, "plain"));
    const r = rig();
    await refused(call(r, "git.log", { repo: "plain" }), "NotARepository");
    await refused(call(r, "git.status", { repo: "missing" }), "NotARepository");
    await refused(call(r, "git.status", { repo: "../" }), "PathOutOfScope");
    await refused(call(r, "git.status", { repo: "/tmp" }), "PathOutOfScope");
  });
});

describe("git.status", () => {
  test("reports branch, head and every kind of change", async () => {
    const repo = freshRepo();
    write("repo/old name.txt", "o\n");
    write("repo/tracked.txt", "t\n");
    git(repo, "add", ".");
    git(repo, "commit", "-q", "-m", "more");
    git(repo, "mv", "old name.txt", "new name.txt");
    write("repo/tracked.txt", "changed\n");
    write("repo/staged.txt", "s\n");
    git(repo, "add", "staged.txt");
    write("repo/dir/untracked.txt", "u\n");
    const r = rig();
    const out = await call(r, "git.status", { repo: "repo" });
    assert.equal(out.branch, "main");
    assert.equal(out.head, git(repo, "rev-parse", "HEAD").trim());
    assert.equal(out.upstream, null);
    assert.equal(out.clean, false);
    assert.equal(out.truncated, false);
    const byPath = new Map((out.entries as { path: string }[]).map((e) => [e.path, e]));
    assert.deepEqual(byPath.get("new name.txt"), {
      path: "new name.txt",
      orig_path: "old name.txt",
      staged: "renamed",
      unstaged: "unmodified",
    });
    assert.deepEqual(byPath.get("tracked.txt"), {
      path: "tracked.txt",
      staged: "unmodified",
      unstaged: "modified",
    });
    assert.equal((byPath.get("staged.txt") as { staged?: string }).staged, "added");
    assert.equal((byPath.get("dir/untracked.txt") as { staged?: string }).staged, "untracked");

    const noUntracked = await call(r, "git.status", { repo: "repo", include_untracked: false });
    assert.ok(!(noUntracked.entries as { path: string }[]).some((e) => e.path.startsWith("dir/")));
    const capped = await call(r, "git.status", { repo: "repo", max_entries: 1 });
    assert.equal((capped.entries as unknown[]).length, 1);
    assert.equal(capped.truncated, true);
  });

  test("a clean repository is clean; a detached HEAD has no branch", async () => {
    const repo = freshRepo();
    const r = rig();
    const clean = await call(r, "git.status", { repo: "repo" });
    assert.equal(clean.clean, true);
    assert.deepEqual(clean.entries, []);
    git(repo, "checkout", "-q", "--detach");
    const detached = await call(r, "git.status", { repo: "repo" });
    assert.equal(detached.branch, null);
  });
});

describe("git.diff", () => {
  test("working tree, staged, and commit-to-commit diffs with per-file summaries", async () => {
    const repo = freshRepo();
    const r = rig();
    write("repo/README.md", "hello\nnew line\n");
    const wt = await call(r, "git.diff", { repo: "repo" });
    assert.match(wt.diff as string, /^\+new line$/m);
    assert.deepEqual(wt.files, [
      { path: "README.md", status: "modified", additions: 1, deletions: 0 },
    ]);
    assert.equal(wt.truncated, false);

    git(repo, "add", "README.md");
    const unstaged = await call(r, "git.diff", { repo: "repo" });
    assert.deepEqual(unstaged.files, []);
    const staged = await call(r, "git.diff", { repo: "repo", staged: true });
    assert.equal((staged.files as unknown[]).length, 1);

    git(repo, "commit", "-q", "-m", "two");
    git(repo, "mv", "README.md", "READ.md");
    writeFileSync(path.join(repo, "bin.dat"), Buffer.from([0, 1, 2, 3, 0, 255]));
    git(repo, "add", ".");
    git(repo, "commit", "-q", "-m", "three");
    const between = await call(r, "git.diff", {
      repo: "repo",
      from: "HEAD~1",
      to: "HEAD",
      stat_only: true,
    });
    assert.equal(between.diff, "");
    const files = between.files as Record<string, unknown>[];
    assert.deepEqual(
      files.find((f) => f.path === "bin.dat"),
      { path: "bin.dat", status: "added", additions: null, deletions: null },
    );
    assert.deepEqual(
      files.find((f) => f.path === "READ.md"),
      { path: "READ.md", old_path: "README.md", status: "renamed", additions: 0, deletions: 0 },
    );
    const limited = await call(r, "git.diff", { repo: "repo", from: "HEAD~1", paths: ["READ.md"] });
    assert.equal((limited.files as unknown[]).length, 1);
  });

  test("a diff larger than max_bytes is cut and marked truncated", async () => {
    freshRepo();
    const r = rig();
    write("repo/README.md", Array.from({ length: 500 }, (_, i) => `line ${i} é\n`).join(""));
    const out = await call(r, "git.diff", { repo: "repo", max_bytes: 1024 });
    assert.equal(out.truncated, true);
    assert.ok(Buffer.byteLength(out.diff as string) <= 1024);
    assert.ok(!(out.diff as string).includes("\ufffd"), "cut at a character boundary");
    assert.equal((out.files as { additions: number }[])[0]?.additions, 500);
  });

  test("from that does not exist is InvalidRef", async () => {
    freshRepo();
    const r = rig();
    await refused(call(r, "git.diff", { repo: "repo", from: "nope" }), "InvalidRef");
  });
});

describe("git.branch and git.checkout", () => {
  test("list, create, delete with the documented failures", async () => {
    const repo = freshRepo();
    const r = rig();
    const head = git(repo, "rev-parse", "HEAD").trim();
    const list = await call(r, "git.branch", { repo: "repo" });
    assert.deepEqual(list, {
      current: "main",
      branches: [{ name: "main", sha: head, current: true }],
    });

    const made = await call(r, "git.branch", {
      repo: "repo",
      action: "create",
      name: "feature/login",
      start_point: "main",
    });
    assert.deepEqual(made.changed, { action: "create", name: "feature/login", sha: head });
    assert.equal((made.branches as unknown[]).length, 2);
    await refused(
      call(r, "git.branch", { repo: "repo", action: "create", name: "feature/login" }),
      "AlreadyExists",
    );
    await refused(
      call(r, "git.branch", { repo: "repo", action: "create", name: "x", start_point: "nope" }),
      "InvalidRef",
    );

    git(repo, "checkout", "-q", "feature/login");
    write("repo/f.txt", "f\n");
    git(repo, "add", "f.txt");
    git(repo, "commit", "-q", "-m", "feature work");
    git(repo, "checkout", "-q", "main");
    await refused(
      call(r, "git.branch", { repo: "repo", action: "delete", name: "feature/login" }),
      "NotMerged",
    );
    await refused(
      call(r, "git.branch", { repo: "repo", action: "delete", name: "main" }),
      "Conflict",
    );
    await refused(
      call(r, "git.branch", { repo: "repo", action: "delete", name: "ghost" }),
      "NotFound",
    );
    const gone = await call(r, "git.branch", {
      repo: "repo",
      action: "delete",
      name: "feature/login",
      force: true,
    });
    assert.equal((gone.changed as { action: string }).action, "delete");
    assert.deepEqual(
      (gone.branches as { name: string }[]).map((b) => b.name),
      ["main"],
    );
  });

  test("checkout switches branches, detaches at a commit, creates branches, refuses conflicts", async () => {
    const repo = freshRepo();
    const first = git(repo, "rev-parse", "HEAD").trim();
    write("repo/README.md", "v2\n");
    git(repo, "commit", "-q", "-am", "v2");
    const r = rig();
    const made = await call(r, "git.checkout", {
      repo: "repo",
      ref: "fix/typo",
      create_branch: true,
      start_point: "HEAD~1",
    });
    assert.deepEqual(made, { branch: "fix/typo", head: first, detached: false });
    await refused(
      call(r, "git.checkout", { repo: "repo", ref: "fix/typo", create_branch: true }),
      "AlreadyExists",
    );
    const back = await call(r, "git.checkout", { repo: "repo", ref: "main" });
    assert.equal(back.branch, "main");
    const detached = await call(r, "git.checkout", { repo: "repo", ref: first });
    assert.deepEqual(detached, { branch: null, head: first, detached: true });
    await call(r, "git.checkout", { repo: "repo", ref: "main" });
    write("repo/README.md", "local edit\n");
    await refused(call(r, "git.checkout", { repo: "repo", ref: "fix/typo" }), "Conflict");
    const forced = await call(r, "git.checkout", { repo: "repo", ref: "fix/typo", force: true });
    assert.equal(forced.branch, "fix/typo");
    await refused(call(r, "git.checkout", { repo: "repo", ref: "no-such" }), "InvalidRef");
  });
});

describe("option injection is refused before git runs", () => {
  const attempts: [string, Record<string, unknown>, string][] = [
    ["git.log", { repo: "repo", ref: "--upload-pack=evil" }, "InvalidRef"],
    ["git.log", { repo: "repo", ref: "--output=/tmp/x" }, "InvalidRef"],
    ["git.log", { repo: "repo", ref: "HEAD@{1}" }, "InvalidRef"],
    ["git.log", { repo: "repo", ref: "main:secret.txt" }, "InvalidRef"],
    ["git.log", { repo: "repo", ref: "../x" }, "InvalidRef"],
    ["git.log", { repo: "repo", ref: "HEAD..--exec=x" }, "InvalidRef"],
    ["git.log", { repo: "repo", ref: "refs/*" }, "InvalidRef"],
    ["git.log", { repo: "repo", paths: ["-rf"] }, "InvalidParams"],
    ["git.log", { repo: "repo", paths: ["../x"] }, "PathOutOfScope"],
    ["git.diff", { repo: "repo", from: "--output=/tmp/pwned" }, "InvalidRef"],
    ["git.diff", { repo: "repo", from: "HEAD", to: "-R" }, "InvalidRef"],
    ["git.diff", { repo: "repo", paths: ["--output=x"] }, "InvalidParams"],
    ["git.commit", { repo: "repo", message: "m", paths: ["-rf"] }, "InvalidParams"],
    ["git.commit", { repo: "repo", message: "m", paths: ["../x"] }, "PathOutOfScope"],
    ["git.branch", { repo: "repo", action: "delete", name: "-D" }, "InvalidRef"],
    ["git.branch", { repo: "repo", action: "create", name: "x", start_point: "-f" }, "InvalidRef"],
    ["git.branch", { repo: "repo", action: "create", name: "a..b" }, "InvalidRef"],
    ["git.branch", { repo: "repo", action: "create", name: "x.lock" }, "InvalidRef"],
    ["git.branch", { repo: "repo", action: "create", name: "x/" }, "InvalidRef"],
    ["git.branch", { repo: "repo", action: "create", name: "a\u0001b" }, "InvalidRef"],
    ["git.checkout", { repo: "repo", ref: "-f" }, "InvalidRef"],
    ["git.checkout", { repo: "repo", ref: "--orphan=x" }, "InvalidRef"],
    ["git.checkout", { repo: "repo", ref: "HEAD@{-1}" }, "InvalidRef"],
    [
      "git.checkout",
      { repo: "repo", ref: "ok", create_branch: true, start_point: "--detach" },
      "InvalidRef",
    ],
    ["git.clone", { url: "https://example.com/r.git", ref: "--upload-pack=evil" }, "InvalidRef"],
  ];

  for (const [name, inputs, type] of attempts)
    test(`${name} ${JSON.stringify(inputs)} → ${type}`, async () => {
      freshRepo();
      const r = rig();
      await refused(direct(r, name, inputs), type);
      assert.equal(r.launcher.requests.length, 0, "the launcher never saw it");
    });

  test("the schemas refuse leading dashes even before the handler sees them", () => {
    freshRepo();
    const r = rig();
    for (const [name, inputs] of [
      ["git.log", { ref: "--upload-pack=evil" }],
      ["git.branch", { action: "delete", name: "-D" }],
      ["git.checkout", { ref: "-f" }],
    ] as const)
      assert.equal(r.reg.validateInputs(name, inputs).ok, false, name);
  });
});

/** A launcher that records requests and answers from a script (clone needs no network this way). */
class ScriptedLauncher implements Launcher {
  readonly requests: SandboxRequest[] = [];
  constructor(private readonly answers: Partial<SandboxResult>[]) {}
  async run(req: SandboxRequest): Promise<SandboxResult> {
    this.requests.push(req);
    const a = this.answers.shift() ?? {};
    return {
      exit_code: 0,
      signal: null,
      stdout: Buffer.alloc(0),
      stderr: Buffer.alloc(0),
      truncated: false,
      duration_ms: 5,
      limit: null,
      ...a,
    };
  }
  start(): never {
    throw new Error("unused");
  }
}

describe("git.clone", () => {
  test("only https:// URLs without user info are accepted, before git runs", async () => {
    freshRepo();
    for (const url of [
      "http://example.com/r.git",
      "file:///etc/r.git",
      "ext::sh -c touch% /tmp/pwned",
      "ssh://git@example.com/r.git",
      "git://example.com/r.git",
      "git@example.com:r.git",
      "https://user:pw@example.com/r.git",
      "https://token@example.com/r.git",
      "-uhttps://example.com/r.git",
      "HTTPS://example.com/r.git",
      "https://example.com/r.git --upload-pack=x",
    ]) {
      const r = rig();
      const schema = r.reg.validateInputs("git.clone", { url });
      assert.equal(schema.ok, false, `schema refuses ${url}`);
      await refused(direct(r, "git.clone", { url }), "InvalidParams");
      assert.equal(r.launcher.requests.length, 0, url);
    }
  });

  test("clones with the network grant into a new directory and reports head and branch", async () => {
    freshRepo();
    const sha = "a".repeat(40);
    const l = new ScriptedLauncher([{}, { stdout: Buffer.from(`${sha}\nrefs/heads/main\n`) }]);
    const r = rig(l);
    // The scripted "clone" does not create the directory; the head lookup runs inside it.
    const out = await call(r, "git.clone", {
      url: "https://github.com/expressjs/express.git",
      depth: 1,
      ref: "main",
    });
    assert.deepEqual(
      { ...out, duration_ms: 0 },
      { path: "/workspace/express", head: sha, branch: "main", duration_ms: 0 },
    );
    const clone = l.requests[0];
    assert.equal(clone?.network, true);
    assert.equal(clone?.cwd, "/workspace");
    assert.deepEqual(clone?.argv.slice(0, PRELUDE.length), PRELUDE);
    assert.deepEqual(clone?.argv.slice(clone.argv.indexOf("clone")), [
      "clone",
      "--quiet",
      "--template=",
      "--no-recurse-submodules",
      "--depth=1",
      "--branch=main",
      "--",
      "https://github.com/expressjs/express.git",
      "express",
    ]);
    assert.equal(clone?.env?.GIT_ALLOW_PROTOCOL, "https");
    assert.equal(l.requests[1]?.network, false, "only the clone itself gets network");
  });

  test("an existing non-empty destination is AlreadyExists; an escape is PathOutOfScope", async () => {
    freshRepo();
    const l = new ScriptedLauncher([]);
    const r = rig(l);
    await refused(
      call(r, "git.clone", { url: "https://example.com/x.git", path: "repo" }),
      "AlreadyExists",
    );
    await refused(
      call(r, "git.clone", { url: "https://example.com/x.git", path: "../out" }),
      "PathOutOfScope",
    );
    await refused(
      call(r, "git.clone", { url: "https://example.com/x.git", path: ".ssh/x" }),
      "MandatoryDeny",
    );
    assert.equal(l.requests.length, 0);
  });

  test("credentials travel as a Basic header holding only the placeholder, never in the URL or config", async () => {
    freshRepo();
    const sha = "b".repeat(40);
    const l = new ScriptedLauncher([{}, { stdout: Buffer.from(`${sha}\nrefs/heads/main\n`) }]);
    const r = rig(l);
    await call(r, "git.clone", {
      url: "https://github.com/acme/billing.git",
      credentials: { password: "${secret:github_token}" },
    });
    const argv = l.requests[0]?.argv ?? [];
    const header = argv[argv.indexOf("clone") - 1];
    assert.equal(argv[argv.indexOf("clone") - 2], "-c");
    assert.equal(
      header,
      `http.extraHeader=Authorization: Basic ${Buffer.from("x-access-token:${secret:github_token}").toString("base64")}`,
    );
    assert.equal(
      argv.includes("https://github.com/acme/billing.git"),
      true,
      "the URL carries no user info",
    );
    const l2 = new ScriptedLauncher([]);
    const r2 = rig(l2);
    await refused(
      direct(r2, "git.clone", {
        url: "https://github.com/acme/billing.git",
        credentials: { password: "ghp_literaltoken" },
      }),
      "InvalidParams",
    );
    await refused(
      direct(r2, "git.clone", {
        url: "https://github.com/acme/billing.git",
        credentials: { username: "a:b", password: "${secret:github_token}" },
      }),
      "InvalidParams",
    );
    assert.equal(l2.requests.length, 0);
  });

  test("git's failures map to the documented types", async () => {
    freshRepo();
    const cases: [string, string][] = [
      [
        "fatal: unable to access 'https://x.example/r.git/': Received HTTP code 403 from proxy after CONNECT",
        "EgressDenied",
      ],
      [
        "fatal: could not read Username for 'https://x.example': terminal prompts disabled",
        "AuthenticationFailed",
      ],
      [
        "remote: Repository not found.\nfatal: repository 'https://x.example/r.git/' not found",
        "NotFound",
      ],
      [
        "warning: Could not find remote branch v9\nfatal: Remote branch v9 not found in upstream origin",
        "InvalidRef",
      ],
      ["fatal: something else entirely", "GitFailed"],
    ];
    for (const [stderr, type] of cases) {
      const l = new ScriptedLauncher([{ exit_code: 128, stderr: Buffer.from(stderr) }]);
      await refused(call(rig(l), "git.clone", { url: "https://x.example/r.git" }), type);
    }
    const slow = new ScriptedLauncher([{ exit_code: 137, signal: "SIGKILL", limit: "wall" }]);
    await refused(call(rig(slow), "git.clone", { url: "https://x.example/r.git" }), "Timeout");
  });
});
