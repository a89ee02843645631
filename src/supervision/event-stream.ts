// The supervision WebSocket: operators' live event stream. Authentication happens on the HTTP
// upgrade (user tokens only, never in the URL); refused upgrades never become sockets.
import http from "node:http";
import { WebSocketServer, type WebSocket } from "ws";
import { tokenInUrl } from "../core/index.js";
import type { Db } from "../state/index.js";
import { authenticateUser, bearer } from "./users.js";

export interface SupervisionEvent {
  readonly type: string;
  readonly ts: string;
  readonly [k: string]: unknown;
}

export interface EventStream {
  readonly server: http.Server;
  publish(event: Omit<SupervisionEvent, "ts">): void;
  clients(): number;
  close(): Promise<void>;
}

export function createEventStream(db: Db, version: string): EventStream {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  const server = http.createServer((_req, res) => {
    res.writeHead(426, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: "upgrade_required", message: "connect with a WebSocket" }));
  });
  server.on("upgrade", (req, socket, head) => {
    const refuse = (status: number, why: string): void => {
      socket.end(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n${JSON.stringify({ error: why })}`,
      );
    };
    if (tokenInUrl(req.url)) return refuse(400, "token_in_url_refused");
    const user = authenticateUser(db, bearer(req.headers.authorization));
    if (!user) return refuse(401, "unauthorized");
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      ws.send(
        JSON.stringify({
          type: "hello",
          ts: new Date().toISOString(),
          version,
          user: user.name,
          role: user.role,
        }),
      );
    });
  });
  return {
    server,
    publish(event) {
      const line = JSON.stringify({ ...event, ts: new Date().toISOString() });
      for (const c of wss.clients) if (c.readyState === c.OPEN) c.send(line);
    },
    clients: () => wss.clients.size,
    close: () =>
      new Promise((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => server.close(() => resolve()));
      }),
  };
}
