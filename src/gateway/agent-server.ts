// The agent port. In this issue it serves the unauthenticated probes and the runtime contract;
// JSON-RPC and MCP endpoints attach to the same server.
import http from "node:http";
import type { Duplex } from "node:stream";
import Fastify, { type FastifyInstance } from "fastify";
import { tokenInUrl } from "../core/index.js";
import { WebSocketServer, type WebSocket } from "ws";
import type { AuthOutcome } from "./agent-auth.js";
import { handleMessage, type RpcLimits } from "./jsonrpc.js";
import type { AgentIdentity, Pipeline } from "./pipeline-types.js";
import type { Readiness } from "./readiness.js";
import { rpcDispatch, type AgentCallLimiter } from "./rpc-methods.js";

export interface AgentServerDeps {
  readonly readiness: Readiness;
  readonly meta: () => Record<string, unknown>;
  readonly maxMessageBytes: number;
  readonly onRequest?: (route: string, status: number) => void;
  /** The agent protocol. Without it the port serves probes only. */
  readonly protocol?: {
    readonly authenticate: (req: http.IncomingMessage) => AuthOutcome;
    readonly pipeline: Pipeline;
    readonly limits: RpcLimits;
    readonly limiter: AgentCallLimiter;
    /** MCP over WebSocket on /mcp, for an authenticated agent. */
    readonly attachMcp?: (ws: WebSocket, agent: AgentIdentity, req: http.IncomingMessage) => void;
    /** Extra HTTP routes (MCP Streamable HTTP on /mcp). */
    readonly routes?: (app: FastifyInstance) => Promise<void> | void;
    readonly onConnection?: (agent: AgentIdentity, transport: "rpc" | "mcp", open: boolean) => void;
  };
}

function refuseUpgrade(
  socket: Duplex,
  status: number,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n${extra}connection: close\r\n\r\n${text}`,
  );
}

/** JSON-RPC over one WebSocket: one message per text frame, replies in the same frame order. */
function attachRpc(
  ws: WebSocket,
  agent: AgentIdentity,
  p: NonNullable<AgentServerDeps["protocol"]>,
): void {
  const abort = new AbortController();
  const dispatch = rpcDispatch(p.pipeline, agent, p.limiter, abort.signal);
  ws.on("message", (data, isBinary) => {
    if (isBinary) {
      ws.close(1003, "text frames only");
      return;
    }
    void handleMessage(data.toString("utf8"), dispatch, p.limits).then((reply) => {
      if (reply !== undefined && ws.readyState === ws.OPEN) ws.send(reply);
    });
  });
  ws.on("close", () => abort.abort());
}

export async function createAgentServer(deps: AgentServerDeps): Promise<FastifyInstance> {
  const started = process.hrtime.bigint();
  const app = Fastify({ logger: false, bodyLimit: deps.maxMessageBytes });
  app.addHook("onResponse", async (req, reply) => {
    deps.onRequest?.(req.routeOptions.url ?? "unmatched", reply.statusCode);
  });
  // Tokens never travel in URLs: refuse before routing so nothing downstream sees them.
  app.addHook("onRequest", async (req, reply) => {
    if (tokenInUrl(req.url)) {
      await reply.code(400).send({
        error: "token_in_url_refused",
        message: "send tokens in the Authorization header",
      });
    }
  });
  app.get("/livez", async () => ({
    live: true,
    uptime_s: Number((process.hrtime.bigint() - started) / 1_000_000n) / 1000,
  }));
  app.get("/ready", async (_req, reply) => {
    const body = deps.readiness.ready();
    return reply.code(body.ready ? 200 : 503).send(body);
  });
  app.get("/health", async (_req, reply) => {
    const h = deps.readiness.health();
    return reply.code(h.status === "failing" ? 503 : 200).send(h);
  });
  app.get("/v1/meta", async () => deps.meta());
  const protocol = deps.protocol;
  if (protocol) {
    await protocol.routes?.(app);
    const wss = new WebSocketServer({ noServer: true, maxPayload: deps.maxMessageBytes });
    app.server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = (req.url ?? "/").split("?")[0];
      if (tokenInUrl(req.url))
        return refuseUpgrade(socket, 400, {
          error: "token_in_url_refused",
          message: "send tokens in the Authorization header",
        });
      if (path !== "/rpc" && path !== "/mcp")
        return refuseUpgrade(socket, 404, { error: "not_found" });
      if (path === "/mcp" && !protocol.attachMcp)
        return refuseUpgrade(socket, 404, { error: "not_found" });
      const auth = protocol.authenticate(req);
      if (!auth.ok) return refuseUpgrade(socket, auth.status, auth.body, auth.headers);
      wss.handleUpgrade(req, socket, head, (ws) => {
        const transport = path === "/rpc" ? "rpc" : "mcp";
        protocol.onConnection?.(auth.agent, transport, true);
        ws.on("close", () => protocol.onConnection?.(auth.agent, transport, false));
        if (transport === "rpc") attachRpc(ws, auth.agent, protocol);
        else protocol.attachMcp?.(ws, auth.agent, req);
      });
    });
    app.addHook("onClose", async () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
    });
  }
  app.setNotFoundHandler(async (_req, reply) =>
    reply.code(404).send({ error: "not_found", message: "unknown endpoint; see GET /v1/meta" }),
  );
  return app;
}
