// The background processes of every agent, in memory. Each agent has its own namespace of process
// ids: another agent's id is simply not found. Running processes count against a per-agent quota
// (reserved before the sandbox starts, so concurrent starts cannot overshoot); ended ones are kept
// for process.info/wait/list for `retentionMs` and at most `keepExited` per agent, oldest dropped
// first. Nothing here survives a restart: closeAll() at shutdown kills whatever still runs.
import { randomBytes } from "node:crypto";
import type { SandboxProcess, SandboxResult } from "../ports/index.js";
import { capabilityError } from "./errors.js";

export type ProcessState = "running" | "exited" | "killed" | "timed_out" | "limit_exceeded";

export interface ProcessRecord {
  readonly id: string;
  readonly agent: string;
  /** The command as shown to the agent (a string, cut at 1 KiB). */
  readonly command: string;
  /** Working directory, absolute under /workspace. */
  readonly cwd: string;
  readonly startedAt: number;
  readonly proc: SandboxProcess;
  /** Set once the sandbox has exited. */
  result: SandboxResult | undefined;
  endedAt: number | undefined;
  /** process.kill (or closeAll) signalled it: an end after that counts as killed. */
  killRequested: boolean;
}

export interface ProcessTableOptions {
  /** Running background processes per agent. */
  readonly maxBackground: number;
  /** Ended processes remembered per agent. */
  readonly keepExited: number;
  /** How long an ended process stays visible. */
  readonly retentionMs: number;
  readonly now?: () => number;
  /** Told when a background process ends (the gateway audits it: no run ends unrecorded). */
  readonly onEnded?: (rec: ProcessRecord) => void;
}

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

/** "p_" and 12 random base32 characters (60 bits). */
export function newProcessId(): string {
  const bytes = randomBytes(12);
  let s = "p_";
  for (const b of bytes) s += BASE32[b & 31];
  return s;
}

export function stateOf(rec: ProcessRecord): ProcessState {
  const r = rec.result;
  if (r === undefined) return "running";
  if (r.limit === "wall") return "timed_out";
  if (r.limit !== null) return "limit_exceeded";
  return rec.killRequested ? "killed" : "exited";
}

interface AgentProcesses {
  readonly byId: Map<string, ProcessRecord>;
  /** Ids of ended processes, oldest end first. */
  readonly ended: string[];
  /** Starts in flight that hold a quota slot. */
  reserved: number;
}

export class ProcessTable {
  private readonly agents = new Map<string, AgentProcesses>();
  private readonly now: () => number;
  private closed = false;

  constructor(private readonly opts: ProcessTableOptions) {
    this.now = opts.now ?? Date.now;
  }

  private of(agent: string): AgentProcesses {
    let a = this.agents.get(agent);
    if (!a) {
      a = { byId: new Map(), ended: [], reserved: 0 };
      this.agents.set(agent, a);
    }
    return a;
  }

  /** Running (and starting) background processes of `agent`. */
  running(agent: string): number {
    const a = this.agents.get(agent);
    if (!a) return 0;
    return a.byId.size - a.ended.length + a.reserved;
  }

  /**
   * Hold one quota slot for a start in flight; the returned function gives it back (call it once
   * the start has been added or has failed). QuotaExceeded when the agent is at its maximum.
   */
  reserve(agent: string, capability: string): () => void {
    if (this.closed)
      throw capabilityError(
        "QuotaExceeded",
        capability,
        "The appliance is shutting down; no background processes can be started.",
        { limit: 0 },
      );
    const max = this.opts.maxBackground;
    if (this.running(agent) >= max)
      throw capabilityError(
        "QuotaExceeded",
        capability,
        `You already have ${max} background processes running (the maximum).`,
        { limit: max },
      );
    const a = this.of(agent);
    a.reserved++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      a.reserved--;
    };
  }

  /** Track a started process. Its end is recorded when the sandbox's `done` resolves. */
  add(rec: Omit<ProcessRecord, "result" | "endedAt" | "killRequested">): ProcessRecord {
    const full: ProcessRecord = {
      ...rec,
      result: undefined,
      endedAt: undefined,
      killRequested: false,
    };
    const a = this.of(rec.agent);
    a.byId.set(rec.id, full);
    void rec.proc.done.then((result) => {
      full.result = result;
      full.endedAt = this.now();
      a.ended.push(rec.id);
      this.prune(a);
      this.opts.onEnded?.(full);
    });
    if (this.closed) {
      full.killRequested = true;
      rec.proc.kill("SIGKILL");
    }
    return full;
  }

  /** The agent's process with this id, or undefined (unknown, another agent's, or forgotten). */
  get(agent: string, id: string): ProcessRecord | undefined {
    const a = this.agents.get(agent);
    if (!a) return undefined;
    this.prune(a);
    return a.byId.get(id);
  }

  /** The agent's processes, most recently started first. */
  list(agent: string): ProcessRecord[] {
    const a = this.agents.get(agent);
    if (!a) return [];
    this.prune(a);
    return [...a.byId.values()].sort((x, y) => y.startedAt - x.startedAt);
  }

  private prune(a: AgentProcesses): void {
    const cutoff = this.now() - this.opts.retentionMs;
    while (a.ended.length > 0) {
      const id = a.ended[0] ?? "";
      const rec = a.byId.get(id);
      const expired = rec?.endedAt === undefined || rec.endedAt < cutoff;
      if (!expired && a.ended.length <= this.opts.keepExited) break;
      a.ended.shift();
      a.byId.delete(id);
    }
  }

  /**
   * Kill every running process of every agent (SIGKILL: the appliance is stopping) and wait until
   * their sandboxes have exited, at most `timeoutMs`. Starts after this are refused.
   */
  async closeAll(timeoutMs = 10_000): Promise<void> {
    this.closed = true;
    const pending: Promise<unknown>[] = [];
    for (const a of this.agents.values())
      for (const rec of a.byId.values())
        if (rec.result === undefined) {
          rec.killRequested = true;
          rec.proc.kill("SIGKILL");
          pending.push(rec.proc.done);
        }
    if (pending.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(pending),
      new Promise((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }
}
