// The supervision WebSocket: operators' live event stream. Authentication happens on the HTTP
// upgrade (user tokens only, never in the URL); refused upgrades never become sockets. The
// listener is core's hardened server, so a client that breaks the WebSocket protocol loses only
// its own connection, and a client that stops reading is disconnected before its backlog grows
// past a bound instead of growing the gateway's memory.
import type http from "node:http";
import type { IncomingMessage } from "node:http";
import type { WebSocket } from "ws";
import {
  createHttpServer,
  createWebSocketServer,
  refuseOnSocket,
  tokenInUrl,
  type GateOutcome,
  type ServerGuard,
} from "../core/index.js";
import type { AuthenticatedUser } from "../state/index.js";

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

export interface EventStreamOptions {
  readonly authenticate: (req: IncomingMessage) => GateOutcome<AuthenticatedUser>;
  readonly version: string;
  /** Timeouts and peer-fault reporting of the listener (its name is "supervision_ws"). */
  readonly guard?: Omit<ServerGuard, "name">;
  /** Unsent bytes a client may fall behind by before it is disconnected (default 4 MiB). */
  readonly maxBacklogBytes?: number;
}

export function createEventStream(opts: EventStreamOptions): EventStream {
  const guard: ServerGuard = { ...opts.guard, name: "supervision_ws" };
  const sockets = createWebSocketServer(guard, { maxPayload: 64 * 1024 });
  const maxBacklog = opts.maxBacklogBytes ?? 4 << 20;
  const server = createHttpServer(guard, {
    request: (_req, res) => {
      res.writeHead(426, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "upgrade_required", message: "connect with a WebSocket" }));
    },
    upgrade: (req, socket, head) => {
      if (tokenInUrl(req.url))
        return refuseOnSocket(socket, 400, { error: "token_in_url_refused" });
      const auth = opts.authenticate(req);
      if (!auth.ok) return refuseOnSocket(socket, auth.status, auth.body, auth.headers);
      const user = auth.who;
      sockets.accept(
        req,
        socket,
        head,
        (ws: WebSocket) => {
          ws.send(
            JSON.stringify({
              type: "hello",
              ts: new Date().toISOString(),
              version: opts.version,
              user: user.name,
              role: user.role,
            }),
          );
        },
        `user:${user.name}`,
      );
    },
  });
  return {
    server,
    publish(event) {
      const line = JSON.stringify({ ...event, ts: new Date().toISOString() });
      for (const c of sockets.clients) {
        if (c.readyState !== c.OPEN) continue;
        if (c.bufferedAmount > maxBacklog) {
          // A close frame would queue behind the backlog it is meant to end.
          c.terminate();
          continue;
        }
        c.send(line);
      }
    },
    clients: () => sockets.clients.size,
    close: async () => {
      await sockets.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
