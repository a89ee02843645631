// The appliance-wide Prometheus endpoint and each program's own registry. In the image every
// program serves its registry on <run>/metrics/<program>.sock and the gateway's endpoint merges
// them; in host mode all registries live in one process and are merged directly.
import { readdirSync } from "node:fs";
import type http from "node:http";
import path from "node:path";
import {
  Counter,
  Gauge,
  createHttpServer,
  mergeExpositions,
  registered,
  unixRequest,
  type Registry,
} from "../core/index.js";
import { listen, type Address } from "./net.js";

export type RequestObserver = (route: string, status: number) => void;

/** `kruxos_http_requests_total` for one server of a program. */
export function httpObserver(registry: Registry, server: string): RequestObserver {
  const name = "kruxos_http_requests_total";
  const counter = registered(
    registry,
    name,
    () =>
      new Counter<"server" | "route" | "status">({
        name,
        help: "HTTP requests served, by server, route and status.",
        labelNames: ["server", "route", "status"],
        registers: [registry],
      }),
  );
  return (route, status) => counter.inc({ server, route, status: String(status) });
}

export function buildInfo(registry: Registry, version: string, manifestSha256: string): void {
  new Gauge({
    name: "kruxos_build_info",
    help: "Always 1; labels carry the version and manifest hash.",
    labelNames: ["version", "manifest_sha256"],
    registers: [registry],
  }).set({ version, manifest_sha256: manifestSha256 }, 1);
}

/** Serve a registry on a unix socket for the gateway's endpoint to scrape. */
export async function serveRegistryOnSocket(
  registry: Registry,
  socketPath: string,
): Promise<http.Server> {
  const server = createHttpServer(
    { name: "metrics_socket", registry },
    {
      request: (_req, res) => {
        registry.metrics().then(
          (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
          (err: Error) => res.writeHead(500).end(err.message),
        );
      },
    },
  );
  await listen(server, { path: socketPath });
  return server;
}

/** Expositions scraped from every program socket in `dir` except `self`. */
export async function scrapeSockets(dir: string, self: string): Promise<string[]> {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith(".sock") && n !== `${self}.sock`);
  } catch {
    return [];
  }
  const texts = await Promise.all(
    names.map((n) =>
      unixRequest(path.join(dir, n), "GET", "/metrics", undefined, {}, 2000).then(
        (r) => (r.status === 200 ? r.body : ""),
        () => "",
      ),
    ),
  );
  return texts.filter((t) => t !== "");
}

export async function startMetricsEndpoint(
  addr: Address,
  sources: () => Promise<string[]>,
  registry?: Registry,
): Promise<http.Server> {
  const request = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (req.url !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("see /metrics\n");
      return;
    }
    sources().then(
      (texts) =>
        res
          .writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" })
          .end(mergeExpositions(texts)),
      (err: Error) =>
        res
          .writeHead(500, { "content-type": "text/plain" })
          .end(`# metrics error: ${err.message}\n`),
    );
  };
  const server = createHttpServer(
    { name: "metrics", ...(registry ? { registry } : {}) },
    { request },
  );
  await listen(server, addr);
  return server;
}
