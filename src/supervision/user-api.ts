// The user API (fastify) on the supervision address: every route has a JSON schema, OpenAPI is
// served at /api/v1/openapi.json. Agents' tokens are refused here; only user tokens pass.
import Fastify, { type FastifyInstance } from "fastify";
import type { ComponentHealth } from "../core/index.js";
import type { Db } from "../state/index.js";
import { authenticateUser, bearer } from "./users.js";

export interface UserApiDeps {
  readonly db: Db;
  readonly health: () => { status: string; components: readonly ComponentHealth[] };
  readonly meta: () => Record<string, unknown>;
  readonly onRequest?: (route: string, status: number) => void;
}

const errorSchema = {
  type: "object",
  properties: { error: { type: "string" }, message: { type: "string" } },
  required: ["error", "message"],
} as const;

const routes = {
  "/api/v1/health": {
    summary: "Aggregate health of the appliance's components.",
    response: {
      200: {
        type: "object",
        properties: {
          status: { type: "string" },
          components: { type: "array", items: { type: "object", additionalProperties: true } },
        },
        required: ["status", "components"],
      },
      401: errorSchema,
    },
  },
  "/api/v1/meta": {
    summary: "The runtime contract (same as GET /v1/meta on the agent port).",
    response: { 200: { type: "object", additionalProperties: true }, 401: errorSchema },
  },
} as const;

export function openApiDocument(version: string): Record<string, unknown> {
  return {
    openapi: "3.1.0",
    info: { title: "KruxOS user API", version },
    components: {
      securitySchemes: {
        userToken: { type: "http", scheme: "bearer", description: "krx_user_… token" },
      },
    },
    security: [{ userToken: [] }],
    paths: Object.fromEntries(
      Object.entries(routes).map(([p, r]) => [
        p,
        {
          get: {
            summary: r.summary,
            responses: Object.fromEntries(
              Object.entries(r.response).map(([code, schema]) => [
                code,
                { description: code, content: { "application/json": { schema } } },
              ]),
            ),
          },
        },
      ]),
    ),
  };
}

export async function createUserApi(deps: UserApiDeps, version: string): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, bodyLimit: 1 << 20 });
  app.addHook("onResponse", async (req, reply) => {
    deps.onRequest?.(req.routeOptions.url ?? "unmatched", reply.statusCode);
  });
  app.get("/api/v1/openapi.json", async () => openApiDocument(version));
  app.addHook("onRequest", async (req, reply) => {
    if (req.url === "/api/v1/openapi.json") return;
    const user = authenticateUser(deps.db, bearer(req.headers.authorization));
    if (!user) {
      await reply
        .code(401)
        .send({ error: "unauthorized", message: "a valid user token (krx_user_…) is required" });
    }
  });
  app.get("/api/v1/health", { schema: { response: routes["/api/v1/health"].response } }, async () =>
    deps.health(),
  );
  app.get("/api/v1/meta", { schema: { response: routes["/api/v1/meta"].response } }, async () =>
    deps.meta(),
  );
  return app;
}
