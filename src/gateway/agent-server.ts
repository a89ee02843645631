// The agent port: the unauthenticated probes and the runtime contract, then (with `protocol`)
// JSON-RPC on WS /rpc and MCP on /mcp. The listener is core's hardened server: timeouts in
// seconds, malformed requests answered and closed, every WebSocket protocol error confined to
// its connection. Upgrades are authenticated before they complete, and each agent has a bounded
// number of open WebSockets and of messages in flight on each of them.
import type http from "node:http";
import type { Duplex } from "node:stream";
import Fastify, { type FastifyInstance } from "fastify";
import type { WebSocket } from "ws";
import {
  boundedMessages,
  createWebSocketServer,
  fastifyServerFactory,
  refuseOnSocket,
  tokenInUrl,
  type ServerGuard,
} from "../core/index.js";
import type { AuthOutcome } from "./agent-auth.js";
import { handleMessage, type InternalErrorSink, type RpcLimits } from "./jsonrpc.js";
import type { AgentIdentity, Pipeline } from "./pipeline-types.js";
import type { Readiness } from "./readiness.js";
import { rpcDispatch } from "./rpc-methods.js";
import { clientFromUserAgent, type SessionRegistry } from "./sessions.js";

export interface AgentServerDeps {
  readonly readiness: Readiness;
  readonly meta: () => Record<string, unknown>;
  readonly maxMessageBytes: number;
  /** Timeouts and peer-fault reporting of the listener (its name is "agent"). */
  readonly guard?: Omit<ServerGuard, "name">;
  readonly onRequest?: (route: string, status: number) => void;
  /** The agent protocol. Without it the port serves probes only. */
  readonly protocol?: {
    readonly authenticate: (req: http.IncomingMessage) => AuthOutcome;
    readonly pipeline: Pipeline;
    readonly limits: RpcLimits;
    /** The gateway's sessions: each WebSocket is one, from the upgrade to its close. */
    readonly sessions?: SessionRegistry;
    /** Open WebSockets (/rpc and /mcp together) one agent may hold (default 64). */
    readonly maxConnectionsPerAgent?: number;
    /** Messages in flight on one WebSocket before it stops reading (default 64). */
    readonly maxInflightPerConnection?: number;
    /** Failures that become -32603, with the reference the reply carries. */
    readonly onInternalError?: InternalErrorSink;
    /** A refused upgrade past an agent's connection limit. */
    readonly onConnectionRefused?: (agent: AgentIdentity, open: number) => void;
    /** MCP over WebSocket on /mcp, for an authenticated agent. */
    readonly attachMcp?: (ws: WebSocket, agent: AgentIdentity, req: http.IncomingMessage) => void;
    /** Extra HTTP routes (MCP Streamable HTTP on /mcp). */
    readonly routes?: (app: FastifyInstance) => Promise<void> | void;
    readonly onConnection?: (agent: AgentIdentity, transport: "rpc" | "mcp", open: boolean) => void;
  };
}

/** JSON-RPC over one WebSocket: one message per text frame, replies in the same frame order. */
function attachRpc(
  ws: WebSocket,
  agent: AgentIdentity,
  p: NonNullable<AgentServerDeps["protocol"]>,
): void {
  const abort = new AbortController();
  const dispatch = rpcDispatch(p.pipeline, agent, abort.signal);
  boundedMessages(ws, p.maxInflightPerConnection ?? 64, async (data, isBinary) => {
    if (isBinary) {
      ws.close(1003, "text frames only");
      return;
    }
    const reply = await handleMessage(data.toString("utf8"), dispatch, p.limits, p.onInternalError);
    if (reply !== undefined && ws.readyState === ws.OPEN) ws.send(reply);
  });
  ws.on("close", () => abort.abort());
}

export async function createAgentServer(deps: AgentServerDeps): Promise<FastifyInstance> {
  const started = process.hrtime.bigint();
  const guard: ServerGuard = { ...deps.guard, name: "agent" };
  const sockets = createWebSocketServer(guard, { maxPayload: deps.maxMessageBytes });
  const protocol = deps.protocol;
  /** Open WebSockets per agent, counted from the accepted upgrade to the socket's close. */
  const connections = new Map<string, number>();
  const release = (name: string): void => {
    const left = (connections.get(name) ?? 1) - 1;
    if (left <= 0) connections.delete(name);
    else connections.set(name, left);
  };

  const upgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = (req.url ?? "/").split("?")[0];
    if (tokenInUrl(req.url))
      return refuseOnSocket(socket, 400, {
        error: "token_in_url_refused",
        message: "send tokens in the Authorization header",
      });
    if (
      !protocol ||
      (path !== "/rpc" && path !== "/mcp") ||
      (path === "/mcp" && !protocol.attachMcp)
    )
      return refuseOnSocket(socket, 404, { error: "not_found" });
    const auth = protocol.authenticate(req);
    if (!auth.ok) return refuseOnSocket(socket, auth.status, auth.body, auth.headers);
    const agent = auth.agent;
    const max = protocol.maxConnectionsPerAgent ?? 64;
    const open = connections.get(agent.name) ?? 0;
    if (open >= max) {
      protocol.onConnectionRefused?.(agent, open);
      return refuseOnSocket(
        socket,
        429,
        {
          error: "too_many_connections",
          limit: "max_connections_per_agent",
          max,
          retry_after_s: 1,
          message: `this agent already holds ${open} WebSocket connections; close one or reuse it`,
        },
        { "retry-after": "1" },
      );
    }
    connections.set(agent.name, open + 1);
    let accepted = false;
    // A handshake ws refuses (bad key or version) never opens: the slot is given back here.
    socket.once("close", () => {
      if (!accepted) release(agent.name);
    });
    sockets.accept(
      req,
      socket,
      head,
      (ws) => {
        accepted = true;
        const transport = path === "/rpc" ? "rpc" : "mcp";
        protocol.sessions?.open(
          agent.session,
          agent.name,
          transport,
          clientFromUserAgent(req.headers["user-agent"]),
        );
        protocol.onConnection?.(agent, transport, true);
        ws.once("close", () => {
          release(agent.name);
          protocol.sessions?.close(agent.session);
          protocol.onConnection?.(agent, transport, false);
        });
        if (transport === "rpc") attachRpc(ws, agent, protocol);
        else protocol.attachMcp?.(ws, agent, req);
      },
      agent.name,
    );
  };

  const app = Fastify({
    logger: false,
    bodyLimit: deps.maxMessageBytes,
    serverFactory: fastifyServerFactory(guard, { upgrade }),
  });
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
  if (protocol) {
    await protocol.routes?.(app);
    app.addHook("onClose", async () => {
      await sockets.close();
    });
  }
  app.setNotFoundHandler(async (_req, reply) =>
    reply.code(404).send({ error: "not_found", message: "unknown endpoint; see GET /v1/meta" }),
  );
  return app;
}
