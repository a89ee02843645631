// User API routes for agents and approvals (SPEC §7, §13). Each route has JSON schemas; roles:
// viewer reads, operator also decides approvals, admin also creates and revokes agents. Every
// change an operator makes is an audit record naming the actor.
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Approval, ApprovalQueue } from "../approvals/index.js";
import type { AuditEntry } from "../audit/index.js";
import {
  createAgent,
  getAgent,
  listAgents,
  revokeAgent,
  type AuthenticatedUser,
  type Db,
  type Role,
} from "../state/index.js";
import { allows, errorSchema, FORBIDDEN } from "./route-support.js";

export interface OperatorRouteDeps {
  readonly db: Db;
  readonly approvals: ApprovalQueue;
  readonly record: (entry: AuditEntry) => Promise<unknown>;
  readonly publish?: (event: { type: string; [k: string]: unknown }) => void;
}

const error = errorSchema;
const agent = {
  type: "object",
  properties: {
    name: { type: "string" },
    created_at: { type: "string" },
    revoked_at: { type: ["string", "null"] },
    last_seen_at: { type: ["string", "null"] },
  },
  required: ["name", "created_at", "revoked_at", "last_seen_at"],
} as const;
const approval = {
  type: "object",
  additionalProperties: true,
  properties: {
    id: { type: "string" },
    agent: { type: "string" },
    capability: { type: "string" },
    status: { type: "string" },
    inputs_digest: { type: "string" },
    created_at: { type: "string" },
    expires_at: { type: "string" },
  },
  required: ["id", "agent", "capability", "status", "inputs_digest", "created_at", "expires_at"],
} as const;
const nameParam = {
  type: "object",
  properties: { name: { type: "string", maxLength: 63 } },
  required: ["name"],
} as const;
const idParam = {
  type: "object",
  properties: { id: { type: "string", maxLength: 64 } },
  required: ["id"],
} as const;
const decision = {
  type: "object",
  additionalProperties: false,
  properties: {
    reason: {
      type: "string",
      maxLength: 2000,
      description: "Why; recorded in the audit log and shown to the agent.",
    },
  },
} as const;

/** What operators see of an approval: the exact call, rule and digest. */
function view(a: Approval): Record<string, unknown> {
  return {
    ...a,
    result: a.status === "completed" ? a.result : undefined,
    error: a.status === "failed" ? a.error : undefined,
  };
}

export function registerOperatorRoutes(
  app: FastifyInstance,
  deps: OperatorRouteDeps,
  userOf: (req: FastifyRequest) => AuthenticatedUser,
): void {
  const need = (req: FastifyRequest, role: Role): AuthenticatedUser | undefined => {
    const u = userOf(req);
    return allows(u.role, role) ? u : undefined;
  };
  const forbidden = FORBIDDEN;

  app.get(
    "/api/v1/agents",
    {
      schema: {
        response: {
          200: {
            type: "object",
            properties: { agents: { type: "array", items: agent } },
            required: ["agents"],
          },
        },
      },
    },
    async () => ({
      agents: listAgents(deps.db),
    }),
  );

  app.get<{ Params: { name: string } }>(
    "/api/v1/agents/:name",
    { schema: { params: nameParam, response: { 200: agent, 404: error } } },
    async (req, reply) => {
      const a = getAgent(deps.db, req.params.name);
      return (
        a ?? reply.code(404).send({ error: "not_found", message: `no agent ${req.params.name}` })
      );
    },
  );

  app.post<{ Body: { name: string } }>(
    "/api/v1/agents",
    {
      schema: {
        body: {
          type: "object",
          additionalProperties: false,
          required: ["name"],
          properties: {
            name: {
              type: "string",
              maxLength: 63,
              description: "Lowercase letters, digits, - and _; starts with a letter.",
            },
          },
        },
        response: {
          201: {
            type: "object",
            properties: { name: { type: "string" }, token: { type: "string" } },
            required: ["name", "token"],
          },
          400: error,
          403: error,
          409: error,
        },
      },
    },
    async (req, reply) => {
      const u = need(req, "admin");
      if (!u) return reply.code(403).send(forbidden);
      const made = createAgent(deps.db, req.body.name);
      if (!made.ok)
        return made.reason === "exists"
          ? reply
              .code(409)
              .send({ error: "exists", message: `agent ${req.body.name} already exists` })
          : reply.code(400).send({
              error: "invalid_name",
              message:
                "use lowercase letters, digits, - and _, starting with a letter (at most 63)",
            });
      await deps.record({
        kind: "operator.action",
        actor: u.name,
        agent: made.name,
        detail: { action: "agent.create" },
      });
      // The token is in this response only; it is stored as a hash.
      return reply.code(201).send({ name: made.name, token: made.token });
    },
  );

  app.post<{ Params: { name: string } }>(
    "/api/v1/agents/:name/revoke",
    { schema: { params: nameParam, response: { 200: agent, 403: error, 404: error, 409: error } } },
    async (req, reply) => {
      const u = need(req, "admin");
      if (!u) return reply.code(403).send(forbidden);
      if (!getAgent(deps.db, req.params.name))
        return reply.code(404).send({ error: "not_found", message: `no agent ${req.params.name}` });
      if (!revokeAgent(deps.db, req.params.name))
        return reply
          .code(409)
          .send({ error: "already_revoked", message: `${req.params.name} is already revoked` });
      await deps.record({
        kind: "operator.action",
        actor: u.name,
        agent: req.params.name,
        detail: { action: "agent.revoke" },
      });
      return getAgent(deps.db, req.params.name);
    },
  );

  app.get<{ Querystring: { status?: string; agent?: string; limit?: number } }>(
    "/api/v1/approvals",
    {
      schema: {
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            status: {
              type: "string",
              enum: [
                "pending",
                "accepted",
                "rejected",
                "expired",
                "executing",
                "completed",
                "failed",
              ],
            },
            agent: { type: "string" },
            limit: { type: "integer", minimum: 1, maximum: 1000 },
          },
        },
        response: {
          200: {
            type: "object",
            properties: { approvals: { type: "array", items: approval } },
            required: ["approvals"],
          },
        },
      },
    },
    async (req) => ({
      approvals: deps.approvals
        .list({
          ...(req.query.status ? { status: req.query.status as Approval["status"] } : {}),
          ...(req.query.agent ? { agent: req.query.agent } : {}),
          ...(req.query.limit ? { limit: req.query.limit } : {}),
        })
        .map(view),
    }),
  );

  app.get<{ Params: { id: string } }>(
    "/api/v1/approvals/:id",
    { schema: { params: idParam, response: { 200: approval, 404: error } } },
    async (req, reply) => {
      const a = deps.approvals.get(req.params.id);
      return a
        ? view(a)
        : reply.code(404).send({ error: "not_found", message: `no approval ${req.params.id}` });
    },
  );

  for (const verb of ["accept", "reject"] as const) {
    app.post<{ Params: { id: string }; Body: { reason?: string } | undefined }>(
      `/api/v1/approvals/:id/${verb}`,
      {
        schema: {
          params: idParam,
          body: decision,
          response: { 200: approval, 403: error, 404: error, 409: error },
        },
      },
      async (req, reply) => {
        const u = need(req, "operator");
        if (!u) return reply.code(403).send(forbidden);
        const reason = req.body?.reason;
        const before = deps.approvals.get(req.params.id);
        if (!before)
          return reply
            .code(404)
            .send({ error: "not_found", message: `no approval ${req.params.id}` });
        if (before.status !== "pending")
          return reply
            .code(409)
            .send({ error: "not_pending", message: `approval is ${before.status}` });
        // The decision is audited before it takes effect: an accept starts the stored call.
        await deps.record({
          kind: verb === "accept" ? "approval.accepted" : "approval.rejected",
          actor: u.name,
          agent: before.agent,
          capability: before.capability,
          inputs_digest: before.inputs_digest,
          approval_id: before.id,
          ...(reason ? { detail: { reason } } : {}),
        });
        const d = deps.approvals.decide(req.params.id, {
          decision: verb,
          approver: u.name,
          ...(reason ? { reason } : {}),
        });
        if (!d.ok)
          return reply
            .code(409)
            .send({ error: "not_pending", message: `approval is ${d.approval?.status ?? "gone"}` });
        deps.publish?.({
          type: `approval.${verb === "accept" ? "accepted" : "rejected"}`,
          approval_id: d.approval.id,
          approver: u.name,
        });
        return view(d.approval);
      },
    );
  }
}
