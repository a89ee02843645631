// The official MCP TypeScript SDK client talks to KruxOS's Streamable HTTP endpoint: it connects
// (initialize, version negotiation, session id), lists tools, calls one, and sees a policy denial
// as a tool result with isError rather than an exception.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ALICE, startTestServer, type TestServer } from "../helpers/mcp-server.js";

let srv: TestServer;
let client: Client;
let transport: StreamableHTTPClientTransport;

before(async () => {
  srv = await startTestServer();
  transport = new StreamableHTTPClientTransport(new URL(`${srv.http}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${ALICE}` } },
  });
  client = new Client({ name: "kruxos-test", version: "1.0.0" });
  await client.connect(transport);
});

after(async () => {
  await transport.terminateSession().catch(() => undefined);
  await client.close();
  await srv.close();
});

test("the SDK client connects, negotiates a revision and gets a session id", () => {
  assert.equal(client.getServerVersion()?.name, "kruxos");
  assert.deepEqual(client.getServerCapabilities()?.tools, { listChanged: false });
  assert.match(client.getInstructions() ?? "", /approval/);
  assert.ok(transport.sessionId);
  assert.match(transport.protocolVersion ?? "", /^20\d\d-\d\d-\d\d$/);
});

test("listTools returns the agent's tools", async () => {
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name);
  assert.ok(names.includes("system.info"));
  assert.ok(names.includes("approvals.wait"));
  assert.equal(tools.find((t) => t.name === "system.info")?.annotations?.readOnlyHint, true);
});

test("callTool returns structuredContent for a successful call", async () => {
  const r = await client.callTool({ name: "filesystem.read", arguments: { path: "README.md" } });
  assert.equal(r.isError, false);
  assert.deepEqual(r.structuredContent, {
    tool: "filesystem.read",
    inputs: { path: "README.md" },
    agent: "alice",
  });
});

test("a denied call comes back as isError with structuredContent.type PolicyDenied", async () => {
  const r = await client.callTool({ name: "process.run", arguments: { argv: ["id"] } });
  assert.equal(r.isError, true);
  const s = r.structuredContent as { type: string; rule: string; recovery: unknown[] };
  assert.equal(s.type, "PolicyDenied");
  assert.equal(s.rule, "deny-process");
  assert.ok(s.recovery.length > 0);
});

test("a pending approval carries its approval_id, and approvals.wait resolves it", async () => {
  const r = await client.callTool({ name: "git.push", arguments: {} });
  assert.equal(r.isError, true);
  assert.equal((r.structuredContent as { approval_id: string }).approval_id, "apr_123");
  const w = await client.callTool({
    name: "approvals.wait",
    arguments: { approval_id: "apr_123" },
  });
  assert.equal((w.structuredContent as { status: string }).status, "accepted");
});

test("an unknown tool is a protocol error the SDK raises", async () => {
  await assert.rejects(client.callTool({ name: "no.such_tool", arguments: {} }), /unknown tool/);
});
