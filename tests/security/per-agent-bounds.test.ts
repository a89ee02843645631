// Collections a client can add to are bounded per agent: calls waiting for an operator, and open
// WebSockets. Past a bound the client gets a clear error it can act on, the refusal is audited,
// and room comes back as soon as the operator (or the client) frees some.
import assert from "node:assert/strict";
import { test } from "node:test";
import { RpcClient } from "../helpers/rpc-client.js";
import { portOf, readyHostForFile } from "../contract/harness.js";

const MAX_PENDING = 3;
const MAX_CONNECTIONS = 4;

const host = readyHostForFile("bounded", (m) => ({
  ...m,
  gateway: {
    ...m.gateway,
    max_pending_approvals: MAX_PENDING,
    max_connections_per_agent: MAX_CONNECTIONS,
  },
}));

test("an agent cannot queue more than max_pending_approvals calls for an operator", async () => {
  const c = await RpcClient.connect(portOf(host.m, "gateway"), host.token);
  try {
    // filesystem.write needs an operator's approval under the shipped policy.
    const write = (n: number) =>
      c.invoke("filesystem.write", { path: `notes/${n}.txt`, content: String(n) });
    const ids: string[] = [];
    for (let n = 0; n < MAX_PENDING; n++) {
      const r = await write(n);
      assert.equal(r.error?.code, -32002, JSON.stringify(r));
      ids.push(String(r.error?.data.approval_id));
    }
    // The same call again is the same pending approval, not a new one.
    assert.equal((await write(0)).error?.data.approval_id, ids[0]);
    const full = await write(MAX_PENDING);
    assert.equal(full.error?.code, -32004, JSON.stringify(full));
    assert.equal(full.error?.data.type, "RateLimited");
    assert.equal(full.error?.data.limit, "pending_approvals");
    assert.equal(full.error?.data.max, MAX_PENDING);
    assert.equal(full.error?.data.pending, MAX_PENDING);
    const actions = (full.error?.data.recovery as { action: string }[]).map((r) => r.action);
    assert.ok(actions.includes("wait_for_approval"), actions.join());
    // An operator decides one: room for one more.
    const rejected = await host.cli(["approve", "reject", ids[0] ?? "", "--reason", "not now"]);
    assert.equal(rejected.code, 0, rejected.stderr);
    assert.equal((await write(MAX_PENDING)).error?.code, -32002);
    const q = await host.cli([
      "audit",
      "query",
      "--agent",
      "bounded",
      "--outcome",
      "denied",
      "--json",
    ]);
    const denied = JSON.parse(q.stdout) as {
      outcome: { error_type: string };
      capability: string;
    }[];
    assert.ok(
      denied.some(
        (r) => r.outcome.error_type === "RateLimited" && r.capability === "filesystem.write",
      ),
      "the refusal is audited",
    );
  } finally {
    c.close();
  }
});

test("an agent cannot hold more than max_connections_per_agent WebSockets; closing one frees its slot", async () => {
  const port = portOf(host.m, "gateway");
  const open: RpcClient[] = [];
  try {
    for (let i = 0; i < MAX_CONNECTIONS; i++)
      open.push(await RpcClient.connect(port, host.token, i % 2 ? "/mcp" : "/rpc"));
    await assert.rejects(
      RpcClient.connect(port, host.token),
      (e: { status?: number }) => e.status === 429,
    );
    const closing = open.pop();
    await new Promise<void>((r) => {
      closing?.ws.once("close", () => r());
      closing?.close();
    });
    // The server sees the close a moment later.
    let again: RpcClient | undefined;
    for (let i = 0; i < 50 && !again; i++)
      again = await RpcClient.connect(port, host.token).catch(() => undefined);
    assert.ok(again, "the freed slot was never given back");
    open.push(again);
    const r = await again.invoke("agent.whoami");
    assert.equal((r.result?.data as { agent: string }).agent, "bounded");
  } finally {
    for (const c of open) c.close();
  }
});
