// The pipeline owns every call, whatever carried it: the agent's limits hold on MCP as on /rpc
// with nothing for a transport to configure; a client that goes away (socket closed, MCP
// cancellation) cancels its call — a running sandbox is killed and the call is audited as
// cancelled; a transaction id reaches the audit record; and agent.session reports the gateway's
// real session (transport, announced client, calls) on Streamable HTTP too.
import assert from "node:assert/strict";
import { test } from "node:test";
import WebSocket from "ws";
import { RpcClient, mcpInitialize } from "../helpers/rpc-client.js";
import {
  autonomousPolicyFile,
  hostProcesses,
  running,
  sandboxUnavailable,
} from "../helpers/sandbox-support.js";
import { portOf, readyHostForFile } from "../contract/harness.js";

const RATE = 3;
const policyFile = autonomousPolicyFile();
const host = readyHostForFile("caller", (m) => ({
  ...m,
  policy: { ...m.policy, files: [policyFile] },
  gateway: { ...m.gateway, calls_per_second: RATE },
}));

/** Let the agent's rate bucket fill up again between tests. */
const refill = (): Promise<void> => new Promise((r) => setTimeout(r, (2 * 1000 * 2) / RATE));

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Msg = { id?: unknown; result?: any; error?: any };

/** A Streamable HTTP MCP session of the test agent. */
async function httpSession(client = "probe-client"): Promise<(body: unknown) => Promise<Msg>> {
  const url = `http://127.0.0.1:${portOf(host.m, "gateway")}/mcp`;
  const headers = {
    authorization: `Bearer ${host.token}`,
    "content-type": "application/json",
    accept: "application/json",
  };
  const init = await fetch(url, {
    method: "POST",
    headers,
    body: JSON.stringify({
      ...(mcpInitialize(client) as object),
      params: {
        protocolVersion: "2025-06-18",
        capabilities: {},
        clientInfo: { name: client, version: "2.1" },
      },
    }),
  });
  assert.equal(init.status, 200);
  const sid = init.headers.get("mcp-session-id") ?? "";
  return async (body) => {
    const r = await fetch(url, {
      method: "POST",
      headers: { ...headers, "mcp-session-id": sid },
      body: JSON.stringify(body),
    });
    return (await r.json()) as Msg;
  };
}

const call = (id: number, name: string, args: Record<string, unknown> = {}) => ({
  jsonrpc: "2.0",
  id,
  method: "tools/call",
  params: { name, arguments: args },
});

test("the agent's call rate holds on MCP over HTTP and WebSocket, with nothing for the transport to configure", async () => {
  const post = await httpSession();
  const replies = await Promise.all(
    Array.from({ length: 4 * RATE }, (_, i) => post(call(i + 2, "agent.whoami"))),
  );
  const limited = replies.filter((r) => r.result?.structuredContent?.type === "RateLimited");
  assert.ok(limited.length > 0, JSON.stringify(replies.map((r) => r.result?.isError)));
  assert.equal(limited[0]?.result.isError, true);
  assert.equal(limited[0]?.result.structuredContent.limit, "rate");
  await refill();

  const ws = await RpcClient.connect(portOf(host.m, "gateway"), host.token, "/mcp");
  try {
    await ws.call("initialize", (mcpInitialize("ws-client") as { params: unknown }).params);
    const viaWs = await Promise.all(
      Array.from({ length: 4 * RATE }, () =>
        ws.call("tools/call", { name: "agent.whoami", arguments: {} }),
      ),
    );
    assert.ok(
      viaWs.some((r) => (r.result?.structuredContent as { type?: string })?.type === "RateLimited"),
    );
  } finally {
    ws.close();
  }
  await refill();
});

test("agent.session over Streamable HTTP reports the transport, the announced client and real call counts", async () => {
  const post = await httpSession("session-probe");
  const first = (await post(call(2, "agent.session"))).result?.structuredContent;
  const second = (await post(call(3, "agent.session"))).result?.structuredContent;
  assert.equal(first.transport, "mcp");
  assert.deepEqual(first.client, { name: "session-probe", version: "2.1" });
  assert.equal(first.session, second.session, "one MCP session, one gateway session");
  assert.equal(first.call_count, 1);
  assert.equal(second.call_count, 2);
  await refill();
});

test("a transaction id travels with the call into its audit records", async () => {
  const c = await RpcClient.connect(portOf(host.m, "gateway"), host.token);
  try {
    const r = await c.call("capabilities.invoke", {
      name: "agent.whoami",
      inputs: {},
      transaction_id: "txn_0123",
    });
    assert.equal(r.result?.success, true, JSON.stringify(r));
  } finally {
    c.close();
  }
  const q = await host.cli(["audit", "query", "--kind", "capability.intent", "--json"]);
  const intents = JSON.parse(q.stdout) as { detail?: { transaction_id?: string } }[];
  assert.ok(intents.some((x) => x.detail?.transaction_id === "txn_0123"));
  await refill();
});

test("a transaction id that is not an identifier is refused before anything runs, and the audit stays verifiable", async () => {
  const c = await RpcClient.connect(portOf(host.m, "gateway"), host.token);
  try {
    // A lone surrogate once reached the audit log as bytes that are not UTF-8 and broke verify.
    for (const bad of ["[M\ud800*", "x".repeat(129)]) {
      const r = await c.call("capabilities.invoke", {
        name: "agent.whoami",
        inputs: {},
        transaction_id: bad,
      });
      assert.equal(r.error?.code, -32602, JSON.stringify(r));
      const errors = r.error?.data?.errors as { path: string }[] | undefined;
      assert.equal(errors?.[0]?.path, "/transaction_id");
    }
  } finally {
    c.close();
  }
  const v = await host.cli(["audit", "verify"]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  await refill();
});

/** Wait until a host process runs exactly `cmd`. */
async function started(cmd: string): Promise<void> {
  for (let i = 0; i < 100 && running(cmd).length === 0; i++)
    await new Promise((r) => setTimeout(r, 100));
  assert.ok(running(cmd).length > 0, `${cmd} never started`);
}

async function cancelledRecords(): Promise<{ outcome: { status: string; error_type?: string } }[]> {
  const q = await host.cli(["audit", "query", "--capability", "process.run", "--json"]);
  return (JSON.parse(q.stdout) as { kind: string; outcome?: { status: string } }[]).filter(
    (r) => r.kind === "capability.result" && r.outcome?.status === "cancelled",
  ) as { outcome: { status: string; error_type?: string } }[];
}

test("closing the socket cancels a running process.run: the sandbox is gone and the call is audited as cancelled", async (t) => {
  const skip = sandboxUnavailable();
  if (skip) return t.skip(skip);
  const cmd = "sleep 47.25";
  const c = await RpcClient.connect(portOf(host.m, "gateway"), host.token);
  void c.invoke("process.run", { command: cmd, timeout_s: 60 });
  await started(cmd);
  const before = (await cancelledRecords()).length;
  c.close();
  assert.deepEqual(await hostProcesses(cmd), [], "the sandbox outlived its call");
  let records = await cancelledRecords();
  for (let i = 0; i < 50 && records.length === before; i++) {
    await new Promise((r) => setTimeout(r, 100));
    records = await cancelledRecords();
  }
  assert.equal(records.length, before + 1);
  assert.equal(records.at(-1)?.outcome.error_type, "Cancelled");
  await refill();
});

test("an MCP notifications/cancelled cancels the named running process.run", async (t) => {
  const skip = sandboxUnavailable();
  if (skip) return t.skip(skip);
  const cmd = "sleep 47.75";
  const ws = new WebSocket(`ws://127.0.0.1:${portOf(host.m, "gateway")}/mcp`, {
    headers: { authorization: `Bearer ${host.token}` },
  });
  await new Promise((r) => ws.once("open", r));
  const replies: Msg[] = [];
  ws.on("message", (d) => replies.push(JSON.parse(d.toString()) as Msg));
  try {
    ws.send(JSON.stringify(mcpInitialize("canceller")));
    ws.send(JSON.stringify(call(7, "process.run", { command: cmd, timeout_s: 60 })));
    await started(cmd);
    ws.send(
      JSON.stringify({
        jsonrpc: "2.0",
        method: "notifications/cancelled",
        params: { requestId: 7, reason: "changed my mind" },
      }),
    );
    assert.deepEqual(await hostProcesses(cmd), [], "the sandbox outlived its cancellation");
    for (let i = 0; i < 50 && !replies.some((r) => r.id === 7); i++)
      await new Promise((r) => setTimeout(r, 100));
    const answer = replies.find((r) => r.id === 7);
    assert.equal(answer?.result?.structuredContent?.type, "Cancelled", JSON.stringify(answer));
    // The socket and its session go on.
    assert.equal(ws.readyState, WebSocket.OPEN);
  } finally {
    ws.close();
  }
});
