// The agent port. In this issue it serves the unauthenticated probes and the runtime contract;
// JSON-RPC and MCP endpoints attach to the same server.
import Fastify, { type FastifyInstance } from "fastify";
import type { Readiness } from "./readiness.js";

export interface AgentServerDeps {
  readonly readiness: Readiness;
  readonly meta: () => Record<string, unknown>;
  readonly maxMessageBytes: number;
  readonly onRequest?: (route: string, status: number) => void;
}

export async function createAgentServer(deps: AgentServerDeps): Promise<FastifyInstance> {
  const started = process.hrtime.bigint();
  const app = Fastify({ logger: false, bodyLimit: deps.maxMessageBytes });
  app.addHook("onResponse", async (req, reply) => {
    deps.onRequest?.(req.routeOptions.url ?? "unmatched", reply.statusCode);
  });
  // Tokens never travel in URLs: refuse before routing so nothing downstream sees them.
  app.addHook("onRequest", async (req, reply) => {
    if (/[?&](token|access_token|api_key|apikey|key)=/i.test(req.url)) {
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
  app.setNotFoundHandler(async (_req, reply) =>
    reply.code(404).send({ error: "not_found", message: "unknown endpoint; see GET /v1/meta" }),
  );
  return app;
}
