// The CLI's outside: verbs, --help, exit codes 0/1/2 and the validate output format.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { REPO, runCli } from "../helpers/repo.js";

// Pinned verbs (SPEC §13); later issues add user-token, vault, state, status, selftest, audit export.
const VERBS = [
  ["up"],
  ["boot"],
  ["serve"],
  ["seal"],
  ["config", "validate"],
  ["config", "render"],
  ["health"],
  ["sandbox", "diagnose"],
  ["version"],
  ["agent", "create"],
  ["agent", "list"],
  ["agent", "show"],
  ["agent", "revoke"],
  ["approve", "list"],
  ["approve", "accept"],
  ["approve", "reject"],
  ["approve", "watch"],
  ["audit", "verify"],
  ["audit", "query"],
  ["audit", "tail"],
  ["policy", "check"],
  ["policy", "diff"],
  ["mcp", "stdio"],
];

for (const verb of VERBS) {
  test(`kruxos ${verb.join(" ")} --help prints usage and exits 0`, async () => {
    const r = await runCli([...verb, "--help"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`Usage: kruxos ${verb.join(" ")}`));
  });
}

test("no arguments prints help and exits 2; an unknown verb exits 2", async () => {
  const none = await runCli([]);
  assert.equal(none.code, 2);
  assert.match(none.stdout, /Usage: kruxos <command>/);
  const unknown = await runCli(["frobnicate"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
});

test("an unknown option is a usage error (exit 2)", async () => {
  const r = await runCli(["config", "validate", "--bogus"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Usage: kruxos config validate/);
});

test("config validate prints CODE path: message with the line and exits 1 on errors", async () => {
  const r = await runCli([
    "config",
    "validate",
    "--manifest",
    path.join(REPO, "tests/fixtures/rules/E001.invalid.toml"),
  ]);
  assert.equal(r.code, 1);
  assert.match(
    r.stdout,
    /^E001 dashboard\.port: port 7700 is already used by gateway\.port \(line 3\)$/m,
  );
});

test("config validate exits 0 on warnings only and reports them", async () => {
  const r = await runCli([
    "config",
    "validate",
    "--manifest",
    path.join(REPO, "tests/fixtures/rules/W001.invalid.toml"),
  ]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^W001 image\.tag: /m);
});

test("config validate --json is versioned machine output", async () => {
  const r = await runCli([
    "config",
    "validate",
    "--json",
    "--manifest",
    path.join(REPO, "tests/fixtures/rules/E003.invalid.toml"),
  ]);
  assert.equal(r.code, 1);
  const body = JSON.parse(r.stdout) as {
    version: number;
    valid: boolean;
    findings: { code: string; path: string; line?: number }[];
  };
  assert.equal(body.version, 1);
  assert.equal(body.valid, false);
  assert.deepEqual(
    body.findings.map((f) => [f.code, f.path, f.line]),
    [["E003", "image.user", 3]],
  );
});

test("config validate on a missing file is a usage error, not a crash", async () => {
  const r = await runCli(["config", "validate", "--manifest", "/nonexistent/kruxos.toml"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /cannot read manifest/);
});

test("the agent-facing JSON-RPC method names are exactly the pinned ones", async () => {
  const { RPC_METHODS } = await import("../../src/gateway/index.js");
  assert.deepEqual([...RPC_METHODS].sort(), [
    "approvals.check",
    "approvals.wait",
    "capabilities.call",
    "capabilities.describe",
    "capabilities.invoke",
    "capabilities.list",
  ]);
});

test("CLI commands that need the appliance say so clearly when it is not running", async () => {
  const { tempDir } = await import("../helpers/repo.js");
  const tmp = tempDir();
  try {
    const r = await runCli(["agent", "list", "--home", tmp.dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ApplianceNotRunning|not answering|no user token/);
  } finally {
    tmp.cleanup();
  }
});

test("policy check prints the decision with its per-layer trace; policy diff lists changed tiers", async () => {
  const { tempDir } = await import("../helpers/repo.js");
  const { writeFileSync } = await import("node:fs");
  const tmp = tempDir();
  try {
    const check = await runCli([
      "policy",
      "check",
      "--agent",
      "a",
      "--capability",
      "filesystem.read",
      "--home",
      tmp.dir,
      "--json",
    ]);
    assert.equal(check.code, 0, check.stderr);
    const trace = JSON.parse(check.stdout) as {
      version: number;
      decision: { tier: string; file: string; line: number };
      layers: unknown[];
    };
    assert.equal(trace.version, 1);
    assert.equal(trace.decision.tier, "autonomous");
    assert.match(trace.decision.file, /config\/policy\/system\.yaml$/);
    assert.ok(trace.decision.line > 0);
    assert.ok(trace.layers.length >= 1);
    const oldFile = path.join(tmp.dir, "old.yaml");
    const newFile = path.join(tmp.dir, "new.yaml");
    writeFileSync(
      oldFile,
      "version: 1\ndefaults: { tier: approval_required }\ncapabilities:\n  filesystem.read: { tier: autonomous }\n",
    );
    writeFileSync(
      newFile,
      "version: 1\ndefaults: { tier: approval_required }\ncapabilities:\n  filesystem.read: { tier: notify }\n  git.log: { tier: blocked }\n",
    );
    const diff = await runCli(["policy", "diff", oldFile, newFile, "--json"]);
    assert.equal(diff.code, 0, diff.stderr);
    const changes = (
      JSON.parse(diff.stdout) as { changes: { capability: string; from: string; to: string }[] }
    ).changes;
    assert.deepEqual(changes.map((c) => `${c.capability}:${c.from}>${c.to}`).sort(), [
      "filesystem.read:autonomous>notify",
      "git.log:approval_required>blocked",
    ]);
    const bad = await runCli(["policy", "diff", oldFile, path.join(tmp.dir, "missing.yaml")]);
    assert.equal(bad.code, 2);
  } finally {
    tmp.cleanup();
  }
});
