// Where secret values are placed (SPEC §9). A request from a call holds only `${secret:NAME}`
// placeholders; the proxy replaces them in the request line, the headers (also inside a Basic
// credential) and a bounded body, for this destination only, and redacts every value that could
// have been placed there from what flows back. Plain http:// is rewritten as it is forwarded; for
// https:// the proxy terminates TLS — only toward hosts some secret's scope names for this agent and
// capability — with a leaf from the appliance's interception CA, and re-encrypts to the pinned
// upstream with normal certificate verification. Every other tunnel stays a blind CONNECT.
import http from "node:http";
import type net from "node:net";
import tls from "node:tls";
import { once } from "node:events";
import {
  createHttpServer,
  setOwn,
  type Logger,
  type Redactor,
  type Registry,
} from "../core/index.js";
import type { CallIdentity } from "../capabilities/index.js";
import {
  mentionsPlaceholder,
  placeholderNames,
  substitutePlaceholders,
  type ResolvedSecret,
  type SecretRefusal,
} from "../vault/index.js";
import type { IpAddress } from "./addresses.js";
import { dial } from "./dial.js";
import { endToEndHeaders } from "./headers.js";

/** The vault as the proxy sees it: scope checks, values for a destination, redactors. */
export interface ProxySecrets {
  /** Whether some secret may be placed for this call toward host:port (the tunnel is opened up). */
  covers(who: CallIdentity, host: string, port: number): boolean;
  /** The values of `names` for this call toward host:port, all or none. */
  resolve(
    who: CallIdentity,
    host: string,
    port: number,
    names: readonly string[],
  ): readonly ResolvedSecret[] | SecretRefusal;
  /** Every value that could have been placed for this call toward host:port. */
  redactor(who: CallIdentity, host: string, port: number): Redactor;
}

export interface InterceptionOptions {
  readonly secrets: ProxySecrets;
  /** A leaf certificate for `host`, signed by the interception CA. */
  readonly leaf: (host: string) => Promise<{ readonly certPem: string; readonly keyPem: string }>;
  /** CAs the proxy trusts for upstreams besides the system roots ([proxy].upstream_ca_files). */
  readonly upstreamCa: readonly string[];
}

/** What placing secrets records: one `vault.access` per value placed, `vault.denied` per refusal. */
export interface VaultAuditEntry {
  readonly kind: "vault.access" | "vault.denied";
  readonly agent: string;
  readonly session: string;
  readonly capability: string;
  readonly outcome: { readonly status: "ok" | "denied"; readonly error_type?: string };
  readonly detail: {
    readonly call: string;
    readonly secret: string;
    readonly version: number | null;
    readonly reason: string | null;
    readonly destination: string;
  };
}

/** A request body up to this size is read whole, so placeholders in it can be replaced. */
export const MAX_PLACED_BODY = 1024 * 1024;

const PLACEHOLDER_HINT = /\$(?:\{|%7b)secret:/i;

export interface Placement {
  readonly path: string;
  readonly headers: Record<string, string | string[]>;
  readonly body: Buffer | undefined;
  readonly placed: readonly ResolvedSecret[];
}

/** Basic credentials are opened, so `user:${secret:x}` works as git and curl send it. */
function basicInner(value: string): string | undefined {
  const m = /^\s*basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(value);
  if (!m) return undefined;
  const inner = Buffer.from(m[1] as string, "base64").toString("utf8");
  return PLACEHOLDER_HINT.test(inner) ? inner : undefined;
}

/**
 * Every placeholder name in a request's target, headers (and Basic credentials) and body: what
 * the proxy places and what the egress client checks against each hop before sending.
 */
export function requestPlaceholderNames(
  path: string,
  headers: Readonly<Record<string, string | string[]>>,
  body?: Buffer,
): string[] {
  const names = new Set<string>(placeholderNames(path));
  for (const v of Object.values(headers))
    for (const one of Array.isArray(v) ? v : [v]) {
      for (const n of placeholderNames(one)) names.add(n);
      const inner = basicInner(one);
      if (inner !== undefined) for (const n of placeholderNames(inner)) names.add(n);
    }
  if (body !== undefined && PLACEHOLDER_HINT.test(body.toString("latin1")))
    for (const n of placeholderNames(body.toString("utf8"))) names.add(n);
  return [...names];
}

/**
 * The request with its placeholders replaced for host:port, or the refusal naming the first
 * secret that may not go there. A value that would break a header (CR, LF, NUL) is refused too.
 */
export function placeSecrets(
  secrets: ProxySecrets,
  who: CallIdentity,
  host: string,
  port: number,
  path: string,
  headers: Record<string, string | string[]>,
  body: Buffer | undefined,
): Placement | SecretRefusal {
  const names = requestPlaceholderNames(path, headers, body);
  if (names.length === 0) return { path, headers, body, placed: [] };
  const resolved = secrets.resolve(who, host, port, names);
  if ("reason" in resolved) return resolved;
  const values = new Map(resolved.map((r) => [r.name, r.value]));
  for (const r of resolved)
    if (/[\r\n\0]/.test(r.value))
      return {
        name: r.name,
        reason: "host",
        message: `secret "${r.name}" holds a line break or NUL and cannot be placed in an HTTP request`,
      };
  const one = (v: string): string => {
    const inner = basicInner(v);
    if (inner !== undefined)
      return `Basic ${Buffer.from(substitutePlaceholders(inner, values), "utf8").toString("base64")}`;
    return substitutePlaceholders(v, values);
  };
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers))
    setOwn(out, k, Array.isArray(v) ? v.map(one) : one(v));
  let placedBody = body;
  if (body !== undefined && PLACEHOLDER_HINT.test(body.toString("latin1")))
    placedBody = Buffer.from(substitutePlaceholders(body.toString("utf8"), values), "utf8");
  return {
    path: substitutePlaceholders(path, values, encodeURIComponent),
    headers: out,
    body: placedBody,
    placed: resolved,
  };
}

/** Whether a request mentions a placeholder anywhere the proxy would look. */
export function mentionsSecrets(path: string, headers: Record<string, string | string[]>): boolean {
  if (mentionsPlaceholder(decodeURIComponentSafe(path))) return true;
  for (const v of Object.values(headers))
    for (const one of Array.isArray(v) ? v : [v])
      if (mentionsPlaceholder(one) || basicInner(one) !== undefined) return true;
  return false;
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * The request body onward: the body as placed, or the part read ahead followed by the rest as it
 * streams, or (nothing read ahead) the request itself.
 */
export function sendBody(
  out: http.ClientRequest,
  req: http.IncomingMessage,
  body: Buffer | undefined,
  rest: Buffer[] | undefined,
): void {
  if (rest !== undefined) {
    for (const c of rest) out.write(c);
    req.pipe(out);
  } else if (body !== undefined || req.readableEnded) out.end(body);
  else req.pipe(out);
}

/** A request body, whole when it is at most MAX_PLACED_BODY, else undefined and `rest` streams. */
export async function boundedBody(
  req: http.IncomingMessage,
): Promise<{ body: Buffer | undefined; rest: Buffer[] | undefined }> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    chunks.push(c);
    n += c.length;
    if (n > MAX_PLACED_BODY) return { body: undefined, rest: chunks };
  }
  return { body: n === 0 ? undefined : Buffer.concat(chunks), rest: undefined };
}

export interface TunnelSession {
  readonly who: CallIdentity;
  readonly host: string;
  readonly port: number;
  readonly address: IpAddress;
  /** The first upstream socket (already dialled to the pinned address). */
  first: net.Socket | undefined;
  bytesIn: number;
  bytesOut: number;
}

export interface InterceptDeps {
  readonly log: Logger;
  readonly registry: Registry;
  readonly opts: InterceptionOptions;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly audit: (entry: VaultAuditEntry, durable: boolean) => Promise<boolean>;
  /** 403 / 502 answers in the proxy's own shape. */
  readonly reply: (res: http.ServerResponse, status: number, body: Record<string, unknown>) => void;
}

/** Answer `res` with what came back from `ur`, every placeable value redacted. */
export function relayRedacted(
  ur: http.IncomingMessage,
  res: http.ServerResponse,
  redactor: Redactor,
): void {
  const h = endToEndHeaders(ur.rawHeaders);
  if (!redactor.empty) {
    // The body's length may change; it goes chunked (or close-delimited) instead.
    delete h["content-length"];
    for (const [k, v] of Object.entries(h))
      setOwn(h, k, Array.isArray(v) ? v.map((x) => redactor.text(x)) : redactor.text(v));
  }
  res.writeHead(ur.statusCode ?? 502, h);
  const body = redactor.empty ? ur : ur.pipe(redactor.stream());
  body.pipe(res);
  ur.on("error", () => res.destroy());
}

/** Audit the values placed (durable before they are sent) or the refusal. */
export async function auditPlacement(
  d: Pick<InterceptDeps, "audit">,
  who: CallIdentity,
  destination: string,
  result: Placement | SecretRefusal,
): Promise<boolean> {
  const base = { agent: who.agent, session: who.session, capability: who.capability };
  if ("reason" in result)
    return d.audit(
      {
        kind: "vault.denied",
        ...base,
        outcome: { status: "denied", error_type: "SecretDenied" },
        detail: {
          call: who.callId,
          secret: result.name,
          version: null,
          reason: result.reason,
          destination,
        },
      },
      false,
    );
  for (const p of result.placed) {
    const ok = await d.audit(
      {
        kind: "vault.access",
        ...base,
        outcome: { status: "ok" },
        detail: { call: who.callId, secret: p.name, version: p.version, reason: null, destination },
      },
      true,
    );
    if (!ok) return false;
  }
  return true;
}

/** The system's root CAs followed by `extra` (PEM texts): what a verifier trusts. */
export function trustBundle(extra: readonly string[]): string[] {
  return [...tls.rootCertificates, ...extra];
}

/** The first bytes a tunnel's client sends, or undefined when it closes first. */
function firstChunk(client: net.Socket): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const done = (b?: Buffer): void => {
      client.removeListener("data", data);
      client.removeListener("close", closed);
      client.removeListener("end", closed);
      client.pause();
      resolve(b);
    };
    const data = (b: Buffer): void => done(b);
    const closed = (): void => done(undefined);
    client.on("data", data);
    client.once("close", closed);
    client.once("end", closed);
    client.resume();
  });
}

/** The refusal body of a placeholder that may not go to this destination. */
export function outOfScope(r: SecretRefusal, destination: string): Record<string, unknown> {
  return {
    error: "secret_out_of_scope",
    secret: r.name,
    reason: r.reason,
    detail: `${r.message}; nothing was sent to ${destination}`,
  };
}

/**
 * The server that speaks HTTP inside intercepted tunnels. Each TLS (or plain) client socket is
 * handed to it with its session; every request on it is placed, sent on a fresh upstream
 * connection to the pinned address, and answered redacted.
 */
export function createInterceptor(d: InterceptDeps): {
  adopt(client: net.Socket, head: Buffer, s: TunnelSession): Promise<void>;
} {
  const sessions = new WeakMap<object, TunnelSession>();
  // One context for every upstream: parsing ~140 root certificates per connection costs ~25 ms.
  const upstreamContext = tls.createSecureContext({ ca: trustBundle(d.opts.upstreamCa) });
  // Server contexts of leaves, by host (bounded like the issuer's cache).
  const leafContexts = new Map<string, tls.SecureContext>();
  const leafContext = async (host: string): Promise<tls.SecureContext> => {
    const hit = leafContexts.get(host);
    if (hit) return hit;
    const leaf = await d.opts.leaf(host);
    const ctx = tls.createSecureContext({ cert: leaf.certPem, key: leaf.keyPem });
    if (leafContexts.size >= 1024) leafContexts.delete(leafContexts.keys().next().value as string);
    leafContexts.set(host, ctx);
    return ctx;
  };
  const server = createHttpServer(
    {
      name: "egress-intercept",
      registry: d.registry,
      headersTimeoutMs: Math.min(20_000, d.idleTimeoutMs),
      requestTimeoutMs: 0,
      keepAliveTimeoutMs: 5_000,
      onHandlerError: (err) =>
        d.log.error(
          { event: "EgressInterceptError", err: (err as Error).message },
          "intercepted request failed",
        ),
    },
    {
      request: (req, res) => {
        const s = sessions.get(req.socket);
        if (!s) {
          res.destroy();
          return;
        }
        return handle(req, res, s);
      },
    },
  );

  async function upstream(s: TunnelSession, tlsToUpstream: boolean): Promise<net.Socket> {
    let raw = s.first;
    s.first = undefined;
    if (!raw || raw.destroyed)
      raw = (
        await dial([s.address], s.port, d.connectTimeoutMs, AbortSignal.timeout(d.connectTimeoutMs))
      ).socket;
    const count = raw;
    count.once("close", () => {
      s.bytesIn += count.bytesRead;
      s.bytesOut += count.bytesWritten;
    });
    if (!tlsToUpstream) return raw;
    const t = tls.connect({
      socket: raw,
      ...(s.host.startsWith("[") || /^[0-9.]+$/.test(s.host) ? {} : { servername: s.host }),
      host: s.host.replace(/^\[|\]$/g, ""),
      secureContext: upstreamContext,
      ALPNProtocols: ["http/1.1"],
    });
    t.on("error", () => t.destroy());
    // An upstream that never finishes its handshake fails this request instead of holding it.
    t.setTimeout(d.connectTimeoutMs, () => t.destroy(new Error("TLS handshake timed out")));
    await once(t, "secureConnect");
    t.setTimeout(0);
    return t;
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, s: TunnelSession) {
    const destination = `${s.host}:${s.port}`;
    const headers = endToEndHeaders(req.rawHeaders);
    // Compressed answers could not be redacted.
    headers["accept-encoding"] = "identity";
    const { body, rest } = await boundedBody(req);
    const placed = placeSecrets(
      d.opts.secrets,
      s.who,
      s.host,
      s.port,
      req.url ?? "/",
      headers,
      body,
    );
    if (!(await auditPlacement(d, s.who, destination, placed)))
      return d.reply(res, 503, {
        error: "audit_unavailable",
        detail: "the audit log cannot record this use of a secret, so the request is not sent",
      });
    if ("reason" in placed) return d.reply(res, 403, outOfScope(placed, destination));
    const tlsUp = (req.socket as net.Socket & { encrypted?: boolean }).encrypted === true;
    let up: net.Socket;
    try {
      up = await upstream(s, tlsUp);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "";
      return d.reply(res, 502, {
        error:
          code.startsWith("ERR_TLS") || /certificate/i.test((err as Error).message)
            ? "upstream_tls_error"
            : "upstream_unreachable",
        detail: `${destination}: ${(err as Error).message}`,
      });
    }
    up.setTimeout(d.idleTimeoutMs, () => up.destroy());
    const h: Record<string, string | string[]> = {
      ...placed.headers,
      host: headers.host ?? s.host,
      connection: "close",
    };
    if (placed.body !== undefined) {
      delete h["transfer-encoding"];
      h["content-length"] = String(placed.body.length);
    }
    const out = http.request({
      createConnection: () => up,
      method: req.method ?? "GET",
      path: placed.path,
      headers: h,
      setHost: false,
    });
    const redactor = d.opts.secrets.redactor(s.who, s.host, s.port);
    out.on("response", (ur) => relayRedacted(ur, res, redactor));
    out.on("error", (err) => {
      if (!res.headersSent)
        d.reply(res, 502, { error: "upstream_error", detail: `${destination}: ${err.message}` });
      else res.destroy();
      up.destroy();
    });
    res.once("close", () => up.destroy());
    sendBody(out, req, placed.body, rest);
  }

  return {
    async adopt(client, head, s) {
      // An opened-up tunnel is bounded like a blind one: silent for idleTimeoutMs, it closes.
      client.setTimeout(d.idleTimeoutMs, () => client.destroy());
      const first = head.length > 0 ? head : await firstChunk(client);
      if (first === undefined) return;
      client.unshift(first);
      let socket: net.Socket = client;
      // A TLS ClientHello starts with 0x16. Anything else is plain HTTP inside the tunnel (rare:
      // clients send http:// as absolute-form requests), served the same way without TLS.
      if (first[0] === 0x16) {
        const t = new tls.TLSSocket(client, {
          isServer: true,
          secureContext: await leafContext(s.host.replace(/^\[|\]$/g, "").replace(/\.$/, "")),
          ALPNProtocols: ["http/1.1"],
        });
        t.on("error", () => t.destroy());
        socket = t;
      }
      sessions.set(socket, s);
      const closed = once(socket, "close");
      server.emit("connection", socket);
      // The first bytes were read (to tell TLS from plain HTTP) and put back; a plain socket's
      // parser reads the handle directly, so the put-back bytes reach it only once it flows.
      if (socket === client) client.resume();
      await closed;
    },
  };
}
