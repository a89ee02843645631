// Host mode's supervisor: the manifest's programs with supervisord's semantics (priority order,
// startsecs, startretries, autorestart, states RUNNING/BACKOFF/FATAL/EXITED), the built-in ones
// in this process and any other command as a child process.
import { spawn, type ChildProcess } from "node:child_process";
import { orderedPrograms, type ProgramSpec } from "../config/index.js";
import { asKruxError, type Logger } from "../core/index.js";

export type ProgramState = "STOPPED" | "STARTING" | "RUNNING" | "BACKOFF" | "EXITED" | "FATAL";

export interface InProcessProgram {
  /** Resolves once the program is serving; rejects when it cannot start. */
  start(): Promise<{ close(): Promise<void>; exited?: Promise<unknown> }>;
}

interface Entry {
  readonly name: string;
  readonly spec: ProgramSpec;
  state: ProgramState;
  retries: number;
  handle?: { close(): Promise<void> };
  child?: ChildProcess;
}

export class HostRunner {
  private readonly entries: Entry[];
  private stopping = false;

  constructor(
    programs: readonly [string, ProgramSpec][],
    private readonly resolve: (name: string, spec: ProgramSpec) => InProcessProgram | undefined,
    private readonly log: Logger,
    private readonly env: NodeJS.ProcessEnv,
  ) {
    this.entries = programs.map(([name, spec]) => ({ name, spec, state: "STOPPED", retries: 0 }));
  }

  static fromManifest(
    m: Parameters<typeof orderedPrograms>[0],
    resolve: (name: string, spec: ProgramSpec) => InProcessProgram | undefined,
    log: Logger,
    env: NodeJS.ProcessEnv,
  ): HostRunner {
    return new HostRunner(orderedPrograms(m), resolve, log, env);
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
    if (this.stopping) return;
    this.setState(e, "STARTING");
    const inproc = this.resolve(e.name, e.spec);
    if (inproc) {
      try {
        const handle = await inproc.start();
        e.handle = handle;
        this.setState(e, "RUNNING");
        void handle.exited?.then(() => {
          if (!this.stopping) this.setState(e, "EXITED");
        });
      } catch (err) {
        await this.failed(e, asKruxError(err).message);
      }
      return;
    }
    this.spawnChild(e);
  }

  /** Retries run in the background, so one failing program never delays the others' start. */
  private async failed(e: Entry, why: string): Promise<void> {
    if (e.retries < e.spec.startretries && !this.stopping) {
      e.retries += 1;
      this.setState(e, "BACKOFF", { error: why, retry: e.retries });
      setTimeout(() => void this.startOne(e), 1000 * e.retries).unref();
    } else this.setState(e, "FATAL", { error: why });
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
      if (child.exitCode === null && child.signalCode === null) {
        running = true;
        this.setState(e, "RUNNING", { pid: child.pid });
      }
    }, e.spec.startsecs * 1000);
    child.on("error", (err) => {
      clearTimeout(timer);
      void this.failed(e, err.message);
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (this.stopping) return;
      if (!running && e.spec.startsecs > 0) {
        void this.failed(e, `exited after ${Date.now() - startedAt} ms (code ${code ?? signal})`);
        return;
      }
      this.setState(e, "EXITED", { code, signal });
      if (e.spec.autorestart) {
        e.retries = 0;
        void this.startOne(e);
      }
    });
  }

  /** Stop in reverse priority order. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    for (const e of [...this.entries].reverse()) {
      if (e.child && e.child.exitCode === null) {
        const exited = new Promise((r) => e.child?.once("exit", r));
        e.child.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
        if (e.child.exitCode === null) e.child.kill("SIGKILL");
      }
      if (e.handle) await e.handle.close().catch(() => undefined);
      if (e.state !== "FATAL") e.state = "STOPPED";
    }
  }
}
