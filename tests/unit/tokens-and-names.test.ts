// Tokens are stored one way everywhere (SHA-256, constant-time compare), users live beside agents
// in agents.db, and an agent name that one place accepts is accepted by all of them.
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { hashToken, mintToken, tokenHashMatches } from "../../src/core/index.js";
import { PolicyEngine, formatProblem } from "../../src/policy/index.js";
import {
  authenticateUser,
  createAgent,
  ensureFirstAdmin,
  migrateAgents,
  openDatabase,
} from "../../src/state/index.js";
import { tempDir } from "../helpers/repo.js";

test("a token is 256 random bits in hex after its prefix, and only its SHA-256 is compared", () => {
  const token = mintToken("krx_user_");
  assert.match(token, /^krx_user_[0-9a-f]{64}$/);
  assert.notEqual(mintToken(), mintToken());
  const h = hashToken(token);
  assert.equal(h.length, 32);
  assert.ok(tokenHashMatches(hashToken(token), h));
  assert.ok(!tokenHashMatches(hashToken(mintToken()), h));
  assert.ok(!tokenHashMatches(undefined, h));
  assert.ok(!tokenHashMatches(h.subarray(0, 16), h), "a shorter hash is a mismatch, not a throw");
});

test("the first admin is made once, its token file is 0600, and the token authenticates", (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const db = openDatabase(path.join(dir, "agents.db"));
  t.after(() => db.close());
  const secrets = path.join(dir, "secrets");
  const file = ensureFirstAdmin(db, secrets);
  assert.equal(file, path.join(secrets, "admin.token"));
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const token = readFileSync(file, "utf8").trim();
  assert.deepEqual(authenticateUser(db, token), { name: "admin", role: "admin" });
  assert.equal(ensureFirstAdmin(db, secrets), undefined);
  assert.equal(authenticateUser(db, token.slice("krx_user_".length)), undefined);
  const stored = JSON.stringify(db.prepare("SELECT * FROM users").all());
  assert.equal(stored.includes(token), false);
});

const POLICY = "version: 1\ndefaults: { tier: approval_required }\n";

function policyAccepts(agent: string): { file: boolean; section: boolean } {
  const file = PolicyEngine.fromSources([
    { kind: "system", file: "/p/system.yaml", text: POLICY },
    { kind: "agent", agent, file: `/p/agents/${agent}.yaml`, text: POLICY },
  ]).result;
  const section = PolicyEngine.fromSources([
    {
      kind: "system",
      file: "/p/system.yaml",
      text: `${POLICY}agents:\n  ${JSON.stringify(agent)}:\n    capabilities:\n      filesystem.read: { tier: autonomous }\n`,
    },
  ]).result;
  if (!section.ok && agent === "alice") assert.fail(section.problems.map(formatProblem).join("; "));
  return { file: file.ok, section: section.ok };
}

test("agents.db and policy accept and refuse the same agent names", (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const db = openDatabase(path.join(dir, "agents.db"));
  t.after(() => db.close());
  migrateAgents(db);
  for (const name of ["alice", "ci-bot_2", "a", "a".repeat(63)])
    assert.deepEqual(
      [createAgent(db, name).ok, policyAccepts(name)],
      [true, { file: true, section: true }],
      name,
    );
  for (const name of ["1bot", "-x", "_x", "Alice", "a".repeat(64), "a.b"])
    assert.deepEqual(
      [createAgent(db, name).ok, policyAccepts(name)],
      [false, { file: false, section: false }],
      name,
    );
});
