// The launcher port: how sandboxed capabilities (process.*, git.*) run programs. Implemented by
// src/sandbox (the native helper) and handed in by whoever wires the handlers; tests hand in a
// plain launcher where the sandbox itself is not the point.
import type { CallIdentity } from "./identity.js";

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
