// `kruxos mcp stdio`: a bridge for MCP clients that only launch stdio servers (Claude Desktop and
// friends). It reads newline-delimited JSON-RPC on stdin, forwards each message as one text frame to
// the appliance's `WS /mcp`, and writes every reply as one line on stdout. stdout carries protocol
// only; everything for humans goes to stderr. The token travels in the Authorization header of the
// upgrade, never in the URL. It is a client: it imports no gateway code and keeps no MCP state — the
// session lives on the appliance for as long as the socket does.
import { createInterface } from "node:readline";
import WebSocket from "ws";

export interface McpStdioBridgeOptions {
  /** KRUXOS_HOST: http(s)://host:port (or ws(s)://), optionally with a path prefix. */
  readonly host: string;
  /** KRUXOS_API_KEY: the agent token. */
  readonly apiKey: string;
  readonly stdin: NodeJS.ReadableStream;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** "underscore" asks the appliance to list `fs_read` instead of `fs.read` (KRUXOS_MCP_TOOL_NAMES). */
  readonly toolNames?: "dotted" | "underscore";
  /** After stdin ends, how long to wait for outstanding replies (default 30 s). */
  readonly drainMs?: number;
  /** Largest frame accepted from the appliance (default 16 MiB). */
  readonly maxPayload?: number;
}

/** http(s)://h[:p][/prefix] → ws(s)://h[:p][/prefix]/mcp. Throws a readable message when unusable. */
export function mcpWebSocketUrl(host: string, toolNames?: "dotted" | "underscore"): string {
  let u: URL;
  try {
    u = new URL(host);
  } catch {
    throw new Error(`KRUXOS_HOST "${host}" is not a URL; use e.g. http://127.0.0.1:7700`);
  }
  const proto: Record<string, string> = {
    "http:": "ws:",
    "https:": "wss:",
    "ws:": "ws:",
    "wss:": "wss:",
  };
  const p = proto[u.protocol];
  if (!p)
    throw new Error(
      `KRUXOS_HOST must start with http://, https://, ws:// or wss:// (got ${u.protocol})`,
    );
  if (u.username || u.password || u.search)
    throw new Error(
      "KRUXOS_HOST must not carry credentials or a query; the token goes in KRUXOS_API_KEY",
    );
  const prefix = u.pathname.replace(/\/+$/, "");
  const path = prefix.endsWith("/mcp") ? prefix : `${prefix}/mcp`;
  const query = toolNames === "underscore" ? "?tool_names=underscore" : "";
  return `${p}//${u.host}${path}${query}`;
}

/** Request ids in one outgoing line (so we know which replies are still owed). */
function requestIds(line: string): string[] {
  try {
    const v: unknown = JSON.parse(line);
    const members = Array.isArray(v) ? v : [v];
    const ids: string[] = [];
    for (const m of members)
      if (typeof m === "object" && m !== null && "method" in m && "id" in m)
        ids.push(JSON.stringify((m as { id: unknown }).id));
    return ids;
  } catch {
    return [];
  }
}

function replyIds(text: string): string[] {
  try {
    const v: unknown = JSON.parse(text);
    const members = Array.isArray(v) ? v : [v];
    return members
      .filter((m) => typeof m === "object" && m !== null && !("method" in m) && "id" in m)
      .map((m) => JSON.stringify((m as { id: unknown }).id));
  } catch {
    return [];
  }
}

/** Run the bridge until stdin ends (0) or the connection fails (non-zero). */
export async function runMcpStdioBridge(opts: McpStdioBridgeOptions): Promise<number> {
  const log = (msg: string): void => {
    opts.stderr.write(`kruxos mcp stdio: ${msg}\n`);
  };
  if (!opts.host) {
    log("KRUXOS_HOST is not set (e.g. KRUXOS_HOST=http://127.0.0.1:7700)");
    return 2;
  }
  if (!opts.apiKey) {
    log("KRUXOS_API_KEY is not set (the agent token from `kruxos agents create`)");
    return 2;
  }
  let url: string;
  try {
    url = mcpWebSocketUrl(opts.host, opts.toolNames);
  } catch (err) {
    log((err as Error).message);
    return 2;
  }

  const ws = new WebSocket(url, {
    headers: { authorization: `Bearer ${opts.apiKey}` },
    maxPayload: opts.maxPayload ?? 16 * 1024 * 1024,
    handshakeTimeout: 10_000,
  });

  const opened = await new Promise<number>((resolve) => {
    ws.once("open", () => resolve(0));
    ws.once("unexpected-response", (_req, res) => {
      const status = res.statusCode ?? 0;
      if (status === 401)
        log(`the appliance at ${opts.host} refused the token (401): check KRUXOS_API_KEY`);
      else if (status === 429)
        log(
          `too many failed attempts from this source (429): retry after ${res.headers["retry-after"] ?? "a while"} s`,
        );
      else if (status === 404)
        log(`${url} does not exist (404): is KRUXOS_HOST the agent port (default 7700)?`);
      else log(`the appliance answered the upgrade with HTTP ${status}`);
      res.resume();
      ws.terminate();
      resolve(1);
    });
    ws.once("error", (err: NodeJS.ErrnoException) => {
      log(`cannot reach ${opts.host}: ${err.code ?? ""} ${err.message}`.replace(/\s+/g, " "));
      resolve(1);
    });
  });
  if (opened !== 0) return opened;
  ws.on("error", (err) => log(`connection error: ${err.message}`));

  return new Promise<number>((resolve) => {
    const owed = new Set<string>();
    let inputEnded = false;
    let closingByUs = false;
    let drainTimer: NodeJS.Timeout | undefined;
    let settled = false;
    const finish = (code: number): void => {
      if (settled) return;
      settled = true;
      if (drainTimer) clearTimeout(drainTimer);
      rl.close();
      resolve(code);
    };
    const closeIfDone = (): void => {
      if (inputEnded && owed.size === 0 && !closingByUs) {
        closingByUs = true;
        ws.close(1000, "stdin closed");
      }
    };

    ws.on("message", (data, isBinary) => {
      if (isBinary) {
        log("ignored a binary frame from the appliance");
        return;
      }
      const text = Array.isArray(data)
        ? Buffer.concat(data).toString("utf8")
        : Buffer.isBuffer(data)
          ? data.toString("utf8")
          : Buffer.from(data).toString("utf8");
      opts.stdout.write(`${text.replace(/\r?\n/g, " ")}\n`);
      for (const id of replyIds(text)) owed.delete(id);
      closeIfDone();
    });
    ws.on("close", (code, reason) => {
      if (closingByUs) return finish(0);
      log(
        `the appliance closed the connection (${code}${reason.length ? ` ${reason.toString()}` : ""})`,
      );
      finish(1);
    });

    const rl = createInterface({ input: opts.stdin, crlfDelay: Infinity, terminal: false });
    rl.on("line", (line) => {
      const msg = line.trim();
      if (msg.length === 0) return;
      for (const id of requestIds(msg)) owed.add(id);
      if (ws.readyState === WebSocket.OPEN) ws.send(msg);
    });
    rl.on("close", () => {
      if (settled) return;
      inputEnded = true;
      closeIfDone();
      if (!closingByUs)
        drainTimer = setTimeout(() => {
          log(
            `stdin closed; ${owed.size} repl${owed.size === 1 ? "y" : "ies"} still outstanding, closing`,
          );
          closingByUs = true;
          ws.close(1000, "stdin closed");
        }, opts.drainMs ?? 30_000);
    });
  });
}
