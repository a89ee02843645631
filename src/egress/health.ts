// The proxy component of /ready and /health: the egress proxy answers on its unix socket.
import { unixRequest, type ComponentHealth } from "../core/index.js";

/** Asks the proxy's `/livez` on `socket`, waiting at most `timeoutMs`. Never throws. */
export async function proxyHealth(socket: string, timeoutMs = 1000): Promise<ComponentHealth> {
  try {
    const r = await unixRequest(socket, "GET", "/livez", undefined, {}, timeoutMs);
    return r.status === 200
      ? { name: "proxy", status: "ok" }
      : { name: "proxy", status: "failing", detail: `HTTP ${r.status}` };
  } catch (err) {
    return { name: "proxy", status: "failing", detail: (err as Error).message };
  }
}
