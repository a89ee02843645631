// The per-call sandbox inside the hardened container (uid 1000, no capabilities,
// no-new-privileges, read-only root): an agent's process.run, accepted by an operator, reports
// from its own /proc/self/status NoNewPrivs 1, Seccomp 2 and CapEff 0, runs as uid 1100, and lives
// in user, mount, pid and net namespaces distinct from the gateway's. network.* in the image goes
// through the proxy, which refuses by policy and records the refusal in the gateway's audit chain.
// A program holding only a \${secret:…} placeholder reaches an HTTPS upstream through the
// intercepting proxy: the upstream sees the value, the program sees it redacted.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createInterceptionCa, LeafIssuer } from "../../src/egress/index.js";
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

let why: string | undefined;
let a: Awaited<ReturnType<typeof start>> | undefined;
let exec: (...args: string[]) => ReturnType<typeof run>;
let token = "";
let gatewayPort = 0;

const CANARY = "krx-image-canary-41d7b0e2c9";
const UPSTREAM_PORT = 18443;
let upstreamTls = { cert: "", key: "" };

before(async () => {
  why = await imageUnavailable();
  if (why) return;
  // An HTTPS upstream with its own CA, inside the container's network (it runs with none).
  const ca = await createInterceptionCa("image test upstream CA");
  const leaf = await (await LeafIssuer.create(ca)).leaf("127.0.0.1");
  upstreamTls = { cert: leaf.certPem, key: leaf.keyPem };
  const base = await withFreePorts(defaultManifest());
  const m = {
    ...base,
    proxy: { ...(base.proxy ?? {}), upstream_ca_files: ["/etc/kruxos-test/upstream-ca.pem"] },
  };
  gatewayPort = portOf(m, "gateway");
  a = await start("image", m, { manifestFiles: { "upstream-ca.pem": ca.certPem } });
  await waitReady(a, 60_000);
  const name = a.container ?? "";
  exec = (...args: string[]) =>
    run("podman", [...ENGINE_ARGS, "exec", name, ...args], { timeoutMs: 60_000 });
  const made = await exec("/opt/kruxos/bin/kruxos", "agent", "create", "sandboxed", "--json");
  assert.equal(made.code, 0, made.stderr);
  token = (JSON.parse(made.stdout) as { token: string }).token;
});
after(async () => {
  await a?.cleanup();
});

/** One JSON-RPC request from inside the container (it runs with --network none). */
async function rpcCall(method: string, params: unknown): Promise<Record<string, unknown>> {
  const client = `
    const WebSocket = require("/opt/kruxos/node_modules/ws");
    const ws = new WebSocket("ws://127.0.0.1:${gatewayPort}/rpc", { headers: { authorization: "Bearer ${token}" } });
    ws.on("open", () => ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: ${JSON.stringify(method)}, params: ${JSON.stringify(params)} })));
    ws.on("message", (d) => { console.log(d.toString()); ws.close(); });
    ws.on("unexpected-response", (q, r) => { console.log(JSON.stringify({ refused: r.statusCode })); process.exit(1); });`;
  const r = await exec("/usr/local/bin/node", "-e", client);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** Invoke a capability the shipped policy queues for approval, accept it as an operator, wait. */
async function approvedCall(name: string, inputs: unknown): Promise<Record<string, unknown>> {
  const queued = (await rpcCall("capabilities.invoke", { name, inputs })) as {
    error?: { data: { approval_id?: string } };
  };
  const id = queued.error?.data.approval_id;
  assert.ok(id, `expected an approval id: ${JSON.stringify(queued)}`);
  const accepted = await exec(
    "/opt/kruxos/bin/kruxos",
    "approve",
    "accept",
    id,
    "--reason",
    "contract test",
  );
  assert.equal(accepted.code, 0, accepted.stdout + accepted.stderr);
  return rpcCall("approvals.wait", { approval_id: id, timeout_s: 30 });
}

test("process.run in the hardened image is sandboxed: uid 1100, NoNewPrivs 1, Seccomp 2, CapEff 0, own namespaces [image]", async (t) => {
  if (why) return t.skip(why);
  const command = [
    "id -u",
    // pid 1 outside the sandbox's own processes: the container's init where /proc is shared.
    "cat /proc/1/environ >/dev/null 2>&1 && echo environ=readable || echo environ=refused",
    "grep -E '^(NoNewPrivs|Seccomp|CapEff):' /proc/self/status",
    ...NS.map((k) => `readlink /proc/self/ns/${k}`),
  ].join("; ");
  const reply = (await approvedCall("process.run", { command })) as {
    result?: { result?: { data?: { exit_code: number; stdout: string; stderr: string } } };
  };
  const data = reply.result?.result?.data;
  assert.ok(data, `no process.run result: ${JSON.stringify(reply)}`);
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

test("network.* in the image goes through the proxy, whose refusal is in the gateway's audit chain [image]", async (t) => {
  if (why) return t.skip(why);
  const reply = (await approvedCall("network.http_request", {
    url: "https://registry.example.org/pkg",
  })) as { error?: { data: { type: string; rule?: string } } };
  assert.equal(reply.error?.data.type, "EgressDenied", JSON.stringify(reply));
  const q = await exec(
    "/opt/kruxos/bin/kruxos",
    "audit",
    "query",
    "--kind",
    "egress.connection",
    "--json",
  );
  assert.equal(q.code, 0, q.stderr);
  assert.match(q.stdout, /registry\.example\.org:443/);
  const verify = await exec("/opt/kruxos/bin/kruxos", "audit", "verify", "--json");
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
});

test("a placeholder in the hardened image: the program holds the text, the upstream gets the value, the answer is redacted [image]", async (t) => {
  if (why) return t.skip(why);
  const up = `
    const fs = require("fs");
    require("https").createServer(${JSON.stringify(upstreamTls)}, (q, r) => {
      fs.appendFileSync("/tmp/upstream-seen", String(q.headers["x-key"]) + "\\n");
      r.end("echo:" + q.headers["x-key"]);
    }).listen(${UPSTREAM_PORT}, "127.0.0.1");`;
  const started = await run(
    "podman",
    [...ENGINE_ARGS, "exec", "-d", a?.container ?? "", "/usr/local/bin/node", "-e", up],
    { timeoutMs: 30_000 },
  );
  assert.equal(started.code, 0, started.stderr);
  // The agent's own policy layer opens this one destination (egress allows are additive).
  const policy = await exec(
    "/usr/local/bin/node",
    "-e",
    `require("fs").writeFileSync("/data/kruxos/policy/agents/sandboxed.yaml", "version: 1\\nnetwork:\\n  egress: { allow: ['127.0.0.1:${UPSTREAM_PORT}'], deny: [] }\\n")`,
  );
  assert.equal(policy.code, 0, policy.stderr);
  const add = await exec(
    "/bin/sh",
    "-c",
    `printf %s '${CANARY}' | /opt/kruxos/bin/kruxos vault add canary --agents sandboxed --capabilities process.run --hosts 127.0.0.1:${UPSTREAM_PORT}`,
  );
  assert.equal(add.code, 0, add.stdout + add.stderr);
  // No curl in the image: node speaks CONNECT and TLS itself, trusting NODE_EXTRA_CA_CERTS.
  const client = `
    const net = require("net"), tls = require("tls");
    const p = new URL(process.env.HTTPS_PROXY);
    const auth = Buffer.from(decodeURIComponent(p.username) + ":" + decodeURIComponent(p.password)).toString("base64");
    const s = net.connect(Number(p.port), p.hostname, () => s.write("CONNECT 127.0.0.1:${UPSTREAM_PORT} HTTP/1.1\\r\\nHost: 127.0.0.1:${UPSTREAM_PORT}\\r\\nProxy-Authorization: Basic " + auth + "\\r\\n\\r\\n"));
    s.once("data", (d) => {
      if (!/ 200 /.test(String(d))) { console.log("proxy said: " + d); process.exit(2); }
      const t = tls.connect({ socket: s, host: "127.0.0.1" }, () => t.write("GET /x HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nX-Key: " + process.env.TOKEN + "\\r\\nConnection: close\\r\\n\\r\\n"));
      let b = ""; t.on("data", (c) => (b += c)); t.on("end", () => console.log("token=" + process.env.TOKEN + "\\n" + b));
      t.on("error", (e) => { console.log("tls: " + e.message); process.exit(3); });
    });`;
  let data: { exit_code: number; stdout: string; stderr: string } | undefined;
  for (let i = 0; i < 20 && !data; i++) {
    // The proxy follows the policy file's reload; give it a moment.
    const reply = (await approvedCall("process.run", {
      command: ["node", "-e", client],
      env: { TOKEN: "${secret:canary}" },
      timeout_s: 30,
    })) as {
      result?: { result?: { data?: { exit_code: number; stdout: string; stderr: string } } };
    };
    const d = reply.result?.result?.data;
    if (d?.exit_code === 0) data = d;
    else await new Promise((r) => setTimeout(r, 500));
  }
  assert.ok(data, "the sandboxed client never got through");
  assert.match(data.stdout, /token=\$\{secret:canary\}/, "the program holds only the placeholder");
  assert.match(data.stdout, /echo:\[REDACTED:canary\]/);
  assert.equal(data.stdout.includes(CANARY), false, data.stdout);
  const seen = await exec("/bin/cat", "/tmp/upstream-seen");
  assert.equal(seen.stdout.trim().split("\n")[0], CANARY);
  const access = await exec(
    "/opt/kruxos/bin/kruxos",
    "audit",
    "query",
    "--kind",
    "vault.access",
    "--json",
  );
  assert.match(access.stdout, /"secret":\s*"canary"/);
});
