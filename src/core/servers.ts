// Every listener of the appliance is made here, so none can forget what a hostile peer does.
//
// A server made by createHttpServer has header and request timeouts in seconds (checked every
// second, not Node's 30 s), answers a malformed or too-slow request with a small JSON error and
// closes it, and gives every socket it hands over (upgrade, CONNECT) an error listener before any
// other code sees it. A WebSocket accepted through createWebSocketServer has an error listener
// before it is handed out: ws closes a socket that breaks the protocol with the right code (1002,
// 1007, 1009) and emits `error`, which with no listener would end the whole process. Each such
// fault is counted in `kruxos_peer_faults_total{server,kind,code}` and passed to `onFault`, where
// the program logs and audits it in bounded volume; it never throws past the connection.
//
// A lint rule (eslint.config.js) refuses http/net createServer, `new WebSocketServer` and a
// Fastify instance without this file's server factory anywhere else in src/.
import http from "node:http";
import type net from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { Counter, registered, type Registry } from "./metrics.js";

export type PeerFaultKind = "websocket_protocol" | "http_parse" | "timeout" | "limit";

/** A client broke the protocol or a limit of one of the appliance's servers. */
export interface PeerFault {
  /** The server's name ("agent", "supervision_ws", "user_api", "dashboard", "egress", …). */
  readonly server: string;
  readonly kind: PeerFaultKind;
  /**
   * What exactly: ws's `WS_ERR_*`, llhttp's `HPE_*`, `ERR_HTTP_REQUEST_TIMEOUT`, or the name of
   * the limit a client broke (`max_connections_per_agent`).
   */
  readonly code: string;
  /** The peer's address. */
  readonly source: string;
  /** The WebSocket close code sent, when a WebSocket was closed. */
  readonly closeCode?: number;
  /** The authenticated identity behind the connection, when there is one. */
  readonly who?: string;
}

export interface ServerGuard {
  /** The server's name in metrics, logs and audit records. */
  readonly name: string;
  readonly registry?: Registry;
  /** Called once per fault, after it is counted. Must not throw. */
  readonly onFault?: (fault: PeerFault) => void;
  /** Whole request head must arrive within this (default 10 s). */
  readonly headersTimeoutMs?: number;
  /**
   * Whole request, body included, must arrive within this (default 30 s). 0 turns it off, for a
   * server that bounds bodies another way (the egress proxy uses an idle timeout).
   */
  readonly requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this (default 5 s). */
  readonly keepAliveTimeoutMs?: number;
  /** Largest request head (default 16 KiB). */
  readonly maxHeaderBytes?: number;
  /** A request handler threw: the request got a 500 and the server goes on. */
  readonly onHandlerError?: (err: unknown) => void;
  /** The reply to a malformed or too-slow request; default a small JSON body. */
  readonly clientErrorReply?: (socket: net.Socket, status: 400 | 408 | 431, error: string) => void;
}

export type UpgradeListener = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface HttpHandlers {
  readonly request?: http.RequestListener;
  /** WebSocket (or other) upgrades; without it every upgrade is answered 404. */
  readonly upgrade?: UpgradeListener;
  /** HTTP CONNECT (the egress proxy). */
  readonly connect?: UpgradeListener;
}

export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** RFC 6455 close codes ws uses for each protocol error it detects. */
const WS_CLOSE_CODES: ReadonlyMap<string, number> = new Map([
  ["WS_ERR_INVALID_UTF8", 1007],
  ["WS_ERR_UNSUPPORTED_MESSAGE_LENGTH", 1009],
  ["WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH", 1009],
  ["WS_ERR_TOO_MANY_BUFFERED_PARTS", 1008],
]);

function faultCounter(
  registry: Registry | undefined,
): Counter<"server" | "kind" | "code"> | undefined {
  if (!registry) return undefined;
  const name = "kruxos_peer_faults_total";
  return registered(
    registry,
    name,
    () =>
      new Counter({
        name,
        help: "Connections a client broke (bad WebSocket frame, malformed or too-slow HTTP request, a broken limit), by server, kind and code.",
        labelNames: ["server", "kind", "code"],
        registers: [registry],
      }),
  );
}

function reporter(guard: ServerGuard): (f: Omit<PeerFault, "server">) => void {
  const counter = faultCounter(guard.registry);
  return (f) => {
    counter?.inc({ server: guard.name, kind: f.kind, code: f.code });
    try {
      guard.onFault?.({ server: guard.name, ...f });
    } catch {
      // Reporting must never take a connection's fault past the connection.
    }
  };
}

function addressOf(socket: Duplex): string {
  return (socket as net.Socket).remoteAddress ?? "unknown";
}

/** A complete HTTP response written on a raw socket, then the socket closes. */
export function refuseOnSocket(
  socket: Duplex,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  if (socket.destroyed) return;
  const text = JSON.stringify(body);
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ""}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n${extra}connection: close\r\n\r\n${text}`,
  );
  // A peer that does not close after a refusal does not keep the socket.
  setTimeout(() => socket.destroy(), 2000).unref();
}

const CLIENT_ERRORS: Readonly<Record<400 | 408 | 431, string>> = {
  400: "malformed HTTP request",
  408: "the request did not arrive in time",
  431: "request headers too large",
};

function defaultClientErrorReply(socket: net.Socket, status: 400 | 408 | 431, error: string): void {
  refuseOnSocket(socket, status, { error, message: CLIENT_ERRORS[status] });
}

/** A handler that throws (or rejects) costs its request a 500, never the process. */
function guardedRequest(guard: ServerGuard, handler: http.RequestListener): http.RequestListener {
  const failed = (res: http.ServerResponse, err: unknown): void => {
    try {
      guard.onHandlerError?.(err);
    } catch {
      // Reporting must not fail the server either.
    }
    if (res.headersSent) res.destroy();
    else
      res
        .writeHead(500, { "content-type": "application/json", connection: "close" })
        .end(
          JSON.stringify({ error: "internal", message: "the request failed; it has been logged" }),
        );
  };
  return (req, res) => {
    try {
      const r = handler(req, res) as unknown;
      if (r instanceof Promise) r.catch((err: unknown) => failed(res, err));
    } catch (err) {
      failed(res, err);
    }
  };
}

/**
 * An HTTP server with the appliance's timeouts and peer-fault handling. Fastify takes it through
 * `serverFactory` (see fastifyServerFactory).
 */
export function createHttpServer(guard: ServerGuard, handlers: HttpHandlers = {}): http.Server {
  const fault = reporter(guard);
  const headersTimeout = guard.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
  const requestTimeout = guard.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const server = http.createServer(
    {
      // Node refuses a head timeout longer than the whole-request timeout.
      headersTimeout:
        requestTimeout > 0 ? Math.min(headersTimeout, requestTimeout) : headersTimeout,
      requestTimeout,
      keepAliveTimeout: guard.keepAliveTimeoutMs ?? 5000,
      // Node checks both timeouts on this interval (30 s by default): a slow client could hold a
      // connection that much past its deadline.
      connectionsCheckingInterval: Math.max(100, Math.min(1000, headersTimeout / 4)),
      maxHeaderSize: guard.maxHeaderBytes ?? 16 * 1024,
    },
    handlers.request && guardedRequest(guard, handlers.request),
  );
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => {
    const code = err.code ?? "unknown";
    const s = socket as net.Socket;
    // A peer that reset or went away broke nothing; there is no one to answer.
    if (code === "ECONNRESET" || code === "EPIPE" || !s.writable || s.destroyed) {
      s.destroy();
      return;
    }
    const timeout = code === "ERR_HTTP_REQUEST_TIMEOUT";
    const tooBig = code === "HPE_HEADER_OVERFLOW";
    fault({ kind: timeout ? "timeout" : "http_parse", code, source: addressOf(s) });
    const reply = guard.clientErrorReply ?? defaultClientErrorReply;
    if (timeout) reply(s, 408, "request_timeout");
    else if (tooBig) reply(s, 431, "headers_too_large");
    else reply(s, 400, "bad_request");
  });
  const handOver =
    (listener: UpgradeListener | undefined) =>
    (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
      // Node hands the raw socket over without its own error handling: a reset would otherwise
      // be an uncaught 'error' event.
      socket.on("error", () => socket.destroy());
      if (!listener) {
        refuseOnSocket(socket, 404, { error: "not_found", message: "no upgrade here" });
        return;
      }
      try {
        listener(req, socket, head);
      } catch {
        socket.destroy();
      }
    };
  server.on("upgrade", handOver(handlers.upgrade));
  if (handlers.connect) server.on("connect", handOver(handlers.connect));
  return server;
}

/** Fastify's `serverFactory` option for a server made by createHttpServer. */
export function fastifyServerFactory(
  guard: ServerGuard,
  handlers: Omit<HttpHandlers, "request"> = {},
): (handler: http.RequestListener) => http.Server {
  return (handler) => createHttpServer(guard, { ...handlers, request: handler });
}

/** The WebSocket side of a server: accepted sockets can break the protocol without harm. */
export interface WebSocketAcceptor {
  /**
   * Complete the upgrade and hand the socket to `open`, with an error listener already on it.
   * `who` names the authenticated peer in fault reports.
   */
  accept(
    req: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
    open: (ws: WebSocket) => void,
    who?: string,
  ): void;
  readonly clients: ReadonlySet<WebSocket>;
  /** Terminate every client and stop accepting. */
  close(): Promise<void>;
}

export function createWebSocketServer(
  guard: ServerGuard,
  opts: { readonly maxPayload: number },
): WebSocketAcceptor {
  const fault = reporter(guard);
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: opts.maxPayload,
    perMessageDeflate: false,
    clientTracking: true,
  });
  return {
    accept(req, socket, head, open, who) {
      const source = addressOf(socket);
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on("error", (err: Error & { code?: string }) => {
          const code = err.code ?? "WS_ERR_UNKNOWN";
          // ws has already sent the close frame with this code and stopped reading.
          const closeCode = WS_CLOSE_CODES.get(code) ?? 1002;
          fault({
            kind: "websocket_protocol",
            code,
            source,
            closeCode,
            ...(who !== undefined ? { who } : {}),
          });
        });
        open(ws);
      });
    },
    get clients() {
      return wss.clients;
    },
    close: () =>
      new Promise((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}

/**
 * Handle a WebSocket's messages with at most `limit` in flight. Past it the socket stops reading
 * (TCP backpressure) until one finishes; the few messages ws had already read are queued in
 * order, never started, so a client cannot push more than `limit` units of work at once nor grow
 * memory past what one socket read holds.
 */
export function boundedMessages(
  ws: WebSocket,
  limit: number,
  handle: (data: Buffer, isBinary: boolean) => Promise<void>,
): void {
  let inflight = 0;
  const queued: [Buffer, boolean][] = [];
  const start = (data: Buffer, isBinary: boolean): void => {
    inflight++;
    void handle(data, isBinary)
      .catch(() => undefined)
      .finally(() => {
        inflight--;
        const next = queued.shift();
        if (next) start(...next);
        else if (ws.isPaused && ws.readyState === ws.OPEN) ws.resume();
      });
  };
  ws.on("message", (data, isBinary) => {
    const bytes = Array.isArray(data)
      ? Buffer.concat(data)
      : Buffer.isBuffer(data)
        ? data
        : Buffer.from(data);
    if (inflight < limit && queued.length === 0) start(bytes, isBinary);
    else queued.push([bytes, isBinary]);
    if (inflight >= limit && !ws.isPaused) ws.pause();
  });
  ws.once("close", () => {
    queued.length = 0;
  });
}
