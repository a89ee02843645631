// The egress proxy: HTTP CONNECT and absolute-form HTTP on TCP and on a unix socket. Egress is
// default-deny; until per-agent grants exist (they arrive with the sandbox issue) every request is
// refused with the structured 403 of SPEC §8, counted and logged.
import http from "node:http";
import type { Duplex } from "node:stream";
import { Counter, type Logger, type Registry } from "../core/index.js";

export interface ProxyDeps {
  readonly log: Logger;
  readonly registry: Registry;
}

export interface Denial {
  readonly error: "policy_denied";
  readonly policy: string;
  readonly rule: string;
  readonly detail: string;
}

export function denialFor(target: string): Denial {
  return {
    error: "policy_denied",
    policy: "default",
    rule: "default-deny",
    detail: `egress to ${target} is not allowed by any policy layer`,
  };
}

/** A proxy: one policy and one set of metrics, served on as many listeners as needed. */
export interface EgressProxy {
  /** A new listener-less server speaking the proxy protocol. */
  server(): http.Server;
}

export function createProxy(deps: ProxyDeps): EgressProxy {
  const connections = new Counter({
    name: "kruxos_egress_connections_total",
    help: "Egress proxy connections by decision.",
    labelNames: ["decision", "method"],
    registers: [deps.registry],
  });
  return { server: () => proxyServer(deps, connections) };
}

function proxyServer(deps: ProxyDeps, connections: Counter<"decision" | "method">): http.Server {
  const server = http.createServer((req, res) => {
    // Origin-form requests are for the proxy itself: liveness only.
    if ((req.url ?? "").startsWith("/")) {
      if (req.url === "/livez") {
        res
          .writeHead(200, { "content-type": "application/json" })
          .end(JSON.stringify({ live: true }));
      } else {
        res.writeHead(400, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            error: "not_a_proxy_request",
            detail: "use CONNECT or an absolute URL",
          }),
        );
      }
      return;
    }
    let target = "invalid";
    try {
      const u = new URL(req.url ?? "");
      target = `${u.hostname}:${u.port || (u.protocol === "https:" ? 443 : 80)}`;
    } catch {
      /* keep "invalid" */
    }
    const denial = denialFor(target);
    connections.inc({ decision: "denied", method: "forward" });
    deps.log.info(
      { event: "EgressDenied", target, method: req.method, rule: denial.rule },
      "egress denied",
    );
    res.writeHead(403, {
      "content-type": "application/json",
      "x-kruxos-policy": `${denial.policy}/${denial.rule}`,
    });
    res.end(JSON.stringify(denial));
  });
  server.on("connect", (req: http.IncomingMessage, socket: Duplex) => {
    const target = req.url ?? "invalid";
    const denial = denialFor(target);
    const body = JSON.stringify(denial);
    connections.inc({ decision: "denied", method: "connect" });
    deps.log.info(
      { event: "EgressDenied", target, method: "CONNECT", rule: denial.rule },
      "egress denied",
    );
    socket.end(
      `HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\nx-kruxos-policy: ${denial.policy}/${denial.rule}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  server.on("clientError", (_err, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
  });
  return server;
}
