// The client side of the proxy: what capability handlers use to reach the network as the calling
// agent. http:// goes as an absolute-form request, https:// as a CONNECT tunnel with TLS (default
// CAs, SNI) inside it, so the proxy decides every hop and never sees an agent's TLS plaintext.
// Redirects are followed here, each hop a new proxy decision; credentials the caller set never
// follow a redirect to another origin. Proxy refusals become KruxErrors (PolicyDenied, Unavailable,
// CapabilityError with data.type NetworkError / Timeout / DnsError / TlsError / NotFound).
import http from "node:http";
import net from "node:net";
import tls from "node:tls";
import type {
  CallIdentity,
  EgressClient,
  EgressHttpRequest,
  EgressHttpResponse,
  EgressStream,
} from "../capabilities/index.js";
import { KruxError } from "../core/index.js";
import { proxyAuthorization } from "./credentials.js";
import { requestPlaceholderNames } from "./intercept.js";

export interface EgressClientOptions {
  /** The proxy's unix socket; preferred when set. */
  readonly proxySocket?: string;
  readonly proxyHost?: string;
  readonly proxyPort?: number;
  /** A fresh credential for this call (the gateway's mintCredential with its key). */
  readonly mint: (who: CallIdentity) => string;
  /** Extra trusted CAs for TLS (replaces the default roots when set). */
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
  /**
   * Checks the secret placeholders a request names against their scope for one hop's destination,
   * before anything is sent there (throws SecretDenied). The proxy places the values.
   */
  readonly placeholders?: (
    who: CallIdentity,
    host: string,
    port: number,
    names: readonly string[],
  ) => void;
}

const MAX_PROXY_HEAD = 16 * 1024;
const MAX_PROXY_BODY = 64 * 1024;
const LOOKUP_TIMEOUT_MS = 15_000;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Request headers that carry a credential of the caller's: dropped when a redirect changes origin. */
const CREDENTIAL_HEADERS = new Set([
  "authorization",
  "cookie",
  "proxy-authorization",
  "x-api-key",
  "x-auth-token",
]);
/** Request headers this client owns. */
const OWNED_HEADERS = new Set([
  "host",
  "connection",
  "keep-alive",
  "proxy-authorization",
  "proxy-connection",
  "transfer-encoding",
  "content-length",
  "te",
  "trailer",
  "upgrade",
]);

function capabilityError(
  type: string,
  message: string,
  data: Record<string, unknown> = {},
): KruxError {
  return new KruxError("CapabilityError", message, { type, ...data });
}

/** A proxy's own non-success answer as the error it stands for. */
function proxyError(status: number, body: Buffer, target: string): KruxError {
  let j: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(body.toString("utf8"));
    if (parsed && typeof parsed === "object") j = parsed as Record<string, unknown>;
  } catch {
    /* not JSON: keep the status */
  }
  const error = typeof j.error === "string" ? j.error : `http_${status}`;
  const detail = typeof j.detail === "string" ? j.detail : `the egress proxy answered ${status}`;
  // What a caller may report: the proxy's detail and, for dial failures, the address it tried.
  const facts = {
    target,
    detail,
    ...(typeof j.address === "string" ? { address: j.address } : {}),
  };
  switch (error) {
    case "policy_denied":
      return new KruxError("PolicyDenied", `egress to ${target} is denied: ${detail}`, {
        policy: j.policy ?? "unknown",
        rule: j.rule ?? "unknown",
        detail,
        target,
      });
    case "audit_unavailable":
      return new KruxError("Unavailable", detail, { component: "audit", target });
    case "busy":
      return new KruxError("Unavailable", detail, { component: "egress", target });
    case "proxy_auth_required":
      // The gateway minted the credential: a refusal here is the appliance's fault, not the agent's.
      return new KruxError("InternalError", `the egress proxy refused this call's credential`, {
        component: "egress",
      });
    case "dns_not_found":
      return capabilityError("NotFound", detail, facts);
    case "dns_error":
      return capabilityError("DnsError", detail, facts);
    case "dns_timeout":
    case "upstream_timeout":
      return capabilityError("Timeout", detail, facts);
    case "bad_request":
      return capabilityError("InvalidTarget", detail, facts);
    case "secret_out_of_scope":
      return capabilityError("SecretDenied", detail, {
        ...facts,
        ...(typeof j.secret === "string" ? { secret: j.secret } : {}),
        ...(typeof j.reason === "string" ? { reason: j.reason } : {}),
      });
    case "upstream_tls_error":
      return capabilityError("TlsError", detail, facts);
    default:
      return capabilityError("NetworkError", detail, { ...facts, status });
  }
}

/** Destroys every socket of one operation when its signal fires. */
class Sockets {
  private readonly set = new Set<net.Socket>();
  constructor(private readonly signal: AbortSignal) {
    signal.addEventListener("abort", () => this.destroyAll(), { once: true });
  }
  add<T extends net.Socket>(s: T): T {
    // Failures surface through the operation's own promises; a late socket error must not be
    // an uncaught exception.
    s.on("error", () => undefined);
    this.set.add(s);
    s.once("close", () => this.set.delete(s));
    if (this.signal.aborted) s.destroy();
    return s;
  }
  destroyAll(): void {
    for (const s of this.set) s.destroy();
  }
}

const isIpv6 = (h: string): boolean => h.includes(":");
const bare = (hostname: string): string =>
  hostname.startsWith("[") ? hostname.slice(1, -1) : hostname;

function authorityOf(u: URL): string {
  const port = u.port || (u.protocol === "https:" ? "443" : "80");
  return `${u.hostname}:${port}`;
}

function flatHeaders(h: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h))
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(", ") : v;
  return out;
}

async function readAll(stream: AsyncIterable<Buffer>, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    n += c.length;
    if (n > max) break;
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

interface Exchange {
  readonly res: http.IncomingMessage;
  readonly url: URL;
}

export function createEgressClient(opts: EgressClientOptions): EgressClient {
  const proxyTarget = opts.proxySocket
    ? { path: opts.proxySocket }
    : { host: opts.proxyHost ?? "127.0.0.1", port: opts.proxyPort ?? 3128 };
  const where = opts.proxySocket ?? `${proxyTarget.host ?? ""}:${proxyTarget.port ?? ""}`;
  // Made once: a CA bundle parsed per connection would cost tens of milliseconds each time.
  const secureContext =
    opts.ca !== undefined
      ? tls.createSecureContext({ ca: opts.ca as string | Buffer | (string | Buffer)[] })
      : undefined;

  function connectProxy(sockets: Sockets): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const s = sockets.add(net.connect({ ...proxyTarget, allowHalfOpen: false }));
      s.once("connect", () => resolve(s));
      s.once("close", () => reject(new Error("the connection to the egress proxy was closed")));
      s.once("error", (err: NodeJS.ErrnoException) =>
        reject(
          new KruxError(
            "Unavailable",
            `the egress proxy at ${where} is unreachable: ${err.code ?? err.message}`,
            {
              component: "egress",
            },
          ),
        ),
      );
    });
  }

  /** CONNECT host:port; resolves with the tunnel socket and the address the proxy pinned. */
  async function tunnel(
    host: string,
    port: number,
    who: CallIdentity,
    sockets: Sockets,
  ): Promise<{ socket: net.Socket; address: string }> {
    const s = await connectProxy(sockets);
    const authority = `${isIpv6(host) ? `[${host}]` : host}:${port}`;
    s.write(
      `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\nProxy-Authorization: ${proxyAuthorization(opts.mint(who))}\r\n\r\n`,
    );
    const { status, headers, rest } = await readHead(s);
    if (status === 200) {
      if (rest.length > 0) s.unshift(rest);
      return { socket: s, address: headers["x-kruxos-address"] ?? "" };
    }
    const length = Math.min(
      Number(headers["content-length"] ?? MAX_PROXY_BODY) || 0,
      MAX_PROXY_BODY,
    );
    const body = await readBytes(s, rest, length);
    s.destroy();
    throw proxyError(status, body, authority);
  }

  /** One request/response, no redirects. The response body is left to the caller. */
  async function exchange(
    url: URL,
    method: string,
    headers: Record<string, string>,
    body: Uint8Array | undefined,
    who: CallIdentity,
    sockets: Sockets,
  ): Promise<Exchange> {
    let socket: net.Socket;
    let path: string;
    // Every hop is checked, so a redirect cannot carry a placeholder to a host outside its scope.
    const names = requestPlaceholderNames(
      url.href,
      headers,
      body === undefined ? undefined : Buffer.from(body),
    );
    if (names.length > 0 && opts.placeholders)
      opts.placeholders(
        who,
        bare(url.hostname),
        Number(url.port || (url.protocol === "http:" ? 80 : 443)),
        names,
      );
    const h: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) if (!OWNED_HEADERS.has(k.toLowerCase())) h[k] = v;
    h.host = url.host;
    h.connection = "close";
    if (body !== undefined) h["content-length"] = String(body.length);
    if (url.protocol === "http:") {
      socket = await connectProxy(sockets);
      path = url.href;
      h["proxy-authorization"] = proxyAuthorization(opts.mint(who));
    } else {
      const port = Number(url.port || 443);
      const t = await tunnel(bare(url.hostname), port, who, sockets);
      socket = await startTls(t.socket, bare(url.hostname), sockets);
      path = `${url.pathname}${url.search}`;
    }
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const r = http.request({
        createConnection: () => socket,
        method,
        path,
        headers: h,
        setHost: false,
      });
      r.once("response", resolve);
      r.once("error", (err: NodeJS.ErrnoException) =>
        reject(
          capabilityError("NetworkError", `${url.host}: ${err.code ?? err.message}`, {
            target: url.host,
          }),
        ),
      );
      r.end(body === undefined ? undefined : Buffer.from(body));
    });
    // The proxy answers itself for http:// and, inside an opened-up tunnel, for https:// too.
    if (res.headers["x-kruxos-proxy-error"] !== undefined) {
      const b = await readAll(res, MAX_PROXY_BODY);
      socket.destroy();
      throw proxyError(res.statusCode ?? 0, b, authorityOf(url));
    }
    return { res, url };
  }

  function startTls(socket: net.Socket, host: string, sockets: Sockets): Promise<tls.TLSSocket> {
    return new Promise((resolve, reject) => {
      const t = sockets.add(
        tls.connect({
          socket,
          host,
          ...(net.isIP(host) ? {} : { servername: host }),
          ALPNProtocols: ["http/1.1"],
          ...(secureContext !== undefined ? { secureContext } : {}),
        }),
      );
      t.once("secureConnect", () => resolve(t));
      t.once("close", () => reject(new Error("the TLS connection was closed")));
      t.once("error", (err: NodeJS.ErrnoException) =>
        reject(
          capabilityError("TlsError", `TLS with ${host} failed: ${err.code ?? err.message}`, {
            target: host,
          }),
        ),
      );
    });
  }

  /** Follow redirects; returns the final exchange (its body unread) and the hop count. */
  async function follow(
    req: Omit<EgressHttpRequest, "max_body_bytes">,
    who: CallIdentity,
    sockets: Sockets,
  ): Promise<{ ex: Exchange; redirects: number }> {
    let url = parseUrl(req.url);
    let method = req.method.toUpperCase();
    let body = req.body;
    let headers: Record<string, string> = { ...(req.headers ?? {}) };
    let redirects = 0;
    for (;;) {
      const ex = await exchange(url, method, headers, body, who, sockets);
      const status = ex.res.statusCode ?? 0;
      const location = ex.res.headers.location;
      if (
        !req.follow_redirects ||
        !REDIRECTS.has(status) ||
        !location ||
        redirects >= req.max_redirects
      )
        return { ex, redirects };
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        return { ex, redirects };
      }
      if (next.protocol !== "http:" && next.protocol !== "https:") return { ex, redirects };
      ex.res.destroy();
      if (next.origin !== url.origin) {
        headers = Object.fromEntries(
          Object.entries(headers).filter(([k]) => !CREDENTIAL_HEADERS.has(k.toLowerCase())),
        );
      }
      if (
        (status === 303 && method !== "HEAD") ||
        ((status === 301 || status === 302) && method === "POST")
      ) {
        method = "GET";
        body = undefined;
        headers = Object.fromEntries(
          Object.entries(headers).filter(([k]) => !/^content-/i.test(k)),
        );
      }
      next.hash = "";
      url = next;
      redirects++;
    }
  }

  async function run<T>(
    timeoutMs: number,
    signal: AbortSignal | undefined,
    what: string,
    fn: (sockets: Sockets, s: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const timer = AbortSignal.timeout(timeoutMs);
    const s = signal ? AbortSignal.any([signal, timer]) : timer;
    const sockets = new Sockets(s);
    try {
      return await fn(sockets, s);
    } catch (err) {
      if (s.aborted) {
        sockets.destroyAll();
        throw capabilityError(
          "Timeout",
          timer.aborted ? `${what} took longer than ${timeoutMs} ms` : `${what} was cancelled`,
        );
      }
      sockets.destroyAll();
      if (err instanceof KruxError) throw err;
      throw capabilityError("NetworkError", `${what}: ${(err as Error).message}`);
    }
  }

  return {
    async http(
      req: EgressHttpRequest,
      who: CallIdentity,
      signal?: AbortSignal,
    ): Promise<EgressHttpResponse> {
      const started = performance.now();
      return run(req.timeout_ms, signal, `${req.method} ${req.url}`, async (sockets) => {
        const { ex, redirects } = await follow(req, who, sockets);
        const chunks: Buffer[] = [];
        let n = 0;
        let truncated = false;
        for await (const c of ex.res as AsyncIterable<Buffer>) {
          if (n + c.length > req.max_body_bytes) {
            chunks.push(c.subarray(0, req.max_body_bytes - n));
            truncated = true;
            break;
          }
          chunks.push(c);
          n += c.length;
        }
        ex.res.destroy();
        sockets.destroyAll();
        return {
          status: ex.res.statusCode ?? 0,
          headers: flatHeaders(ex.res.headers),
          body: Buffer.concat(chunks),
          truncated,
          url: ex.url.href,
          redirects,
          duration_ms: Math.round(performance.now() - started),
        };
      });
    },

    async stream(req, who, signal): Promise<EgressStream> {
      // timeout_ms bounds reaching the response head and, after that, any silence in the body;
      // the caller's signal bounds the whole transfer.
      const headTimer = new AbortController();
      const timer = setTimeout(() => headTimer.abort(), req.timeout_ms);
      const s = signal ? AbortSignal.any([signal, headTimer.signal]) : headTimer.signal;
      const sockets = new Sockets(s);
      let result: { ex: Exchange; redirects: number };
      try {
        result = await follow(req, who, sockets);
      } catch (err) {
        sockets.destroyAll();
        if (s.aborted)
          throw capabilityError(
            "Timeout",
            headTimer.signal.aborted
              ? `${req.method} ${req.url} took longer than ${req.timeout_ms} ms`
              : `${req.method} ${req.url} was cancelled`,
          );
        if (err instanceof KruxError) throw err;
        throw capabilityError("NetworkError", (err as Error).message);
      } finally {
        clearTimeout(timer);
      }
      const res = result.ex.res;
      res.socket.setTimeout(req.timeout_ms, () =>
        res.destroy(capabilityError("Timeout", `no data for ${req.timeout_ms} ms`)),
      );
      return {
        status: res.statusCode ?? 0,
        headers: flatHeaders(res.headers),
        url: result.ex.url.href,
        body: res as AsyncIterable<Buffer>,
        destroy: () => {
          res.destroy();
          sockets.destroyAll();
        },
      };
    },

    async connect(host, port, timeout_ms, who) {
      const started = performance.now();
      return run(timeout_ms, undefined, `connect ${host}:${port}`, async (sockets) => {
        const t = await tunnel(bare(host), port, who, sockets);
        t.socket.destroy();
        return { address: t.address, duration_ms: Math.round(performance.now() - started) };
      });
    },

    async lookup(host, recordType, who) {
      return run(LOOKUP_TIMEOUT_MS, undefined, `lookup ${host} ${recordType}`, async (sockets) => {
        const socket = await connectProxy(sockets);
        const q = new URLSearchParams({ host, type: recordType });
        const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
          const r = http.request({
            createConnection: () => socket,
            method: "GET",
            path: `/v1/resolve?${q.toString()}`,
            headers: {
              host: "kruxos-egress",
              connection: "close",
              "proxy-authorization": proxyAuthorization(opts.mint(who)),
            },
          });
          r.once("response", resolve);
          r.once("error", reject);
          r.end();
        });
        const body = await readAll(res, MAX_PROXY_BODY * 4);
        socket.destroy();
        if (res.statusCode !== 200) throw proxyError(res.statusCode ?? 0, body, host);
        const j = JSON.parse(body.toString("utf8")) as { records?: unknown; refused?: unknown };
        const strings = (x: unknown): string[] =>
          Array.isArray(x) ? x.filter((v): v is string => typeof v === "string") : [];
        return { records: strings(j.records), refused: strings(j.refused) };
      });
    },
  };
}

function parseUrl(text: string): URL {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw capabilityError("InvalidTarget", `not a URL: ${text.slice(0, 200)}`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:")
    throw capabilityError("InvalidTarget", `only http:// and https:// URLs are supported`);
  if (u.username || u.password)
    throw capabilityError("InvalidTarget", "credentials in the URL are not allowed; use a header");
  u.hash = "";
  return u;
}

/** Read an HTTP response head from a raw socket (the CONNECT answer), bounded. */
function readHead(
  s: net.Socket,
): Promise<{ status: number; headers: Record<string, string>; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const cleanup = (): void => {
      s.removeListener("data", onData);
      s.removeListener("error", onError);
      s.removeListener("close", onClose);
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error("the egress proxy closed the connection"));
    };
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) {
        if (buf.length > MAX_PROXY_HEAD) onError(new Error("the proxy's answer head is too large"));
        return;
      }
      cleanup();
      const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "");
      if (!m) return reject(new Error("the egress proxy sent a malformed answer"));
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const c = line.indexOf(":");
        if (c > 0) headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
      }
      resolve({ status: Number(m[1]), headers, rest: buf.subarray(end + 4) });
    };
    s.on("data", onData);
    s.once("error", onError);
    s.once("close", onClose);
  });
}

/** `length` bytes of a body whose start is `rest`, or what arrives before the socket ends. */
function readBytes(s: net.Socket, rest: Buffer, length: number): Promise<Buffer> {
  return new Promise((resolve) => {
    let buf = rest;
    if (buf.length >= length) return resolve(buf.subarray(0, length));
    const finish = (): void => {
      s.removeListener("data", onData);
      resolve(buf.subarray(0, length));
    };
    const onData = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      if (buf.length >= length) finish();
    };
    s.on("data", onData);
    s.once("end", finish);
    s.once("close", finish);
    s.once("error", finish);
    s.resume();
  });
}
