// The egress proxy and its client: per-call credentials, the 407/400/403/503 answers as outsiders see
// them, layered default-deny policy, CONNECT tunnels and forward requests, audit-before-connect,
// metrics, and the EgressClient (http, https through CONNECT, stream, connect, lookup, redirects).
// Upstreams are real servers on 127.0.0.1; the policy is a real PolicyEngine over temp YAML files.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import path from "node:path";
import { after, test } from "node:test";
import type { CallIdentity } from "../../src/capabilities/index.js";
import { KruxError, Registry, createLogger } from "../../src/core/index.js";
import {
  classify,
  createEgressClient,
  createProxy,
  mintCredential,
  parseHost,
  tokenFromProxyAuthorization,
  verifyCredential,
  type EgressAuditEntry,
  type ProxyDeps,
} from "../../src/egress/index.js";
import { PolicyEngine } from "../../src/policy/index.js";
import { tempDir } from "../helpers/repo.js";

const KEY = Buffer.alloc(32, 7);
const WHO: CallIdentity = {
  agent: "bot",
  session: "sess-1",
  callId: "call-41",
  capability: "network.http_request",
};
const T0 = 1_700_000_000_000;

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function basic(token: string): string {
  return `Basic ${Buffer.from(`kruxos:${token}`).toString("base64")}`;
}
const auth = (who: CallIdentity = WHO): string => basic(mintCredential(KEY, who, 60_000));

// ---------------------------------------------------------------------------------------------
// harness

interface Upstream {
  readonly port: number;
  accepts: number;
  readonly server: net.Server;
}

async function listen<T extends net.Server>(server: T, host = "127.0.0.1"): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        server.close(() => resolve());
      }),
  );
  return (server.address() as net.AddressInfo).port;
}

/** An HTTP upstream; `handler` sees every request. Counts accepted connections. */
async function httpUpstream(
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void,
  onAccept?: () => void,
): Promise<Upstream> {
  const server = http.createServer(handler);
  const u = { port: 0, accepts: 0, server };
  server.on("connection", () => {
    u.accepts++;
    onAccept?.();
  });
  u.port = await listen(server);
  return u;
}

/** A TCP upstream that answers "pong:<what it got>" once the client half-closes. */
async function echoUpstream(onAccept?: () => void): Promise<Upstream> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    const got: Buffer[] = [];
    s.on("data", (c: Buffer) => got.push(c));
    s.on("end", () => s.end(`pong:${Buffer.concat(got).toString()}`));
    s.on("error", () => s.destroy());
  });
  const u = { port: 0, accepts: 0, server };
  server.on("connection", () => {
    u.accepts++;
    onAccept?.();
  });
  u.port = await listen(server);
  return u;
}

interface Proxy {
  readonly port: number;
  readonly audit: EgressAuditEntry[];
  readonly registry: Registry;
  readonly engine: PolicyEngine;
}

async function startProxy(
  policy: { system: string; org?: string; agents?: Record<string, string> },
  extra: Partial<ProxyDeps> = {},
): Promise<Proxy> {
  const { dir, cleanup } = tempDir("kruxos-egress-");
  cleanups.push(cleanup);
  const files = [path.join(dir, "system.yaml")];
  writeFileSync(files[0] as string, policy.system);
  if (policy.org !== undefined) {
    files.push(path.join(dir, "org.yaml"));
    writeFileSync(files[1] as string, policy.org);
  }
  const agentDir = path.join(dir, "agents");
  mkdirSync(agentDir);
  for (const [name, text] of Object.entries(policy.agents ?? {}))
    writeFileSync(path.join(agentDir, `${name}.yaml`), text);
  const engine = new PolicyEngine({ files, agentDir });
  const loaded = engine.reload();
  assert.ok(loaded.ok, JSON.stringify(loaded));
  const audit: EgressAuditEntry[] = [];
  const registry = new Registry();
  const proxy = createProxy({
    log: createLogger({ program: "test-proxy", level: "silent" }),
    registry,
    policy: engine,
    credentialKey: KEY,
    audit: async (e) => void audit.push(e as EgressAuditEntry),
    resolve: async (host) => {
      const table: Record<string, string[]> = {
        "pub.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
        "inside.example": ["10.1.2.3"],
      };
      const list = table[host];
      if (!list) throw Object.assign(new Error(`ENOTFOUND ${host}`), { code: "ENOTFOUND" });
      return list.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
    },
    connectTimeoutMs: 1000,
    ...extra,
  });
  const server = proxy.server();
  const port = await listen(server);
  return { port, audit, registry, engine };
}

interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly socket: net.Socket;
}

/** Send raw bytes to the proxy; read the answer head (and, unless 200, the body until close). */
function raw(port: number, request: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true });
    let buf = Buffer.alloc(0);
    let head: { status: number; headers: Record<string, string>; rest: Buffer } | undefined;
    const finish = (): void => {
      socket.end();
      if (!head) return reject(new Error(`no answer head: ${buf.toString()}`));
      resolve({ ...head, body: head.rest.toString(), socket });
    };
    const onData = (c: Buffer): void => {
      if (head) {
        head = { ...head, rest: Buffer.concat([head.rest, c]) };
        return;
      }
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const lines = buf.subarray(0, end).toString().split("\r\n");
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(":");
        headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      head = {
        status: Number(/^HTTP\/1\.1 (\d+)/.exec(lines[0] ?? "")?.[1]),
        headers,
        rest: buf.subarray(end + 4),
      };
      if (head.status === 200 && request.startsWith("CONNECT")) {
        socket.removeListener("data", onData);
        resolve({ ...head, body: "", socket });
      }
    };
    socket.on("data", onData);
    socket.on("end", finish);
    socket.on("close", finish);
    socket.on("error", reject);
    socket.write(request);
  });
}

function connectReq(authority: string, authorization?: string): string {
  return `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${
    authorization ? `Proxy-Authorization: ${authorization}\r\n` : ""
  }\r\n`;
}

function forward(
  port: number,
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const r = http.request(
      { host: "127.0.0.1", port, method: "GET", path: url, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      },
    );
    r.on("error", reject);
    r.end();
  });
}

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function until(pred: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await wait(5);
  }
}

// ---------------------------------------------------------------------------------------------
// credentials

test("a minted credential verifies to the identity it was minted for", () => {
  const t = mintCredential(KEY, WHO, 60_000, T0);
  assert.deepEqual(verifyCredential(KEY, t, T0 + 1), WHO);
  assert.match(t, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
  const payload = JSON.parse(
    Buffer.from(t.split(".")[0] as string, "base64url").toString(),
  ) as unknown;
  assert.deepEqual(payload, {
    v: 1,
    agent: "bot",
    session: "sess-1",
    call: "call-41",
    cap: "network.http_request",
    exp: T0 + 60_000,
  });
});

test("a credential stops working when it expires", () => {
  const t = mintCredential(KEY, WHO, 1000, T0);
  assert.notEqual(verifyCredential(KEY, t, T0 + 999), null);
  assert.equal(verifyCredential(KEY, t, T0 + 1000), null);
  assert.equal(verifyCredential(KEY, t, T0 + 10_000_000), null);
});

test("a tampered, re-keyed or truncated credential is refused", () => {
  const t = mintCredential(KEY, WHO, 60_000, T0);
  const [body, sig] = t.split(".") as [string, string];
  const other = JSON.parse(Buffer.from(body, "base64url").toString()) as Record<string, unknown>;
  other.agent = "admin";
  const forgedBody = Buffer.from(JSON.stringify(other)).toString("base64url");
  assert.equal(verifyCredential(KEY, `${forgedBody}.${sig}`, T0), null, "payload swapped");
  const flipped = sig.slice(0, -2) + (sig.endsWith("A") ? "B" : "A") + sig.slice(-1);
  assert.equal(verifyCredential(KEY, `${body}.${flipped}`, T0), null, "MAC flipped");
  assert.equal(verifyCredential(Buffer.alloc(32, 8), t, T0), null, "another key");
  assert.equal(verifyCredential(KEY, t.slice(0, -1), T0), null, "truncated");
  assert.equal(verifyCredential(KEY, `${t}.x`, T0), null, "extra part");
});

test("junk never verifies and never throws", () => {
  for (const junk of ["", ".", "a.b", "..", "x".repeat(5000), "a b.c", "é.é", `${"A".repeat(10)}.`])
    assert.equal(verifyCredential(KEY, junk, T0), null, JSON.stringify(junk.slice(0, 20)));
});

test("a correctly signed payload with an unknown field or version is refused", () => {
  // The wire format, written out: HMAC-SHA256 over "kruxos-egress-credential.v1." + body.
  const sign = (payload: object): string => {
    const body = Buffer.from(JSON.stringify(payload)).toString("base64url");
    const mac = createHmac("sha256", KEY)
      .update(`kruxos-egress-credential.v1.${body}`)
      .digest("base64url");
    return `${body}.${mac}`;
  };
  const base = { v: 1, agent: "bot", session: "s", call: "c", cap: "x", exp: T0 + 1000 };
  assert.deepEqual(verifyCredential(KEY, sign(base), T0), {
    agent: "bot",
    session: "s",
    callId: "c",
    capability: "x",
  });
  assert.equal(verifyCredential(KEY, sign({ ...base, admin: true }), T0), null);
  assert.equal(verifyCredential(KEY, sign({ ...base, v: 2 }), T0), null);
  assert.equal(verifyCredential(KEY, sign({ ...base, agent: "" }), T0), null);
  assert.equal(verifyCredential(KEY, sign({ ...base, agent: "a\nb" }), T0), null);
  assert.equal(verifyCredential(KEY, sign({ ...base, exp: "later" }), T0), null);
  assert.equal(verifyCredential(KEY, sign({ ...base, exp: T0 + 48 * 3600_000 }), T0), null);
});

test("Proxy-Authorization carries the token as Basic kruxos:TOKEN or Bearer TOKEN", () => {
  assert.equal(tokenFromProxyAuthorization(basic("abc.def")), "abc.def");
  assert.equal(tokenFromProxyAuthorization("Bearer abc.def"), "abc.def");
  assert.equal(tokenFromProxyAuthorization("bearer abc.def"), "abc.def");
  assert.equal(
    tokenFromProxyAuthorization(`Basic ${Buffer.from("root:abc").toString("base64")}`),
    null,
  );
  assert.equal(tokenFromProxyAuthorization("Digest x"), null);
  assert.equal(tokenFromProxyAuthorization(undefined), null);
  assert.equal(tokenFromProxyAuthorization("Basic !!!"), null);
});

test("keys shorter than 256 bits and lifetimes out of range are refused", () => {
  assert.throws(() => mintCredential(Buffer.alloc(16), WHO, 1000), RangeError);
  assert.throws(() => verifyCredential(Buffer.alloc(16), "a.b"), RangeError);
  assert.throws(() => mintCredential(KEY, WHO, 0), RangeError);
  assert.throws(() => mintCredential(KEY, WHO, 24 * 3600_000 + 1), RangeError);
  assert.throws(() => mintCredential(KEY, { ...WHO, agent: "" }, 1000), RangeError);
});

// ---------------------------------------------------------------------------------------------
// addresses

test("every textual IP form is read as one address and put in its class", () => {
  const cases: [string, string][] = [
    ["127.0.0.1", "127.0.0.1 loopback"],
    ["2130706433", "127.0.0.1 loopback"],
    ["0177.0.0.1", "127.0.0.1 loopback"],
    ["0x7f.0.0.1", "127.0.0.1 loopback"],
    ["0x7f000001", "127.0.0.1 loopback"],
    ["127.1", "127.0.0.1 loopback"],
    ["10.1", "10.0.0.1 private"],
    ["172.31.255.255", "172.31.255.255 private"],
    ["172.32.0.1", "172.32.0.1 public"],
    ["192.168.0.1", "192.168.0.1 private"],
    ["100.64.0.1", "100.64.0.1 cgnat"],
    ["100.128.0.1", "100.128.0.1 public"],
    ["169.254.169.254", "169.254.169.254 metadata"],
    ["100.100.100.200", "100.100.100.200 metadata"],
    ["169.254.1.1", "169.254.1.1 link-local"],
    ["0.0.0.0", "0.0.0.0 unspecified"],
    ["0", "0.0.0.0 unspecified"],
    ["224.0.0.251", "224.0.0.251 multicast"],
    ["255.255.255.255", "255.255.255.255 broadcast"],
    ["240.0.0.1", "240.0.0.1 reserved"],
    ["198.18.0.1", "198.18.0.1 benchmarking"],
    ["192.0.2.1", "192.0.2.1 documentation"],
    ["203.0.113.9", "203.0.113.9 documentation"],
    ["8.8.8.8", "8.8.8.8 public"],
    ["[::1]", "::1 loopback"],
    ["[::]", ":: unspecified"],
    ["[::ffff:127.0.0.1]", "::ffff:127.0.0.1 loopback ipv4-mapped"],
    ["[::ffff:7f00:1]", "::ffff:127.0.0.1 loopback ipv4-mapped"],
    ["[::ffff:8.8.8.8]", "::ffff:8.8.8.8 public ipv4-mapped"],
    ["[::127.0.0.1]", "::7f00:1 loopback ipv4-compatible"],
    ["[::8.8.8.8]", "::808:808 reserved ipv4-compatible"],
    ["[64:ff9b::10.0.0.1]", "64:ff9b::a00:1 private nat64"],
    ["[64:ff9b::8.8.8.8]", "64:ff9b::808:808 public nat64"],
    ["[2002:c0a8:101::1]", "2002:c0a8:101::1 private 6to4"],
    ["[fd00:ec2::254]", "fd00:ec2::254 metadata"],
    ["[fc00::1]", "fc00::1 ula"],
    ["[FE80::1%25eth0]", "fe80::1 link-local"],
    ["[ff02::1]", "ff02::1 multicast"],
    ["[2001:db8::1]", "2001:db8::1 documentation"],
    ["[2001::1]", "2001::1 reserved"],
    ["[2606:4700:0:0:0:0:0:1111]", "2606:4700::1111 public"],
  ];
  for (const [text, want] of cases) {
    const h = parseHost(text);
    assert.equal(h.kind, "ip", text);
    if (h.kind !== "ip") continue;
    const c = classify(h.ip);
    assert.equal([h.ip.text, c.cls, c.via].filter(Boolean).join(" "), want, text);
  }
  for (const junk of [
    "256.0.0.1",
    "1.2.3.4.5",
    "08.1",
    "0x100000000",
    "[1::2::3]",
    "[::1",
    "a..b",
    "-x.com",
  ])
    assert.equal(parseHost(junk).kind, "invalid", junk);
  assert.deepEqual(parseHost("API.Example.COM."), { kind: "name", name: "api.example.com" });
});

// ---------------------------------------------------------------------------------------------
// the proxy's answers

test("a request without a credential is answered 407 with Proxy-Authenticate and is audited", async () => {
  const p = await startProxy({ system: "version: 1\n" });
  const a = await raw(p.port, connectReq("pub.example:443"));
  assert.equal(a.status, 407);
  assert.equal(a.headers["proxy-authenticate"], 'Basic realm="kruxos"');
  assert.equal(a.headers["content-type"], "application/json");
  assert.equal((JSON.parse(a.body) as { error: string }).error, "proxy_auth_required");
  const f = await forward(p.port, "http://pub.example/", {
    "proxy-authorization": basic("forged.token"),
  });
  assert.equal(f.status, 407);
  assert.equal(p.audit.length, 2);
  assert.deepEqual(
    p.audit.map((e) => [e.kind, e.agent, e.outcome.status, e.outcome.error_type, e.detail.rule]),
    [
      ["egress.connection", undefined, "denied", "ProxyAuthRequired", "credential-required"],
      ["egress.connection", undefined, "denied", "ProxyAuthRequired", "credential-required"],
    ],
  );
});

test("egress is default-deny: the 403 body and X-Kruxos-Policy header are exactly these", async () => {
  const p = await startProxy({ system: "version: 1\n" });
  const a = await raw(p.port, connectReq("pub.example:443", auth()));
  assert.equal(a.status, 403);
  assert.equal(a.headers["x-kruxos-policy"], "default/default-deny");
  assert.equal(a.headers["content-type"], "application/json");
  assert.deepEqual(JSON.parse(a.body), {
    error: "policy_denied",
    policy: "default",
    rule: "default-deny",
    detail: "egress to pub.example:443 is not allowed by any policy layer",
  });
  const f = await forward(p.port, "http://pub.example/x", { "proxy-authorization": auth() });
  assert.equal(f.status, 403);
  assert.equal(f.headers["x-kruxos-policy"], "default/default-deny");
  assert.deepEqual(JSON.parse(f.body), {
    error: "policy_denied",
    policy: "default",
    rule: "default-deny",
    detail: "egress to pub.example:80 is not allowed by any policy layer",
  });
  const denied = p.audit.at(-1) as EgressAuditEntry;
  assert.equal(denied.kind, "egress.connection");
  assert.equal(denied.agent, "bot");
  assert.equal(denied.session, "sess-1");
  assert.equal(denied.capability, "network.http_request");
  assert.deepEqual(denied.outcome, { status: "denied", error_type: "PolicyDenied" });
  assert.deepEqual(denied.decision, {
    tier: "denied",
    rule: "default-deny",
    file: "",
    line: 0,
    generation: 1,
  });
  assert.equal(denied.detail.call, "call-41");
  assert.equal(denied.detail.method, "GET");
  assert.equal(denied.detail.target, "pub.example:80");
});

test("a deny in the system layer beats an allow in the agent's own layer", async () => {
  const echo = await echoUpstream();
  const p = await startProxy({
    system: `version: 1
network:
  egress:
    allow: ["127.0.0.1:${echo.port}"]
    deny: ["pub.example:443"]
`,
    agents: {
      bot: `version: 1
network:
  egress:
    allow: ["pub.example:443"]
`,
    },
  });
  const a = await raw(p.port, connectReq("pub.example:443", auth()));
  assert.equal(a.status, 403);
  const body = JSON.parse(a.body) as Record<string, string>;
  assert.equal(body.policy, "system");
  assert.equal(body.rule, "pub.example:443");
  assert.match(
    body.detail ?? "",
    /^egress to pub\.example:443 is denied by rule pub\.example:443 in the system layer \(.*system\.yaml:5\)$/,
  );
  assert.equal(a.headers["x-kruxos-policy"], "system/pub.example:443");
  // What the system layer allows still works for the agent.
  const ok = await raw(p.port, connectReq(`127.0.0.1:${echo.port}`, auth()));
  assert.equal(ok.status, 200);
  ok.socket.destroy();
});

test("an org layer denies what the system layer allows, for one agent only", async () => {
  const echo = await echoUpstream();
  const p = await startProxy({
    system: `version: 1\nnetwork: { egress: { allow: ["127.0.0.1:${echo.port}"] } }\n`,
    org: `version: 1\nagents:\n  bot:\n    network: { egress: { deny: ["127.0.0.1:${echo.port}"] } }\n`,
  });
  const bot = await raw(p.port, connectReq(`127.0.0.1:${echo.port}`, auth()));
  assert.equal(bot.status, 403);
  assert.equal((JSON.parse(bot.body) as { policy: string }).policy, "org/agents.bot");
  const other = await raw(
    p.port,
    connectReq(`127.0.0.1:${echo.port}`, auth({ ...WHO, agent: "other" })),
  );
  assert.equal(other.status, 200);
  other.socket.destroy();
});

test("malformed targets are answered 400 and never dialled", async () => {
  const p = await startProxy({ system: "version: 1\n" });
  for (const target of [
    "a:b:c",
    "host",
    "host:0",
    "host:65536",
    "host:+80",
    "[::1:443",
    "a@b:443",
    "x/y:443",
  ]) {
    const a = await raw(p.port, connectReq(target, auth()));
    assert.equal(a.status, 400, target);
    assert.equal((JSON.parse(a.body) as { error: string }).error, "bad_request");
  }
  for (const url of ["https://pub.example/", "ftp://pub.example/", "http://u:p@pub.example/"]) {
    const f = await forward(p.port, url, { "proxy-authorization": auth() });
    assert.equal(f.status, 400, url);
    assert.equal(f.headers["x-kruxos-proxy-error"], "bad_request");
  }
});

test("GET /livez answers without a credential; other origin-form paths are 400", async () => {
  const p = await startProxy({ system: "version: 1\n" });
  const live = await forward(p.port, "/livez");
  assert.equal(live.status, 200);
  assert.deepEqual(JSON.parse(live.body), { live: true });
  const other = await forward(p.port, "/admin");
  assert.equal(other.status, 400);
  assert.equal((JSON.parse(other.body) as { error: string }).error, "not_a_proxy_request");
});

test("garbage and oversized headers are refused without taking the proxy down", async () => {
  const p = await startProxy({ system: "version: 1\n" });
  const junk = await raw(p.port, "\x16\x03\x01 not http at all\r\n\r\n");
  assert.equal(junk.status, 400);
  const big = await raw(
    p.port,
    `GET http://pub.example/ HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`,
  );
  assert.equal(big.status, 431);
  const live = await forward(p.port, "/livez");
  assert.equal(live.status, 200);
});

// ---------------------------------------------------------------------------------------------
// tunnels, forwarding, audit

test("a CONNECT tunnel carries bytes both ways and passes a half-close through", async () => {
  const echo = await echoUpstream();
  const p = await startProxy({
    system: `version: 1\nnetwork: { egress: { allow: ["127.0.0.1:${echo.port}"] } }\n`,
  });
  const a = await raw(p.port, connectReq(`127.0.0.1:${echo.port}`, auth()));
  assert.equal(a.status, 200);
  assert.equal(a.headers["x-kruxos-address"], "127.0.0.1");
  const got: Buffer[] = [];
  a.socket.on("data", (c: Buffer) => got.push(c));
  const ended = new Promise<void>((r) => a.socket.once("end", r));
  a.socket.end("ping"); // half-close: the upstream answers only after it sees our FIN
  await ended;
  assert.equal(Buffer.concat(got).toString(), "pong:ping");
  await until(() => p.audit.some((e) => e.kind === "egress.closed"));
  const close = p.audit.find((e) => e.kind === "egress.closed") as EgressAuditEntry;
  assert.equal(close.detail.bytes_out, 4);
  assert.equal(close.detail.bytes_in, 9);
  assert.equal(close.detail.address, "127.0.0.1");
  assert.deepEqual(close.outcome, { status: "ok" });
  assert.equal(typeof close.duration_ms, "number");
});

test("when the upstream resets, the client side of the tunnel is closed too", async () => {
  const server = net.createServer((s) => setTimeout(() => s.resetAndDestroy(), 20));
  const port = await listen(server);
  const p = await startProxy({
    system: `version: 1\nnetwork: { egress: { allow: ["127.0.0.1:${port}"] } }\n`,
  });
  const a = await raw(p.port, connectReq(`127.0.0.1:${port}`, auth()));
  assert.equal(a.status, 200);
  await new Promise<void>((r) => a.socket.once("end", () => r()));
  await until(() => p.audit.some((e) => e.kind === "egress.closed"));
});

test("an idle tunnel is closed after the idle timeout, with its close record", async () => {
  const echo = await echoUpstream();
  const p = await startProxy(
    { system: `version: 1\nnetwork: { egress: { allow: ["127.0.0.1:${echo.port}"] } }\n` },
    { idleTimeoutMs: 100 },
  );
  const a = await raw(p.port, connectReq(`127.0.0.1:${echo.port}`, auth()));
  assert.equal(a.status, 200);
  const t0 = Date.now();
  await new Promise<void>((r) => a.socket.once("end", () => r()));
  assert.ok(Date.now() - t0 >= 90, "closed only after the idle timeout");
  await until(() => p.audit.some((e) => e.kind === "egress.closed"));
});

test("clients that vanish mid-request do not take the proxy down", async () => {
  const echo = await echoUpstream();
  const p = await startProxy({
    system: `version: 1\nnetwork: { egress: { allow: ["127.0.0.1:${echo.port}", "pub.example:80"] } }\n`,
  });
  const requests = [
    connectReq(`127.0.0.1:${echo.port}`, auth()),
    `${connectReq(`127.0.0.1:${echo.port}`, auth())}early bytes`,
    `GET http://127.0.0.1:${echo.port}/ HTTP/1.1\r\nProxy-Authorization: ${auth()}\r\n\r\n`,
    `GET http://pub.example/ HTTP/1.1\r\nProxy-Authorization: ${auth()}\r\n\r\n`,
    "CONNECT ",
  ];
  for (let i = 0; i < 3; i++)
    for (const r of requests) {
      const s = net.connect({ host: "127.0.0.1", port: p.port });
      s.on("error", () => undefined);
      s.write(r, () => s.destroy());
    }
  await wait(300);
  const live = await forward(p.port, "/livez");
  assert.equal(live.status, 200);
  // Every allowed connection that got its record also got its close record.
  await until(
    () =>
      p.audit.filter((e) => e.kind === "egress.closed").length ===
      p.audit.filter((e) => e.kind === "egress.connection" && e.outcome.status === "ok").length,
  );
  assert.match(await p.registry.metrics(), /kruxos_egress_active_connections 0/);
});

test("the connect record is written before the upstream connection and one close record after", async () => {
  let auditAtAccept = -1;
  const p0: { audit?: EgressAuditEntry[] } = {};
  const echo = await echoUpstream(() => (auditAtAccept = p0.audit?.length ?? -1));
  const p = await startProxy({
    system: `version: 1\nnetwork: { egress: { allow: ["127.0.0.1:${echo.port}"] } }\n`,
  });
  p0.audit = p.audit;
  const a = await raw(p.port, connectReq(`127.0.0.1:${echo.port}`, auth()));
  assert.equal(a.status, 200);
  a.socket.end("x");
  await until(() => p.audit.length === 2);
  await wait(50);
  assert.equal(auditAtAccept, 1, "exactly the connect record existed when the upstream accepted");
  assert.deepEqual(
    p.audit.map((e) => e.kind),
    ["egress.connection", "egress.closed"],
  );
  const c = p.audit[0] as EgressAuditEntry;
  assert.deepEqual(Object.keys(c.detail).sort(), [
    "address",
    "addresses",
    "bytes_in",
    "bytes_out",
    "call",
    "layer",
    "method",
    "reason",
    "rule",
    "target",
  ]);
  assert.equal(c.detail.method, "CONNECT");
  assert.equal(c.detail.target, `127.0.0.1:${echo.port}`);
  assert.equal(c.detail.rule, `127.0.0.1:${echo.port}`);
  assert.equal(c.detail.layer, "system");
  assert.equal(c.detail.reason, "named-address");
  assert.equal(c.decision?.tier, "allowed");
  assert.deepEqual(c.outcome, { status: "ok" });
});

test("when the audit log cannot take the record the answer is 503 and nothing is dialled", async () => {
  const echo = await echoUpstream();
  const p = await startProxy(
    { system: `version: 1\nnetwork: { egress: { allow: ["127.0.0.1:${echo.port}"] } }\n` },
    {
      audit: async () => {
        throw new Error("disk full");
      },
    },
  );
  const a = await raw(p.port, connectReq(`127.0.0.1:${echo.port}`, auth()));
  assert.equal(a.status, 503);
  assert.equal((JSON.parse(a.body) as { error: string }).error, "audit_unavailable");
  const f = await forward(p.port, `http://127.0.0.1:${echo.port}/`, {
    "proxy-authorization": auth(),
  });
  assert.equal(f.status, 503);
  await wait(50);
  assert.equal(echo.accepts, 0);
  assert.match(await p.registry.metrics(), /kruxos_egress_audit_failures_total 2/);
});

test("forward mode strips Proxy-* and hop-by-hop headers and sets Host to the target", async () => {
  const up = await httpUpstream((req, res) => {
    res.setHeader("x-kruxos-policy", "spoofed/by-upstream");
    res.setHeader("proxy-authenticate", "Basic");
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  });
  const p = await startProxy({
    system: `version: 1\nnetwork: { egress: { allow: ["127.0.0.1:${up.port}"] } }\n`,
  });
  const f = await forward(p.port, `http://127.0.0.1:${up.port}/path?q=1`, {
    "proxy-authorization": auth(),
    "proxy-connection": "keep-alive",
    connection: "x-secret-hop",
    "x-secret-hop": "1",
    "x-end-to-end": "kept",
    host: "evil.internal",
  });
  assert.equal(f.status, 200);
  const seen = JSON.parse(f.body) as { url: string; headers: Record<string, string> };
  assert.equal(seen.url, "/path?q=1");
  assert.equal(seen.headers["proxy-authorization"], undefined);
  assert.equal(seen.headers["proxy-connection"], undefined);
  assert.equal(seen.headers["x-secret-hop"], undefined);
  assert.equal(seen.headers["x-end-to-end"], "kept");
  assert.equal(seen.headers.host, `127.0.0.1:${up.port}`);
  assert.equal(f.headers["x-kruxos-policy"], undefined, "an upstream cannot fake a proxy denial");
  assert.equal(f.headers["proxy-authenticate"], undefined);
  await until(() => p.audit.length === 2);
  assert.equal((p.audit[1] as EgressAuditEntry).kind, "egress.closed");
  assert.ok((p.audit[1] as EgressAuditEntry).detail.bytes_in > 0);
});

test("a name resolving to a private address is refused even though a rule allows the name", async () => {
  const p = await startProxy({
    system: `version: 1\nnetwork: { egress: { allow: ["inside.example:443"] } }\n`,
  });
  const a = await raw(p.port, connectReq("inside.example:443", auth()));
  assert.equal(a.status, 403);
  assert.equal(a.headers["x-kruxos-policy"], "addresses/private-address");
  assert.deepEqual(JSON.parse(a.body), {
    error: "policy_denied",
    policy: "addresses",
    rule: "private-address",
    detail:
      "inside.example resolves to 10.1.2.3: private addresses are refused unless an allow rule names the address itself",
  });
});

test("the proxy's metrics are registered under their names", async () => {
  const echo = await echoUpstream();
  const p = await startProxy({
    system: `version: 1\nnetwork: { egress: { allow: ["127.0.0.1:${echo.port}"] } }\n`,
  });
  const a = await raw(p.port, connectReq(`127.0.0.1:${echo.port}`, auth()));
  a.socket.end("hi");
  await until(() => p.audit.length === 2);
  await raw(p.port, connectReq("pub.example:1", auth()));
  const text = await p.registry.metrics();
  for (const line of [
    'kruxos_egress_connections_total{decision="allowed",method="connect"} 1',
    'kruxos_egress_connections_total{decision="denied",method="connect"} 1',
    "kruxos_egress_connect_duration_seconds_count 1",
    'kruxos_egress_bytes_total{direction="out"} 2',
    'kruxos_egress_bytes_total{direction="in"} 7',
    "kruxos_egress_active_connections 0",
    "kruxos_egress_audit_failures_total 0",
  ])
    assert.ok(text.includes(line), `missing: ${line}\n${text}`);
});

// ---------------------------------------------------------------------------------------------
// the client

function client(port: number, extra: { ca?: string } = {}) {
  return createEgressClient({
    proxyHost: "127.0.0.1",
    proxyPort: port,
    mint: (who) => mintCredential(KEY, who, 60_000),
    ...extra,
  });
}

const GET = {
  method: "GET",
  timeout_ms: 5000,
  max_body_bytes: 1 << 20,
  follow_redirects: true,
  max_redirects: 5,
};

test("client http() fetches http:// through the proxy as the calling agent", async () => {
  const up = await httpUpstream((req, res) => {
    res.setHeader("x-got-method", req.method ?? "");
    res.end("hello from upstream");
  });
  const p = await startProxy({
    system: `version: 1\nnetwork: { egress: { allow: ["127.0.0.1:${up.port}"] } }\n`,
  });
  const r = await client(p.port).http({ ...GET, url: `http://127.0.0.1:${up.port}/a` }, WHO);
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), "hello from upstream");
  assert.equal(r.headers["x-got-method"], "GET");
  assert.equal(r.truncated, false);
  assert.equal(r.redirects, 0);
  assert.equal(r.url, `http://127.0.0.1:${up.port}/a`);
  assert.equal(p.audit[0]?.agent, "bot");
});

test("client http() cuts a body at max_body_bytes and says so", async () => {
  const up = await httpUpstream((_req, res) => res.end("x".repeat(10_000)));
  const p = await startProxy({
    system: `version: 1\nnetwork: { egress: { allow: ["127.0.0.1:${up.port}"] } }\n`,
  });
  const r = await client(p.port).http(
    { ...GET, url: `http://127.0.0.1:${up.port}/`, max_body_bytes: 100 },
    WHO,
  );
  assert.equal(r.body.length, 100);
  assert.equal(r.truncated, true);
});

test("a proxy denial reaches the caller as PolicyDenied with policy, rule and detail", async () => {
  const p = await startProxy({ system: "version: 1\n" });
  await assert.rejects(
    client(p.port).http({ ...GET, url: "http://pub.example/" }, WHO),
    (err: unknown) => {
      assert.ok(err instanceof KruxError);
      assert.equal(err.code, "PolicyDenied");
      assert.equal(err.data.policy, "default");
      assert.equal(err.data.rule, "default-deny");
      assert.equal(err.data.detail, "egress to pub.example:80 is not allowed by any policy layer");
      return true;
    },
  );
  await assert.rejects(
    client(p.port).http({ ...GET, url: "https://pub.example/" }, WHO),
    (err: unknown) => err instanceof KruxError && err.code === "PolicyDenied",
  );
});

test("redirects are followed hop by hop and credentials never go to another origin", async () => {
  const seen: Record<string, string | undefined>[] = [];
  const second = await httpUpstream((req, res) => {
    seen.push({ where: "second", auth: req.headers.authorization, cookie: req.headers.cookie });
    res.end("second");
  });
  const first = await httpUpstream((req, res) => {
    seen.push({ where: req.url, auth: req.headers.authorization, cookie: req.headers.cookie });
    if (req.url === "/start") res.writeHead(302, { location: "/same" }).end();
    else if (req.url === "/same")
      res.writeHead(307, { location: `http://127.0.0.1:${second.port}/x` }).end();
    else res.end("?");
  });
  const p = await startProxy({
    system: `version: 1\nnetwork: { egress: { allow: ["127.0.0.1:${first.port}", "127.0.0.1:${second.port}"] } }\n`,
  });
  const r = await client(p.port).http(
    {
      ...GET,
      url: `http://127.0.0.1:${first.port}/start`,
      headers: { Authorization: "Bearer s3cret", Cookie: "sid=1", "X-Other": "y" },
    },
    WHO,
  );
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), "second");
  assert.equal(r.redirects, 2);
  assert.equal(r.url, `http://127.0.0.1:${second.port}/x`);
  assert.deepEqual(seen, [
    { where: "/start", auth: "Bearer s3cret", cookie: "sid=1" },
    { where: "/same", auth: "Bearer s3cret", cookie: "sid=1" },
    { where: "second", auth: undefined, cookie: undefined },
  ]);
  assert.equal(
    p.audit.filter((e) => e.kind === "egress.connection").length,
    3,
    "one decision per hop",
  );
});

test("redirects stop at max_redirects and the last answer is returned", async () => {
  const up = await httpUpstream((_req, res) => res.writeHead(302, { location: "/again" }).end());
  const p = await startProxy({
    system: `version: 1\nnetwork: { egress: { allow: ["127.0.0.1:${up.port}"] } }\n`,
  });
  const r = await client(p.port).http(
    { ...GET, url: `http://127.0.0.1:${up.port}/`, max_redirects: 2 },
    WHO,
  );
  assert.equal(r.status, 302);
  assert.equal(r.redirects, 2);
});

test("client http() gives up after timeout_ms with a Timeout capability error", async () => {
  const up = await httpUpstream(() => {
    /* never answers */
  });
  const p = await startProxy({
    system: `version: 1\nnetwork: { egress: { allow: ["127.0.0.1:${up.port}"] } }\n`,
  });
  await assert.rejects(
    client(p.port).http({ ...GET, url: `http://127.0.0.1:${up.port}/`, timeout_ms: 200 }, WHO),
    (err: unknown) =>
      err instanceof KruxError && err.code === "CapabilityError" && err.data.type === "Timeout",
  );
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 50);
  await assert.rejects(
    client(p.port).http({ ...GET, url: `http://127.0.0.1:${up.port}/` }, WHO, ac.signal),
    (err: unknown) => err instanceof KruxError && err.data.type === "Timeout",
  );
});

test("client stream() yields the body as it arrives", async () => {
  const up = await httpUpstream((_req, res) => {
    res.write("part1-");
    setTimeout(() => res.end("part2"), 20);
  });
  const p = await startProxy({
    system: `version: 1\nnetwork: { egress: { allow: ["127.0.0.1:${up.port}"] } }\n`,
  });
  const s = await client(p.port).stream(
    {
      method: "GET",
      url: `http://127.0.0.1:${up.port}/file`,
      timeout_ms: 5000,
      follow_redirects: false,
      max_redirects: 0,
    },
    WHO,
  );
  assert.equal(s.status, 200);
  const chunks: Buffer[] = [];
  for await (const c of s.body) chunks.push(c);
  assert.equal(Buffer.concat(chunks).toString(), "part1-part2");
  s.destroy();
});

test("client connect() opens and closes a tunnel, and is refused like any other connection", async () => {
  const echo = await echoUpstream();
  const p = await startProxy({
    system: `version: 1\nnetwork: { egress: { allow: ["127.0.0.1:${echo.port}"] } }\n`,
  });
  const c = client(p.port);
  const r = await c.connect("127.0.0.1", echo.port, 2000, WHO);
  assert.equal(r.address, "127.0.0.1");
  assert.equal(typeof r.duration_ms, "number");
  await until(() => echo.accepts === 1);
  await assert.rejects(
    c.connect("127.0.0.1", 1, 2000, WHO),
    (err: unknown) => err instanceof KruxError && err.code === "PolicyDenied",
  );
});

test("an allowed target that refuses the connection is a NetworkError naming the address", async () => {
  const closed = await new Promise<number>((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
  const p = await startProxy({
    system: `version: 1\nnetwork: { egress: { allow: ["127.0.0.1:${closed}", "nowhere.example:443"] } }\n`,
  });
  const a = await raw(p.port, connectReq(`127.0.0.1:${closed}`, auth()));
  assert.equal(a.status, 502);
  assert.deepEqual(JSON.parse(a.body), {
    error: "upstream_unreachable",
    detail: `127.0.0.1:${closed}: ECONNREFUSED`,
    address: "127.0.0.1",
  });
  const c = client(p.port);
  await assert.rejects(c.connect("127.0.0.1", closed, 2000, WHO), (err: unknown) => {
    assert.ok(err instanceof KruxError);
    assert.equal(err.code, "CapabilityError");
    assert.equal(err.data.type, "NetworkError");
    assert.equal(err.data.address, "127.0.0.1");
    assert.match(String(err.data.detail), /ECONNREFUSED/);
    return true;
  });
  await assert.rejects(
    c.connect("nowhere.example", 443, 2000, WHO),
    (err: unknown) => err instanceof KruxError && err.data.type === "NotFound",
  );
  // The refused dial still closes its record: one egress.closed per allowed connection.
  const kinds = p.audit.map((e) => `${e.kind}:${e.outcome.status}:${e.outcome.error_type ?? ""}`);
  assert.deepEqual(kinds, [
    "egress.connection:ok:",
    "egress.closed:error:NetworkError",
    "egress.connection:ok:",
    "egress.closed:error:NetworkError",
    "egress.connection:error:NotFound",
  ]);
});

test("client lookup() resolves allowed names through the proxy and marks refused answers", async () => {
  const p = await startProxy({
    system: `version: 1\nnetwork: { egress: { allow: ["pub.example:443", "inside.example:443"] } }\n`,
  });
  const c = client(p.port);
  assert.deepEqual(await c.lookup("pub.example", "A", WHO), {
    records: ["93.184.215.14"],
    refused: [],
  });
  assert.deepEqual(await c.lookup("pub.example", "AAAA", WHO), {
    records: ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    refused: [],
  });
  assert.deepEqual(await c.lookup("inside.example", "A", WHO), {
    records: ["10.1.2.3"],
    refused: ["10.1.2.3"],
  });
  await assert.rejects(
    c.lookup("elsewhere.example", "A", WHO),
    (err: unknown) => err instanceof KruxError && err.code === "PolicyDenied",
  );
  const resolves = p.audit.filter((e) => e.detail.method === "RESOLVE");
  assert.equal(resolves.length, 4);
});

test("/v1/resolve needs a credential", async () => {
  const p = await startProxy({ system: "version: 1\n" });
  const r = await forward(p.port, "/v1/resolve?host=pub.example&type=A");
  assert.equal(r.status, 407);
});

test("client uses the proxy's unix socket when given one", async () => {
  const up = await httpUpstream((_req, res) => res.end("via unix"));
  const { dir, cleanup } = tempDir("kruxos-egress-sock-");
  cleanups.push(cleanup);
  const policyFile = path.join(dir, "system.yaml");
  writeFileSync(
    policyFile,
    `version: 1\nnetwork: { egress: { allow: ["127.0.0.1:${up.port}"] } }\n`,
  );
  const engine = new PolicyEngine({ files: [policyFile] });
  assert.ok(engine.reload().ok);
  const proxy = createProxy({
    log: createLogger({ program: "t", level: "silent" }),
    registry: new Registry(),
    policy: engine,
    credentialKey: KEY,
    audit: async () => undefined,
  });
  const server = proxy.server();
  const sock = path.join(dir, "egress.sock");
  await new Promise<void>((r) => server.listen(sock, r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  const c = createEgressClient({ proxySocket: sock, mint: (w) => mintCredential(KEY, w, 60_000) });
  const r = await c.http({ ...GET, url: `http://127.0.0.1:${up.port}/` }, WHO);
  assert.equal(r.body.toString(), "via unix");
});

// ---------------------------------------------------------------------------------------------
// https through CONNECT, with a certificate made here by openssl

function selfSigned(): { key: string; cert: string } | string {
  if (!["/usr/bin/openssl", "/bin/openssl", "/usr/local/bin/openssl"].some(existsSync))
    return "openssl is not installed";
  const { dir, cleanup } = tempDir("kruxos-egress-tls-");
  cleanups.push(cleanup);
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=upstream.test",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        path.join(dir, "key.pem"),
        "-out",
        path.join(dir, "cert.pem"),
      ],
      { stdio: "ignore" },
    );
  } catch (err) {
    return `openssl could not make a certificate: ${(err as Error).message}`;
  }
  return {
    key: readFileSync(path.join(dir, "key.pem"), "utf8"),
    cert: readFileSync(path.join(dir, "cert.pem"), "utf8"),
  };
}

const tlsMaterial = selfSigned();

test(
  "client http() speaks TLS to an https upstream inside a CONNECT tunnel",
  { skip: typeof tlsMaterial === "string" ? tlsMaterial : false },
  async () => {
    const m = tlsMaterial as { key: string; cert: string };
    const server = https.createServer(m, (req, res) => res.end(`tls ok ${req.url}`));
    const port = await listen(server);
    const p = await startProxy({
      system: `version: 1\nnetwork: { egress: { allow: ["127.0.0.1:${port}"] } }\n`,
    });
    const r = await client(p.port, { ca: m.cert }).http(
      { ...GET, url: `https://127.0.0.1:${port}/secure` },
      WHO,
    );
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), "tls ok /secure");
    assert.equal(p.audit[0]?.detail.method, "CONNECT");
    // Without the CA the certificate is not trusted: a TlsError, not a silent downgrade.
    await assert.rejects(
      client(p.port).http({ ...GET, url: `https://127.0.0.1:${port}/secure` }, WHO),
      (err: unknown) => err instanceof KruxError && err.data.type === "TlsError",
    );
  },
);
