// The official MCP client SDK against the real appliance, over Streamable HTTP and through the
// `kruxos mcp stdio` bridge: list tools, write then read a file, and receive a policy denial as an
// isError result carrying its structured type.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { CLI, tempDir } from "../helpers/repo.js";
import {
  portOf,
  type Appliance,
  type ManifestObject,
  readyHostWithAgent,
} from "../contract/harness.js";

let a: Appliance;
let m: ManifestObject;
let token: string;
const tmp = tempDir("kruxos-mcp-");

before(async () => {
  // A system policy for this test: writes are autonomous, reads of secret* are blocked.
  const policy = path.join(tmp.dir, "system.yaml");
  writeFileSync(
    policy,
    [
      "version: 1",
      "defaults: { tier: approval_required }",
      "capabilities:",
      "  filesystem.write: { tier: autonomous }",
      "  filesystem.read:",
      "    tier: autonomous",
      "    rules:",
      "      - id: no-secrets",
      '        when: { inputs.path: { prefix: "secret" } }',
      "        tier: blocked",
      "",
    ].join("\n"),
  );
  ({ a, m, token } = await readyHostWithAgent("claude", (x) => ({
    ...x,
    policy: { ...x.policy, files: [policy] },
  })));
});
after(async () => {
  await a.cleanup();
  tmp.cleanup();
});

async function exercise(transport: Transport, label: string): Promise<void> {
  const client = new Client({ name: `kruxos-e2e-${label}`, version: "1.0.0" });
  await client.connect(transport);
  try {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    for (const n of ["filesystem.read", "filesystem.write", "approvals.check", "approvals.wait"])
      assert.ok(names.includes(n), `${n} in ${names.join(",")}`);
    const read = tools.find((t) => t.name === "filesystem.read");
    assert.equal(read?.annotations?.readOnlyHint, true);
    assert.equal((read?.inputSchema as { type: string }).type, "object");

    const file = `${label}/hello.txt`;
    const w = await client.callTool({
      name: "filesystem.write",
      arguments: { path: file, content: `hi from ${label}`, create_dirs: true },
    });
    assert.notEqual(w.isError, true, JSON.stringify(w));
    const r = await client.callTool({ name: "filesystem.read", arguments: { path: file } });
    assert.notEqual(r.isError, true, JSON.stringify(r));
    assert.equal((r.structuredContent as { content: string }).content, `hi from ${label}`);

    const denied = await client.callTool({
      name: "filesystem.read",
      arguments: { path: "secret.txt" },
    });
    assert.equal(denied.isError, true);
    const sc = denied.structuredContent as { type: string; rule: string; recovery: unknown[] };
    assert.equal(sc.type, "PolicyDenied");
    assert.equal(sc.rule, "no-secrets");
    assert.ok(sc.recovery.length > 0);
  } finally {
    await client.close();
  }
}

test("the official MCP client over Streamable HTTP lists tools, writes and reads a file, and sees a denial as isError", async () => {
  const transport = new StreamableHTTPClientTransport(
    new URL(`http://127.0.0.1:${portOf(m, "gateway")}/mcp`),
    {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    },
  );
  await exercise(transport, "http");
});

test("the official MCP client through kruxos mcp stdio does the same", async () => {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, "mcp", "stdio"],
    env: {
      ...(process.env as Record<string, string>),
      KRUXOS_HOST: `http://127.0.0.1:${portOf(m, "gateway")}`,
      KRUXOS_API_KEY: token,
    },
    stderr: "pipe",
  });
  await exercise(transport, "stdio");
});

test("an MCP client with a wrong token is refused", async () => {
  const transport = new StreamableHTTPClientTransport(
    new URL(`http://127.0.0.1:${portOf(m, "gateway")}/mcp`),
    {
      requestInit: { headers: { authorization: `Bearer ${"0".repeat(64)}` } },
    },
  );
  const client = new Client({ name: "intruder", version: "1.0.0" });
  await assert.rejects(client.connect(transport));
});
