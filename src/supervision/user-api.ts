// The user API (fastify) on the supervision address: every route has a JSON schema, OpenAPI is
// served at /api/v1/openapi.json. Agents' tokens are refused here; only user tokens pass.
import type { IncomingMessage } from "node:http";
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import {
  fastifyServerFactory,
  type ComponentHealth,
  type GateOutcome,
  type ServerGuard,
} from "../core/index.js";
import type { AuthenticatedUser, Db } from "../state/index.js";
import { registerOperatorRoutes, type OperatorRouteDeps } from "./operator-routes.js";
import { registerVaultRoutes, type VaultRouteDeps } from "./vault-routes.js";
import { createUserAuthenticator } from "./users.js";
import { errorSchema } from "./route-support.js";

export interface UserApiDeps {
  readonly db: Db;
  readonly health: () => { status: string; components: readonly ComponentHealth[] };
  readonly meta: () => Record<string, unknown>;
  readonly onRequest?: (route: string, status: number) => void;
  /** Agents and approvals (the gateway program provides them). */
  readonly operator?: OperatorRouteDeps;
  readonly vault?: VaultRouteDeps;
  /** User-token authentication (default: users in `db`, failures not reported). */
  readonly authenticate?: (req: IncomingMessage) => GateOutcome<AuthenticatedUser>;
  /** Timeouts and peer-fault reporting of the listener (its name is "user_api"). */
  readonly guard?: Omit<ServerGuard, "name">;
}

interface RouteDoc {
  readonly method: string;
  readonly url: string;
  readonly schema: Record<string, unknown> | undefined;
}

/** OpenAPI 3.1 from the routes actually registered, with their JSON schemas. */
export function openApiDocument(
  version: string,
  routes: readonly RouteDoc[],
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    if (r.method === "HEAD") continue;
    const p = r.url.replace(/:(\w+)/g, "{$1}");
    const schema = r.schema ?? {};
    const responses = (schema.response ?? { 200: { type: "object" } }) as Record<string, unknown>;
    const params =
      (schema.params as { properties?: Record<string, unknown> } | undefined)?.properties ?? {};
    const query =
      (schema.querystring as { properties?: Record<string, unknown> } | undefined)?.properties ??
      {};
    (paths[p] ??= {})[r.method.toLowerCase()] = {
      parameters: [
        ...Object.entries(params).map(([name, s]) => ({
          name,
          in: "path",
          required: true,
          schema: s,
        })),
        ...Object.entries(query).map(([name, s]) => ({
          name,
          in: "query",
          required: false,
          schema: s,
        })),
      ],
      ...(schema.body
        ? { requestBody: { content: { "application/json": { schema: schema.body } } } }
        : {}),
      responses: Object.fromEntries(
        Object.entries(responses).map(([code, s]) => [
          code,
          { description: code, content: { "application/json": { schema: s } } },
        ]),
      ),
    };
  }
  return {
    openapi: "3.1.0",
    info: { title: "KruxOS user API", version },
    components: {
      securitySchemes: {
        userToken: { type: "http", scheme: "bearer", description: "krx_user_… token" },
      },
    },
    security: [{ userToken: [] }],
    paths,
  };
}

export async function createUserApi(deps: UserApiDeps, version: string): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: 1 << 20,
    serverFactory: fastifyServerFactory({ ...deps.guard, name: "user_api" }),
  });
  const authenticate = deps.authenticate ?? createUserAuthenticator(deps.db);
  const documented: RouteDoc[] = [];
  app.addHook("onRoute", (r) => {
    for (const method of [r.method].flat())
      documented.push({
        method,
        url: r.url,
        schema: r.schema as Record<string, unknown> | undefined,
      });
  });
  const users = new WeakMap<object, AuthenticatedUser>();
  app.addHook("onResponse", async (req, reply) => {
    deps.onRequest?.(req.routeOptions.url ?? "unmatched", reply.statusCode);
  });
  app.get("/api/v1/openapi.json", async () => openApiDocument(version, documented));
  app.addHook("onRequest", async (req, reply) => {
    if (req.url === "/api/v1/openapi.json") return;
    const auth = authenticate(req.raw);
    if (!auth.ok) {
      // The connection closes with the refusal, so an unauthenticated body is never read.
      await reply
        .code(auth.status)
        .headers({ ...auth.headers, connection: "close" })
        .send(auth.body);
      return;
    }
    users.set(req, auth.who);
  });
  const health = {
    type: "object",
    properties: {
      status: { type: "string" },
      components: { type: "array", items: { type: "object", additionalProperties: true } },
    },
    required: ["status", "components"],
  } as const;
  app.get("/api/v1/health", { schema: { response: { 200: health, 401: errorSchema } } }, async () =>
    deps.health(),
  );
  app.get(
    "/api/v1/meta",
    {
      schema: {
        response: { 200: { type: "object", additionalProperties: true }, 401: errorSchema },
      },
    },
    async () => deps.meta(),
  );
  const userOf = (req: FastifyRequest) => {
    const u = users.get(req);
    if (!u) throw new Error("unauthenticated request reached a route");
    return u;
  };
  if (deps.operator) registerOperatorRoutes(app, deps.operator, userOf);
  if (deps.vault) registerVaultRoutes(app, deps.vault, userOf);
  return app;
}
