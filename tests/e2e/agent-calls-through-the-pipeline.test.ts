// An agent's calls through the real appliance: listing, an autonomous call, a call queued for
// approval and run exactly once after an operator accepts it, a rejection, a denial — each in
// the audit chain, which verifies intact.
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { runCli } from "../helpers/repo.js";
import { RpcClient } from "../helpers/rpc-client.js";
import {
  portOf,
  type Appliance,
  type ManifestObject,
  readyHostWithAgent,
} from "../contract/harness.js";

let a: Appliance;
let m: ManifestObject;
let home: string;
let token: string;
let rpc: RpcClient;
let cli: (args: readonly string[]) => ReturnType<typeof runCli>;

before(async () => {
  ({ a, m, token, cli } = await readyHostWithAgent("alice"));
  home = a.home ?? "";
  rpc = await RpcClient.connect(portOf(m, "gateway"), token);
});
after(async () => {
  rpc?.close();
  await a.cleanup();
});

test("capabilities.list shows what the agent may call, with its tier", async () => {
  const r = await rpc.call("capabilities.list");
  const caps = (r.result?.capabilities ?? []) as { name: string; tier: string }[];
  const names = caps.map((c) => c.name);
  assert.ok(names.includes("filesystem.read"));
  assert.ok(names.includes("agent.whoami"));
  assert.equal(caps.find((c) => c.name === "filesystem.read")?.tier, "autonomous");
  assert.ok(names.includes("process.run"), "sandboxed capabilities are listed");
  assert.ok(!names.includes("comms.send"), "capabilities without a handler are not listed");
});

test("an autonomous call answers success, data, duration and its audit seq", async () => {
  writeFileSync(path.join(home, "workspace", "notes.txt"), "hello");
  const r = await rpc.invoke("filesystem.read", { path: "notes.txt" });
  assert.equal(r.result?.success, true);
  assert.deepEqual(r.result?.data, { content: "hello", encoding: "utf8", size: 5 });
  assert.equal(typeof r.result?.duration_ms, "number");
  assert.ok(Number(r.result?.audit_seq) > 0);
});

test("an approval-required call is queued once, runs exactly once after acceptance, and its result is kept", async () => {
  const inputs = { path: "out/report.txt", content: "approved", create_dirs: true };
  const first = await rpc.invoke("filesystem.write", inputs);
  assert.equal(first.error?.code, -32002);
  assert.equal(first.error?.data.type, "ApprovalRequired");
  const id = String(first.error?.data.approval_id);
  assert.ok(first.error?.data.expires_at);
  const again = await rpc.invoke("filesystem.write", inputs);
  assert.equal(again.error?.data.approval_id, id, "the same pending call gets the same id");
  assert.equal(
    existsSync(path.join(home, "workspace", "out", "report.txt")),
    false,
    "nothing ran before acceptance",
  );

  const waiting = rpc.call("approvals.wait", { approval_id: id, timeout_s: 30 });
  const accepted = await cli(["approve", "accept", id, "--reason", "checked"]);
  assert.equal(accepted.code, 0, accepted.stderr);
  const done = await waiting;
  assert.equal(done.result?.status, "completed", JSON.stringify(done));
  assert.equal((done.result?.result as { success: boolean }).success, true);
  assert.equal(readFileSync(path.join(home, "workspace", "out", "report.txt"), "utf8"), "approved");
  const check = await rpc.call("approvals.check", { approval_id: id });
  assert.equal(check.result?.approver, "admin");
  assert.equal(check.result?.reason, "checked");
  const twice = await cli(["approve", "accept", id]);
  assert.equal(twice.code, 1, "an approval is decided once");
  const writes = (
    await cli(["audit", "query", "--capability", "filesystem.write", "--json", "--limit", "50"])
  ).stdout;
  const records = JSON.parse(writes) as { kind: string; approval_id?: string; actor?: string }[];
  assert.equal(
    records.filter((r) => r.kind === "capability.intent" && r.approval_id === id).length,
    1,
    "executed exactly once",
  );
  assert.ok(records.some((r) => r.kind === "approval.accepted" && r.actor === "admin"));
});

test("a rejected approval answers -32003 with the approver and reason", async () => {
  const r = await rpc.invoke("filesystem.mkdir", { path: "nope" });
  const id = String(r.error?.data.approval_id);
  const waiting = rpc.call("approvals.wait", { approval_id: id, timeout_s: 30 });
  assert.equal((await cli(["approve", "reject", id, "--reason", "not today"])).code, 0);
  const w = await waiting;
  assert.equal(w.error?.code, -32003);
  assert.equal(w.error?.data.type, "ApprovalRejected");
  assert.equal(w.error?.data.approver, "admin");
  assert.equal(w.error?.data.reason, "not today");
  assert.equal(existsSync(path.join(home, "workspace", "nope")), false);
});

test("another agent's approval cannot be checked", async () => {
  const r = await rpc.call("approvals.check", { approval_id: "apr_doesnotexist" });
  assert.equal(r.error?.code, -32602);
});

test("a policy denial names the rule and file:line, and is audited", async () => {
  writeFileSync(
    path.join(home, "data", "policy", "agents", "alice.yaml"),
    'version: 1\ncapabilities:\n  filesystem.stat:\n    tier: autonomous\n    rules:\n      - id: no-secrets\n        when: { inputs.path: { prefix: "secret" } }\n        tier: blocked\n',
  );
  let r;
  for (let i = 0; i < 50; i++) {
    r = await rpc.invoke("filesystem.stat", { path: "secret.txt" });
    if (r.error?.code === -32001) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.equal(r?.error?.code, -32001, JSON.stringify(r));
  assert.equal(r?.error?.data.rule, "no-secrets");
  assert.match(String(r?.error?.data.policy), /alice\.yaml:6$/);
  const denied = JSON.parse(
    (await cli(["audit", "query", "--outcome", "denied", "--json"])).stdout,
  ) as { capability: string; decision: { rule: string } }[];
  assert.ok(
    denied.some((d) => d.capability === "filesystem.stat" && d.decision.rule === "no-secrets"),
  );
});

test("an invalid policy file keeps the old generation and is audited as rejected", async () => {
  const before = JSON.parse((await fetchJson(portOf(m, "gateway"), "/v1/meta")).body) as {
    policy_generation: number;
  };
  writeFileSync(
    path.join(home, "data", "policy", "agents", "alice.yaml"),
    "version: 1\ncapabilities:\n  filesystem.stat: { tier: sometimes }\n",
  );
  let rejected = false;
  for (let i = 0; i < 50 && !rejected; i++) {
    const q = JSON.parse(
      (await cli(["audit", "query", "--kind", "config.rejected", "--json"])).stdout,
    ) as unknown[];
    rejected = q.length > 0;
    if (!rejected) await new Promise((res) => setTimeout(res, 100));
  }
  assert.ok(rejected, "config.rejected audited");
  const after = JSON.parse((await fetchJson(portOf(m, "gateway"), "/v1/meta")).body) as {
    policy_generation: number;
  };
  assert.equal(after.policy_generation, before.policy_generation);
  const r = await rpc.invoke("filesystem.stat", { path: "secret.txt" });
  assert.equal(r.error?.code, -32001, "the previous generation is still in force");
});

test("a mixed batch answers each request in order", async () => {
  const replies = await rpc.batch([
    {
      jsonrpc: "2.0",
      id: "a",
      method: "capabilities.invoke",
      params: { name: "agent.whoami", inputs: {} },
    },
    { jsonrpc: "2.0", method: "capabilities.list" },
    { jsonrpc: "2.0", id: "b", method: "no.such.method" },
  ]);
  assert.equal(replies.length, 2);
  assert.equal((replies[0]?.result?.data as { agent: string }).agent, "alice");
  assert.equal(replies[1]?.error?.code, -32601);
});

test("the audit chain of all of the above verifies intact", async () => {
  const v = await cli(["audit", "verify", "--json"]);
  assert.equal(v.code, 0, v.stdout);
  const r = JSON.parse(v.stdout) as { ok: boolean; count: number; keyed: boolean };
  assert.equal(r.ok, true);
  assert.equal(r.keyed, true);
  assert.ok(r.count > 10);
});

test("the appliance's metrics cover calls, decisions, approvals, audit and connections", async () => {
  const { httpGet } = await import("../helpers/repo.js");
  const body = (
    await httpGet(`http://127.0.0.1:${portOf(m, "observability", "metrics_port")}/metrics`)
  ).body;
  for (const re of [
    /^kruxos_calls_total\{capability="filesystem\.read",outcome="ok",program="gateway"\} [1-9]/m,
    /^kruxos_capability_duration_seconds_count\{[^}]*capability="filesystem\.read"[^}]*\} [1-9]/m,
    /^kruxos_policy_decisions_total\{tier="blocked",program="gateway"\} [1-9]/m,
    /^kruxos_policy_evaluation_seconds_count\{[^}]*\} [1-9]/m,
    /^kruxos_approvals_pending\{program="gateway"\} \d/m,
    /^kruxos_audit_records_total\{kind="capability\.intent",program="gateway"\} [1-9]/m,
    /^kruxos_audit_append_seconds_count\{[^}]*\} [1-9]/m,
    /^kruxos_connections\{transport="rpc",program="gateway"\} 1/m,
  ])
    assert.match(body, re);
});

test("a revoked agent is refused at once", async () => {
  assert.equal((await cli(["agent", "revoke", "alice"])).code, 0);
  await assert.rejects(
    RpcClient.connect(portOf(m, "gateway"), token),
    (e: Error & { status?: number }) => e.status === 401,
  );
});

async function fetchJson(port: number, p: string): Promise<{ status: number; body: string }> {
  return a.get(port, p);
}
