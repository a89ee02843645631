// MCP on the agent port: lifecycle, tools, the denial/approval mapping to isError results, and the
// three transports (WebSocket, Streamable HTTP, the stdio bridge) against a real fastify + ws server.
// Method names, error codes, header names and statuses are written out literally on purpose.
import assert from "node:assert/strict";
import { createConnection, createServer, type AddressInfo } from "node:net";
import { PassThrough } from "node:stream";
import { after, before, describe, test } from "node:test";
import WebSocket from "ws";
import { runMcpStdioBridge } from "../../src/cli/mcp-stdio.js";
import { ALICE, BOB, startTestServer, type TestServer } from "../helpers/mcp-server.js";

let srv: TestServer;
before(async () => {
  srv = await startTestServer();
});
after(async () => {
  await srv.close();
});

// Replies are checked field by field against literal expectations; typing each shape adds nothing.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Msg = { jsonrpc: "2.0"; id?: unknown; result?: any; error?: any };

/** A WebSocket MCP client that matches replies to requests by id. */
async function wsClient(
  token = ALICE,
  query = "",
): Promise<{
  ws: WebSocket;
  call: (method: string, params?: unknown) => Promise<Msg>;
  notify: (method: string, params?: unknown) => void;
}> {
  const ws = new WebSocket(srv.ws + query, { headers: { authorization: `Bearer ${token}` } });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const waiting = new Map<unknown, (m: Msg) => void>();
  ws.on("message", (data) => {
    const m = JSON.parse(data.toString()) as Msg;
    waiting.get(m.id)?.(m);
    waiting.delete(m.id);
  });
  let next = 1;
  return {
    ws,
    call: (method, params) =>
      new Promise((resolve) => {
        const id = next++;
        waiting.set(id, resolve);
        ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, ...(params ? { params } : {}) }));
      }),
    notify: (method, params) =>
      ws.send(JSON.stringify({ jsonrpc: "2.0", method, ...(params ? { params } : {}) })),
  };
}

const INIT = {
  protocolVersion: "2025-06-18",
  capabilities: {},
  clientInfo: { name: "test", version: "1" },
};

async function initialized(token = ALICE, query = "") {
  const c = await wsClient(token, query);
  const r = await c.call("initialize", INIT);
  assert.equal(r.result.protocolVersion, "2025-06-18");
  c.notify("notifications/initialized");
  return c;
}

describe("MCP lifecycle", () => {
  test("initialize echoes a supported revision and offers the newest for an unknown one", async () => {
    for (const v of ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"]) {
      const c = await wsClient();
      const r = await c.call("initialize", { ...INIT, protocolVersion: v });
      assert.equal(r.result.protocolVersion, v);
      assert.equal(r.result.serverInfo.name, "kruxos");
      assert.equal(r.result.serverInfo.version, "0.1.0-test");
      assert.deepEqual(r.result.capabilities, { tools: { listChanged: false } });
      assert.match(r.result.instructions, /approvals\.wait/);
      assert.match(r.result.instructions, /recovery/);
      c.ws.close();
    }
    const c = await wsClient();
    const r = await c.call("initialize", { ...INIT, protocolVersion: "1999-01-01" });
    assert.equal(r.result.protocolVersion, "2025-11-25");
    c.ws.close();
  });

  test("before initialize only ping is answered; other requests are -32600", async () => {
    const c = await wsClient();
    assert.deepEqual((await c.call("ping")).result, {});
    const r = await c.call("tools/list");
    assert.equal(r.error.code, -32600);
    assert.equal(r.error.data.type, "InvalidRequest");
    c.ws.close();
  });

  test("initialize without protocolVersion is -32602 and a second initialize is -32600", async () => {
    const c = await wsClient();
    assert.equal((await c.call("initialize", {})).error.code, -32602);
    assert.ok((await c.call("initialize", INIT)).result);
    assert.equal((await c.call("initialize", INIT)).error.code, -32600);
    c.ws.close();
  });

  test("unknown methods are -32601 and responses from the client are ignored", async () => {
    const c = await initialized();
    assert.equal((await c.call("resources/list")).error.code, -32601);
    c.ws.send(JSON.stringify({ jsonrpc: "2.0", id: 99, result: {} }));
    assert.deepEqual((await c.call("ping")).result, {});
    c.ws.close();
  });
});

describe("MCP tools", () => {
  test("tools/list lists the agent's tools with inputSchema and annotations, names unchanged", async () => {
    const c = await initialized();
    const r = await c.call("tools/list");
    const names = r.result.tools.map((t: { name: string }) => t.name);
    assert.ok(names.includes("system.info"));
    assert.ok(names.includes("approvals.wait"));
    const read = r.result.tools.find((t: { name: string }) => t.name === "filesystem.read");
    assert.equal(read.inputSchema.type, "object");
    assert.equal(read.annotations.readOnlyHint, true);
    for (const n of names) assert.match(n, /^[A-Za-z0-9_.-]{1,64}$/);
    c.ws.close();
  });

  test("?tool_names=underscore lists fs_read-style names and both spellings can be called", async () => {
    const c = await initialized(ALICE, "?tool_names=underscore");
    const names = (await c.call("tools/list")).result.tools.map((t: { name: string }) => t.name);
    assert.ok(names.includes("network_http_request"));
    assert.ok(names.includes("approvals_wait"));
    assert.equal(
      names.some((n: string) => n.includes(".")),
      false,
    );
    const a = await c.call("tools/call", { name: "filesystem_read", arguments: { path: "a" } });
    assert.equal(a.result.structuredContent.tool, "filesystem.read");
    const b = await c.call("tools/call", { name: "filesystem.read", arguments: { path: "a" } });
    assert.equal(b.result.isError, false);
    c.ws.close();
  });

  test("a successful call returns the data as structuredContent and as JSON text", async () => {
    const c = await initialized();
    const r = await c.call("tools/call", {
      name: "filesystem.read",
      arguments: { path: "notes.md" },
    });
    const want = { tool: "filesystem.read", inputs: { path: "notes.md" }, agent: "alice" };
    assert.equal(r.result.isError, false);
    assert.deepEqual(r.result.structuredContent, want);
    assert.equal(r.result.content[0].type, "text");
    assert.deepEqual(JSON.parse(r.result.content[0].text), want);
    assert.equal(r.result._meta["kruxos/audit_seq"], 42);
    c.ws.close();
  });

  test("a transaction id travels in params._meta, not in the capability's arguments", async () => {
    const c = await initialized();
    const r = await c.call("tools/call", {
      name: "system.info",
      arguments: {},
      _meta: { "kruxos/transaction_id": "txn_1" },
    });
    assert.equal(r.result.structuredContent.transaction_id, "txn_1");
    assert.deepEqual(r.result.structuredContent.inputs, {});
    c.ws.close();
  });

  test("a policy denial is a tool result with isError, type, rule and recovery — not a JSON-RPC error", async () => {
    const c = await initialized();
    const r = await c.call("tools/call", { name: "process.run", arguments: { argv: ["ls"] } });
    assert.equal(r.error, undefined);
    assert.equal(r.result.isError, true);
    const s = r.result.structuredContent;
    assert.equal(s.type, "PolicyDenied");
    assert.equal(s.rule, "deny-process");
    assert.equal(s.capability, "process.run");
    assert.ok(Array.isArray(s.recovery) && s.recovery.length > 0);
    assert.ok(s.recovery.every((x: { action: unknown }) => typeof x.action === "string"));
    assert.match(r.result.content[0].text, /^PolicyDenied: .*rule=deny-process/);
    c.ws.close();
  });

  test("a pending approval is an isError result with approval_id and expires_at; approvals.wait returns the outcome", async () => {
    const c = await initialized();
    const r = await c.call("tools/call", { name: "git.push", arguments: {} });
    assert.equal(r.result.isError, true);
    assert.equal(r.result.structuredContent.type, "ApprovalRequired");
    assert.equal(r.result.structuredContent.approval_id, "apr_123");
    assert.equal(r.result.structuredContent.expires_at, "2030-01-01T00:00:00.000Z");
    assert.equal(r.result.structuredContent.recovery[0].action, "wait_for_approval");
    const w = await c.call("tools/call", {
      name: "approvals.wait",
      arguments: { approval_id: "apr_123" },
    });
    assert.equal(w.result.isError, false);
    assert.equal(w.result.structuredContent.status, "accepted");
    const k = await c.call("tools/call", {
      name: "approvals.check",
      arguments: { approval_id: "apr_9" },
    });
    assert.equal(k.result.structuredContent.status, "pending");
    c.ws.close();
  });

  test("a capability error keeps its specific type", async () => {
    const c = await initialized();
    const r = await c.call("tools/call", { name: "network.http_request", arguments: {} });
    assert.equal(r.result.isError, true);
    assert.equal(r.result.structuredContent.type, "HostNotAllowed");
    c.ws.close();
  });

  test("an unknown tool and a malformed tools/call are JSON-RPC -32602 errors", async () => {
    const c = await initialized();
    const u = await c.call("tools/call", { name: "no.such_tool", arguments: {} });
    assert.equal(u.result, undefined);
    assert.equal(u.error.code, -32602);
    assert.equal((await c.call("tools/call", { arguments: {} })).error.code, -32602);
    assert.equal(
      (await c.call("tools/call", { name: "system.info", arguments: [1] })).error.code,
      -32602,
    );
    c.ws.close();
  });

  test("invalid approvals.wait arguments are a protocol error before 2025-11-25 and a tool error from it", async () => {
    const old = await initialized();
    const a = await old.call("tools/call", { name: "approvals.wait", arguments: {} });
    assert.equal(a.error.code, -32602);
    old.ws.close();
    const c = await wsClient();
    await c.call("initialize", { ...INIT, protocolVersion: "2025-11-25" });
    const b = await c.call("tools/call", { name: "approvals.wait", arguments: {} });
    assert.equal(b.result.isError, true);
    assert.equal(b.result.structuredContent.type, "InvalidParams");
    c.ws.close();
  });

  test("a server-internal failure is -32603 and does not leak its message", async () => {
    const c = await initialized();
    const r = await c.call("tools/call", { name: "system.crash", arguments: {} });
    assert.equal(r.error.code, -32603);
    assert.equal(JSON.stringify(r).includes("secret internal detail"), false);
    c.ws.close();
  });
});

describe("MCP over WebSocket", () => {
  test("an upgrade without a valid token is refused with 401", async () => {
    const ws = new WebSocket(srv.ws, { headers: { authorization: "Bearer " + "0".repeat(64) } });
    const status = await new Promise<number>((resolve) => {
      ws.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      ws.once("error", () => resolve(-1));
    });
    assert.equal(status, 401);
  });

  test("a binary frame closes the socket with 1003", async () => {
    const c = await initialized();
    const code = await new Promise<number>((resolve) => {
      c.ws.once("close", (code) => resolve(code));
      c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    });
    assert.equal(code, 1003);
  });

  test("a batch is answered in one frame, and a slow approvals.wait does not block a ping", async () => {
    const c = await initialized();
    const batch = await new Promise<Msg[]>((resolve) => {
      c.ws.once("message", (d) => resolve(JSON.parse(d.toString()) as Msg[]));
      c.ws.send(
        JSON.stringify([
          { jsonrpc: "2.0", id: "a", method: "ping" },
          { jsonrpc: "2.0", method: "notifications/progress", params: {} },
          { jsonrpc: "2.0", id: "b", method: "tools/list" },
        ]),
      );
    });
    assert.deepEqual(
      batch.map((m) => m.id),
      ["a", "b"],
    );
    const slow = c.call("tools/call", {
      name: "approvals.wait",
      arguments: { approval_id: "apr_slow", timeout_s: 30 },
    });
    assert.deepEqual((await c.call("ping")).result, {});
    void slow;
    c.ws.close();
  });

  test("closing the socket aborts a running approvals.wait", async () => {
    const c = await initialized();
    void c.call("tools/call", {
      name: "approvals.wait",
      arguments: { approval_id: "apr_close", timeout_s: 30 },
    });
    await c.call("ping");
    c.ws.close();
    for (let i = 0; i < 50 && !srv.aborted.includes("apr_close"); i++)
      await new Promise((r) => setTimeout(r, 20));
    assert.ok(srv.aborted.includes("apr_close"));
  });

  test("notifications/cancelled aborts the named request", async () => {
    const c = await initialized();
    const pending = c.call("tools/call", {
      name: "approvals.wait",
      arguments: { approval_id: "apr_cancel", timeout_s: 30 },
    });
    await c.call("ping");
    c.notify("notifications/cancelled", { requestId: 2, reason: "user stopped" });
    await pending;
    assert.ok(srv.aborted.includes("apr_cancel"));
    c.ws.close();
  });
});

describe("MCP Streamable HTTP", () => {
  const post = (
    body: unknown,
    headers: Record<string, string> = {},
    token: string | null = ALICE,
  ) =>
    fetch(`${srv.http}/mcp`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  const init = { jsonrpc: "2.0", id: 1, method: "initialize", params: INIT };

  async function open(token = ALICE): Promise<string> {
    const r = await post(init, {}, token);
    assert.equal(r.status, 200);
    const sid = r.headers.get("mcp-session-id");
    assert.ok(sid);
    return sid;
  }

  test("initialize creates a session with a random Mcp-Session-Id and answers application/json", async () => {
    const r = await post(init);
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /^application\/json/);
    const sid = r.headers.get("mcp-session-id") ?? "";
    assert.match(sid, /^[A-Za-z0-9_-]{43}$/);
    const body = (await r.json()) as Msg;
    assert.equal(body.result.protocolVersion, "2025-06-18");
    assert.notEqual(await open(), sid);
  });

  test("the session lifecycle: notification 202, calls 200, DELETE 204, then 404", async () => {
    const sid = await open();
    const h = { "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18" };
    const n = await post({ jsonrpc: "2.0", method: "notifications/initialized" }, h);
    assert.equal(n.status, 202);
    assert.equal(await n.text(), "");
    const l = await post({ jsonrpc: "2.0", id: 2, method: "tools/list" }, h);
    assert.equal(l.status, 200);
    assert.ok(((await l.json()) as Msg).result.tools.length > 0);
    const d = await post(
      {
        jsonrpc: "2.0",
        id: 3,
        method: "tools/call",
        params: { name: "process.run", arguments: {} },
      },
      h,
    );
    const dr = (await d.json()) as Msg;
    assert.equal(dr.result.isError, true);
    assert.equal(dr.result.structuredContent.type, "PolicyDenied");
    const del = await fetch(`${srv.http}/mcp`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${ALICE}`, ...h },
    });
    assert.equal(del.status, 204);
    assert.equal((await post({ jsonrpc: "2.0", id: 4, method: "ping" }, h)).status, 404);
  });

  test("a request without Mcp-Session-Id is 400; an unknown one is 404", async () => {
    assert.equal((await post({ jsonrpc: "2.0", id: 2, method: "tools/list" })).status, 400);
    assert.equal(
      (await post({ jsonrpc: "2.0", id: 2, method: "tools/list" }, { "mcp-session-id": "nope" }))
        .status,
      404,
    );
  });

  test("a session is bound to its agent: another agent's token with the id gets 404", async () => {
    const sid = await open(ALICE);
    const r = await post(
      { jsonrpc: "2.0", id: 2, method: "tools/list" },
      { "mcp-session-id": sid },
      BOB,
    );
    assert.equal(r.status, 404);
    const del = await fetch(`${srv.http}/mcp`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${BOB}`, "mcp-session-id": sid },
    });
    assert.equal(del.status, 404);
    assert.equal(
      (await post({ jsonrpc: "2.0", id: 3, method: "ping" }, { "mcp-session-id": sid })).status,
      200,
    );
  });

  test("no token is 401 before anything else, and GET is 405", async () => {
    assert.equal((await post(init, {}, null)).status, 401);
    const g = await fetch(`${srv.http}/mcp`, {
      headers: { authorization: `Bearer ${ALICE}`, accept: "text/event-stream" },
    });
    assert.equal(g.status, 405);
    assert.equal((await fetch(`${srv.http}/mcp`)).status, 401);
  });

  test("an unsupported or mismatched MCP-Protocol-Version is 400", async () => {
    const sid = await open();
    const ping = { jsonrpc: "2.0", id: 2, method: "ping" };
    assert.equal(
      (await post(ping, { "mcp-session-id": sid, "mcp-protocol-version": "1900-01-01" })).status,
      400,
    );
    assert.equal(
      (await post(ping, { "mcp-session-id": sid, "mcp-protocol-version": "2025-03-26" })).status,
      400,
    );
    assert.equal((await post(ping, { "mcp-session-id": sid })).status, 200);
  });

  test("a foreign Origin is 403 and a non-JSON body is 415", async () => {
    assert.equal((await post(init, { origin: "http://evil.example" })).status, 403);
    assert.equal((await post("x", { "content-type": "text/plain" })).status, 415);
  });

  test("every refusal on /mcp has a JSON-RPC error body with type and recovery, whatever the status", async () => {
    const sid = await open();
    const ping = { jsonrpc: "2.0", id: 2, method: "ping" };
    const cases: [string, Promise<Response>, number, string][] = [
      ["no token", post(init, {}, null), 401, "Unauthorized"],
      ["foreign Origin", post(init, { origin: "http://evil.example" }), 403, "InvalidRequest"],
      ["not JSON", post("x", { "content-type": "text/plain" }), 415, "InvalidRequest"],
      [
        "Accept nothing usable",
        post(ping, { accept: "text/html", "mcp-session-id": sid }),
        406,
        "InvalidRequest",
      ],
      ["no session id", post(ping), 400, "InvalidRequest"],
      ["unknown session", post(ping, { "mcp-session-id": "nope" }), 404, "InvalidRequest"],
      [
        "too large",
        post(`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"p":"${"x".repeat(70_000)}"}}`, {
          "mcp-session-id": sid,
        }),
        413,
        "InvalidRequest",
      ],
      ["empty JSON body", post("", { "mcp-session-id": sid }), 400, "ParseError"],
      [
        "GET",
        fetch(`${srv.http}/mcp`, { headers: { authorization: `Bearer ${ALICE}` } }),
        405,
        "InvalidRequest",
      ],
      [
        "PUT",
        fetch(`${srv.http}/mcp`, { method: "PUT", headers: { authorization: `Bearer ${ALICE}` } }),
        405,
        "InvalidRequest",
      ],
    ];
    for (const [what, pending, status, type] of cases) {
      const r = await pending;
      assert.equal(r.status, status, what);
      const body = (await r.json()) as Msg;
      assert.equal(body.jsonrpc, "2.0", what);
      assert.equal(body.id, null, what);
      assert.equal(typeof body.error.code, "number", what);
      assert.equal(body.error.data.type, type, what);
      assert.ok(body.error.data.recovery.length > 0, what);
    }
  });

  test("a request without a valid token is answered 401 before its body is read, and the connection closes", async () => {
    const { port } = new URL(srv.http);
    const { status, closed } = await new Promise<{ status: string; closed: boolean }>((resolve) => {
      const s = createConnection({ host: "127.0.0.1", port: Number(port) }, () =>
        // A body of a megabyte is announced and never sent.
        s.write(
          "POST /mcp HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n\r\n{",
        ),
      );
      let out = "";
      s.on("data", (c: Buffer) => (out += c.toString()));
      s.on("close", () => resolve({ status: out.split("\r\n")[0] ?? "", closed: true }));
      setTimeout(() => {
        s.destroy();
        resolve({ status: out.split("\r\n")[0] ?? "", closed: false });
      }, 3000).unref();
    });
    assert.equal(status, "HTTP/1.1 401 Unauthorized");
    assert.ok(closed, "the server closed the connection instead of waiting for the body");
  });

  test("a client that prefers text/event-stream gets one SSE message event, then the stream ends", async () => {
    const sid = await open();
    const r = await post(
      {
        jsonrpc: "2.0",
        id: 7,
        method: "tools/call",
        params: { name: "approvals.wait", arguments: { approval_id: "apr_123" } },
      },
      { "mcp-session-id": sid, accept: "text/event-stream" },
    );
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /^text\/event-stream/);
    const text = await r.text();
    const events = text.split("\n\n").filter((e) => e.startsWith("event: message"));
    assert.equal(events.length, 1);
    const data = JSON.parse((events[0] ?? "").split("\n")[1]?.slice("data: ".length) ?? "") as Msg;
    assert.equal(data.id, 7);
    assert.equal(data.result.structuredContent.status, "accepted");
  });

  test("sessions per agent are capped: the least recently used is ended", async () => {
    const small = await startTestServer({ maxSessionsPerAgent: 2 });
    try {
      const mk = async () =>
        (
          await fetch(`${small.http}/mcp`, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              accept: "application/json",
              authorization: `Bearer ${ALICE}`,
            },
            body: JSON.stringify(init),
          })
        ).headers.get("mcp-session-id") ?? "";
      const ping = (sid: string) =>
        fetch(`${small.http}/mcp`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "mcp-session-id": sid,
            authorization: `Bearer ${ALICE}`,
          },
          body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }),
        });
      const a = await mk();
      await new Promise((r) => setTimeout(r, 5));
      const b = await mk();
      await new Promise((r) => setTimeout(r, 5));
      const c = await mk();
      assert.equal((await ping(a)).status, 404);
      assert.equal((await ping(b)).status, 200);
      assert.equal((await ping(c)).status, 200);
    } finally {
      await small.close();
    }
  });

  test("an idle session expires", async () => {
    const quick = await startTestServer({ sessionIdleMs: 50 });
    try {
      const r = await fetch(`${quick.http}/mcp`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${ALICE}` },
        body: JSON.stringify(init),
      });
      const sid = r.headers.get("mcp-session-id") ?? "";
      await new Promise((res) => setTimeout(res, 120));
      const p = await fetch(`${quick.http}/mcp`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "mcp-session-id": sid,
          authorization: `Bearer ${ALICE}`,
        },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }),
      });
      assert.equal(p.status, 404);
    } finally {
      await quick.close();
    }
  });
});

describe("kruxos mcp stdio bridge", () => {
  function streams() {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = "";
    let err = "";
    stdout.on("data", (d: Buffer) => (out += d.toString()));
    stderr.on("data", (d: Buffer) => (err += d.toString()));
    return { stdin, stdout, stderr, out: () => out, err: () => err };
  }

  test("newline-delimited messages are forwarded and every reply comes back as one line", async () => {
    const s = streams();
    const done = runMcpStdioBridge({ host: srv.http, apiKey: ALICE, ...s });
    s.stdin.write(
      JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: INIT }) + "\n",
    );
    s.stdin.write(
      JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) + "\r\n\n",
    );
    s.stdin.write(JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" }) + "\n");
    s.stdin.end(
      JSON.stringify({
        jsonrpc: "2.0",
        id: 3,
        method: "tools/call",
        params: { name: "process.run", arguments: {} },
      }) + "\n",
    );
    assert.equal(await done, 0);
    const lines = s
      .out()
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as Msg);
    assert.deepEqual(lines.map((l) => l.id).sort(), [1, 2, 3]);
    const byId = new Map(lines.map((l) => [l.id, l]));
    assert.equal(byId.get(1)?.result.serverInfo.name, "kruxos");
    assert.ok(byId.get(2)?.result.tools.length > 0);
    assert.equal(byId.get(3)?.result.structuredContent.type, "PolicyDenied");
  });

  test("a refused token exits non-zero and says 401 on stderr, writing nothing to stdout", async () => {
    const s = streams();
    const code = await runMcpStdioBridge({ host: srv.http, apiKey: "0".repeat(64), ...s });
    assert.notEqual(code, 0);
    assert.match(s.err(), /401/);
    assert.equal(s.out(), "");
  });

  test("an unreachable host exits non-zero with a clear message", async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", () => r()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const s = streams();
    const code = await runMcpStdioBridge({ host: `http://127.0.0.1:${port}`, apiKey: ALICE, ...s });
    assert.notEqual(code, 0);
    assert.match(s.err(), /cannot reach/);
  });

  test("a missing host or key, or a token-looking query in the host, is a usage error", async () => {
    const s = streams();
    assert.equal(await runMcpStdioBridge({ host: "", apiKey: ALICE, ...s }), 2);
    assert.equal(await runMcpStdioBridge({ host: srv.http, apiKey: "", ...s }), 2);
    assert.equal(await runMcpStdioBridge({ host: `${srv.http}/?token=x`, apiKey: ALICE, ...s }), 2);
    assert.equal(await runMcpStdioBridge({ host: "ftp://x", apiKey: ALICE, ...s }), 2);
  });
});
