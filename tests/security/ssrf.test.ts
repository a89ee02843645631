// SSRF through the egress proxy: every way an agent might spell or resolve its way to loopback,
// private, link-local, metadata or other internal addresses, tried against the real proxy with a real
// policy engine, a real DNS server (UDP on 127.0.0.1) and the real system resolver. A "victim"
// server on 127.0.0.1 (and ::1) counts every connection it accepts: it must stay at zero. A control
// server, allowed by a rule naming its literal address, shows the proxy does connect when it should.
import assert from "node:assert/strict";
import dns from "node:dns";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { after, before, test } from "node:test";
import type { CallIdentity } from "../../src/capabilities/index.js";
import { KruxError, Registry, createLogger } from "../../src/core/index.js";
import {
  createEgressClient,
  createProxy,
  mintCredential,
  recordsWith,
  resolveWith,
  type EgressAuditEntry,
  type ProxyDeps,
} from "../../src/egress/index.js";
import { PolicyEngine } from "../../src/policy/index.js";
import {
  startDnsServer,
  type Answer,
  type DnsServer,
  type RecordKind,
} from "../helpers/dns-server.js";
import { tempDir } from "../helpers/repo.js";

const KEY = Buffer.alloc(32, 9);
const WHO: CallIdentity = {
  agent: "scout",
  session: "sess-9",
  callId: "call-7",
  capability: "network.http_request",
};
const PUBLIC = "93.184.215.14";
const cleanups: (() => Promise<void> | void)[] = [];

// ---------------------------------------------------------------------------------------------
// the world: victim, control, DNS, policy, two proxies (test DNS / system resolver)

let victimAccepts = 0;
let V = 0; // victim port
let C = 0; // control port
let dnsServer: DnsServer;
let rebindQueries = 0;
/** A name /etc/hosts maps to loopback other than localhost itself ("" when there is none). */
let hostsLoopbackName = "";

interface Proxy {
  readonly port: number;
  readonly audit: EgressAuditEntry[];
}
let viaDns: Proxy;
let viaSystem: Proxy;

const ZONE: Record<string, Partial<Record<RecordKind, Answer[]>>> = {
  "loop.test": { A: ["127.0.0.1"] },
  "v6loop.test": { AAAA: ["::1"] },
  "ten.test": { A: ["10.0.0.1"] },
  "oneseventwo.test": { A: ["172.16.5.4"] },
  "home.test": { A: ["192.168.1.1"] },
  "meta.test": { A: ["169.254.169.254"] },
  "meta6.test": { AAAA: ["fd00:ec2::254"] },
  "alibaba.test": { A: ["100.100.100.200"] },
  "cgnat.test": { A: ["100.64.0.1"] },
  "ula.test": { AAAA: ["fd12:3456:789a::1"] },
  "ll4.test": { A: ["169.254.10.10"] },
  "ll6.test": { AAAA: ["fe80::1"] },
  "zero.test": { A: ["0.0.0.0"] },
  "mapped.test": { AAAA: ["::ffff:127.0.0.1"] },
  "nat64.test": { AAAA: ["64:ff9b::a00:1"] },
  "sixtofour.test": { AAAA: ["2002:c0a8:101::1"] },
  "mixed.test": { A: [PUBLIC], AAAA: ["::1"] },
  "pub.test": { A: [PUBLIC] },
};

async function listenOn(server: net.Server, host: string, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        (server as http.Server).closeAllConnections?.();
        server.close(() => resolve());
      }),
  );
  return (server.address() as net.AddressInfo).port;
}

function findHostsLoopbackName(): string {
  let text: string;
  try {
    text = readFileSync("/etc/hosts", "utf8");
  } catch {
    return "";
  }
  for (const line of text.split("\n")) {
    const [addr, ...names] = line.replace(/#.*/, "").trim().split(/\s+/);
    if (!addr || !(addr.startsWith("127.") || addr === "::1")) continue;
    const name = names.find((n) => /^[a-z0-9-]+(\.[a-z0-9-]+)*$/i.test(n) && !/localhost/i.test(n));
    if (name) return name.toLowerCase();
  }
  return "";
}

async function startProxy(engine: PolicyEngine, extra: Partial<ProxyDeps>): Promise<Proxy> {
  const audit: EgressAuditEntry[] = [];
  const proxy = createProxy({
    log: createLogger({ program: "ssrf-test", level: "silent" }),
    registry: new Registry(),
    policy: engine,
    credentialKey: KEY,
    audit: async (e) => void audit.push(e as EgressAuditEntry),
    connectTimeoutMs: 500,
    ...extra,
  });
  const port = await listenOn(proxy.server(), "127.0.0.1");
  return { port, audit };
}

before(async () => {
  const victim = http.createServer((_req, res) => res.end("victim reached"));
  victim.on("connection", () => victimAccepts++);
  V = await listenOn(victim, "127.0.0.1");
  try {
    const victim6 = http.createServer((_req, res) => res.end("victim reached"));
    victim6.on("connection", () => victimAccepts++);
    await listenOn(victim6, "::1", V);
  } catch {
    /* no IPv6 loopback here: the v4 victim still counts */
  }
  const control = http.createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    if (u.pathname === "/redirect")
      res.writeHead(302, { location: u.searchParams.get("to") ?? "/" }).end();
    else res.end("control-ok");
  });
  C = await listenOn(control, "127.0.0.1");

  dnsServer = await startDnsServer((name, type) => {
    if (name === "rebind.test") {
      if (type !== "A") return [];
      return ++rebindQueries === 1 ? [PUBLIC] : ["127.0.0.1"];
    }
    const z = ZONE[name];
    return z ? (z[type] ?? []) : undefined;
  });
  cleanups.push(() => dnsServer.close());
  hostsLoopbackName = findHostsLoopbackName();

  const { dir, cleanup } = tempDir("kruxos-ssrf-");
  cleanups.push(cleanup);
  const system = path.join(dir, "system.yaml");
  const allow = [
    `127.0.0.1:${C}`, // the control: a rule naming a literal address
    `0.0.0.0:${V}`, // named, but nothing sensible lives at the unspecified address
    // Wildcards that textually match IP literals (127.0.0.1 ends in ".1"): never a grant for an
    // address, so the address checks below are what refuse, not the absence of a rule.
    `*.1:${V}`,
    `*.254:${V}`,
    `*.200:${V}`,
    `*.test:${V}`,
    "*.test:443",
    `*.test:${C}`,
    `localhost:${V}`,
    `sub.localhost:${V}`,
    `*.localhost:${V}`,
    `allowed.example:${V}`,
    ...(hostsLoopbackName ? [`${hostsLoopbackName}:${V}`] : []),
  ];
  writeFileSync(
    system,
    `version: 1\nnetwork:\n  egress:\n    allow:\n${allow.map((a) => `      - "${a}"\n`).join("")}`,
  );
  const agentDir = path.join(dir, "agents");
  mkdirSync(agentDir);
  const engine = new PolicyEngine({ files: [system], agentDir });
  const loaded = engine.reload();
  assert.ok(loaded.ok, JSON.stringify(loaded));

  const resolver = new dns.promises.Resolver({ timeout: 2000, tries: 1 });
  resolver.setServers([`127.0.0.1:${dnsServer.port}`]);
  viaDns = await startProxy(engine, {
    resolve: resolveWith(resolver),
    resolveRecords: recordsWith(resolver),
  });
  viaSystem = await startProxy(engine, {});
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
});

// ---------------------------------------------------------------------------------------------
// requests

const credential = (): string =>
  `Basic ${Buffer.from(`kruxos:${mintCredential(KEY, WHO, 60_000)}`).toString("base64")}`;

interface Answered {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly socket: net.Socket;
}

/** A raw CONNECT (so odd authorities reach the proxy exactly as written). */
function connect(proxy: Proxy, authority: string): Promise<Answered> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port: proxy.port, allowHalfOpen: true });
    let buf = Buffer.alloc(0);
    let done = false;
    const parse = (): Answered | undefined => {
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return undefined;
      const lines = buf.subarray(0, end).toString().split("\r\n");
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(":");
        headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(lines[0] ?? "")?.[1]);
      return { status, headers, body: buf.subarray(end + 4).toString(), socket };
    };
    socket.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const a = parse();
      if (a?.status === 200 && !done) {
        done = true;
        resolve(a);
      }
    });
    const finish = (): void => {
      socket.end();
      if (done) return;
      done = true;
      const a = parse();
      if (a) resolve(a);
      else reject(new Error(`no answer: ${buf.toString()}`));
    };
    socket.on("end", finish);
    socket.on("close", finish);
    socket.on("error", reject);
    socket.write(
      `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\nProxy-Authorization: ${credential()}\r\n\r\n`,
    );
  });
}

/** An absolute-form request, written raw so the URL reaches the proxy byte for byte. */
function forward(proxy: Proxy, url: string): Promise<Answered> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port: proxy.port });
    let buf = Buffer.alloc(0);
    socket.on("data", (c: Buffer) => (buf = Buffer.concat([buf, c])));
    socket.on("error", reject);
    socket.on("close", () => {
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return reject(new Error(`no answer: ${buf.toString()}`));
      const lines = buf.subarray(0, end).toString().split("\r\n");
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(":");
        headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      let body = buf.subarray(end + 4).toString();
      if (headers["transfer-encoding"] === "chunked")
        body = body.replace(/^[0-9a-f]+\r\n/, "").replace(/\r\n0\r\n\r\n$/, "");
      resolve({
        status: Number(/^HTTP\/1\.1 (\d+)/.exec(lines[0] ?? "")?.[1]),
        headers,
        body,
        socket,
      });
    });
    socket.write(
      `GET ${url} HTTP/1.1\r\nHost: ignored\r\nProxy-Authorization: ${credential()}\r\nConnection: close\r\n\r\n`,
    );
  });
}

function ruleOf(a: Answered): string {
  return (JSON.parse(a.body) as { rule?: string }).rule ?? "";
}

/** 403 with the structured body, the given rule (when given), and the victim untouched. */
function assertRefused(a: Answered, rule: string | undefined, what: string): void {
  assert.equal(a.status, 403, `${what}: ${a.status} ${a.body}`);
  const body = JSON.parse(a.body) as Record<string, unknown>;
  assert.equal(body.error, "policy_denied", what);
  if (rule !== undefined) assert.equal(body.rule, rule, `${what}: ${a.body}`);
  assert.equal(a.headers["x-kruxos-policy"], `${String(body.policy)}/${String(body.rule)}`, what);
  assert.equal(victimAccepts, 0, `${what}: the victim was reached`);
}

async function refusedBoth(host: string, rule: string | undefined, proxy = viaDns): Promise<void> {
  assertRefused(await connect(proxy, `${host}:${V}`), rule, `CONNECT ${host}:${V}`);
  assertRefused(await forward(proxy, `http://${host}:${V}/`), rule, `GET http://${host}:${V}/`);
}

// ---------------------------------------------------------------------------------------------
// IPv4 spellings of loopback

test("a decimal-integer IPv4 (2130706433) is loopback and is refused", async () => {
  await refusedBoth("2130706433", "loopback-address");
});

test("an octal IPv4 (0177.0.0.1) is loopback and is refused", async () => {
  await refusedBoth("0177.0.0.1", "loopback-address");
  await refusedBoth("0177.0.0.01", "loopback-address");
});

test("hex IPv4 forms (0x7f.0.0.1, 0x7f000001) are loopback and are refused", async () => {
  await refusedBoth("0x7f.0.0.1", "loopback-address");
  await refusedBoth("0x7f000001", "loopback-address");
  await refusedBoth("0X7F.0.0.1", "loopback-address");
});

test("short IPv4 forms (127.1, 0x7f.1, 127.0.1) are loopback and are refused", async () => {
  await refusedBoth("127.1", "loopback-address");
  await refusedBoth("0x7f.1", "loopback-address");
  await refusedBoth("127.0.1", "loopback-address");
});

test("the unspecified address (0.0.0.0, 0) is refused even when a rule names it", async () => {
  // Linux connects 0.0.0.0 to the local host: no rule may open it.
  await refusedBoth("0.0.0.0", "unspecified-address");
  assertRefused(await connect(viaDns, `0:${V}`), "unspecified-address", "CONNECT 0");
});

test("an unparseable numeric host is a bad request, never a DNS name", async () => {
  for (const host of ["127.0.0.1.1", "0x7g.1", "256.0.0.1", "08.0.0.1"]) {
    const a = await connect(viaDns, `${host}:${V}`);
    assert.equal(a.status, 400, host);
  }
  assert.equal(victimAccepts, 0);
  assert.ok(!dnsServer.questions.some((q) => /^(127|0x7g|256|08)\./.test(q)), "no DNS query");
});

// ---------------------------------------------------------------------------------------------
// IPv6 literals

test("IPv4-mapped IPv6 in both notations is loopback and is refused", async () => {
  await refusedBoth("[::ffff:127.0.0.1]", "loopback-address");
  await refusedBoth("[::ffff:7f00:1]", "loopback-address");
  await refusedBoth("[0:0:0:0:0:ffff:7f00:0001]", "loopback-address");
});

test("IPv4-compatible, NAT64 and 6to4 literals embedding loopback are refused", async () => {
  for (const host of [
    "[::127.0.0.1]",
    "[64:ff9b::7f00:1]",
    "[64:ff9b::127.0.0.1]",
    "[2002:7f00:1::1]",
  ])
    assertRefused(await connect(viaDns, `${host}:${V}`), undefined, host);
});

test("IPv6 loopback [::1] and a zone-scoped link-local literal are refused", async () => {
  await refusedBoth("[::1]", undefined);
  assertRefused(await connect(viaDns, `[0::1]:${V}`), undefined, "[0::1]");
  assertRefused(await connect(viaDns, `[fe80::1%lo]:${V}`), undefined, "[fe80::1%lo]");
});

// ---------------------------------------------------------------------------------------------
// names the system resolver maps to loopback

test("localhost, localhost., LOCALHOST and sub.localhost are refused as loopback", async () => {
  for (const host of ["localhost", "localhost.", "LOCALHOST", "sub.localhost", "a.b.LocalHost."])
    await refusedBoth(host, "loopback-address", viaSystem);
});

test("a name /etc/hosts maps to loopback is refused through the system resolver", async (t) => {
  if (!hostsLoopbackName) return t.skip("/etc/hosts maps no name other than localhost to loopback");
  const addrs = await dns.promises.lookup(hostsLoopbackName, { all: true, verbatim: true });
  if (!addrs.every((a) => a.address.startsWith("127.") || a.address === "::1"))
    return t.skip(`${hostsLoopbackName} does not resolve to loopback only here`);
  await refusedBoth(hostsLoopbackName, "loopback-address", viaSystem);
});

// ---------------------------------------------------------------------------------------------
// metadata, CGNAT, ULA, link-local, private — literal and via real DNS

test("the cloud metadata address 169.254.169.254 is refused", async () => {
  await refusedBoth("169.254.169.254", "metadata-address");
  assertRefused(
    await forward(viaDns, `http://169.254.169.254:${V}/latest/meta-data/iam/`),
    "metadata-address",
    "metadata path",
  );
});

test("names resolving to metadata addresses (IPv4, AWS IPv6, Alibaba) are refused", async () => {
  await refusedBoth("meta.test", "metadata-address");
  await refusedBoth("meta6.test", "metadata-address");
  await refusedBoth("alibaba.test", "metadata-address");
});

test("a name resolving to CGNAT space (100.64/10) is refused", async () => {
  await refusedBoth("cgnat.test", "cgnat-address");
});

test("a name resolving to a ULA (fc00::/7) is refused", async () => {
  await refusedBoth("ula.test", "ula-address");
});

test("names resolving to link-local addresses (169.254/16, fe80::/10) are refused", async () => {
  await refusedBoth("ll4.test", "link-local-address");
  await refusedBoth("ll6.test", "link-local-address");
});

test("names resolving to RFC 1918 addresses are refused", async () => {
  await refusedBoth("ten.test", "private-address");
  await refusedBoth("oneseventwo.test", "private-address");
  await refusedBoth("home.test", "private-address");
});

test("names resolving to loopback (127.0.0.1, ::1) or 0.0.0.0 are refused", async () => {
  await refusedBoth("loop.test", "loopback-address");
  await refusedBoth("v6loop.test", "loopback-address");
  await refusedBoth("zero.test", "unspecified-address");
});

test("an AAAA answer in IPv4-mapped form is judged by the IPv4 address inside", async () => {
  await refusedBoth("mapped.test", "loopback-address");
});

test("NAT64 and 6to4 answers embedding private IPv4 are refused", async () => {
  await refusedBoth("nat64.test", "private-address");
  await refusedBoth("sixtofour.test", "private-address");
});

test("one refused answer refuses the name, even beside a public one", async () => {
  await refusedBoth("mixed.test", "loopback-address");
});

test("CONNECT to an allowed name whose DNS answer is private is refused with 403", async () => {
  const a = await connect(viaDns, "ten.test:443");
  assertRefused(a, "private-address", "CONNECT ten.test:443");
  assert.equal(a.headers["x-kruxos-policy"], "addresses/private-address");
});

test("a hostname rule never unlocks a loopback address, even one a literal rule allows", async () => {
  // 127.0.0.1:C is allowed by name of the address; loop.test:C only by "*.test:C".
  const a = await connect(viaDns, `loop.test:${C}`);
  assert.equal(a.status, 403);
  assert.equal(ruleOf(a), "loopback-address");
});

// ---------------------------------------------------------------------------------------------
// tricks in the URL and across requests

test("userinfo tricks are refused as bad requests before any lookup", async () => {
  for (const url of [
    `http://allowed.example@127.0.0.1:${V}/`,
    `http://allowed.example:${V}@127.0.0.1:${V}/`,
    `http://@127.0.0.1:${V}/`,
    `http://127.0.0.1:${V}\\@allowed.example/`,
    `http://allowed.example%40127.0.0.1:${V}/`,
  ]) {
    const a = await forward(viaDns, url);
    assert.equal(a.status, 400, `${url}: ${a.body}`);
  }
  const c = await connect(viaDns, `allowed.example@127.0.0.1:${V}`);
  assert.equal(c.status, 400);
  assert.equal(victimAccepts, 0);
});

test("a redirect to a private address is refused at the next hop", async () => {
  const client = createEgressClient({
    proxyHost: "127.0.0.1",
    proxyPort: viaDns.port,
    mint: (w) => mintCredential(KEY, w, 60_000),
  });
  const req = {
    method: "GET",
    timeout_ms: 5000,
    max_body_bytes: 65536,
    follow_redirects: true,
    max_redirects: 5,
  };
  for (const [to, rule] of [
    [`http://127.0.0.1:${V}/admin`, "loopback-address"],
    [`http://loop.test:${V}/admin`, "loopback-address"],
    [`http://[::ffff:127.0.0.1]:${V}/admin`, "loopback-address"],
    [`http://169.254.169.254:${V}/latest/meta-data/`, "metadata-address"],
  ] as const) {
    const start = `http://127.0.0.1:${C}/redirect?to=${encodeURIComponent(to)}`;
    await assert.rejects(client.http({ ...req, url: start }, WHO), (err: unknown) => {
      assert.ok(err instanceof KruxError, String(err));
      assert.equal(err.code, "PolicyDenied");
      assert.equal(err.data.rule, rule, to);
      return true;
    });
  }
  assert.equal(victimAccepts, 0);
});

test("DNS rebinding: the name is resolved once and the connection goes to that answer", async () => {
  const before = dnsServer.questions.filter((q) => q === "rebind.test A").length;
  const first = await connect(viaDns, `rebind.test:${V}`);
  // The first answer is public and unreachable from here: a gateway error, not the victim.
  assert.ok([502, 504].includes(first.status), `${first.status} ${first.body}`);
  assert.equal(dnsServer.questions.filter((q) => q === "rebind.test A").length - before, 1);
  const record = viaDns.audit.findLast(
    (e) => e.kind === "egress.connection" && e.detail.target === `rebind.test:${V}`,
  );
  assert.equal(record?.detail.address, PUBLIC, "connected to the first answer");
  const closed = viaDns.audit.findLast((e) => e.kind === "egress.closed");
  assert.equal(closed?.detail.address, PUBLIC);
  assert.equal(victimAccepts, 0);
  // The next connection resolves afresh, gets the rebound answer, and is refused for it.
  assertRefused(await connect(viaDns, `rebind.test:${V}`), "loopback-address", "rebound");
});

test("a lookup through the proxy marks loopback and private answers as refused", async () => {
  const client = createEgressClient({
    proxyHost: "127.0.0.1",
    proxyPort: viaDns.port,
    mint: (w) => mintCredential(KEY, w, 60_000),
  });
  assert.deepEqual(await client.lookup("loop.test", "A", WHO), {
    records: ["127.0.0.1"],
    refused: ["127.0.0.1"],
  });
  assert.deepEqual(await client.lookup("pub.test", "A", WHO), { records: [PUBLIC], refused: [] });
  await assert.rejects(
    client.lookup("elsewhere.example", "A", WHO),
    (err: unknown) => err instanceof KruxError && err.code === "PolicyDenied",
  );
});

// ---------------------------------------------------------------------------------------------
// the control: the proxy does connect where a rule names the address

test("control: an allow rule naming 127.0.0.1:<port> does connect, in every spelling", async () => {
  const f = await forward(viaDns, `http://127.0.0.1:${C}/`);
  assert.equal(f.status, 200, f.body);
  assert.equal(f.body, "control-ok");
  for (const host of ["127.0.0.1", "2130706433", "0x7f.1", "[::ffff:127.0.0.1]"]) {
    const a = await connect(viaDns, `${host}:${C}`);
    assert.equal(a.status, 200, `${host}: ${a.status} ${a.body}`);
    assert.equal(a.headers["x-kruxos-address"], "127.0.0.1");
    a.socket.write("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const got = await new Promise<string>((resolve) => {
      let s = "";
      a.socket.on("data", (c: Buffer) => (s += c.toString()));
      a.socket.on("end", () => {
        a.socket.end(); // the upstream closed its side; close ours so the tunnel can finish
        resolve(s);
      });
    });
    assert.match(got, /control-ok$/);
  }
  assert.equal(victimAccepts, 0);
});
