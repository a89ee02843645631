// The ten filesystem capabilities on a temporary workspace: each happy path, their bounds, the
// encoding round trip, and that every real output validates against the output schema its YAML
// definition publishes to the model.
import assert from "node:assert/strict";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Ajv, type ValidateFunction } from "ajv";
import YAML from "yaml";
import { createFilesystemHandlers } from "../../src/capabilities/filesystem/index.js";
import { REPO } from "../helpers/repo.js";
import { RECOVERY_ACTIONS } from "../helpers/recovery-actions.js";

const NAMES = [
  "read",
  "write",
  "list",
  "move",
  "delete",
  "search",
  "stat",
  "mkdir",
  "copy",
  "watch",
];

interface Definition {
  name: string;
  inputs: Record<string, unknown> & { properties: Record<string, { description?: string }> };
  outputs: Record<string, unknown>;
  common_patterns: { description: string; inputs: Record<string, unknown> }[];
  errors: { type: string }[];
}

const defs = new Map<string, Definition>();
const inputCheck = new Map<string, ValidateFunction>();
const outputCheck = new Map<string, ValidateFunction>();
const ajv = new Ajv({ strict: false, allErrors: true, useDefaults: true });
for (const verb of NAMES) {
  const file = path.join(REPO, "config", "capabilities", "filesystem", `${verb}.yaml`);
  const def = YAML.parse(readFileSync(file, "utf8")) as Definition;
  defs.set(def.name, def);
  inputCheck.set(def.name, ajv.compile(def.inputs));
  outputCheck.set(def.name, ajv.compile(def.outputs));
}

let base: string;
let ws: string;
const small = createFilesystemHandlers({
  maxReadBytes: 1024,
  maxWriteBytes: 1024,
  maxListEntries: 5,
  maxSearchResults: 3,
  watchTimeoutMs: 60_000,
});
const handlers = createFilesystemHandlers({ watchTimeoutMs: 60_000 });

before(() => {
  base = mkdtempSync(path.join(os.tmpdir(), "krux-fs-unit-"));
});
after(() => rmSync(base, { recursive: true, force: true }));

let n = 0;
function freshWorkspace(): string {
  ws = path.join(base, `ws${n++}`);
  mkdirSync(ws);
  return ws;
}

/** Call a capability as the gateway would: inputs validated (defaults applied), outputs checked. */
async function call(
  name: string,
  inputs: Record<string, unknown>,
  opts: { h?: Record<string, (i: unknown, c: never) => Promise<unknown>>; allowed?: string[] } = {},
): Promise<Record<string, unknown>> {
  const withDefaults = structuredClone(inputs);
  const vin = inputCheck.get(name);
  assert.ok(vin, name);
  assert.ok(vin(withDefaults), `${name} inputs: ${JSON.stringify(vin.errors)}`);
  const h = (opts.h ?? handlers)[name];
  assert.ok(h, name);
  const out = (await h(withDefaults, {
    agent: "tester",
    session: "s1",
    workspaceRoot: ws,
    signal: new AbortController().signal,
    callId: "call-1",
    capability: "test",
    mandatoryDenyAllowed: (p: string) => (opts.allowed ?? []).includes(p),
  } as never)) as Record<string, unknown>;
  const vout = outputCheck.get(name);
  assert.ok(vout?.(out), `${name} output ${JSON.stringify(out)}: ${JSON.stringify(vout?.errors)}`);
  return out;
}

async function refused(p: Promise<unknown>, type: string): Promise<Record<string, unknown>> {
  try {
    await p;
  } catch (err) {
    const e = err as { code?: string; data?: Record<string, unknown> };
    assert.equal(e.code, "CapabilityError", String(err));
    assert.equal(e.data?.type, type, JSON.stringify(e.data));
    const recovery = e.data?.recovery as { action: string; description: string }[];
    assert.ok(Array.isArray(recovery) && recovery.length > 0);
    for (const r of recovery) assert.ok(RECOVERY_ACTIONS.includes(r.action), r.action);
    assert.equal(typeof e.data?.capability, "string");
    assert.equal(typeof e.data?.path, "string");
    return e.data ?? {};
  }
  assert.fail(`expected a ${type} CapabilityError`);
}

describe("definitions", () => {
  test("all ten filesystem capabilities are defined, every input described, examples valid", () => {
    assert.deepEqual([...defs.keys()].sort(), NAMES.map((v) => `filesystem.${v}`).sort());
    for (const def of defs.values()) {
      assert.equal(def.inputs.additionalProperties, false, def.name);
      for (const [k, p] of Object.entries(def.inputs.properties))
        assert.ok((p.description ?? "").length >= 5, `${def.name}.${k} has no description`);
      for (const ex of def.common_patterns)
        assert.ok(
          inputCheck.get(def.name)?.(structuredClone(ex.inputs)),
          `${def.name}: ${ex.description}`,
        );
      assert.ok(def.errors.length > 0, def.name);
    }
  });

  test("every handler in createFilesystemHandlers has a definition and vice versa", () => {
    assert.deepEqual(Object.keys(handlers).sort(), [...defs.keys()].sort());
  });
});

describe("read and write", () => {
  before(freshWorkspace);

  test("write creates a file and read returns it as utf8 text with its size", async () => {
    const w = await call("filesystem.write", {
      path: "notes/a.txt",
      content: "héllo\n",
      create_dirs: true,
    });
    assert.deepEqual(w, { path: "notes/a.txt", size: 7, created: true });
    assert.equal(readFileSync(path.join(ws, "notes/a.txt"), "utf8"), "héllo\n");
    const r = await call("filesystem.read", { path: "notes/a.txt" });
    assert.deepEqual(r, { content: "héllo\n", encoding: "utf8", size: 7 });
  });

  test("/workspace absolute paths map to the workspace root", async () => {
    const r = await call("filesystem.read", { path: "/workspace/notes/a.txt" });
    assert.equal(r.content, "héllo\n");
    const w = await call("filesystem.write", { path: "/workspace/b.txt", content: "b" });
    assert.equal(w.path, "b.txt");
    assert.ok(existsSync(path.join(ws, "b.txt")));
  });

  test("writing an existing file replaces it, keeps its mode and reports created: false", async () => {
    chmodSync(path.join(ws, "b.txt"), 0o600);
    const w = await call("filesystem.write", { path: "b.txt", content: "second" });
    assert.equal(w.created, false);
    assert.equal(readFileSync(path.join(ws, "b.txt"), "utf8"), "second");
    assert.equal(statSync(path.join(ws, "b.txt")).mode & 0o777, 0o600);
    assert.deepEqual(
      readdirSync(ws).filter((f) => f.endsWith(".tmp")),
      [],
      "no temporary file is left behind",
    );
  });

  test("every byte value survives a base64 write and comes back as base64", async () => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await call("filesystem.write", {
      path: "bin.dat",
      content: bytes.toString("base64"),
      encoding: "base64",
    });
    assert.deepEqual(readFileSync(path.join(ws, "bin.dat")), bytes);
    const r = await call("filesystem.read", { path: "bin.dat" });
    assert.equal(r.encoding, "base64");
    assert.equal(r.size, 256);
    assert.deepEqual(Buffer.from(String(r.content), "base64"), bytes);
  });

  test("base64 text that is valid UTF-8 reads back as utf8", async () => {
    await call("filesystem.write", {
      path: "t.txt",
      content: Buffer.from("plain").toString("base64"),
      encoding: "base64",
    });
    assert.deepEqual(await call("filesystem.read", { path: "t.txt" }), {
      content: "plain",
      encoding: "utf8",
      size: 5,
    });
  });

  test("invalid base64 is refused with InvalidEncoding and nothing is written", async () => {
    await refused(
      call("filesystem.write", { path: "x.bin", content: "not base64!", encoding: "base64" }),
      "InvalidEncoding",
    );
    assert.equal(existsSync(path.join(ws, "x.bin")), false);
  });

  test("a missing parent is NotFound without create_dirs", async () => {
    await refused(call("filesystem.write", { path: "nope/x.txt", content: "x" }), "NotFound");
    assert.equal(existsSync(path.join(ws, "nope")), false);
  });

  test("reading a directory is IsADirectory, a missing file NotFound, writing a directory IsADirectory", async () => {
    await refused(call("filesystem.read", { path: "notes" }), "IsADirectory");
    await refused(call("filesystem.read", { path: "missing.txt" }), "NotFound");
    await refused(call("filesystem.write", { path: "notes", content: "x" }), "IsADirectory");
  });

  test("a symlink that stays inside the workspace is followed for reads", async () => {
    symlinkSync("notes/a.txt", path.join(ws, "alias.txt"));
    symlinkSync("notes", path.join(ws, "alias-dir"));
    assert.equal((await call("filesystem.read", { path: "alias.txt" })).content, "héllo\n");
    assert.equal((await call("filesystem.read", { path: "alias-dir/a.txt" })).content, "héllo\n");
  });

  test("writing onto an inside symlink is refused with IsASymlink and the target is unchanged", async () => {
    await refused(call("filesystem.write", { path: "alias.txt", content: "x" }), "IsASymlink");
    assert.equal(readFileSync(path.join(ws, "notes/a.txt"), "utf8"), "héllo\n");
  });
});

describe("size bounds", () => {
  before(freshWorkspace);

  test("a file larger than the read bound is TooLarge; one at the bound is read", async () => {
    writeFileSync(path.join(ws, "big"), Buffer.alloc(1025, 97));
    writeFileSync(path.join(ws, "ok"), Buffer.alloc(1024, 97));
    const d = await refused(call("filesystem.read", { path: "big" }, { h: small }), "TooLarge");
    assert.equal(d.limit, 1024);
    assert.equal((await call("filesystem.read", { path: "ok" }, { h: small })).size, 1024);
  });

  test("content larger than the write bound is TooLarge and nothing is written", async () => {
    await refused(
      call("filesystem.write", { path: "w", content: "a".repeat(1025) }, { h: small }),
      "TooLarge",
    );
    await refused(
      call(
        "filesystem.write",
        { path: "w", content: Buffer.alloc(2000).toString("base64"), encoding: "base64" },
        { h: small },
      ),
      "TooLarge",
    );
    assert.equal(existsSync(path.join(ws, "w")), false);
  });

  test("list stops at the entry bound with truncated: true", async () => {
    for (let i = 0; i < 8; i++) writeFileSync(path.join(ws, `f${i}`), "");
    const r = await call("filesystem.list", {}, { h: small });
    assert.equal((r.entries as unknown[]).length, 5);
    assert.equal(r.truncated, true);
  });

  test("search stops at the result bound with truncated: true", async () => {
    writeFileSync(path.join(ws, "many.txt"), "hit\n".repeat(10));
    const r = await call("filesystem.search", { pattern: "hit" }, { h: small });
    assert.equal((r.matches as unknown[]).length, 3);
    assert.equal(r.truncated, true);
  });
});

describe("list, stat, mkdir", () => {
  before(() => {
    freshWorkspace();
    mkdirSync(path.join(ws, "src/lib"), { recursive: true });
    writeFileSync(path.join(ws, "src/main.ts"), "main");
    writeFileSync(path.join(ws, "src/lib/util.ts"), "util");
    writeFileSync(path.join(ws, ".hidden"), "h");
    symlinkSync("src", path.join(ws, "link"));
  });

  test("list shows one level, sorted, with types; symlinks are listed and not followed", async () => {
    const r = await call("filesystem.list", {});
    const entries = r.entries as { name: string; path: string; type: string }[];
    assert.deepEqual(
      entries.map((e) => [e.name, e.type]),
      [
        ["link", "symlink"],
        ["src", "directory"],
      ],
    );
    assert.equal(r.truncated, false);
  });

  test("list recursive walks the tree and include_hidden shows dot files", async () => {
    const r = await call("filesystem.list", { path: "src", recursive: true });
    assert.deepEqual(
      (r.entries as { path: string }[]).map((e) => e.path),
      ["src/lib", "src/lib/util.ts", "src/main.ts"],
    );
    const h = await call("filesystem.list", { include_hidden: true });
    assert.ok((h.entries as { name: string }[]).some((e) => e.name === ".hidden"));
  });

  test("list of a file is NotADirectory", async () => {
    await refused(call("filesystem.list", { path: "src/main.ts" }), "NotADirectory");
  });

  test("stat describes files, directories, symlinks and the root", async () => {
    chmodSync(path.join(ws, "src/main.ts"), 0o640);
    const f = await call("filesystem.stat", { path: "src/main.ts" });
    assert.equal(f.type, "file");
    assert.equal(f.size, 4);
    assert.equal(f.mode, "0640");
    assert.equal(f.nlink, 1);
    assert.equal((await call("filesystem.stat", { path: "src" })).type, "directory");
    assert.equal((await call("filesystem.stat", { path: "link" })).type, "symlink");
    assert.equal((await call("filesystem.stat", { path: "/workspace" })).path, ".");
  });

  test("mkdir creates, refuses an existing one without parents, accepts it with parents", async () => {
    assert.deepEqual(await call("filesystem.mkdir", { path: "out" }), {
      path: "out",
      created: true,
    });
    await refused(call("filesystem.mkdir", { path: "out" }), "AlreadyExists");
    assert.deepEqual(await call("filesystem.mkdir", { path: "out", parents: true }), {
      path: "out",
      created: false,
    });
    await refused(call("filesystem.mkdir", { path: "deep/er" }), "NotFound");
    assert.equal(
      (await call("filesystem.mkdir", { path: "deep/er/est", parents: true })).created,
      true,
    );
    assert.ok(statSync(path.join(ws, "deep/er/est")).isDirectory());
  });
});

describe("move, copy, delete", () => {
  before(() => {
    freshWorkspace();
    writeFileSync(path.join(ws, "a.txt"), "A");
    writeFileSync(path.join(ws, "b.txt"), "B");
    mkdirSync(path.join(ws, "tree/sub"), { recursive: true });
    writeFileSync(path.join(ws, "tree/one"), "1");
    writeFileSync(path.join(ws, "tree/sub/two"), "22");
    symlinkSync("one", path.join(ws, "tree/link"));
  });

  test("move renames a file and refuses to replace without overwrite", async () => {
    assert.deepEqual(await call("filesystem.move", { from: "a.txt", to: "c.txt" }), {
      from: "a.txt",
      to: "c.txt",
      type: "file",
      overwritten: false,
    });
    await refused(call("filesystem.move", { from: "c.txt", to: "b.txt" }), "AlreadyExists");
    assert.equal(readFileSync(path.join(ws, "b.txt"), "utf8"), "B");
    const r = await call("filesystem.move", { from: "c.txt", to: "b.txt", overwrite: true });
    assert.equal(r.overwritten, true);
    assert.equal(readFileSync(path.join(ws, "b.txt"), "utf8"), "A");
    assert.equal(existsSync(path.join(ws, "c.txt")), false);
  });

  test("move of a directory into itself is InvalidTarget; onto a directory is IsADirectory", async () => {
    await refused(call("filesystem.move", { from: "tree", to: "tree/sub/x" }), "InvalidTarget");
    mkdirSync(path.join(ws, "empty"));
    await refused(
      call("filesystem.move", { from: "b.txt", to: "empty", overwrite: true }),
      "IsADirectory",
    );
  });

  test("copy duplicates a file and refuses an existing destination without overwrite", async () => {
    const r = await call("filesystem.copy", { from: "b.txt", to: "b2.txt" });
    assert.deepEqual(r, {
      from: "b.txt",
      to: "b2.txt",
      type: "file",
      files: 1,
      directories: 0,
      bytes: 1,
      skipped: 0,
    });
    assert.equal(readFileSync(path.join(ws, "b2.txt"), "utf8"), "A");
    await refused(call("filesystem.copy", { from: "tree/one", to: "b2.txt" }), "AlreadyExists");
    await call("filesystem.copy", { from: "tree/one", to: "b2.txt", overwrite: true });
    assert.equal(readFileSync(path.join(ws, "b2.txt"), "utf8"), "1");
  });

  test("copy of a directory copies files and subdirectories and skips symlinks", async () => {
    const r = await call("filesystem.copy", { from: "tree", to: "tree2" });
    assert.deepEqual(r, {
      from: "tree",
      to: "tree2",
      type: "directory",
      files: 2,
      directories: 1,
      bytes: 3,
      skipped: 1,
    });
    assert.equal(readFileSync(path.join(ws, "tree2/sub/two"), "utf8"), "22");
    assert.equal(existsSync(path.join(ws, "tree2/link")), false);
    await refused(call("filesystem.copy", { from: "tree", to: "tree2" }), "AlreadyExists");
    await refused(call("filesystem.copy", { from: "tree", to: "tree/sub/again" }), "InvalidTarget");
  });

  test("move renames a directory with its contents", async () => {
    const r = await call("filesystem.move", { from: "tree2", to: "tree3" });
    assert.equal(r.type, "directory");
    assert.equal(readFileSync(path.join(ws, "tree3/sub/two"), "utf8"), "22");
  });

  test("delete removes a file, refuses a non-empty directory without recursive, removes it with", async () => {
    assert.deepEqual(await call("filesystem.delete", { path: "b2.txt" }), {
      path: "b2.txt",
      type: "file",
      entries: 1,
    });
    await refused(call("filesystem.delete", { path: "tree3" }), "DirectoryNotEmpty");
    const r = await call("filesystem.delete", { path: "tree3", recursive: true });
    assert.deepEqual(r, { path: "tree3", type: "directory", entries: 4 });
    assert.equal(existsSync(path.join(ws, "tree3")), false);
    await refused(call("filesystem.delete", { path: "tree3" }), "NotFound");
  });

  test("deleting a symlink removes the link and leaves its target", async () => {
    assert.equal((await call("filesystem.delete", { path: "tree/link" })).type, "symlink");
    assert.equal(existsSync(path.join(ws, "tree/link")), false);
    assert.equal(readFileSync(path.join(ws, "tree/one"), "utf8"), "1");
  });

  test("the workspace root cannot be deleted", async () => {
    await refused(
      call("filesystem.delete", { path: "/workspace", recursive: true }),
      "PathOutOfScope",
    );
    assert.ok(existsSync(ws));
  });
});

describe("search", () => {
  before(() => {
    freshWorkspace();
    mkdirSync(path.join(ws, "src"));
    writeFileSync(path.join(ws, "src/a.ts"), "const x = 1;\n// TODO fix\nconst Y = 2;\n");
    writeFileSync(path.join(ws, "src/b.md"), "todo in markdown\n");
    writeFileSync(path.join(ws, "bin.dat"), Buffer.from([0x54, 0x4f, 0x44, 0x4f, 0, 1, 2]));
    writeFileSync(path.join(ws, ".secret-notes"), "TODO hidden\n");
  });

  test("a literal search finds lines with numbers, skipping binary and hidden files", async () => {
    const r = await call("filesystem.search", { pattern: "TODO" });
    assert.deepEqual(r, {
      matches: [{ path: "src/a.ts", line: 2, text: "// TODO fix" }],
      truncated: false,
    });
  });

  test("case_sensitive false, glob, regex and a single-file path narrow or widen the search", async () => {
    const ci = await call("filesystem.search", { pattern: "todo", case_sensitive: false });
    assert.deepEqual(
      (ci.matches as { path: string }[]).map((m) => m.path),
      ["src/a.ts", "src/b.md"],
    );
    const g = await call("filesystem.search", {
      pattern: "todo",
      case_sensitive: false,
      glob: "*.md",
    });
    assert.deepEqual(
      (g.matches as { path: string }[]).map((m) => m.path),
      ["src/b.md"],
    );
    const g2 = await call("filesystem.search", { pattern: "const", glob: "src/**/*.{ts,js}" });
    assert.equal((g2.matches as unknown[]).length, 2);
    const re = await call("filesystem.search", { pattern: "^const [A-Z] =", regex: true });
    assert.deepEqual(re.matches, [{ path: "src/a.ts", line: 3, text: "const Y = 2;" }]);
    const one = await call("filesystem.search", { pattern: "const", path: "src/a.ts" });
    assert.equal((one.matches as unknown[]).length, 2);
    const hidden = await call("filesystem.search", { pattern: "hidden", include_hidden: true });
    assert.equal((hidden.matches as unknown[]).length, 1);
  });

  test("an invalid regex is InvalidPattern", async () => {
    await refused(call("filesystem.search", { pattern: "(", regex: true }), "InvalidPattern");
  });

  test("a catastrophically backtracking regex is refused within its deadline, not waited on", async () => {
    writeFileSync(path.join(ws, "src/evil.txt"), `${"a".repeat(40)}!\n`);
    const started = Date.now();
    await refused(call("filesystem.search", { pattern: "^(a+)+$", regex: true }), "InvalidPattern");
    assert.ok(Date.now() - started < 5000, "refused promptly");
  });
});

describe("watch", () => {
  before(() => {
    freshWorkspace();
    writeFileSync(path.join(ws, "keep.txt"), "1");
    writeFileSync(path.join(ws, "gone.txt"), "1");
    writeFileSync(path.join(ws, "old.txt"), "1");
  });

  test("changes during the window come back as created, modified, deleted and renamed", async () => {
    const pending = call("filesystem.watch", { timeout_s: 1.5 });
    setTimeout(() => {
      writeFileSync(path.join(ws, "new.txt"), "n");
      writeFileSync(path.join(ws, "keep.txt"), "changed");
      unlinkSync(path.join(ws, "gone.txt"));
      renameSync(path.join(ws, "old.txt"), path.join(ws, "renamed.txt"));
    }, 300);
    const r = await pending;
    const events = r.events as { type: string; path: string; from?: string }[];
    assert.deepEqual(events.map((e) => [e.type, e.path, e.from ?? ""]).sort(), [
      ["created", "new.txt", ""],
      ["deleted", "gone.txt", ""],
      ["modified", "keep.txt", ""],
      ["renamed", "renamed.txt", "old.txt"],
    ]);
    assert.equal(r.truncated, false);
  });

  test("watch returns early with truncated once max_events is reached", async () => {
    const started = Date.now();
    const pending = call("filesystem.watch", { timeout_s: 20, max_events: 1 });
    setTimeout(() => writeFileSync(path.join(ws, "x1"), ""), 300);
    const r = await pending;
    assert.equal((r.events as unknown[]).length, 1);
    assert.equal(r.truncated, true);
    assert.ok(Date.now() - started < 10_000);
  });

  test("a quiet window returns no events after timeout_s", async () => {
    const started = Date.now();
    const r = await call("filesystem.watch", { timeout_s: 0.5 });
    assert.deepEqual(r, { events: [], truncated: false });
    assert.ok(Date.now() - started >= 450);
  });

  test("watching a file is NotADirectory", async () => {
    await refused(call("filesystem.watch", { path: "keep.txt", timeout_s: 1 }), "NotADirectory");
    assert.ok(lstatSync(path.join(ws, "keep.txt")).isFile());
  });
});
