// The gateway's sessions: one entry per connected session on every transport — a WebSocket on
// /rpc or /mcp for as long as it is open, an MCP Streamable HTTP session from initialize to its end.
// Each knows its agent, transport, announced client, start time, calls made and calls in flight;
// agent.session reads it, and session state will live here. Entries are bounded by what creates
// them (WebSockets and MCP sessions per agent).

export type SessionTransport = "rpc" | "mcp";

export interface ClientInfo {
  readonly name: string;
  readonly version?: string;
}

export interface SessionEntry {
  readonly id: string;
  readonly agent: string;
  readonly transport: SessionTransport;
  readonly connectedAt: string;
  client: ClientInfo | null;
  calls: number;
  inFlight: number;
}

const CLIENT_PART = /^[\x21-\x7e]{1,64}$/;

/**
 * `name/version` from a User-Agent header (the first product token), when it is a plain token a
 * client would announce; null otherwise.
 */
export function clientFromUserAgent(ua: string | undefined): ClientInfo | null {
  const first = (ua ?? "").trim().split(/\s+/)[0] ?? "";
  const [name, version] = first.split("/", 2);
  if (!name || !CLIENT_PART.test(name)) return null;
  return version && CLIENT_PART.test(version) ? { name, version } : { name };
}

export class SessionRegistry {
  private readonly entries = new Map<string, SessionEntry>();

  /** A session starts (an upgrade completed, an MCP session initialized). */
  open(
    id: string,
    agent: string,
    transport: SessionTransport,
    client: ClientInfo | null = null,
    now = new Date(),
  ): SessionEntry {
    const e: SessionEntry = {
      id,
      agent,
      transport,
      connectedAt: now.toISOString(),
      client,
      calls: 0,
      inFlight: 0,
    };
    this.entries.set(id, e);
    return e;
  }

  close(id: string): void {
    this.entries.delete(id);
  }

  get(id: string): SessionEntry | undefined {
    return this.entries.get(id);
  }

  /** The client a session announced (MCP initialize's clientInfo), bounded in size. */
  announce(id: string, client: ClientInfo): void {
    const e = this.entries.get(id);
    if (!e) return;
    const name = client.name.slice(0, 128);
    e.client = client.version ? { name, version: client.version.slice(0, 64) } : { name };
  }

  /** Count one call of session `id` for its duration (a no-op for a session not registered). */
  async call<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const e = this.entries.get(id);
    if (!e) return fn();
    e.calls++;
    e.inFlight++;
    try {
      return await fn();
    } finally {
      e.inFlight--;
    }
  }

  list(agent?: string): SessionEntry[] {
    return [...this.entries.values()].filter((e) => agent === undefined || e.agent === agent);
  }

  get size(): number {
    return this.entries.size;
  }
}
