// Host mode's supervisor: the manifest's programs with supervisord's semantics (priority order,
// startsecs, startretries, autorestart, states RUNNING/BACKOFF/FATAL/EXITED), the built-in ones
// in this process and any other command as a child process. One departure, for programs required
// for readiness only: when one can no longer come up (its address is held by another process, or
// it is FATAL), the runner says so through `onUnrecoverable` instead of leaving the seal to time
// out — host mode then fails loudly (docs/operations.md). supervisord keeps the image's semantics.
import { spawn, type ChildProcess } from "node:child_process";
import { orderedPrograms, type ProgramSpec } from "../config/index.js";
import { KruxError, asKruxError, type Logger } from "../core/index.js";

export type ProgramState = "STOPPED" | "STARTING" | "RUNNING" | "BACKOFF" | "EXITED" | "FATAL";

export interface InProcessProgram {
  /** Resolves once the program is serving; rejects when it cannot start. */
  start(): Promise<{ close(): Promise<void>; exited?: Promise<unknown> }>;
}

/** Why a program required for readiness can no longer come up. */
export interface ProgramFailure {
  readonly program: string;
  /** `PortInUse`: another process holds `address`; `Fatal`: every allowed start failed. */
  readonly reason: "PortInUse" | "Fatal";
  readonly address?: string;
  readonly error: string;
  /** Starts attempted. */
  readonly attempts: number;
}

export interface HostRunnerOptions {
  /** Called at most once per program, for programs with `required_for_readiness` only. */
  readonly onUnrecoverable?: (failure: ProgramFailure) => void;
}

interface Entry {
  readonly name: string;
  readonly spec: ProgramSpec;
  state: ProgramState;
  retries: number;
  handle?: { close(): Promise<void> };
  child?: ChildProcess;
  /** An in-process start under way: stopAll waits for it, so what it opens is closed too. */
  starting?: Promise<void>;
  retryTimer?: NodeJS.Timeout;
}

/** The address another process holds, when that is why a start failed. */
function addressInUse(err: unknown): string | undefined {
  if (err instanceof KruxError)
    return err.code === "PortInUse" ? String(err.data.address ?? "unknown") : undefined;
  // Listeners bound by a framework (fastify) reject with Node's own error.
  const e = err as { code?: unknown; address?: unknown; port?: unknown } | null;
  if (e?.code !== "EADDRINUSE") return undefined;
  if (typeof e.address !== "string") return "unknown";
  return typeof e.port === "number" ? `${e.address}:${e.port}` : e.address;
}

const alive = (child: ChildProcess): boolean =>
  child.pid !== undefined && child.exitCode === null && child.signalCode === null;

/** Wait for `p`, at most `ms`. */
async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

export class HostRunner {
  private readonly entries: Entry[];
  private stopping = false;

  constructor(
    programs: readonly [string, ProgramSpec][],
    private readonly resolve: (name: string, spec: ProgramSpec) => InProcessProgram | undefined,
    private readonly log: Logger,
    private readonly env: NodeJS.ProcessEnv,
    private readonly opts: HostRunnerOptions = {},
  ) {
    this.entries = programs.map(([name, spec]) => ({ name, spec, state: "STOPPED", retries: 0 }));
  }

  static fromManifest(
    m: Parameters<typeof orderedPrograms>[0],
    resolve: (name: string, spec: ProgramSpec) => InProcessProgram | undefined,
    log: Logger,
    env: NodeJS.ProcessEnv,
    opts: HostRunnerOptions = {},
  ): HostRunner {
    return new HostRunner(orderedPrograms(m), resolve, log, env, opts);
  }

  states(): Map<string, string> {
    return new Map(this.entries.map((e) => [e.name, e.state]));
  }

  /** Start every program in priority order; a program's failure never stops the others. */
  async startAll(): Promise<void> {
    for (const e of this.entries) await this.startOne(e);
  }

  private setState(e: Entry, state: ProgramState, extra: Record<string, unknown> = {}): void {
    e.state = state;
    const level = state === "FATAL" || state === "BACKOFF" ? "warn" : "info";
    this.log[level](
      { event: "ProgramState", program_name: e.name, state, ...extra },
      `${e.name} ${state}`,
    );
  }

  private async startOne(e: Entry): Promise<void> {
    delete e.retryTimer;
    if (this.stopping) return;
    this.setState(e, "STARTING");
    const inproc = this.resolve(e.name, e.spec);
    if (!inproc) {
      this.spawnChild(e);
      return;
    }
    const starting = this.startInProcess(e, inproc);
    e.starting = starting;
    await starting;
    if (e.starting === starting) delete e.starting;
  }

  private async startInProcess(e: Entry, inproc: InProcessProgram): Promise<void> {
    try {
      const handle = await inproc.start();
      if (this.stopping) {
        // The stop came while this start was under way: what it opened is closed here, or it
        // would keep the process alive after stopAll.
        await handle.close().catch(() => undefined);
        return;
      }
      e.handle = handle;
      this.setState(e, "RUNNING");
      void handle.exited?.then(() => {
        if (!this.stopping) this.setState(e, "EXITED");
      });
    } catch (err) {
      this.failed(e, asKruxError(err).message, addressInUse(err));
    }
  }

  /** Retries run in the background, so one failing program never delays the others' start. */
  private failed(e: Entry, why: string, inUse?: string): void {
    if (this.stopping) {
      this.setState(e, "STOPPED", { error: why });
      return;
    }
    const required = e.spec.required_for_readiness && this.opts.onUnrecoverable !== undefined;
    // While another process holds the address, retrying cannot help: a required program is
    // given up at once.
    if (e.retries < e.spec.startretries && !(required && inUse !== undefined)) {
      e.retries += 1;
      this.setState(e, "BACKOFF", { error: why, retry: e.retries });
      e.retryTimer = setTimeout(() => void this.startOne(e), 1000 * e.retries).unref();
      return;
    }
    this.setState(e, "FATAL", { error: why, ...(inUse !== undefined ? { address: inUse } : {}) });
    if (required)
      this.opts.onUnrecoverable?.({
        program: e.name,
        reason: inUse !== undefined ? "PortInUse" : "Fatal",
        ...(inUse !== undefined ? { address: inUse } : {}),
        error: why,
        attempts: e.retries + 1,
      });
  }

  private spawnChild(e: Entry): void {
    const [cmd, ...args] = e.spec.command.trim().split(/\s+/);
    const child = spawn(cmd ?? "", args, {
      env: this.env,
      stdio: ["ignore", "inherit", "inherit"],
    });
    e.child = child;
    const startedAt = Date.now();
    let running = false;
    const timer = setTimeout(() => {
      if (alive(child)) {
        running = true;
        this.setState(e, "RUNNING", { pid: child.pid });
      }
    }, e.spec.startsecs * 1000);
    child.on("error", (err) => {
      clearTimeout(timer);
      this.failed(e, err.message);
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (this.stopping) return;
      if (!running && e.spec.startsecs > 0) {
        this.failed(e, `exited after ${Date.now() - startedAt} ms (code ${code ?? signal})`);
        return;
      }
      this.setState(e, "EXITED", { code, signal });
      if (e.spec.autorestart) {
        e.retries = 0;
        void this.startOne(e);
      }
    });
  }

  /**
   * Stop in reverse priority order, within `graceMs` in all: a start under way finishes first
   * (and closes what it opened), children get SIGTERM and, when the grace is spent, SIGKILL.
   * supervisord gives each program its own stopwaitsecs; host mode bounds the whole stop instead,
   * so a signal always ends the process promptly.
   */
  async stopAll(graceMs = 7_000): Promise<void> {
    this.stopping = true;
    const deadline = Date.now() + graceMs;
    const left = (): number => Math.max(0, deadline - Date.now());
    for (const e of this.entries) clearTimeout(e.retryTimer);
    for (const e of [...this.entries].reverse()) {
      if (e.starting) await within(e.starting, left());
      const child = e.child;
      if (child && alive(child)) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await within(exited, left());
        if (alive(child)) child.kill("SIGKILL");
      }
      if (e.handle)
        await within(
          e.handle.close().catch(() => undefined),
          left(),
        );
      if (e.state !== "FATAL") e.state = "STOPPED";
    }
  }
}
