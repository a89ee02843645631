// In the hardened image: an operator creates an agent with the CLI, the agent calls capabilities
// over WS /rpc (from inside the container: it runs with --network none), and the audit chain
// verifies intact with its keyed checkpoints.
import assert from "node:assert/strict";
import { test } from "node:test";
import { run } from "../helpers/repo.js";
import {
  ENGINE_ARGS,
  defaultManifest,
  imageUnavailable,
  portOf,
  start,
  waitReady,
  withFreePorts,
} from "./harness.js";

test("an agent created in the image calls capabilities over /rpc and the audit chain verifies [image]", async (t) => {
  const why = await imageUnavailable();
  if (why) return t.skip(why);
  const m = await withFreePorts(defaultManifest());
  const a = await start("image", m);
  t.after(a.cleanup);
  await waitReady(a, 60_000);
  const exec = (...args: string[]) =>
    run("podman", [...ENGINE_ARGS, "exec", a.container ?? "", ...args], { timeoutMs: 60_000 });

  const made = await exec("/opt/kruxos/bin/kruxos", "agent", "create", "imagent", "--json");
  assert.equal(made.code, 0, made.stderr);
  const token = (JSON.parse(made.stdout) as { token: string }).token;

  const client = `
    const WebSocket = require("/opt/kruxos/node_modules/ws");
    const ws = new WebSocket("ws://127.0.0.1:${portOf(m, "gateway")}/rpc", { headers: { authorization: "Bearer ${token}" } });
    const out = [];
    ws.on("open", () => ws.send(JSON.stringify([
      { jsonrpc: "2.0", id: 1, method: "capabilities.invoke", params: { name: "agent.whoami", inputs: {} } },
      { jsonrpc: "2.0", id: 2, method: "capabilities.invoke", params: { name: "filesystem.list", inputs: {} } },
      { jsonrpc: "2.0", id: 3, method: "capabilities.invoke", params: { name: "filesystem.read", inputs: { path: "/etc/passwd" } } },
    ])));
    ws.on("message", (d) => { console.log(d.toString()); ws.close(); });
    ws.on("unexpected-response", (q, r) => { console.log(JSON.stringify({ refused: r.statusCode })); process.exit(1); });`;
  const r = await exec("/usr/local/bin/node", "-e", client);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const replies = JSON.parse(r.stdout) as {
    id: number;
    result?: { data: Record<string, unknown> };
    error?: { code: number; data: { type: string } };
  }[];
  assert.equal(replies.find((x) => x.id === 1)?.result?.data.agent, "imagent");
  assert.ok(Array.isArray(replies.find((x) => x.id === 2)?.result?.data.entries));
  const escape = replies.find((x) => x.id === 3);
  assert.equal(escape?.error?.code, -32005);
  assert.equal(escape?.error?.data.type, "PathOutOfScope");

  const verify = await exec("/opt/kruxos/bin/kruxos", "audit", "verify", "--json");
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  const v = JSON.parse(verify.stdout) as { ok: boolean; keyed: boolean; count: number };
  assert.equal(v.ok, true);
  assert.equal(v.keyed, true);
  assert.ok(v.count >= 6);
});
