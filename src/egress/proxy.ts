// The egress proxy (SPEC §8): HTTP CONNECT and absolute-form http:// forwarding, on TCP and on a
// unix socket. Every request goes the same way: credential → target → admission (policy, names,
// DNS once, address classes) → audit record, durable before anything is dialled → connect to the
// pinned address → relay → close record with bytes and duration. Origin-form requests are for the
// proxy itself: GET /livez and GET /v1/resolve.
import http from "node:http";
import type net from "node:net";
import type { Duplex } from "node:stream";
import {
  Counter,
  Gauge,
  Histogram,
  Redactor,
  createHttpServer,
  type Logger,
  type PeerFault,
  type Registry,
} from "../core/index.js";
import type { EgressDecision } from "../policy/index.js";
import type { CallIdentity } from "../capabilities/index.js";
import type { SecretRefusal } from "../vault/index.js";
import { classify, parseHost, parseIp, policyHost, type IpAddress } from "./addresses.js";
import {
  admit,
  hostDecision,
  policyDenial,
  type Admission,
  type Denial,
  type EgressPolicy,
  type Resolve,
} from "./admission.js";
import { tokenFromProxyAuthorization, verifyCredential } from "./credentials.js";
import { dial, splice, DialError } from "./dial.js";
import { auditDecision, record, type Attempt, type EgressAuditEntry } from "./records.js";
import {
  RECORD_TYPES,
  recordsWith,
  systemResolve,
  type RecordType,
  type ResolveRecords,
} from "./resolvers.js";
import { parseAbsoluteUrl, parseAuthority, type Parsed, type Target } from "./targets.js";
import { endToEndHeaders } from "./headers.js";
import {
  auditPlacement,
  boundedBody,
  createInterceptor,
  mentionsSecrets,
  outOfScope,
  placeSecrets,
  relayRedacted,
  sendBody,
  type InterceptionOptions,
  type VaultAuditEntry,
} from "./intercept.js";

export { endToEndHeaders };

export interface ProxyDeps {
  readonly log: Logger;
  readonly registry: Registry;
  readonly policy: EgressPolicy;
  /** HMAC key of the per-call credentials (derived from the vault key by the wiring). */
  readonly credentialKey: Buffer;
  /**
   * Appends to the audit log; resolves once appended (and, when `durable`, synced). The proxy waits
   * for the connect record (durable) before dialling and refuses when it fails.
   */
  readonly audit: (entry: EgressAuditEntry | VaultAuditEntry, durable: boolean) => Promise<void>;
  /**
   * Secret placement (SPEC §9): without it, placeholders are never replaced and a plain http://
   * request holding one is refused.
   */
  readonly interception?: InterceptionOptions;
  /** Name → addresses, once per connection. Default: the system resolver (getaddrinfo). */
  readonly resolve?: Resolve;
  /** Other record types for /v1/resolve. Default: the system's DNS servers. */
  readonly resolveRecords?: ResolveRecords;
  readonly connectTimeoutMs?: number;
  readonly dnsTimeoutMs?: number;
  /** A tunnel or forward exchange with no traffic this long is closed. */
  readonly idleTimeoutMs?: number;
  /** Relayed connections at once; more answer 503. */
  readonly maxConnections?: number;
  /** A client broke HTTP (malformed or too-slow request head); counted and reported. */
  readonly onFault?: (fault: PeerFault) => void;
  readonly now?: () => number;
}

/** A proxy: one policy and one set of metrics, served on as many listeners as needed. */
export interface EgressProxy {
  /** A new listener-less server speaking the proxy protocol. */
  server(): http.Server;
  /** Connections being relayed now. */
  active(): number;
}

interface Metrics {
  readonly connections: Counter<"decision" | "method">;
  readonly connectSeconds: Histogram;
  readonly bytes: Counter<"direction">;
  readonly active: Gauge;
  readonly auditFailures: Counter;
  readonly dialFailures: Counter<"reason">;
}

interface Ctx {
  readonly deps: ProxyDeps;
  readonly m: Metrics;
  readonly resolve: Resolve;
  readonly resolveRecords: ResolveRecords;
  readonly connectTimeoutMs: number;
  readonly dnsTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxConnections: number;
  readonly now: () => number;
  readonly interceptor: ReturnType<typeof createInterceptor> | undefined;
  active: number;
}

const MAX_HEADER_BYTES = 16 * 1024;
const MAX_TARGET_IN_RECORD = 300;

export function createProxy(deps: ProxyDeps): EgressProxy {
  const registers = [deps.registry];
  const m: Metrics = {
    connections: new Counter({
      name: "kruxos_egress_connections_total",
      help: "Egress requests by decision (allowed, denied, unauthenticated, invalid, unavailable, error) and method (connect, forward, resolve).",
      labelNames: ["decision", "method"],
      registers,
    }),
    connectSeconds: new Histogram({
      name: "kruxos_egress_connect_duration_seconds",
      help: "Time to open the upstream connection to a pinned address.",
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    bytes: new Counter({
      name: "kruxos_egress_bytes_total",
      help: "Bytes relayed, by direction: in = from upstream, out = to upstream.",
      labelNames: ["direction"],
      registers,
    }),
    active: new Gauge({
      name: "kruxos_egress_active_connections",
      help: "Upstream connections being relayed now.",
      registers,
    }),
    auditFailures: new Counter({
      name: "kruxos_egress_audit_failures_total",
      help: "Egress audit records that could not be written (allowed connections were refused).",
      registers,
    }),
    dialFailures: new Counter({
      name: "kruxos_egress_connect_failures_total",
      help: "Allowed connections whose upstream could not be reached, by reason.",
      labelNames: ["reason"],
      registers,
    }),
  };
  const ctx: Ctx = {
    deps,
    m,
    resolve: deps.resolve ?? systemResolve,
    resolveRecords: deps.resolveRecords ?? recordsWith(),
    connectTimeoutMs: deps.connectTimeoutMs ?? 10_000,
    dnsTimeoutMs: deps.dnsTimeoutMs ?? 5_000,
    idleTimeoutMs: deps.idleTimeoutMs ?? 300_000,
    maxConnections: deps.maxConnections ?? 1024,
    now: deps.now ?? Date.now,
    interceptor: undefined,
    active: 0,
  };
  if (deps.interception) {
    const interception = deps.interception;
    Object.assign(ctx, {
      interceptor: createInterceptor({
        log: deps.log,
        registry: deps.registry,
        opts: interception,
        connectTimeoutMs: ctx.connectTimeoutMs,
        idleTimeoutMs: ctx.idleTimeoutMs,
        audit: (entry, durable) => audit(ctx, entry, durable),
        reply: (res, status, body) => forwardReply(res).send(status, body),
      }),
    });
  }
  return { server: () => proxyServer(ctx), active: () => ctx.active };
}

// ---------------------------------------------------------------------------------------------
// Answers

type Body = Record<string, unknown>;

interface Reply {
  send(status: number, body: Body, headers?: Record<string, string>): void;
}

/** Header values from policy text: printable ASCII only, so a rule can never split a header. */
const headerSafe = (s: string): string => s.replace(/[^\x20-\x7e]/g, "?").slice(0, 512);

function proxyHeaders(body: Body, extra: Record<string, string> = {}): Record<string, string> {
  const h: Record<string, string> = {
    "content-type": "application/json",
    "cache-control": "no-store",
    ...extra,
  };
  // Lets a client tell the proxy's own answers from an upstream's (which never carry it).
  if (typeof body.error === "string") h["x-kruxos-proxy-error"] = headerSafe(body.error);
  return h;
}

function forwardReply(res: http.ServerResponse): Reply {
  return {
    send(status, body, headers) {
      if (res.headersSent || res.destroyed) {
        res.destroy();
        return;
      }
      const text = JSON.stringify(body);
      res.shouldKeepAlive = false;
      res.writeHead(status, { ...proxyHeaders(body, headers), connection: "close" });
      res.end(text);
    },
  };
}

function rawReply(socket: net.Socket): Reply {
  return {
    send(status, body, headers) {
      if (socket.destroyed) return;
      const text = JSON.stringify(body);
      const all = {
        ...proxyHeaders(body, headers),
        "content-length": String(Buffer.byteLength(text)),
        connection: "close",
      };
      const head = Object.entries(all)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join("");
      socket.end(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? "Error"}\r\n${head}\r\n${text}`,
      );
      // The client should close after a refusal; if it does not, do not keep its socket.
      setTimeout(() => socket.destroy(), 2000).unref();
    },
  };
}

function denialHeaders(d: Denial): Record<string, string> {
  return { "x-kruxos-policy": headerSafe(`${d.policy}/${d.rule}`) };
}

// ---------------------------------------------------------------------------------------------
// Audit

/** Append a record; false (logged and counted) when the log cannot take it. */
async function audit(
  ctx: Ctx,
  entry: EgressAuditEntry | VaultAuditEntry,
  durable = false,
): Promise<boolean> {
  try {
    await ctx.deps.audit(entry, durable);
    return true;
  } catch (err) {
    ctx.m.auditFailures.inc();
    ctx.deps.log.error(
      {
        event: "EgressAuditFailed",
        kind: entry.kind,
        agent: entry.agent,
        target: "target" in entry.detail ? entry.detail.target : entry.detail.destination,
        err: (err as Error).message,
      },
      "egress audit record could not be written",
    );
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// The shared path: credential → target → admission → audit → dial

type MethodLabel = "connect" | "forward" | "resolve";

function authenticate(ctx: Ctx, req: http.IncomingMessage, alsoAuthorization: boolean) {
  const header =
    req.headers["proxy-authorization"] ??
    (alsoAuthorization ? req.headers.authorization : undefined);
  if (header === undefined) return { who: null, reason: "missing credential" } as const;
  const token = tokenFromProxyAuthorization(header);
  const who = token === null ? null : verifyCredential(ctx.deps.credentialKey, token, ctx.now());
  return who
    ? ({ who, reason: "" } as const)
    : ({ who: null, reason: "invalid or expired credential" } as const);
}

/** 407, audited. */
async function refuseCredential(
  ctx: Ctx,
  reply: Reply,
  a: Attempt,
  label: MethodLabel,
  reason: string,
): Promise<void> {
  ctx.m.connections.inc({ decision: "unauthenticated", method: label });
  ctx.deps.log.info(
    {
      event: "EgressUnauthenticated",
      method: a.method,
      target: a.target.slice(0, MAX_TARGET_IN_RECORD),
      reason,
    },
    "egress request without a valid credential",
  );
  await audit(
    ctx,
    record(
      "egress.connection",
      a,
      { status: "denied", error_type: "ProxyAuthRequired" },
      {
        rule: "credential-required",
        layer: "credentials",
        reason,
      },
    ),
  );
  reply.send(
    407,
    {
      error: "proxy_auth_required",
      detail: `${reason}: send Proxy-Authorization: Basic base64("kruxos:" + token) with this call's credential`,
    },
    { "proxy-authenticate": 'Basic realm="kruxos"' },
  );
}

async function refuseTarget(
  ctx: Ctx,
  reply: Reply,
  a: Attempt,
  label: MethodLabel,
  reason: string,
): Promise<void> {
  ctx.m.connections.inc({ decision: "invalid", method: label });
  ctx.deps.log.info(
    { event: "EgressBadTarget", agent: a.who?.agent, method: a.method, reason },
    "egress request with an unusable target",
  );
  await audit(
    ctx,
    record(
      "egress.connection",
      a,
      { status: "denied", error_type: "BadRequest" },
      {
        rule: "bad-target",
        layer: "target",
        reason,
      },
    ),
  );
  reply.send(400, { error: "bad_request", detail: reason });
}

async function refuseAdmission(
  ctx: Ctx,
  reply: Reply,
  a: Attempt,
  label: MethodLabel,
  ad: Exclude<Admission, { ok: true }>,
): Promise<void> {
  if (ad.status === 403) {
    ctx.m.connections.inc({ decision: "denied", method: label });
    ctx.deps.log.info(
      {
        event: "EgressDenied",
        agent: a.who?.agent,
        method: a.method,
        target: a.target,
        policy: ad.denial.policy,
        rule: ad.denial.rule,
        address: ad.address,
      },
      "egress denied",
    );
    await audit(
      ctx,
      record(
        "egress.connection",
        a,
        { status: "denied", error_type: "PolicyDenied" },
        {
          rule: ad.denial.rule,
          layer: ad.denial.policy,
          reason: ad.reason,
          address: ad.address ?? null,
        },
        auditDecision(ad.decision, false),
      ),
    );
    reply.send(403, { ...ad.denial }, denialHeaders(ad.denial));
    return;
  }
  ctx.m.connections.inc({ decision: "error", method: label });
  ctx.deps.log.info(
    { event: "EgressDnsFailed", agent: a.who?.agent, target: a.target, reason: ad.reason },
    "egress name did not resolve",
  );
  await audit(
    ctx,
    record(
      "egress.connection",
      a,
      {
        status: "error",
        error_type:
          ad.error === "dns_timeout"
            ? "Timeout"
            : ad.error === "dns_not_found"
              ? "NotFound"
              : "DnsError",
      },
      { rule: ad.decision.rule, layer: ad.decision.layer, reason: ad.reason },
      auditDecision(ad.decision, true),
    ),
  );
  reply.send(ad.status, { error: ad.error, detail: ad.detail });
}

interface Opened {
  readonly target: Target;
  readonly socket: net.Socket;
  readonly address: IpAddress;
  readonly attempt: Attempt;
  readonly decision: EgressDecision;
  readonly started: number;
}

/**
 * Everything before the relay. Answers and audits every refusal itself; returns the upstream
 * socket only when the connect record is durable and the pinned address answered.
 */
async function open(
  ctx: Ctx,
  req: http.IncomingMessage,
  reply: Reply,
  label: "connect" | "forward",
  rawTarget: string,
  parse: () => Parsed<Target>,
  clientGone: AbortSignal,
): Promise<Opened | undefined> {
  const started = performance.now();
  const method = req.method ?? "?";
  const auth = authenticate(ctx, req, false);
  if (!auth.who) {
    await refuseCredential(ctx, reply, { method, target: rawTarget }, label, auth.reason);
    return undefined;
  }
  const who = auth.who;
  const parsed = parse();
  if ("error" in parsed) {
    await refuseTarget(ctx, reply, { method, target: rawTarget, who }, label, parsed.error);
    return undefined;
  }
  const attempt: Attempt = { method, target: parsed.text, who };
  if (ctx.active >= ctx.maxConnections) {
    ctx.m.connections.inc({ decision: "unavailable", method: label });
    reply.send(503, { error: "busy", detail: `${ctx.maxConnections} connections are open` });
    return undefined;
  }
  const ad = await admit(ctx.deps.policy, ctx.resolve, who.agent, parsed, ctx.dnsTimeoutMs);
  if (!ad.ok) {
    await refuseAdmission(ctx, reply, attempt, label, ad);
    return undefined;
  }
  const first = ad.addresses[0] as IpAddress;
  // No connection without its record: the decision is durable before anything is dialled.
  const recorded = await audit(
    ctx,
    record(
      "egress.connection",
      attempt,
      { status: "ok" },
      {
        rule: ad.decision.rule,
        layer: ad.decision.layer,
        reason: ad.explicit ? "named-address" : null,
        address: first.text,
        addresses: ad.addresses
          .slice(0, 8)
          .map((x) => x.text)
          .join(" "),
      },
      auditDecision(ad.decision, true),
    ),
    true,
  );
  if (!recorded) {
    ctx.m.connections.inc({ decision: "unavailable", method: label });
    reply.send(503, {
      error: "audit_unavailable",
      detail: "the audit log cannot record this connection, so it is not made",
    });
    return undefined;
  }
  ctx.m.connections.inc({ decision: "allowed", method: label });
  const closeFailed = async (reason: string, errorType: string): Promise<void> => {
    await audit(
      ctx,
      record(
        "egress.closed",
        attempt,
        { status: "error", error_type: errorType },
        { rule: ad.decision.rule, layer: ad.decision.layer, reason, address: first.text },
        { duration_ms: Math.round(performance.now() - started) },
      ),
    );
  };
  if (clientGone.aborted) {
    await closeFailed("client closed before the upstream was dialled", "ClientGone");
    return undefined;
  }
  const t0 = performance.now();
  try {
    const { socket, address } = await dial(
      ad.addresses,
      parsed.port,
      ctx.connectTimeoutMs,
      clientGone,
    );
    ctx.m.connectSeconds.observe((performance.now() - t0) / 1000);
    ctx.deps.log.info(
      {
        event: "EgressConnected",
        agent: who.agent,
        call: who.callId,
        method,
        target: parsed.text,
        address: address.text,
        rule: ad.decision.rule,
      },
      "egress connected",
    );
    return { target: parsed, socket, address, attempt, decision: ad.decision, started };
  } catch (err) {
    const e = err instanceof DialError ? err : new DialError(String(err), "EIO", false, undefined);
    ctx.m.dialFailures.inc({ reason: e.timedOut ? "timeout" : e.code.toLowerCase() });
    ctx.deps.log.info(
      { event: "EgressUpstreamFailed", agent: who.agent, target: parsed.text, err: e.message },
      "egress upstream unreachable",
    );
    await closeFailed(e.message, e.timedOut ? "Timeout" : "NetworkError");
    const body = { detail: e.message, address: e.address ?? first.text };
    if (e.timedOut) reply.send(504, { error: "upstream_timeout", ...body });
    else reply.send(502, { error: "upstream_unreachable", ...body });
    return undefined;
  }
}

async function closeRecord(ctx: Ctx, o: Opened, bytesIn: number, bytesOut: number, error?: string) {
  ctx.m.bytes.inc({ direction: "in" }, bytesIn);
  ctx.m.bytes.inc({ direction: "out" }, bytesOut);
  await audit(
    ctx,
    record(
      "egress.closed",
      o.attempt,
      error ? { status: "error", error_type: error } : { status: "ok" },
      {
        rule: o.decision.rule,
        layer: o.decision.layer,
        reason: null,
        address: o.address.text,
        bytes_in: bytesIn,
        bytes_out: bytesOut,
      },
      { duration_ms: Math.round(performance.now() - o.started) },
    ),
  );
}

function track(ctx: Ctx, delta: 1 | -1): void {
  ctx.active += delta;
  ctx.m.active.set(ctx.active);
}

// ---------------------------------------------------------------------------------------------
// CONNECT

async function tunnel(ctx: Ctx, req: http.IncomingMessage, client: net.Socket, head: Buffer) {
  const gone = new AbortController();
  client.once("close", () => gone.abort());
  const raw = req.url ?? "";
  const o = await open(
    ctx,
    req,
    rawReply(client),
    "connect",
    raw,
    () => parseAuthority(raw),
    gone.signal,
  );
  if (!o) return;
  track(ctx, 1);
  try {
    if (client.destroyed) {
      o.socket.destroy();
      await closeRecord(ctx, o, 0, 0, "ClientGone");
      return;
    }
    // The pinned address is no secret from the agent (it may resolve the name itself) and lets
    // port checks report where they landed.
    client.write(
      `HTTP/1.1 200 Connection Established\r\nx-kruxos-address: ${o.address.text}\r\n\r\n`,
    );
    const who = o.attempt.who;
    const host = o.target.policyHost;
    if (ctx.interceptor && who && ctx.deps.interception?.secrets.covers(who, host, o.target.port)) {
      // Some secret may go to this host for this call: the tunnel is opened up (TLS terminated
      // with the interception CA) so its placeholders can be placed and its answers redacted.
      const session = {
        who,
        host,
        port: o.target.port,
        address: o.address,
        first: o.socket as net.Socket | undefined,
        bytesIn: 0,
        bytesOut: 0,
      };
      let error: string | undefined;
      try {
        await ctx.interceptor.adopt(client, head, session);
      } catch (err) {
        error = "InterceptFailed";
        ctx.deps.log.info(
          {
            event: "EgressInterceptFailed",
            agent: who.agent,
            target: o.target.text,
            err: (err as Error).message,
          },
          "intercepted tunnel failed",
        );
        client.destroy();
      }
      session.first?.destroy();
      await closeRecord(ctx, o, session.bytesIn, session.bytesOut, error);
      return;
    }
    if (head.length > 0) o.socket.write(head);
    const { bytesIn, bytesOut } = await splice(client, o.socket, ctx.idleTimeoutMs);
    await closeRecord(ctx, o, bytesIn, bytesOut);
  } finally {
    track(ctx, -1);
  }
}

// ---------------------------------------------------------------------------------------------
// Forward (absolute-form http://)

async function forward(ctx: Ctx, req: http.IncomingMessage, res: http.ServerResponse) {
  const gone = new AbortController();
  res.once("close", () => gone.abort());
  const raw = req.url ?? "";
  let url: URL | undefined;
  const parse = (): Parsed<Target> => {
    const p = parseAbsoluteUrl(raw);
    if ("error" in p) return p;
    url = p.url;
    return p.target;
  };
  const reply = forwardReply(res);
  const o = await open(ctx, req, reply, "forward", raw, parse, gone.signal);
  if (!o || !url) return;
  const u = url;
  track(ctx, 1);
  const upstream = o.socket;
  let failure: string | undefined;
  const finished = new Promise<void>((resolve) => {
    let n = 0;
    const one = (): void => {
      if (++n === 2) resolve();
    };
    upstream.once("close", one);
    res.once("close", () => {
      upstream.destroy();
      one();
    });
  });
  upstream.setTimeout(ctx.idleTimeoutMs, () => {
    failure = "Timeout";
    upstream.destroy();
    res.destroy();
  });
  let headers = endToEndHeaders(req.rawHeaders);
  headers.host = u.host;
  headers.connection = "close";
  let path = `${u.pathname}${u.search}`;
  let body: Buffer | undefined;
  let rest: Buffer[] | undefined;
  let redactor: Redactor = Redactor.EMPTY;
  const who = o.attempt.who as CallIdentity;
  const secrets = ctx.deps.interception?.secrets;
  const { policyHost: host, port } = o.target;
  if (mentionsSecrets(path, headers) || secrets?.covers(who, host, port) === true) {
    // Placeholders are placed here, for this destination only, or the request is refused before
    // a byte of it reaches the upstream.
    ({ body, rest } = await boundedBody(req));
    const placed = secrets
      ? placeSecrets(secrets, who, host, port, path, headers, body)
      : {
          name: "?",
          reason: "not_available" as const,
          message: "secrets cannot be placed: the proxy has no vault",
        };
    const recorded = await auditPlacement(
      { audit: (e, durable) => audit(ctx, e, durable) },
      who,
      o.target.text,
      placed,
    );
    if (!recorded || "reason" in placed) {
      upstream.destroy();
      if (!recorded)
        reply.send(503, {
          error: "audit_unavailable",
          detail: "the audit log cannot record this use of a secret, so the request is not sent",
        });
      else reply.send(403, outOfScope(placed as SecretRefusal, o.target.text));
      await finished;
      await closeRecord(ctx, o, 0, 0, "SecretDenied");
      track(ctx, -1);
      return;
    }
    ({ path, headers, body } = placed);
    headers["accept-encoding"] = "identity";
    if (body !== undefined) {
      delete headers["transfer-encoding"];
      headers["content-length"] = String(body.length);
    }
    if (secrets) redactor = secrets.redactor(who, host, port);
  }
  const out = http.request({
    createConnection: () => upstream,
    method: req.method ?? "GET",
    path,
    headers,
    setHost: false,
  });
  out.on("response", (ur) => relayRedacted(ur, res, redactor));
  out.on("error", (err) => {
    failure ??= "NetworkError";
    if (!res.headersSent)
      reply.send(502, { error: "upstream_error", detail: `${u.host}: ${err.message}` });
    else res.destroy();
    upstream.destroy();
  });
  req.on("error", () => out.destroy());
  sendBody(out, req, body, rest);
  try {
    await finished;
    await closeRecord(ctx, o, upstream.bytesRead, upstream.bytesWritten, failure);
  } finally {
    track(ctx, -1);
  }
}

// ---------------------------------------------------------------------------------------------
// Origin-form: the proxy's own endpoints

async function resolveEndpoint(
  ctx: Ctx,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  u: URL,
) {
  const reply = forwardReply(res);
  const host = u.searchParams.get("host") ?? "";
  const type = (u.searchParams.get("type") ?? "A").toUpperCase() as RecordType;
  const a0: Attempt = { method: "RESOLVE", target: `${host} ${type}` };
  const auth = authenticate(ctx, req, true);
  if (!auth.who) return refuseCredential(ctx, reply, a0, "resolve", auth.reason);
  const who = auth.who;
  const a: Attempt = { ...a0, who };
  if (!RECORD_TYPES.includes(type))
    return refuseTarget(ctx, reply, a, "resolve", `unknown record type ${type}`);
  const h = parseHost(host);
  if (h.kind === "invalid") return refuseTarget(ctx, reply, a, "resolve", h.reason);
  const name = h.kind === "ip" ? policyHost(h.ip) : h.name;
  // A query is itself a channel out: only names the agent may reach on some port are looked up.
  const d = hostDecision(ctx.deps.policy, who.agent, name);
  if (!d.allowed) {
    const denial = policyDenial(d, `${name} (any port)`);
    return refuseAdmission(ctx, reply, a, "resolve", {
      ok: false,
      status: 403,
      denial,
      decision: d,
      reason: "policy",
    });
  }
  let records: string[];
  let refused: string[] = [];
  try {
    if (type === "A" || type === "AAAA") {
      const want = type === "A" ? 4 : 6;
      const answers =
        h.kind === "ip" ? [{ address: h.ip.text, family: h.ip.family }] : await ctx.resolve(h.name);
      records = answers.filter((x) => x.family === want).map((x) => x.address);
      refused = records.filter((x) => {
        const ip = parseIp(x);
        return !ip || classify(ip).cls !== "public";
      });
    } else {
      records = h.kind === "ip" ? [] : await ctx.resolveRecords(h.name, type);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "";
    const notFound = code === "ENOTFOUND" || code === "ENODATA" || code === "NXDOMAIN";
    const timedOut = code === "ETIMEOUT" || code === "EAI_AGAIN";
    ctx.m.connections.inc({ decision: "error", method: "resolve" });
    await audit(
      ctx,
      record(
        "egress.connection",
        a,
        { status: "error", error_type: notFound ? "NotFound" : timedOut ? "Timeout" : "DnsError" },
        { rule: d.rule, layer: d.layer, reason: `dns:${code || "error"}`, record_type: type },
        auditDecision(d, true),
      ),
    );
    return reply.send(notFound ? 404 : timedOut ? 504 : 502, {
      error: notFound ? "dns_not_found" : timedOut ? "dns_timeout" : "dns_error",
      detail: `${name} ${type}: ${code || (err as Error).message}`,
    });
  }
  ctx.m.connections.inc({ decision: "allowed", method: "resolve" });
  await audit(
    ctx,
    record(
      "egress.connection",
      a,
      { status: "ok" },
      { rule: d.rule, layer: d.layer, reason: null, record_type: type, answers: records.length },
      auditDecision(d, true),
    ),
  );
  res
    .writeHead(200, { "content-type": "application/json", "cache-control": "no-store" })
    .end(JSON.stringify({ host: name, type, records: records.slice(0, 256), refused }));
}

function origin(
  ctx: Ctx,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> | void {
  let u: URL;
  try {
    u = new URL(req.url ?? "/", "http://proxy.invalid");
  } catch {
    return forwardReply(res).send(400, { error: "bad_request", detail: "malformed path" });
  }
  if (req.method === "GET" && u.pathname === "/livez") {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ live: true }));
    return;
  }
  if (req.method === "GET" && u.pathname === "/v1/resolve")
    return resolveEndpoint(ctx, req, res, u);
  forwardReply(res).send(400, {
    error: "not_a_proxy_request",
    detail: "use CONNECT host:port, an absolute http:// URL, GET /livez or GET /v1/resolve",
  });
}

function proxyServer(ctx: Ctx): http.Server {
  const request = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = req.url ?? "";
    const work = url.startsWith("/") ? origin(ctx, req, res) : forward(ctx, req, res);
    void Promise.resolve(work).catch((err: unknown) => {
      ctx.deps.log.error(
        { event: "EgressProxyError", err: (err as Error).message },
        "egress request failed",
      );
      forwardReply(res).send(500, { error: "internal", detail: "the proxy failed" });
    });
  };
  const connect = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    const client = socket as net.Socket;
    // Bytes the client sends before the tunnel is up must wait, not be dropped.
    client.pause();
    tunnel(ctx, req, client, head).catch((err: unknown) => {
      ctx.deps.log.error(
        { event: "EgressProxyError", err: (err as Error).message },
        "egress tunnel failed",
      );
      client.destroy();
    });
  };
  const upgrade = (_req: http.IncomingMessage, socket: Duplex): void => {
    rawReply(socket as net.Socket).send(400, {
      error: "bad_request",
      detail: "protocol upgrades go through CONNECT",
    });
  };
  return createHttpServer(
    {
      name: "egress",
      registry: ctx.deps.registry,
      ...(ctx.deps.onFault ? { onFault: ctx.deps.onFault } : {}),
      maxHeaderBytes: MAX_HEADER_BYTES,
      headersTimeoutMs: Math.min(20_000, ctx.idleTimeoutMs),
      // Bodies are bounded by the upstream socket's idle timeout instead: a long upload that keeps
      // moving is fine, one that stalls is not.
      requestTimeoutMs: 0,
      keepAliveTimeoutMs: 5_000,
      onHandlerError: (err) =>
        ctx.deps.log.error(
          { event: "EgressProxyError", err: (err as Error).message },
          "egress request failed",
        ),
      clientErrorReply: (socket, status, error) =>
        rawReply(socket).send(status, {
          error,
          detail:
            status === 431
              ? `headers are limited to ${MAX_HEADER_BYTES} bytes`
              : status === 408
                ? "the request head did not arrive in time"
                : "malformed request",
        }),
    },
    { request, connect, upgrade },
  );
}
