// The dashboard server: static assets built into the app (config/dashboard), `/api/*` proxied to the
// user API and `/ws` to the supervision stream. Nothing is fetched from the internet at run time.
import { createReadStream, existsSync, statSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import type { Duplex } from "node:stream";
import { createHttpServer, refuseOnSocket, type ServerGuard } from "../core/index.js";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".json": "application/json",
  ".png": "image/png",
};

const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

export interface DashboardDeps {
  readonly assetsDir: string;
  readonly apiPort: number;
  readonly wsPort: number;
  readonly upstreamHost: string;
  readonly onRequest?: (route: string, status: number) => void;
  /** Timeouts and peer-fault reporting of the listener (its name is "dashboard"). */
  readonly guard?: Omit<ServerGuard, "name">;
}

export function createDashboardServer(deps: DashboardDeps): http.Server {
  const root = path.resolve(deps.assetsDir);
  const request = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    let url: URL;
    let decoded: string;
    try {
      url = new URL(req.url ?? "/", "http://dashboard");
      decoded = decodeURIComponent(url.pathname);
    } catch {
      res.writeHead(400, { "content-type": "application/json", ...SECURITY_HEADERS });
      res.end(JSON.stringify({ error: "bad_request", message: "malformed URL" }));
      return;
    }
    const done = (route: string): void => {
      res.on("finish", () => deps.onRequest?.(route, res.statusCode));
    };
    if (url.pathname === "/livez") {
      done("/livez");
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ live: true }));
      return;
    }
    if (url.pathname.startsWith("/api/")) {
      done("/api/*");
      const upstream = http.request(
        {
          host: deps.upstreamHost,
          port: deps.apiPort,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      upstream.on("error", () => {
        if (!res.headersSent) res.writeHead(502, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: "bad_gateway", message: "the user API is not reachable" }));
      });
      req.pipe(upstream);
      return;
    }
    done("static");
    const rel = url.pathname === "/" ? "index.html" : decoded.replace(/^\/+/, "");
    const file = path.resolve(root, rel);
    if (!file.startsWith(root + path.sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { "content-type": "application/json", ...SECURITY_HEADERS });
      res.end(JSON.stringify({ error: "not_found" }));
      return;
    }
    res.writeHead(200, {
      "content-type": TYPES[path.extname(file)] ?? "application/octet-stream",
      ...SECURITY_HEADERS,
    });
    createReadStream(file).pipe(res);
  };
  // `/ws` is passed through to the supervision stream as raw bytes after the upgrade request; the
  // stream's own server authenticates it and deals with whatever the client sends.
  const upgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (!(req.url ?? "").startsWith("/ws")) {
      refuseOnSocket(socket, 404, { error: "not_found" });
      return;
    }
    const up = net.connect(deps.wsPort, deps.upstreamHost, () => {
      const headers = Object.entries(req.headers)
        .flatMap(([k, v]) =>
          Array.isArray(v) ? v.map((x) => `${k}: ${x}`) : v === undefined ? [] : [`${k}: ${v}`],
        )
        .join("\r\n");
      up.write(`${req.method} ${req.url} HTTP/1.1\r\n${headers}\r\n\r\n`);
      if (head.length) up.write(head);
      socket.pipe(up).pipe(socket);
    });
    up.on("error", () => socket.destroy());
    socket.on("error", () => up.destroy());
    socket.on("close", () => up.destroy());
  };
  return createHttpServer({ ...deps.guard, name: "dashboard" }, { request, upgrade });
}
