// Agents and tokens; the approval queue's guarantees.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { ApprovalQueue, inputsDigest } from "../../src/approvals/index.js";
import {
  authenticateAgent,
  createAgent,
  integrityCheck,
  listAgents,
  migrateAgents,
  openDatabase,
  revokeAgent,
  stateHealth,
} from "../../src/state/index.js";
import { tempDir } from "../helpers/repo.js";

test("an agent token is 64 lowercase hex, shown once, stored only as a hash, and revocable", (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const db = openDatabase(path.join(dir, "agents.db"));
  t.after(() => db.close());
  migrateAgents(db);
  const made = createAgent(db, "researcher");
  assert.ok(made.ok);
  assert.match(made.token, /^[0-9a-f]{64}$/);
  assert.deepEqual(createAgent(db, "researcher"), { ok: false, reason: "exists" });
  assert.deepEqual(createAgent(db, "Bad Name"), { ok: false, reason: "invalid_name" });
  const stored = JSON.stringify(db.prepare("SELECT * FROM agents").all());
  assert.equal(stored.includes(made.token), false);
  assert.deepEqual(authenticateAgent(db, made.token), { ok: true, name: "researcher" });
  assert.deepEqual(authenticateAgent(db, undefined), { ok: false, reason: "missing" });
  assert.deepEqual(authenticateAgent(db, "krx_user_" + "0".repeat(64)), {
    ok: false,
    reason: "malformed",
  });
  assert.deepEqual(authenticateAgent(db, made.token.toUpperCase()), {
    ok: false,
    reason: "malformed",
  });
  assert.deepEqual(authenticateAgent(db, "0".repeat(64)), { ok: false, reason: "unknown" });
  assert.equal(revokeAgent(db, "researcher"), true);
  assert.equal(revokeAgent(db, "researcher"), false);
  assert.deepEqual(authenticateAgent(db, made.token), { ok: false, reason: "revoked" });
  assert.equal(listAgents(db)[0]?.revoked_at !== null, true);
});

function queue(
  t: { after: (fn: () => void) => void },
  now: () => Date = () => new Date(),
): { q: ApprovalQueue; file: string } {
  const { dir, cleanup } = tempDir();
  const file = path.join(dir, "approval_queue.db");
  const db = openDatabase(file);
  t.after(() => {
    db.close();
    cleanup();
  });
  return { q: new ApprovalQueue(db, { ttlMs: 60_000, now }), file };
}

const call = {
  agent: "a",
  capability: "process.run",
  inputs: { command: "make", env: { B: "2", A: "1" } },
  generation: 3,
  rule: "r",
};

test("the same agent re-invoking identical inputs while pending gets the same approval id", (t) => {
  const { q } = queue(t);
  const first = q.request(call);
  const again = q.request({ ...call, inputs: { env: { A: "1", B: "2" }, command: "make" } });
  assert.equal(first.created, true);
  assert.equal(again.created, false);
  assert.equal(again.approval.id, first.approval.id);
  assert.equal(
    first.approval.inputs_digest,
    inputsDigest({ command: "make", env: { A: "1", B: "2" } }),
  );
  assert.notEqual(q.request({ ...call, agent: "b" }).approval.id, first.approval.id);
  assert.notEqual(
    q.request({ ...call, inputs: { command: "make all" } }).approval.id,
    first.approval.id,
  );
});

test("an accepted call is claimed for execution exactly once and its result is kept", (t) => {
  const { q } = queue(t);
  const { approval } = q.request(call);
  assert.equal(q.claim(approval.id), undefined, "a pending call cannot be executed");
  const d = q.decide(approval.id, { decision: "accept", approver: "admin", reason: "looks fine" });
  assert.ok(d.ok);
  assert.equal(d.approval.approver, "admin");
  assert.equal(q.decide(approval.id, { decision: "reject", approver: "x" }).ok, false);
  const claimed = [q.claim(approval.id), q.claim(approval.id), q.claim(approval.id)].filter(
    Boolean,
  );
  assert.equal(claimed.length, 1);
  assert.deepEqual(claimed[0]?.inputs, call.inputs);
  q.complete(approval.id, { result: { exit_code: 0 } });
  assert.equal(q.get(approval.id)?.status, "completed");
  assert.deepEqual(q.get(approval.id)?.result, { exit_code: 0 });
});

test("expiry is a denial, and a new invocation after expiry queues a new approval", (t) => {
  let now = new Date("2026-01-01T00:00:00Z");
  const { q } = queue(t, () => now);
  const { approval } = q.request(call);
  now = new Date(now.getTime() + 61_000);
  assert.equal(q.get(approval.id)?.status, "expired");
  assert.equal(q.decide(approval.id, { decision: "accept", approver: "late" }).ok, false);
  assert.notEqual(q.request(call).approval.id, approval.id);
});

test("the queue survives a restart", (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const file = path.join(dir, "approval_queue.db");
  const db1 = openDatabase(file);
  const id = new ApprovalQueue(db1).request(call).approval.id;
  db1.close();
  const db2 = openDatabase(file);
  t.after(() => db2.close());
  const q2 = new ApprovalQueue(db2);
  assert.equal(q2.get(id)?.status, "pending");
  assert.equal(q2.request(call).approval.id, id);
});

test("approvals.wait resolves on a decision and on timeout", async (t) => {
  const { q } = queue(t);
  const { approval } = q.request(call);
  const timedOut = await q.wait(approval.id, 50);
  assert.equal(timedOut?.status, "pending");
  const waiting = q.wait(approval.id, 5000);
  setTimeout(
    () => q.decide(approval.id, { decision: "reject", approver: "admin", reason: "no" }),
    20,
  );
  const decided = await waiting;
  assert.equal(decided?.status, "rejected");
  assert.equal(decided?.reason, "no");
});

test("the pending count follows requests, decisions and expiry", (t) => {
  let now = new Date("2026-01-01T00:00:00Z");
  const { q } = queue(t, () => now);
  assert.equal(q.countPending(), 0);
  const first = q.request(call).approval;
  q.request({ ...call, agent: "b" });
  assert.equal(q.countPending(), 2);
  q.decide(first.id, { decision: "reject", approver: "admin" });
  assert.equal(q.countPending(), 1);
  now = new Date(now.getTime() + 61_000);
  assert.equal(q.countPending(), 0);
});

test("the state store's health: ok in WAL mode, failing when the file is gone or damaged", (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const file = path.join(dir, "agents.db");
  const db = openDatabase(file);
  t.after(() => db.close());
  migrateAgents(db);
  const integrity = integrityCheck(db);
  assert.equal(integrity, "ok");
  assert.equal(stateHealth(db, file, integrity).status, "ok");
  assert.equal(
    stateHealth(db, file, "*** in database main ***\nPage 3 is never used").status,
    "failing",
  );
  rmSync(file);
  assert.equal(stateHealth(db, file, integrity).status, "failing");
});
