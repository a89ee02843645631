// MCP Streamable HTTP on `POST|GET|DELETE /mcp`. An initialize POST creates a session and answers
// with a random `Mcp-Session-Id`; every later request must carry it and the same agent's token.
// A session is bound to the agent that created it: another agent presenting the id gets the same
// 404 as an unknown id, so ids cannot be probed across agents. Replies are application/json, or one
// SSE `message` event when the client prefers text/event-stream (and for approvals.wait, which may
// run for minutes: the stream carries keep-alive comments until the answer). We send no
// server-initiated messages, so GET answers 405 as the transport allows.
import { randomBytes } from "node:crypto";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { rpcError, toRpcError, type InternalErrorSink, type RpcLimits } from "../jsonrpc.js";
import type { AgentIdentity, Pipeline } from "../pipeline-types.js";
import { clientFromUserAgent, type SessionRegistry } from "../sessions.js";
import { MCP_PROTOCOL_VERSIONS, McpSession, inspectMessage } from "./session.js";
import { toolNameStyleFromUrl } from "./ws.js";

export interface AuthRefusal {
  readonly status: 401 | 429;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

/** What the agent server's authenticator may answer; both of its shapes are understood. */
export type McpAuthResult =
  | AgentIdentity
  | AuthRefusal
  | { readonly ok: true; readonly agent: AgentIdentity }
  | ({ readonly ok: false } & AuthRefusal);

export interface McpHttpDeps {
  /** The agent server's authentication (Bearer token → agent), or the refusal to send. */
  readonly authenticate: (req: FastifyRequest) => McpAuthResult;
  readonly pipeline: Pipeline;
  readonly limits: RpcLimits;
  /** serverInfo.version. */
  readonly version: string;
  /** A session unused this long is forgotten (default 30 min). */
  readonly sessionIdleMs?: number;
  /** Open sessions per agent; creating one more ends that agent's least recently used (default 16). */
  readonly maxSessionsPerAgent?: number;
  /** SSE keep-alive comment interval while a streamed call runs (default 15 s). */
  readonly keepAliveMs?: number;
  /** Endpoint path (default "/mcp"). */
  readonly path?: string;
  /** The gateway's sessions (see McpSessionOptions.sessions). */
  readonly sessions?: SessionRegistry;
  /** Failures that become -32603, with the reference the reply carries. */
  readonly onInternalError?: InternalErrorSink;
}

interface Entry {
  readonly id: string;
  readonly session: McpSession;
  lastUsed: number;
  busy: number;
}

function normalize(a: McpAuthResult): AgentIdentity | AuthRefusal {
  if ("ok" in a) return a.ok ? a.agent : a;
  return a;
}

function isRefusal(a: AgentIdentity | AuthRefusal): a is AuthRefusal {
  return typeof (a as AuthRefusal).status === "number";
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** q-value of a media type in an Accept header (0 when absent; wildcards count). */
function acceptQ(accept: string | undefined, type: string): number {
  if (!accept) return type === "application/json" ? 1 : 0;
  let best = 0;
  for (const part of accept.split(",")) {
    const [range, ...params] = part.trim().toLowerCase().split(";");
    const r = (range ?? "").trim();
    const major = type.split("/")[0];
    if (r !== type && r !== "*/*" && r !== `${major}/*`) continue;
    let q = 1;
    for (const p of params) {
      const [k, v] = p.trim().split("=");
      if (k === "q" && v !== undefined) q = Number(v);
    }
    if (Number.isFinite(q) && q > best) best = q;
  }
  return best;
}

/** JSON-RPC error body for HTTP-level refusals (id unknown → null), with type and recovery. */
function httpError(type: string, message: string, extra: Record<string, unknown> = {}): unknown {
  const code =
    type === "InternalError"
      ? -32603
      : type === "ParseError"
        ? -32700
        : type === "Unauthorized"
          ? -32000
          : type === "RateLimited"
            ? -32004
            : -32600;
  return { jsonrpc: "2.0", id: null, error: rpcError(code, type, message, extra) };
}

/** A framework error (body too large, bad length, unreadable body…) as a JSON-RPC error body. */
function frameworkError(
  err: FastifyError,
  limits: RpcLimits,
  onInternal: InternalErrorSink | undefined,
): { status: number; body: unknown } {
  const status = err.statusCode ?? 500;
  if (status === 413)
    return {
      status,
      body: httpError("InvalidRequest", `message larger than ${limits.maxMessageBytes} bytes`, {
        limit: "max_message_bytes",
        max: limits.maxMessageBytes,
      }),
    };
  if (status === 415)
    return {
      status,
      body: httpError("InvalidRequest", "POST a JSON-RPC message as application/json"),
    };
  if (status >= 400 && status < 500)
    return {
      status,
      body: httpError("InvalidRequest", `the request body could not be read: ${err.message}`),
    };
  return { status: 500, body: { jsonrpc: "2.0", id: null, error: toRpcError(err, onInternal) } };
}

export async function registerMcpHttp(app: FastifyInstance, deps: McpHttpDeps): Promise<void> {
  const path = deps.path ?? "/mcp";
  const idleMs = deps.sessionIdleMs ?? 30 * 60_000;
  const maxPerAgent = deps.maxSessionsPerAgent ?? 16;
  const keepAliveMs = deps.keepAliveMs ?? 15_000;
  const sessions = new Map<string, Entry>();

  const end = (e: Entry): void => {
    e.session.close();
    sessions.delete(e.id);
    deps.sessions?.close(e.session.agent.session);
  };
  const sweep = (): void => {
    const now = Date.now();
    for (const e of sessions.values()) if (e.busy === 0 && now - e.lastUsed > idleMs) end(e);
  };
  const timer = setInterval(sweep, Math.min(60_000, Math.max(1000, idleMs / 4)));
  timer.unref();

  await app.register(async (scope) => {
    scope.addHook("onClose", async () => {
      clearInterval(timer);
      for (const e of [...sessions.values()]) end(e);
    });
    // Keep the raw text: limits (size, depth) are checked before anything parses it.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      "application/json",
      { parseAs: "string", bodyLimit: deps.limits.maxMessageBytes },
      (_req, body, done) => done(null, body),
    );
    scope.addContentTypeParser("*", (_req, _payload, done) => done(null, undefined));

    // Origin and authentication come before the body is read: a client without a valid token
    // never gets to send one, however slowly.
    const admitted = new WeakMap<FastifyRequest, AgentIdentity>();
    scope.addHook("onRequest", async (req, reply) => {
      // DNS-rebinding guard: a browser page on another origin must not reach the endpoint.
      const origin = header(req, "origin");
      if (origin !== undefined) {
        let sameHost: boolean;
        try {
          sameHost = new URL(origin).host === header(req, "host");
        } catch {
          sameHost = false;
        }
        if (!sameHost) {
          await reply
            .code(403)
            .header("connection", "close")
            .send(httpError("InvalidRequest", "cross-origin requests are refused"));
          return;
        }
      }
      const who = normalize(deps.authenticate(req));
      if (isRefusal(who)) {
        const body = (who.body ?? {}) as Record<string, unknown>;
        const limited = who.status === 429;
        await reply
          .code(who.status)
          .headers({ ...(who.headers ?? {}), connection: "close" })
          .send(
            httpError(
              limited ? "RateLimited" : "Unauthorized",
              String(
                body.message ?? (limited ? "too many failed authentications" : "unauthorized"),
              ),
              limited
                ? { retry_after_s: body.retry_after_s ?? 1, limit: "auth_failures" }
                : { reason: body.reason ?? "unknown" },
            ),
          );
        return;
      }
      admitted.set(req, who);
    });
    scope.setErrorHandler(async (err: FastifyError, _req, reply) => {
      const { status, body } = frameworkError(err, deps.limits, deps.onInternalError);
      return reply.code(status).send(body);
    });
    const admit = async (
      req: FastifyRequest,
      reply: FastifyReply,
    ): Promise<AgentIdentity | undefined> => {
      const who = admitted.get(req);
      if (!who)
        await reply
          .code(401)
          .send(httpError("Unauthorized", "unauthorized", { reason: "missing" }));
      return who;
    };

    /** The session named by Mcp-Session-Id, if it exists and belongs to this agent. */
    const lookup = async (
      req: FastifyRequest,
      reply: FastifyReply,
      agent: AgentIdentity,
    ): Promise<Entry | undefined> => {
      const id = header(req, "mcp-session-id");
      if (!id) {
        await reply
          .code(400)
          .send(httpError("InvalidRequest", "missing Mcp-Session-Id: send initialize first"));
        return undefined;
      }
      const e = sessions.get(id);
      if (e && e.busy === 0 && Date.now() - e.lastUsed > idleMs) end(e);
      const live = sessions.get(id);
      if (!live || live.session.agent.name !== agent.name) {
        await reply
          .code(404)
          .send(httpError("InvalidRequest", "unknown or expired MCP session: initialize again"));
        return undefined;
      }
      return live;
    };

    const createSession = (agent: AgentIdentity, url: string): Entry => {
      const mine = [...sessions.values()].filter((e) => e.session.agent.name === agent.name);
      if (mine.length >= maxPerAgent) {
        mine.sort((a, b) => a.lastUsed - b.lastUsed);
        for (const e of mine.slice(0, mine.length - maxPerAgent + 1)) end(e);
      }
      const entry: Entry = {
        id: randomBytes(32).toString("base64url"),
        session: new McpSession(agent, deps.pipeline, {
          version: deps.version,
          limits: deps.limits,
          toolNames: toolNameStyleFromUrl(url),
          ...(deps.sessions ? { sessions: deps.sessions } : {}),
          ...(deps.onInternalError ? { onInternalError: deps.onInternalError } : {}),
        }),
        lastUsed: Date.now(),
        busy: 0,
      };
      return entry;
    };

    scope.post(path, async (req, reply) => {
      const agent = await admit(req, reply);
      if (!agent) return reply;
      const ctype = (header(req, "content-type") ?? "").split(";")[0]?.trim().toLowerCase();
      if (ctype !== "application/json" || typeof req.body !== "string")
        return reply
          .code(415)
          .send(httpError("InvalidRequest", "POST a JSON-RPC message as application/json"));
      const accept = header(req, "accept");
      const jsonQ = acceptQ(accept, "application/json");
      const sseQ = acceptQ(accept, "text/event-stream");
      if (jsonQ === 0 && sseQ === 0)
        return reply
          .code(406)
          .send(httpError("InvalidRequest", "Accept application/json and/or text/event-stream"));
      const text = req.body;
      const shape = inspectMessage(text, deps.limits);

      let entry: Entry;
      let created = false;
      if (shape.hasInitialize) {
        if (shape.requests !== 1 || text.trimStart().startsWith("["))
          return reply
            .code(400)
            .send(httpError("InvalidRequest", "initialize must be sent alone, not in a batch"));
        entry = createSession(agent, req.url);
        created = true;
      } else {
        const found = await lookup(req, reply, agent);
        if (!found) return reply;
        entry = found;
        const pv = header(req, "mcp-protocol-version");
        const negotiated = entry.session.protocolVersion;
        if (
          pv !== undefined &&
          (!(MCP_PROTOCOL_VERSIONS as readonly string[]).includes(pv) || pv !== negotiated)
        )
          return reply
            .code(400)
            .send(
              httpError(
                "InvalidRequest",
                `unsupported MCP-Protocol-Version "${pv}"; this session negotiated ${negotiated ?? "none"}`,
                { supported: MCP_PROTOCOL_VERSIONS },
              ),
            );
      }

      // The request's connection going away aborts what it started (e.g. approvals.wait).
      const gone = new AbortController();
      const onClose = (): void => {
        if (!reply.raw.writableEnded) gone.abort(new Error("client disconnected"));
      };
      reply.raw.once("close", onClose);

      // A body that is not JSON-RPC we can read (unparseable, over a limit) is a 400 whose body
      // is the JSON-RPC error, as the transport allows; it is never streamed. Neither is an
      // initialize: whether it created a session (and so carries Mcp-Session-Id) is known only
      // once it has run, and it never runs long.
      const prefersSse = sseQ > 0 && (sseQ > jsonQ || shape.longRunning);
      const stream = !created && !shape.opaque && shape.requests > 0 && prefersSse;
      entry.busy++;
      entry.lastUsed = Date.now();
      if (created) {
        sessions.set(entry.id, entry);
        const a = entry.session.agent;
        deps.sessions?.open(
          a.session,
          a.name,
          "mcp",
          clientFromUserAgent(header(req, "user-agent")),
        );
      }
      const headers: Record<string, string> = {};
      if (created) headers["mcp-session-id"] = entry.id;

      if (!stream) {
        let out: string | undefined;
        try {
          out = await entry.session.handle(text, gone.signal);
        } finally {
          entry.busy--;
          entry.lastUsed = Date.now();
          reply.raw.off("close", onClose);
        }
        if (created && !entry.session.initialized) {
          // initialize failed (bad params): no session was established.
          end(entry);
          delete headers["mcp-session-id"];
        }
        if (out === undefined) return reply.code(202).headers(headers).send();
        if (created && prefersSse)
          return reply
            .code(200)
            .headers({
              ...headers,
              "content-type": "text/event-stream",
              "cache-control": "no-cache, no-transform",
            })
            .send(`event: message\ndata: ${out}\n\n`);
        // A single message we cannot accept — unreadable, or invalid without being a request (no
        // id, so no notification either) — is a 400 carrying its JSON-RPC error. A batch is 200:
        // its array answers each member.
        const whole = !text.trimStart().startsWith("[");
        const refused = shape.opaque || (whole && shape.requests === 0);
        return reply
          .code(refused ? 400 : 200)
          .headers({ ...headers, "content-type": "application/json" })
          .send(out);
      }

      // One SSE `message` event carrying the reply, then the stream closes.
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        ...headers,
        "content-type": "text/event-stream",
        "cache-control": "no-cache, no-transform",
        connection: "keep-alive",
        "x-accel-buffering": "no",
      });
      res.write(": kruxos\n\n");
      const ping = setInterval(() => res.write(": keep-alive\n\n"), keepAliveMs);
      try {
        const out = await entry.session.handle(text, gone.signal);
        if (out !== undefined && !res.destroyed) res.write(`event: message\ndata: ${out}\n\n`);
      } finally {
        clearInterval(ping);
        entry.busy--;
        entry.lastUsed = Date.now();
        reply.raw.off("close", onClose);
        if (created && !entry.session.initialized) end(entry);
        res.end();
      }
      return reply;
    });

    scope.get(path, async (req, reply) => {
      const agent = await admit(req, reply);
      if (!agent) return reply;
      return reply
        .code(405)
        .header("allow", "POST, DELETE")
        .send(
          httpError("InvalidRequest", "this server sends no server-initiated messages; use POST"),
        );
    });

    scope.delete(path, async (req, reply) => {
      const agent = await admit(req, reply);
      if (!agent) return reply;
      const entry = await lookup(req, reply, agent);
      if (!entry) return reply;
      end(entry);
      return reply.code(204).send();
    });

    scope.route({
      method: ["PUT", "PATCH", "OPTIONS"],
      url: path,
      handler: async (req, reply) =>
        reply
          .code(405)
          .header("allow", "GET, POST, DELETE")
          .send(httpError("InvalidRequest", `${req.method} is not a method of ${path}`)),
    });
  });
}
