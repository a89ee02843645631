// The two outside services that sandboxed and network capabilities are written against. The
// implementations live below the capabilities layer's callers (src/sandbox: the native helper;
// src/egress: the proxy client) and are handed in by whoever wires the handlers, so handlers never
// look a launcher or a socket up by a global name, and tests can hand in a fake where a fake is
// the point of the test.

/** Resource limits of one sandboxed run. Every field is a ceiling; the launcher fills defaults. */
export interface SandboxLimits {
  readonly wall_ms: number;
  readonly cpu_s: number;
  readonly memory_bytes: number;
  readonly pids: number;
  readonly open_files: number;
  readonly file_size_bytes: number;
  /** Captured stdout and stderr, each: the last this many bytes are kept and `truncated` set. */
  readonly output_bytes: number;
}

/** What a handler asks the launcher to run. */
export interface SandboxRequest {
  /** argv; argv[0] is a program name (looked up in the sandbox PATH) or an absolute path. */
  readonly argv: readonly string[];
  /** Working directory as the agent addresses it: under /workspace. Must exist. */
  readonly cwd: string;
  /** Extra environment on top of the launcher's pinned safelist. */
  readonly env?: Readonly<Record<string, string>>;
  /** Network grant: when true, the only way out is the egress proxy, as this call's identity. */
  readonly network?: boolean;
  readonly limits?: Partial<SandboxLimits>;
  /** Bytes written to the program's stdin, then EOF. Default: empty stdin. */
  readonly stdin?: string | Uint8Array;
}

/** Why a run was stopped by the sandbox rather than ending on its own. */
export type LimitKind = "wall" | "cpu" | "memory" | "file_size" | "pids" | "output";

export interface SandboxResult {
  /** Exit status; 128+N when killed by signal N. */
  readonly exit_code: number;
  /** Signal name (e.g. "SIGKILL") when the program died of one, else null. */
  readonly signal: string | null;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
  /** stdout or stderr was cut at limits.output_bytes. */
  readonly truncated: boolean;
  readonly duration_ms: number;
  /** Which limit stopped the run, or null when it ended by itself. */
  readonly limit: LimitKind | null;
}

/** A background run. */
export interface SandboxProcess {
  /** The sandbox's pid 1 as seen from outside (for diagnostics only). */
  readonly pid: number;
  readonly startedAt: number;
  /**
   * Output so far: the last limits.output_bytes of each stream, and how many bytes the program
   * wrote to each in all.
   */
  output(): {
    stdout: Buffer;
    stderr: Buffer;
    truncated: boolean;
    stdout_bytes: number;
    stderr_bytes: number;
  };
  /** Resolves when the whole sandbox has exited; never rejects. */
  readonly done: Promise<SandboxResult>;
  /** Kill the whole sandbox (pid namespace). Idempotent. */
  kill(signal?: NodeJS.Signals): void;
}

/** Identity of the call a sandbox or an egress connection serves, for credentials and audit. */
export interface CallIdentity {
  readonly agent: string;
  readonly session: string;
  /** The audit id of the call (its intent record). */
  readonly callId: string;
  readonly capability: string;
}

/** The identity a call's sandbox or egress connection is made as: this call of this agent. */
export function identityOf(ctx: {
  readonly agent: string;
  readonly session: string;
  readonly callId: string;
  readonly capability: string;
}): CallIdentity {
  return { agent: ctx.agent, session: ctx.session, callId: ctx.callId, capability: ctx.capability };
}

export interface Launcher {
  /**
   * Throws KruxError Unavailable when a layer in [sandbox].require is missing on this host, and
   * CapabilityError {type: "NotFound"} when cwd or the program does not exist. Never runs weaker
   * than required.
   */
  run(req: SandboxRequest, who: CallIdentity, signal?: AbortSignal): Promise<SandboxResult>;
  /** Same checks as run(); the process outlives the call (its wall limit still applies). */
  start(req: SandboxRequest, who: CallIdentity): Promise<SandboxProcess>;
}

/** One HTTP exchange through the egress proxy. */
export interface EgressHttpRequest {
  readonly method: string;
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
  readonly timeout_ms: number;
  /** Response bodies larger than this are cut (`truncated`). */
  readonly max_body_bytes: number;
  /** Follow redirects (each hop is a new proxy decision). */
  readonly follow_redirects: boolean;
  readonly max_redirects: number;
}

export interface EgressHttpResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  readonly truncated: boolean;
  /** The URL of the final hop. */
  readonly url: string;
  readonly redirects: number;
  readonly duration_ms: number;
}

/** A streamed response body, for downloads written straight to disk. */
export interface EgressStream {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly url: string;
  readonly body: AsyncIterable<Buffer>;
  /** Abort the transfer (e.g. when a size limit is reached). */
  destroy(): void;
}

/**
 * The appliance's outbound network, always through the egress proxy as the calling agent. A proxy
 * refusal throws KruxError PolicyDenied carrying the proxy's {policy, rule, detail}; a network failure
 * throws CapabilityError {type: "NetworkError" | "Timeout" | "DnsError"}.
 */
export interface EgressClient {
  http(
    req: EgressHttpRequest,
    who: CallIdentity,
    signal?: AbortSignal,
  ): Promise<EgressHttpResponse>;
  stream(
    req: Omit<EgressHttpRequest, "max_body_bytes">,
    who: CallIdentity,
    signal?: AbortSignal,
  ): Promise<EgressStream>;
  /** Open and close a tunnel to host:port; the proxy's policy and address checks apply. */
  connect(
    host: string,
    port: number,
    timeout_ms: number,
    who: CallIdentity,
  ): Promise<{ address: string; duration_ms: number }>;
  /**
   * Resolve a name through the proxy's resolver. The name must be allowed by egress policy on some
   * port (a DNS query is itself an exfiltration channel). A/AAAA answers are the addresses the
   * proxy would accept or refuse; refused (private, loopback, …) ones are marked.
   */
  lookup(
    host: string,
    recordType: "A" | "AAAA" | "CNAME" | "MX" | "TXT" | "NS" | "SRV" | "CAA",
    who: CallIdentity,
  ): Promise<{ records: readonly string[]; refused: readonly string[] }>;
}
