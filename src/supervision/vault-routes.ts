// User API routes for the vault (SPEC §9, §13): viewers read secrets' metadata, admins add, rotate
// and revoke. A value travels only in the body of an add or rotate request and goes straight into
// the store; no response, log line, event or audit record carries it. Every change is an audit
// record naming the actor.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { AuditEntry } from "../audit/index.js";
import { asKruxError } from "../core/index.js";
import type { AuthenticatedUser, Role } from "../state/index.js";
import type { SecretMeta, Vault } from "../vault/index.js";
import { allows, errorSchema, FORBIDDEN } from "./route-support.js";

export interface VaultRouteDeps {
  readonly vault: Vault;
  readonly record: (entry: AuditEntry) => Promise<unknown>;
}

const error = errorSchema;
const strings = { type: "array", items: { type: "string", minLength: 1, maxLength: 255 } } as const;
const meta = {
  type: "object",
  properties: {
    name: { type: "string" },
    version: { type: "integer" },
    scope: {
      type: "object",
      properties: {
        agents: strings,
        capabilities: strings,
        hosts: strings,
        expires_at: { type: "string" },
      },
      required: ["agents", "capabilities", "hosts"],
    },
    description: { type: ["string", "null"] },
    rotatable: { type: "boolean" },
    created_at: { type: "string" },
    rotated_at: { type: ["string", "null"] },
    revoked_at: { type: ["string", "null"] },
    last_used_at: { type: ["string", "null"] },
  },
  required: [
    "name",
    "version",
    "scope",
    "description",
    "rotatable",
    "created_at",
    "rotated_at",
    "revoked_at",
    "last_used_at",
  ],
} as const;
const value = {
  type: "string",
  minLength: 1,
  maxLength: 65536,
  description: "The secret's value. Stored encrypted; never returned.",
} as const;
const nameParam = {
  type: "object",
  properties: { name: { type: "string", maxLength: 64 } },
  required: ["name"],
} as const;

export function registerVaultRoutes(
  app: FastifyInstance,
  deps: VaultRouteDeps,
  userOf: (req: FastifyRequest) => AuthenticatedUser,
): void {
  /** The acting user when their role allows `role` and the store is open; otherwise the reply. */
  const gate = (req: FastifyRequest, reply: FastifyReply, role: Role) => {
    const u = userOf(req);
    if (!allows(u.role, role)) {
      void reply.code(403).send(FORBIDDEN);
      return undefined;
    }
    const store = deps.vault.store;
    if (!store) {
      void reply
        .code(503)
        .send({ error: "vault_unavailable", message: String(deps.vault.health().detail) });
      return undefined;
    }
    return { user: u, store };
  };
  /** A store refusal (bad name, scope, unknown secret) as the API's error body. */
  const refused = (reply: FastifyReply, err: unknown) => {
    const e = asKruxError(err);
    if (e.code === "Unavailable")
      return reply.code(503).send({ error: "vault_unavailable", message: e.message });
    if (e.code !== "InvalidParams") throw err;
    const missing = e.data.missing === true;
    return reply
      .code(missing ? 404 : 400)
      .send({ error: missing ? "not_found" : "invalid", message: e.message });
  };
  const audit = (actor: string, action: string, m: SecretMeta) =>
    deps.record({
      kind: "operator.action",
      actor,
      detail: { action, secret: m.name, version: m.version },
    });

  app.get(
    "/api/v1/vault/secrets",
    {
      schema: {
        response: {
          200: {
            type: "object",
            properties: { secrets: { type: "array", items: meta } },
            required: ["secrets"],
          },
          503: error,
        },
      },
    },
    async (req, reply) => {
      const g = gate(req, reply, "viewer");
      return g ? { secrets: g.store.list() } : reply;
    },
  );

  app.post<{
    Body: {
      name: string;
      value: string;
      agents: string[];
      capabilities: string[];
      hosts: string[];
      expires_at?: string;
      description?: string;
      rotatable?: boolean;
    };
  }>(
    "/api/v1/vault/secrets",
    {
      schema: {
        body: {
          type: "object",
          additionalProperties: false,
          required: ["name", "value", "agents", "capabilities", "hosts"],
          properties: {
            name: { type: "string", maxLength: 64 },
            value,
            agents: strings,
            capabilities: strings,
            hosts: { ...strings, description: "host:port patterns, as in network.egress rules" },
            expires_at: { type: "string", format: "date-time" },
            description: {
              type: "string",
              maxLength: 500,
              description: "What it is for; agents see it.",
            },
            rotatable: { type: "boolean", description: "Agents may rotate it (generated values)." },
          },
        },
        response: { 201: meta, 400: error, 403: error, 503: error },
      },
    },
    async (req, reply) => {
      const g = gate(req, reply, "admin");
      if (!g) return reply;
      const { name, value: v, expires_at, description, rotatable, ...scope } = req.body;
      let m: SecretMeta;
      try {
        m = g.store.add(
          name,
          Buffer.from(v, "utf8"),
          { ...scope, ...(expires_at !== undefined ? { expires_at } : {}) },
          {
            ...(description !== undefined ? { description } : {}),
            ...(rotatable !== undefined ? { rotatable } : {}),
          },
        );
      } catch (err) {
        return refused(reply, err);
      }
      await audit(g.user.name, "vault.add", m);
      return reply.code(201).send(m);
    },
  );

  app.post<{ Params: { name: string }; Body: { value: string } }>(
    "/api/v1/vault/secrets/:name/rotate",
    {
      schema: {
        params: nameParam,
        body: {
          type: "object",
          additionalProperties: false,
          required: ["value"],
          properties: { value },
        },
        response: { 200: meta, 400: error, 403: error, 404: error, 503: error },
      },
    },
    async (req, reply) => {
      const g = gate(req, reply, "admin");
      if (!g) return reply;
      let m: SecretMeta;
      try {
        m = g.store.rotate(req.params.name, Buffer.from(req.body.value, "utf8"));
      } catch (err) {
        return refused(reply, err);
      }
      await audit(g.user.name, "vault.rotate", m);
      return m;
    },
  );

  app.post<{ Params: { name: string } }>(
    "/api/v1/vault/secrets/:name/revoke",
    { schema: { params: nameParam, response: { 200: meta, 403: error, 404: error, 503: error } } },
    async (req, reply) => {
      const g = gate(req, reply, "admin");
      if (!g) return reply;
      let m: SecretMeta;
      try {
        m = g.store.revoke(req.params.name);
      } catch (err) {
        return refused(reply, err);
      }
      await audit(g.user.name, "vault.revoke", m);
      return m;
    },
  );

  app.post<{ Body: { new_key?: string; new_passphrase?: string } }>(
    "/api/v1/vault/rekey",
    {
      schema: {
        body: {
          type: "object",
          additionalProperties: false,
          properties: {
            new_key: {
              type: "string",
              pattern: "^[0-9a-f]{64}$",
              description: "key_source env: the new key (64 hex characters).",
            },
            new_passphrase: {
              type: "string",
              minLength: 12,
              maxLength: 1024,
              description: "key_source passphrase: the new passphrase.",
            },
          },
        },
        response: {
          200: {
            type: "object",
            properties: {
              rewrapped: { type: "integer" },
              key_source: { type: "string" },
              kek_id: { type: "string" },
            },
            required: ["rewrapped", "key_source", "kek_id"],
          },
          400: error,
          403: error,
          503: error,
        },
      },
    },
    async (req, reply) => {
      const g = gate(req, reply, "admin");
      if (!g) return reply;
      let r: { rewrapped: number };
      try {
        r = deps.vault.rekey({
          ...(req.body?.new_key !== undefined ? { key: Buffer.from(req.body.new_key, "hex") } : {}),
          ...(req.body?.new_passphrase !== undefined
            ? { passphrase: req.body.new_passphrase }
            : {}),
        });
      } catch (err) {
        return refused(reply, err);
      }
      const h = deps.vault.health();
      const kekId = String(h.facts?.kek_id ?? "");
      await deps.record({
        kind: "operator.action",
        actor: g.user.name,
        detail: { action: "vault.rekey", rewrapped: r.rewrapped, kek_id: kekId },
      });
      return { rewrapped: r.rewrapped, key_source: deps.vault.keySource, kek_id: kekId };
    },
  );
}
