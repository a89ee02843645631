// A client with a valid token sends WebSocket frames that break RFC 6455 — the campaign that once
// stopped the whole appliance with one frame. Every violation against every WebSocket endpoint
// (agent /rpc, MCP over WebSocket, the supervision stream, the dashboard's /ws) must close only
// that connection, with the code the RFC gives, while the process and every other connection go on;
// each one is counted in a metric and recorded in the audit log.
import assert from "node:assert/strict";
import net from "node:net";
import path from "node:path";
import { test } from "node:test";
import WebSocket from "ws";
import { httpGet } from "../helpers/repo.js";
import {
  closePayload,
  frame,
  rawUpgrade,
  sendAndReadClose,
  type RawConnection,
} from "../helpers/raw-ws.js";
import { portOf, readyHostForFile } from "../contract/harness.js";

const AGENT_MAX = 64 * 1024;
const STREAM_MAX = 64 * 1024;

const host = readyHostForFile("frames", (m) => ({
  ...m,
  gateway: { ...m.gateway, max_message_bytes: AGENT_MAX },
  // Every violation of this file is recorded one by one, so the test can find each of them.
  audit: { ...m.audit, refusal_records_per_source: 1000, refusal_records_per_window: 1000 },
}));

const utf8 = (s: string): Buffer => Buffer.from(s, "utf8");
const PROTOCOL_ERROR = 1002;
const INVALID_DATA = 1007;
const TOO_BIG = 1009;

interface Violation {
  readonly name: string;
  readonly bytes: (maxPayload: number) => Buffer;
  readonly closeCode: number;
}

/** The kinds of RFC 6455 violation the campaign found; literal expectations, per the RFC. */
const VIOLATIONS: readonly Violation[] = [
  {
    name: "the campaign's frame: masked text that is not UTF-8 (81 83 01 02 03 04 7a fd 7e)",
    bytes: () => Buffer.from("8183010203047afd7e", "hex"),
    closeCode: INVALID_DATA,
  },
  {
    name: "a text frame with an overlong UTF-8 sequence",
    bytes: () => frame({ opcode: 1, payload: Buffer.from([0xc0, 0xaf]) }),
    closeCode: INVALID_DATA,
  },
  {
    name: "a frame longer than the message limit",
    bytes: (max) => frame({ opcode: 1, payload: utf8("{}"), claimedLength: BigInt(max + 1) }),
    closeCode: TOO_BIG,
  },
  {
    name: "a frame claiming 2^63 bytes",
    bytes: () => frame({ opcode: 2, claimedLength: 1n << 63n }),
    closeCode: TOO_BIG,
  },
  {
    name: "a frame claiming 2^53 bytes",
    bytes: () => frame({ opcode: 2, claimedLength: 1n << 53n }),
    closeCode: TOO_BIG,
  },
  {
    name: "fragments that together pass the message limit",
    bytes: (max) =>
      Buffer.concat([
        frame({ opcode: 1, fin: false, payload: Buffer.alloc(max / 2 + 1, 0x20) }),
        frame({ opcode: 0, payload: Buffer.alloc(max / 2 + 1, 0x20) }),
      ]),
    closeCode: TOO_BIG,
  },
  {
    name: "RSV1 set without an extension",
    bytes: () => frame({ opcode: 1, rsv: 4, payload: utf8("{}") }),
    closeCode: PROTOCOL_ERROR,
  },
  {
    name: "RSV2 set",
    bytes: () => frame({ opcode: 1, rsv: 2, payload: utf8("{}") }),
    closeCode: PROTOCOL_ERROR,
  },
  {
    name: "RSV3 set",
    bytes: () => frame({ opcode: 1, rsv: 1, payload: utf8("{}") }),
    closeCode: PROTOCOL_ERROR,
  },
  {
    name: "a reserved data opcode (3)",
    bytes: () => frame({ opcode: 3, payload: utf8("{}") }),
    closeCode: PROTOCOL_ERROR,
  },
  {
    name: "a reserved control opcode (0xB)",
    bytes: () => frame({ opcode: 0xb }),
    closeCode: PROTOCOL_ERROR,
  },
  {
    name: "an unmasked client frame",
    bytes: () => frame({ opcode: 1, payload: utf8("{}"), mask: null }),
    closeCode: PROTOCOL_ERROR,
  },
  {
    name: "a ping over 125 bytes",
    bytes: () => frame({ opcode: 9, payload: Buffer.alloc(126, 0x61) }),
    closeCode: PROTOCOL_ERROR,
  },
  {
    name: "a pong over 125 bytes",
    bytes: () => frame({ opcode: 0xa, payload: Buffer.alloc(200, 0x61) }),
    closeCode: PROTOCOL_ERROR,
  },
  {
    name: "a close frame over 125 bytes",
    bytes: () => frame({ opcode: 8, payload: closePayload(1000, Buffer.alloc(130, 0x61)) }),
    closeCode: PROTOCOL_ERROR,
  },
  {
    name: "a fragmented ping",
    bytes: () => frame({ opcode: 9, fin: false }),
    closeCode: PROTOCOL_ERROR,
  },
  {
    name: "a continuation frame with nothing to continue",
    bytes: () => frame({ opcode: 0, payload: utf8("{}") }),
    closeCode: PROTOCOL_ERROR,
  },
  {
    name: "a new text frame while a fragmented message is open",
    bytes: () =>
      Buffer.concat([
        frame({ opcode: 1, fin: false, payload: utf8("{") }),
        frame({ opcode: 1, payload: utf8("}") }),
      ]),
    closeCode: PROTOCOL_ERROR,
  },
  {
    name: "a fragmented message that is not UTF-8 once joined",
    bytes: () =>
      Buffer.concat([
        frame({ opcode: 1, fin: false, payload: Buffer.from([0x7b, 0xe2]) }),
        frame({ opcode: 0, payload: Buffer.from([0x28, 0xa1, 0x7d]) }),
      ]),
    closeCode: INVALID_DATA,
  },
  {
    name: "close code 999",
    bytes: () => frame({ opcode: 8, payload: closePayload(999) }),
    closeCode: PROTOCOL_ERROR,
  },
  {
    name: "close code 1005",
    bytes: () => frame({ opcode: 8, payload: closePayload(1005) }),
    closeCode: PROTOCOL_ERROR,
  },
  {
    name: "close code 1006",
    bytes: () => frame({ opcode: 8, payload: closePayload(1006) }),
    closeCode: PROTOCOL_ERROR,
  },
  {
    name: "close code 5000",
    bytes: () => frame({ opcode: 8, payload: closePayload(5000) }),
    closeCode: PROTOCOL_ERROR,
  },
  {
    name: "a 1-byte close frame",
    bytes: () => frame({ opcode: 8, payload: Buffer.from([3]) }),
    closeCode: PROTOCOL_ERROR,
  },
  {
    name: "a close reason that is not UTF-8",
    bytes: () => frame({ opcode: 8, payload: closePayload(1000, Buffer.from([0xff, 0xfe])) }),
    closeCode: INVALID_DATA,
  },
  {
    name: "bytes that are not a frame at all (an HTTP request after the upgrade)",
    bytes: () => utf8("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    closeCode: PROTOCOL_ERROR,
  },
];

interface Endpoint {
  readonly name: string;
  readonly port: () => number;
  readonly path: string;
  readonly token: () => string;
  readonly maxPayload: number;
  /** A well-behaved client that must keep working while others misbehave. */
  readonly witness: () => Promise<Witness>;
}

interface Witness {
  /** Resolves when the connection still answers. */
  alive(): Promise<void>;
  close(): void;
}

function connect(port: number, urlPath: string, token: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${urlPath}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

/** A JSON-RPC request on the witness, answered. */
async function rpcWitness(port: number, urlPath: string, method: string): Promise<Witness> {
  const ws = await connect(port, urlPath, host.token);
  let id = 0;
  return {
    alive: () =>
      new Promise((resolve, reject) => {
        const mine = ++id;
        const t = setTimeout(() => reject(new Error(`${urlPath} witness got no answer`)), 5000);
        const onMessage = (d: WebSocket.RawData): void => {
          const msg = JSON.parse(d.toString()) as { id?: number; result?: unknown };
          if (msg.id !== mine) return;
          clearTimeout(t);
          ws.off("message", onMessage);
          assert.ok(msg.result !== undefined, d.toString());
          resolve();
        };
        ws.on("message", onMessage);
        ws.send(JSON.stringify({ jsonrpc: "2.0", id: mine, method, params: {} }));
      }),
    close: () => ws.close(),
  };
}

/** The stream answers a ping while open. */
async function pingWitness(port: number, urlPath: string): Promise<Witness> {
  const ws = await connect(port, urlPath, host.adminToken);
  return {
    alive: () =>
      new Promise((resolve, reject) => {
        assert.equal(ws.readyState, WebSocket.OPEN, `${urlPath} witness was closed`);
        const t = setTimeout(() => reject(new Error(`${urlPath} witness got no pong`)), 5000);
        ws.once("pong", () => {
          clearTimeout(t);
          resolve();
        });
        ws.ping();
      }),
    close: () => ws.close(),
  };
}

const ENDPOINTS: readonly Endpoint[] = [
  {
    name: "agent /rpc",
    port: () => portOf(host.m, "gateway"),
    path: "/rpc",
    token: () => host.token,
    maxPayload: AGENT_MAX,
    witness: () => rpcWitness(portOf(host.m, "gateway"), "/rpc", "capabilities.list"),
  },
  {
    name: "MCP over WebSocket",
    port: () => portOf(host.m, "gateway"),
    path: "/mcp",
    token: () => host.token,
    maxPayload: AGENT_MAX,
    witness: () => rpcWitness(portOf(host.m, "gateway"), "/mcp", "ping"),
  },
  {
    name: "the supervision stream",
    port: () => portOf(host.m, "supervision", "ws_port"),
    path: "/",
    token: () => host.adminToken,
    maxPayload: STREAM_MAX,
    witness: () => pingWitness(portOf(host.m, "supervision", "ws_port"), "/"),
  },
  {
    name: "the dashboard's /ws",
    port: () => portOf(host.m, "dashboard"),
    path: "/ws",
    token: () => host.adminToken,
    maxPayload: STREAM_MAX,
    witness: () => pingWitness(portOf(host.m, "dashboard"), "/ws"),
  },
];

async function upgradeOk(e: Endpoint): Promise<RawConnection> {
  const c = await rawUpgrade(e.port(), e.path, { authorization: `Bearer ${e.token()}` });
  assert.match(c.status, /^HTTP\/1\.1 101 /, `${e.name}: ${c.status}`);
  return c;
}

for (const e of ENDPOINTS)
  test(`every frame violation against ${e.name} closes only that connection, with the RFC's code`, async (t) => {
    const witness = await e.witness();
    try {
      for (const v of VIOLATIONS)
        await t.test(`${v.name} → ${v.closeCode}`, async () => {
          const c = await upgradeOk(e);
          const end = await sendAndReadClose(c, v.bytes(e.maxPayload));
          assert.equal(end.closeCode, v.closeCode, `${e.name}: ${v.name}`);
          assert.ok(end.closed, "the server closed the connection");
        });
      await t.test("a client that resets the TCP connection in the middle of a frame", async () => {
        const c = await upgradeOk(e);
        c.socket.write(frame({ opcode: 1, payload: utf8("{}") }).subarray(0, 4));
        c.socket.resetAndDestroy();
      });
      // The process and a well-behaved client on the same endpoint went through all of it.
      const live = await httpGet(`http://127.0.0.1:${portOf(host.m, "gateway")}/livez`);
      assert.equal(live.status, 200);
      await witness.alive();
      // New connections are accepted as before.
      const fresh = await e.witness();
      await fresh.alive();
      fresh.close();
    } finally {
      witness.close();
    }
  });

test("every violation is counted in kruxos_peer_faults_total and recorded as peer.violation", async () => {
  const metrics = await httpGet(
    `http://127.0.0.1:${portOf(host.m, "observability", "metrics_port")}/metrics`,
  );
  const count = (server: string): number =>
    [...metrics.body.matchAll(/^kruxos_peer_faults_total\{([^}]*)\} (\d+)$/gm)]
      .filter((x) => (x[1] ?? "").includes(`server="${server}"`))
      .reduce((n, x) => n + Number(x[2]), 0);
  // /rpc and /mcp on the agent port; the stream also sees the dashboard's /ws (a byte pipe to it).
  assert.equal(count("agent"), 2 * VIOLATIONS.length, metrics.body.slice(0, 2000));
  assert.equal(count("supervision_ws"), 2 * VIOLATIONS.length);
  const q = await host.cli([
    "audit",
    "query",
    "--kind",
    "peer.violation",
    "--json",
    "--limit",
    "1000",
  ]);
  assert.equal(q.code, 0, q.stderr);
  const records = JSON.parse(q.stdout) as {
    detail: { server: string; code: string; close_code?: number };
  }[];
  assert.equal(records.length, 4 * VIOLATIONS.length);
  assert.ok(
    records.some((r) => r.detail.code === "WS_ERR_INVALID_UTF8" && r.detail.close_code === 1007),
  );
  assert.ok(records.some((r) => r.detail.server === "supervision_ws"));
  assert.ok(records.every((r) => r.detail.code.startsWith("WS_ERR_")));
  const verify = await host.cli(["audit", "verify"]);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
});

/** Bytes a broken or hostile peer sends to an HTTP listener before it vanishes. */
const GARBAGE: readonly string[] = [
  "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", // a TLS ClientHello to a plain HTTP port
  "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
  "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
  "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
  `GET /${"a".repeat(70_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
  "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
  "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n",
  "GET //a:99999/%E0%A4%A HTTP/1.1\r\nHost: x\r\n\r\n",
  "\r\n\r\n\r\n",
];

/** Write `bytes`, then either reset the connection at once or wait for the server to answer. */
function hit(to: net.NetConnectOpts, bytes: string, reset: boolean): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(to, () => {
      s.write(Buffer.from(bytes, "latin1"));
      // A unix socket has no RST; there a reset is an abrupt close.
      if (reset) {
        if ("path" in to) s.destroy();
        else s.resetAndDestroy();
      }
    });
    s.on("data", () => undefined);
    s.on("close", () => resolve());
    s.on("error", () => resolve());
    setTimeout(() => {
      s.destroy();
      resolve();
    }, 3000).unref();
  });
}

test("garbage, half requests and resets on every HTTP listener leave the appliance serving", async () => {
  const tcp = (port: number): net.NetConnectOpts => ({ port, host: "127.0.0.1" });
  const run = path.join(host.a.home ?? "", "run");
  const listeners: [string, net.NetConnectOpts][] = [
    ["agent port", tcp(portOf(host.m, "gateway"))],
    ["user API", tcp(portOf(host.m, "supervision", "api_port"))],
    ["supervision stream", tcp(portOf(host.m, "supervision", "ws_port"))],
    ["dashboard", tcp(portOf(host.m, "dashboard"))],
    ["egress proxy", tcp(portOf(host.m, "proxy"))],
    ["metrics", tcp(portOf(host.m, "observability", "metrics_port"))],
    ["egress socket", { path: path.join(run, "egress.sock") }],
    ["audit intake", { path: path.join(run, "audit.sock") }],
  ];
  await Promise.all(
    listeners.flatMap(([, to]) => GARBAGE.flatMap((g) => [hit(to, g, false), hit(to, g, true)])),
  );
  const ready = await httpGet(`http://127.0.0.1:${portOf(host.m, "gateway")}/ready`);
  assert.equal(ready.status, 200, ready.body);
  for (const port of [portOf(host.m, "dashboard"), portOf(host.m, "gateway")])
    assert.equal((await httpGet(`http://127.0.0.1:${port}/livez`)).status, 200);
  const witness = await rpcWitness(portOf(host.m, "gateway"), "/rpc", "capabilities.list");
  await witness.alive();
  witness.close();
});
