// Binding listeners with one clear error when an address is taken.
import { existsSync, rmSync } from "node:fs";
import type http from "node:http";
import { KruxError } from "../core/index.js";

export type Address = { readonly host: string; readonly port: number } | { readonly path: string };

export function listen(server: http.Server, addr: Address): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const where = "path" in addr ? addr.path : `${addr.host}:${addr.port}`;
      reject(
        err.code === "EADDRINUSE"
          ? new KruxError("PortInUse", `${where} is already in use`, { address: where })
          : new KruxError("InternalError", `cannot listen on ${where}: ${err.message}`, {
              address: where,
            }),
      );
    };
    server.once("error", onError);
    const done = (): void => {
      server.off("error", onError);
      resolve();
    };
    if ("path" in addr) {
      // A socket file left by a crashed predecessor would make bind fail with EADDRINUSE.
      if (existsSync(addr.path)) rmSync(addr.path, { force: true });
      server.listen(addr.path, done);
    } else server.listen(addr.port, addr.host, done);
  });
}

export function close(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}
