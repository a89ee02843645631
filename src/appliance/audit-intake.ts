// The audit log has one writer, the gateway. The egress proxy is a separate program (its own
// process under supervisord), yet every connection it decides must be in the same hash chain
// before the connection is made. So the gateway serves `<run>/audit.sock` (mode 0600, same uid
// only; no sandbox ever sees /run) and the proxy posts its records there and waits for the append.
// When the gateway is down the proxy gets no acknowledgement and refuses: no connection without
// its record.
import { chmodSync } from "node:fs";
import type http from "node:http";
import { createHttpServer, unixRequest, type ServerGuard } from "../core/index.js";
import type { AuditEntry, AuditLog } from "../audit/index.js";
import { close, listen } from "./net.js";

/** The kinds a program other than the gateway may append. */
const INTAKE_KINDS = new Set<string>([
  "egress.connection",
  "egress.closed",
  "vault.access",
  "vault.denied",
  "peer.violation",
  "auth.failure",
  "refusal.summary",
]);
const MAX_BODY = 16 * 1024;

export interface AuditIntake {
  close(): Promise<void>;
}

export async function serveAuditIntake(
  socket: string,
  audit: AuditLog,
  guard: Omit<ServerGuard, "name"> = {},
): Promise<AuditIntake> {
  const request = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    };
    if (req.method !== "POST" || req.url !== "/v1/audit") {
      reply(404, { error: "not_found" });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) req.destroy();
      else chunks.push(c);
    });
    req.on("end", () => {
      let body: { entry?: AuditEntry; durable?: boolean };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as typeof body;
      } catch {
        reply(400, { error: "invalid_json" });
        return;
      }
      const entry = body.entry;
      if (!entry || typeof entry !== "object" || !INTAKE_KINDS.has(String(entry.kind))) {
        reply(400, { error: "kind_not_allowed" });
        return;
      }
      audit.append(entry, { durable: body.durable === true }).then(
        (r) => reply(200, { seq: r.seq }),
        (err: Error) => reply(503, { error: "audit_unavailable", detail: err.message }),
      );
    });
  };
  const server = createHttpServer({ ...guard, name: "audit_intake" }, { request });
  await listen(server, { path: socket });
  chmodSync(socket, 0o600);
  return { close: () => close(server) };
}

/** The proxy's side: append one record through the gateway; rejects unless it was appended. */
export function auditThroughGateway(
  socket: string,
): (entry: AuditEntry, durable: boolean) => Promise<void> {
  return async (entry, durable) => {
    const r = await unixRequest(
      socket,
      "POST",
      "/v1/audit",
      JSON.stringify({ entry, durable }),
      { "content-type": "application/json" },
      10_000,
    );
    if (r.status !== 200)
      throw new Error(`the gateway did not append the record (HTTP ${r.status})`);
  };
}
