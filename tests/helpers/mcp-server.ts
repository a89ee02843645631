// A small agent port for MCP transport tests: fastify + ws on 127.0.0.1:0, Bearer token → agent
// (as the real agent server does before any upgrade), and a Pipeline test double.
import type { AddressInfo } from "node:net";
import Fastify from "fastify";
import { WebSocketServer } from "ws";
import { KruxError } from "../../src/core/index.js";
import type { AgentIdentity, CallOptions, McpTool, Pipeline } from "../../src/gateway/index.js";
import { registerMcpHttp } from "../../src/gateway/mcp/http.js";
import { attachMcpWebSocket } from "../../src/gateway/mcp/ws.js";

export const TOKENS: Record<string, string> = {
  ["a".repeat(64)]: "alice",
  ["b".repeat(64)]: "bob",
};
export const ALICE = "a".repeat(64);
export const BOB = "b".repeat(64);
export const LIMITS = { maxMessageBytes: 64 * 1024, maxBatch: 8, maxDepth: 32 };

export interface TestServer {
  readonly http: string;
  readonly ws: string;
  readonly aborted: string[];
  close(): Promise<void>;
}

function tool(
  name: string,
  description: string,
  properties: Record<string, unknown> = {},
  readOnly = false,
): McpTool {
  return {
    name,
    description,
    inputSchema: { type: "object", properties },
    annotations: {
      title: name,
      readOnlyHint: readOnly,
      destructiveHint: false,
      idempotentHint: readOnly,
      openWorldHint: false,
    },
  };
}

const TOOLS: McpTool[] = [
  tool("system.info", "Describe the appliance.", {}, true),
  tool("filesystem.read", "Read a file.", { path: { type: "string" } }, true),
  tool("process.run", "Run a process."),
  tool("git.push", "Push commits."),
  tool("network.http_request", "HTTP request."),
  tool("system.crash", "Fails internally."),
  tool("approvals.check", "Check an approval.", { approval_id: { type: "string" } }, true),
  tool(
    "approvals.wait",
    "Wait for an approval.",
    {
      approval_id: { type: "string" },
      timeout_s: { type: "number" },
    },
    true,
  ),
];

export function testPipeline(aborted: string[]): Pipeline {
  return {
    async list() {
      return [];
    },
    async describe() {
      return {};
    },
    async tools() {
      return TOOLS;
    },
    async invoke(agent: AgentIdentity, name: string, inputs: unknown, opts: CallOptions = {}) {
      const transactionId = opts.transactionId;
      if (name === "process.run")
        throw new KruxError("PolicyDenied", "process.run is blocked for this agent", {
          capability: name,
          rule: "deny-process",
          file: "policy/system.yaml",
          line: 12,
          reason: "no processes",
        });
      if (name === "git.push")
        throw new KruxError("ApprovalRequired", "an operator must approve git.push", {
          capability: name,
          approval_id: "apr_123",
          expires_at: "2030-01-01T00:00:00.000Z",
        });
      if (name === "network.http_request")
        throw new KruxError("CapabilityError", "host not allowed", { type: "HostNotAllowed" });
      if (name === "system.crash") throw new Error("secret internal detail");
      const data: Record<string, unknown> = { tool: name, inputs, agent: agent.name };
      if (transactionId !== undefined) data.transaction_id = transactionId;
      return { success: true, data, duration_ms: 3, audit_seq: 42 };
    },
    async approvalCheck(_agent, id) {
      return { approval_id: id, status: "pending" };
    },
    approvalWait(_agent, id, timeoutS, signal) {
      if (id === "apr_123")
        return Promise.resolve({ approval_id: id, status: "accepted", result: { ok: true } });
      return new Promise((resolve) => {
        const timer = setTimeout(
          () => resolve({ approval_id: id, status: "pending" }),
          timeoutS * 1000,
        );
        signal.addEventListener("abort", () => {
          clearTimeout(timer);
          aborted.push(id);
          resolve({ approval_id: id, status: "aborted" });
        });
      });
    },
  };
}

function authenticate(
  authorization: string | undefined,
  source: string,
): AgentIdentity | undefined {
  const m = /^Bearer ([0-9a-f]{64})$/.exec(authorization ?? "");
  const name = m?.[1] ? TOKENS[m[1]] : undefined;
  return name ? { name, session: `s-${name}`, source } : undefined;
}

export async function startTestServer(
  opts: { sessionIdleMs?: number; maxSessionsPerAgent?: number } = {},
): Promise<TestServer> {
  const aborted: string[] = [];
  const pipeline = testPipeline(aborted);
  const app = Fastify({ logger: false, bodyLimit: LIMITS.maxMessageBytes });
  await registerMcpHttp(app, {
    pipeline,
    limits: LIMITS,
    version: "0.1.0-test",
    ...opts,
    // The agent server's authenticator answers {ok, agent} | {ok: false, status, body, headers}.
    authenticate: (req) => {
      const agent = authenticate(req.headers.authorization, req.ip);
      return agent
        ? { ok: true as const, agent }
        : {
            ok: false as const,
            status: 401 as const,
            body: { error: "unauthorized" },
            headers: { "www-authenticate": "Bearer" },
          };
    },
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: LIMITS.maxMessageBytes });
  app.server.on("upgrade", (req, socket, head) => {
    const agent = authenticate(req.headers.authorization, req.socket.remoteAddress ?? "");
    if (!req.url?.startsWith("/mcp") || !agent) {
      socket.end("HTTP/1.1 401 Unauthorized\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) =>
      attachMcpWebSocket(ws, agent, pipeline, {
        version: "0.1.0-test",
        limits: LIMITS,
        requestUrl: req.url ?? "",
      }),
    );
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return {
    http: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}/mcp`,
    aborted,
    async close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      await app.close();
    },
  };
}
