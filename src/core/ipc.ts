// Local IPC over unix sockets: supervisord's XML-RPC and the per-program metrics sockets. Only unix
// sockets are reachable from here; outbound network belongs to src/egress/.
import http from "node:http";

export interface IpcResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

export function unixRequest(
  socketPath: string,
  method: "GET" | "POST",
  urlPath: string,
  body?: string,
  headers: Record<string, string> = {},
  timeoutMs = 5000,
): Promise<IpcResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath,
        method,
        path: urlPath,
        headers: {
          host: "localhost",
          ...headers,
          ...(body ? { "content-length": Buffer.byteLength(body) } : {}),
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () =>
      req.destroy(new Error(`unix request to ${socketPath} timed out after ${timeoutMs} ms`)),
    );
    req.on("error", reject);
    if (body) req.write(body);
    req.end();
  });
}
