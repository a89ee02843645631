// A sandbox with an egress grant: its only way out is the relay to the egress proxy, which decides
// every connection by policy and audits it. Direct connections, UDP and DNS fail at once, and
// network.* capabilities go through the same proxy. Real appliance (host mode), real proxy, a real
// upstream HTTP server on loopback that policy names explicitly.
import assert from "node:assert/strict";
import { copyFileSync, existsSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { RpcClient, type RpcReply } from "../helpers/rpc-client.js";
import { autonomousPolicyFile, sandboxUnavailable } from "../helpers/sandbox-support.js";
import {
  portOf,
  readyHostWithAgent,
  type Appliance,
  type ManifestObject,
  type operatorCli,
} from "../contract/harness.js";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const PROBE = path.join(REPO, "native", "build", "probes", "syscall-probe");

let a: Appliance;
let m: ManifestObject;
let rpc: RpcClient;
let cli: ReturnType<typeof operatorCli>;
let upstream: http.Server;
let up = 0;
let other: http.Server;
let otherPort = 0;
const seen: { url: string; headers: http.IncomingHttpHeaders }[] = [];

interface RunData {
  exit_code: number;
  stdout: string;
  stderr: string;
}

async function listenLoopback(handler: http.RequestListener): Promise<[http.Server, number]> {
  const s = http.createServer(handler);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return [s, (s.address() as AddressInfo).port];
}

const unavailable = sandboxUnavailable();

before(async () => {
  if (unavailable) return;
  [upstream, up] = await listenLoopback((req, res) => {
    seen.push({ url: req.url ?? "", headers: req.headers });
    res.writeHead(200, { "content-type": "text/plain" }).end("hello from upstream\n");
  });
  [other, otherPort] = await listenLoopback((req, res) => {
    seen.push({ url: `other:${req.url ?? ""}`, headers: req.headers });
    res.end("should never be reached\n");
  });
  const policyFile = autonomousPolicyFile([`127.0.0.1:${up}`]);
  const r = await readyHostWithAgent("netagent", (mm) => ({
    ...mm,
    policy: { ...(mm.policy ?? {}), files: [policyFile] },
  }));
  ({ a, m, cli } = r);
  rpc = await RpcClient.connect(portOf(m, "gateway"), r.token);
  if (existsSync(PROBE)) copyFileSync(PROBE, path.join(a.home ?? "", "workspace", "probe"));
});

after(async () => {
  rpc?.close();
  await a?.cleanup();
  upstream?.close();
  other?.close();
});

async function sh(command: string | string[]): Promise<RunData> {
  const r: RpcReply = await rpc.invoke("process.run", { command, timeout_s: 30 });
  assert.equal(r.error, undefined, JSON.stringify(r.error));
  return r.result?.data as RunData;
}

test("with a grant, an allowed destination is reached through the proxy, without leaking the credential", async (t) => {
  if (unavailable) return t.skip(unavailable);
  const before = seen.length;
  const d = await sh(`curl -sS --max-time 10 http://127.0.0.1:${up}/hello`);
  assert.equal(d.stdout, "hello from upstream\n", d.stderr);
  const req = seen.slice(before).find((s) => s.url === "/hello");
  assert.ok(req, "the upstream saw no request");
  assert.equal(req.headers["proxy-authorization"], undefined);
});

test("a destination the policy does not allow gets the structured 403 inside the sandbox", async (t) => {
  if (unavailable) return t.skip(unavailable);
  const d = await sh(
    `curl -sS --max-time 10 -o - -w '\\n%{http_code}' http://127.0.0.1:${otherPort}/`,
  );
  const [body, code] = d.stdout.trim().split("\n");
  assert.equal(code, "403");
  const denial = JSON.parse(body ?? "{}") as Record<string, unknown>;
  assert.equal(denial.error, "policy_denied");
  assert.equal(typeof denial.rule, "string");
  assert.ok(!seen.some((s) => s.url.startsWith("other:")), "the denied upstream was reached");
});

test("an HTTPS tunnel to a host the policy does not name is refused by the proxy", async (t) => {
  if (unavailable) return t.skip(unavailable);
  const d = await sh("curl -sS --max-time 10 https://example.com/ 2>&1; echo rc=$?");
  assert.match(d.stdout, /403/);
  assert.doesNotMatch(d.stdout, /rc=0/);
});

test("a connection that skips the proxy fails at once, even to the allowed upstream", async (t) => {
  if (unavailable) return t.skip(unavailable);
  const before = seen.length;
  const d = await sh(
    `curl -sS --noproxy '*' --max-time 10 http://127.0.0.1:${up}/direct 2>&1; echo rc=$?`,
  );
  assert.doesNotMatch(d.stdout, /rc=0/);
  assert.doesNotMatch(d.stdout, /timed out/i);
  assert.equal(seen.slice(before).length, 0, "the upstream was reached directly");
});

test("with a grant, UDP and DNS still have nowhere to go", async (t) => {
  if (unavailable) return t.skip(unavailable);
  if (!existsSync(PROBE)) return t.skip(`${PROBE} is not built`);
  // The namespace's only interface is lo: a datagram to any real address has no route.
  const d = await sh(["/workspace/probe", "udp_send", "8.8.8.8", "53"]);
  const p = JSON.parse(d.stdout.trim()) as { ok: boolean; errno: string };
  assert.equal(p.ok, false);
  assert.equal(p.errno, "ENETUNREACH");
  const dns = await sh("getent hosts example.com; echo rc=$?");
  assert.doesNotMatch(dns.stdout, /rc=0/);
});

test("a forged proxy credential is refused with 407", async (t) => {
  if (unavailable) return t.skip(unavailable);
  const d = await sh(
    `curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -x http://kruxos:forged@127.0.0.1:3128 http://127.0.0.1:${up}/x`,
  );
  assert.equal(d.stdout, "407");
});

test("network.http_request goes through the same proxy and policy", async (t) => {
  if (unavailable) return t.skip(unavailable);
  const okr = await rpc.invoke("network.http_request", { url: `http://127.0.0.1:${up}/cap` });
  assert.equal(okr.error, undefined, JSON.stringify(okr.error));
  assert.equal((okr.result?.data as { status: number }).status, 200);
  const denied = await rpc.invoke("network.http_request", {
    url: `http://127.0.0.1:${otherPort}/cap`,
  });
  assert.equal(denied.error?.data.type, "EgressDenied", JSON.stringify(denied));
});

test("git.clone goes out only through the proxy, which refuses a host the policy does not name", async (t) => {
  if (unavailable) return t.skip(unavailable);
  const r = await rpc.invoke("git.clone", {
    url: "https://git.example.com/team/repo.git",
    path: "cloned",
  });
  assert.equal(r.error?.data.type, "EgressDenied", JSON.stringify(r.error ?? r.result));
  const q = await cli([
    "audit",
    "query",
    "--kind",
    "egress.connection",
    "--json",
    "--limit",
    "100",
  ]);
  assert.match(q.stdout, /git\.example\.com:443/);
  assert.match(q.stdout, /git\.clone/);
});

test("every proxied connection, allowed or denied, is in the audit chain with the agent and call", async (t) => {
  if (unavailable) return t.skip(unavailable);
  const q = await cli([
    "audit",
    "query",
    "--kind",
    "egress.connection",
    "--json",
    "--limit",
    "100",
  ]);
  assert.equal(q.code, 0, q.stderr);
  const text = q.stdout;
  const records = text
    .trim()
    .split("\n")
    .filter(Boolean)
    .flatMap((l) => {
      const v = JSON.parse(l) as unknown;
      return Array.isArray(v) ? (v as Record<string, unknown>[]) : [v as Record<string, unknown>];
    });
  const mine = records.filter((r) => r.agent === "netagent");
  assert.ok(mine.some((r) => (r.outcome as { status: string }).status === "ok"));
  assert.ok(mine.some((r) => (r.outcome as { status: string }).status === "denied"));
  assert.ok(mine.every((r) => typeof (r.detail as { call: unknown }).call === "string"));
  const verify = await cli(["audit", "verify", "--json"]);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
});
