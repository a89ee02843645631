// The per-call sandbox inside the hardened container (uid 1000, no capabilities,
// no-new-privileges, read-only root): an agent's process.run, accepted by an operator, reports
// from its own /proc/self/status NoNewPrivs 1, Seccomp 2 and CapEff 0, runs as uid 1100, and lives
// in user, mount, pid and net namespaces distinct from the gateway's.
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

const NS = ["user", "mnt", "pid", "net"];

test("process.run in the hardened image is sandboxed: uid 1100, NoNewPrivs 1, Seccomp 2, CapEff 0, own namespaces [image]", async (t) => {
  const why = await imageUnavailable();
  if (why) return t.skip(why);
  const m = await withFreePorts(defaultManifest());
  const a = await start("image", m);
  t.after(a.cleanup);
  await waitReady(a, 60_000);
  const exec = (...args: string[]) =>
    run("podman", [...ENGINE_ARGS, "exec", a.container ?? "", ...args], { timeoutMs: 60_000 });

  const made = await exec("/opt/kruxos/bin/kruxos", "agent", "create", "sandboxed", "--json");
  assert.equal(made.code, 0, made.stderr);
  const token = (JSON.parse(made.stdout) as { token: string }).token;

  const command = [
    "id -u",
    // pid 1 outside the sandbox's own processes: the container's init where /proc is shared.
    "cat /proc/1/environ >/dev/null 2>&1 && echo environ=readable || echo environ=refused",
    "grep -E '^(NoNewPrivs|Seccomp|CapEff):' /proc/self/status",
    ...NS.map((k) => `readlink /proc/self/ns/${k}`),
  ].join("; ");
  // One client: invoke (queued for approval by the shipped policy), then wait for the operator.
  const rpc = (method: string, params: unknown) => `
    const WebSocket = require("/opt/kruxos/node_modules/ws");
    const ws = new WebSocket("ws://127.0.0.1:${portOf(m, "gateway")}/rpc", { headers: { authorization: "Bearer ${token}" } });
    ws.on("open", () => ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: ${JSON.stringify(method)}, params: ${JSON.stringify(params)} })));
    ws.on("message", (d) => { console.log(d.toString()); ws.close(); });
    ws.on("unexpected-response", (q, r) => { console.log(JSON.stringify({ refused: r.statusCode })); process.exit(1); });`;
  const asked = await exec(
    "/usr/local/bin/node",
    "-e",
    rpc("capabilities.invoke", { name: "process.run", inputs: { command } }),
  );
  assert.equal(asked.code, 0, asked.stdout + asked.stderr);
  const queued = JSON.parse(asked.stdout) as { error?: { data: { approval_id?: string } } };
  const id = queued.error?.data.approval_id;
  assert.ok(id, `expected an approval id: ${asked.stdout}`);
  const accepted = await exec(
    "/opt/kruxos/bin/kruxos",
    "approve",
    "accept",
    id,
    "--reason",
    "contract test",
  );
  assert.equal(accepted.code, 0, accepted.stdout + accepted.stderr);
  const waited = await exec(
    "/usr/local/bin/node",
    "-e",
    rpc("approvals.wait", { approval_id: id, timeout_s: 30 }),
  );
  assert.equal(waited.code, 0, waited.stdout + waited.stderr);
  const reply = JSON.parse(waited.stdout) as {
    result?: { result?: { data?: { exit_code: number; stdout: string; stderr: string } } };
  };
  const data = reply.result?.result?.data;
  assert.ok(data, `no process.run result: ${waited.stdout}`);
  assert.equal(data.exit_code, 0, data.stderr);
  const lines = data.stdout.trim().split("\n");
  assert.equal(lines[0], "1100");
  assert.equal(lines[1], "environ=refused");
  assert.match(data.stdout, /NoNewPrivs:\s+1\n/);
  assert.match(data.stdout, /Seccomp:\s+2\n/);
  assert.match(data.stdout, /CapEff:\s+0000000000000000\n/);

  // The gateway runs in the container's namespaces, which `podman exec` joins.
  const outside = await exec(
    "/bin/sh",
    "-c",
    NS.map((k) => `readlink /proc/self/ns/${k}`).join("; "),
  );
  assert.equal(outside.code, 0, outside.stderr);
  const inside = lines.slice(-NS.length);
  const theirs = outside.stdout.trim().split("\n");
  NS.forEach((k, i) => {
    assert.match(inside[i] ?? "", new RegExp(`^${k}:\\[\\d+\\]$`));
    assert.notEqual(inside[i], theirs[i], `${k} namespace is the gateway's`);
  });
});
