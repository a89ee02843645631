// Slow clients: a request head that never ends (slowloris), a body trickled one byte at a time with
// no token, a slow body with a token. Each listener closes them within [gateway] header_timeout_s
// and body_timeout_s, counts them as peer faults, and never reads a body before authentication.
import assert from "node:assert/strict";
import net from "node:net";
import { test } from "node:test";
import { httpGet } from "../helpers/repo.js";
import { RpcClient, mcpInitialize } from "../helpers/rpc-client.js";
import { portOf, readyHostForFile } from "../contract/harness.js";

const HEADER_S = 2;
const BODY_S = 3;
/** The timeouts are checked once a second at most; past this the test calls it a failure. */
const GRACE_MS = 2500;

const host = readyHostForFile("slow", (m) => ({
  ...m,
  gateway: { ...m.gateway, header_timeout_s: HEADER_S, body_timeout_s: BODY_S },
}));

interface Trickled {
  /** First line of whatever the server answered ("" if nothing). */
  readonly status: string;
  /** When the server closed the connection, ms after the first byte (undefined: it never did). */
  readonly closedAfterMs: number | undefined;
}

/**
 * Send `head` at once, then `trickle` one byte every `everyMs`, until the server closes the
 * connection or `giveUpMs` passes.
 */
function trickle(
  port: number,
  head: string,
  trickleBytes: string,
  everyMs: number,
  giveUpMs: number,
): Promise<Trickled> {
  return new Promise((resolve) => {
    const started = Date.now();
    let out = "";
    let i = 0;
    let timer: NodeJS.Timeout | undefined;
    const s = net.connect({ port, host: "127.0.0.1" }, () => {
      s.write(head);
      timer = setInterval(() => {
        if (!s.writable) return;
        s.write(trickleBytes[i % trickleBytes.length] ?? "x");
        i++;
      }, everyMs);
    });
    const done = (closed: boolean): void => {
      clearInterval(timer);
      s.destroy();
      resolve({
        status: out.split("\r\n")[0] ?? "",
        closedAfterMs: closed ? Date.now() - started : undefined,
      });
    };
    s.on("data", (c: Buffer) => (out += c.toString("latin1")));
    s.on("close", () => done(true));
    s.on("error", () => undefined);
    setTimeout(() => done(false), giveUpMs).unref();
  });
}

const LISTENERS = (): [string, number, string][] => [
  ["agent port", portOf(host.m, "gateway"), "/livez"],
  ["user API", portOf(host.m, "supervision", "api_port"), "/api/v1/health"],
  ["supervision stream", portOf(host.m, "supervision", "ws_port"), "/"],
  ["dashboard", portOf(host.m, "dashboard"), "/livez"],
];

test("a request head that never ends is answered 408 and closed within header_timeout_s, on every listener", async () => {
  const results = await Promise.all(
    LISTENERS().map(async ([name, port, path]) => ({
      name,
      r: await trickle(port, `GET ${path} HTTP/1.1\r\nHost: x\r\n`, "X-Slow: y\r\n", 400, 15_000),
    })),
  );
  for (const { name, r } of results) {
    assert.ok(r.closedAfterMs !== undefined, `${name} kept the connection`);
    assert.ok(
      r.closedAfterMs <= HEADER_S * 1000 + GRACE_MS,
      `${name} closed after ${r.closedAfterMs} ms`,
    );
    assert.equal(r.status, "HTTP/1.1 408 Request Timeout", name);
  }
});

test("a POST without a host.token is refused at once and closed, however slowly its body comes", async () => {
  const results = await Promise.all(
    [
      ["/mcp", portOf(host.m, "gateway"), "/mcp"] as const,
      ["user API", portOf(host.m, "supervision", "api_port"), "/api/v1/agents"] as const,
    ].map(async ([name, port, path]) => ({
      name,
      r: await trickle(
        port,
        `POST ${path} HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n`,
        "{",
        500,
        15_000,
      ),
    })),
  );
  for (const { name, r } of results) {
    assert.equal(r.status, "HTTP/1.1 401 Unauthorized", name);
    // Refused before the body, so well before the body timeout.
    assert.ok(
      r.closedAfterMs !== undefined && r.closedAfterMs < BODY_S * 1000,
      `${name}: ${r.closedAfterMs}`,
    );
  }
});

test("an authenticated body that trickles is answered 408 and closed within body_timeout_s", async () => {
  const r = await trickle(
    portOf(host.m, "gateway"),
    `POST /mcp HTTP/1.1\r\nHost: x\r\nauthorization: Bearer ${host.token}\r\ncontent-type: application/json\r\naccept: application/json\r\ncontent-length: 100000\r\n\r\n`,
    "{",
    300,
    20_000,
  );
  assert.ok(r.closedAfterMs !== undefined, "the slow body was never cut off");
  assert.ok(r.closedAfterMs <= BODY_S * 1000 + GRACE_MS, `closed after ${r.closedAfterMs} ms`);
  assert.equal(r.status, "HTTP/1.1 408 Request Timeout");
});

test("the appliance is unharmed and each timeout is a counted peer fault", async () => {
  assert.equal((await httpGet(`http://127.0.0.1:${portOf(host.m, "gateway")}/ready`)).status, 200);
  const metrics = await httpGet(
    `http://127.0.0.1:${portOf(host.m, "observability", "metrics_port")}/metrics`,
  );
  const timeouts = [...metrics.body.matchAll(/^kruxos_peer_faults_total\{([^}]*)\} (\d+)$/gm)]
    .filter((x) => (x[1] ?? "").includes('kind="timeout"'))
    .reduce((n, x) => n + Number(x[2]), 0);
  assert.ok(timeouts >= LISTENERS().length + 1, `timeouts counted: ${timeouts}`);
});

test("the timeouts bound how a request arrives, not how long a WebSocket or a streamed answer lives", async () => {
  const port = portOf(host.m, "gateway");
  const ws = await RpcClient.connect(port, host.token);
  let approval: string;
  try {
    // Well past both timeouts, the socket is still there and answers.
    await new Promise((r) => setTimeout(r, (BODY_S + 2) * 1000));
    const r = await ws.invoke("agent.whoami");
    assert.equal((r.result?.data as { agent: string }).agent, "slow");
    const queued = await ws.invoke("filesystem.write", { path: "w.txt", content: "x" });
    approval = String(queued.error?.data.approval_id);
  } finally {
    ws.close();
  }
  // A long poll whose request arrived at once is answered after longer than the body timeout.
  const mcp = async (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`http://127.0.0.1:${port}/mcp`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${host.token}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        ...headers,
      },
      body: JSON.stringify(body),
    });
  const init = await mcp(mcpInitialize("t"));
  const sid = init.headers.get("mcp-session-id") ?? "";
  const started = Date.now();
  const wait = await mcp(
    {
      jsonrpc: "2.0",
      id: 2,
      method: "tools/call",
      params: {
        name: "approvals.wait",
        arguments: { approval_id: approval, timeout_s: BODY_S + 2 },
      },
    },
    { "mcp-session-id": sid },
  );
  assert.equal(wait.status, 200);
  const text = await wait.text();
  assert.ok(Date.now() - started >= BODY_S * 1000, "the wait ended early");
  assert.match(text, /event: message/);
  assert.match(text, /"status":"pending"/);
});
