// A minimal JSON-RPC client over WebSocket for tests: real sockets against the real gateway.
import WebSocket from "ws";

export interface RpcReply {
  readonly id?: unknown;
  readonly result?: Record<string, unknown>;
  readonly error?: { code: number; message: string; data: Record<string, unknown> };
}

/** An MCP initialize request, as a client opening a session sends it. */
export function mcpInitialize(client: string, id = 1, protocolVersion = "2025-06-18"): unknown {
  return {
    jsonrpc: "2.0",
    id,
    method: "initialize",
    params: { protocolVersion, capabilities: {}, clientInfo: { name: client, version: "1" } },
  };
}

export class RpcClient {
  private next = 0;
  private readonly waiting = new Map<unknown, (r: RpcReply | RpcReply[]) => void>();

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (d) => {
      const msg = JSON.parse(d.toString()) as RpcReply | RpcReply[];
      const key = Array.isArray(msg) ? "batch" : msg.id;
      this.waiting.get(key)?.(msg);
      this.waiting.delete(key);
    });
  }

  static connect(port: number, token: string | undefined, urlPath = "/rpc"): Promise<RpcClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(
        `ws://127.0.0.1:${port}${urlPath}`,
        token ? { headers: { authorization: `Bearer ${token}` } } : {},
      );
      ws.once("open", () => resolve(new RpcClient(ws)));
      ws.once("unexpected-response", (_req, res) =>
        reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })),
      );
      ws.once("error", reject);
    });
  }

  call(method: string, params: unknown = {}): Promise<RpcReply> {
    const id = ++this.next;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve as (r: RpcReply | RpcReply[]) => void);
      this.ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    });
  }

  invoke(name: string, inputs: unknown = {}): Promise<RpcReply> {
    return this.call("capabilities.invoke", { name, inputs });
  }

  batch(messages: unknown[]): Promise<RpcReply[]> {
    return new Promise((resolve) => {
      this.waiting.set("batch", resolve as (r: RpcReply | RpcReply[]) => void);
      this.ws.send(JSON.stringify(messages));
    });
  }

  close(): void {
    this.ws.close();
  }
}
