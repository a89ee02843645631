// process.run|list|info|wait|kill. Every command runs through the Launcher (a kernel sandbox in the
// appliance); these handlers only turn inputs into a SandboxRequest, track background runs per agent
// and shape results into the outputs the YAML definitions publish.
import { setOwn } from "../../core/index.js";
import {
  identityOf,
  type Launcher,
  type SandboxProcess,
  type SandboxRequest,
} from "../ports/index.js";
import type { CapabilityHandler } from "../types.js";
import { capabilityError, invalidInput } from "./errors.js";
import { cutChars, limitError, tailBytes, text } from "./output.js";
import { newProcessId, stateOf, type ProcessRecord, type ProcessTable } from "./table.js";
import { resolveWorkdir } from "./workdir.js";

/** Captured output per stream (the definitions promise "at most 1 MiB"). */
export const OUTPUT_BYTES = 1024 * 1024;
const COMMAND_SHOWN = 1024;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

interface RunInputs {
  command: string | string[];
  cwd?: string;
  env?: Record<string, string>;
  timeout_s?: number;
  background?: boolean;
}

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** argv shown as one shell-quoted line (for list/info; never executed). */
function showArgv(argv: readonly string[]): string {
  return argv.map((a) => (SAFE_WORD.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(" ");
}

function argvOf(command: string | string[]): string[] {
  if (typeof command === "string") {
    if (command.includes("\0")) throw invalidInput("/command", "The command contains a NUL byte.");
    return ["/bin/sh", "-c", command];
  }
  if (command.length === 0) throw invalidInput("/command", "The argv array is empty.");
  command.forEach((a, i) => {
    if (a.includes("\0")) throw invalidInput(`/command/${i}`, "The argument contains a NUL byte.");
  });
  if (command[0] === "") throw invalidInput("/command/0", "The program name is empty.");
  return [...command];
}

function envOf(
  capability: string,
  env: Record<string, string> | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env ?? {})) {
    if (!ENV_NAME.test(name))
      throw invalidInput(`/env/${name}`, "Environment names are letters, digits and _.");
    if (value.includes("\0"))
      throw invalidInput(`/env/${name}`, "Environment values cannot contain NUL bytes.");
    setOwn(out, name, value);
  }
  return out;
}

const iso = (ms: number): string => new Date(ms).toISOString();
/** Read through a function: the record changes under awaits, which narrowing cannot see. */
const exitCodeOf = (rec: ProcessRecord): number | null => rec.result?.exit_code ?? null;
const ended = (rec: ProcessRecord): boolean => rec.result !== undefined;

function durationOf(rec: ProcessRecord, now: number): number {
  const r = rec.result;
  if (r) return Math.max(0, Math.round(r.duration_ms));
  return Math.max(0, Math.round(now - rec.startedAt));
}

function outputOf(rec: ProcessRecord): ReturnType<SandboxProcess["output"]> {
  const live = rec.proc.output();
  const r = rec.result;
  // Once ended, the result's streams (which may carry the launcher's notes) with the live totals.
  return r ? { ...live, stdout: r.stdout, stderr: r.stderr, truncated: r.truncated } : live;
}

function notFound(capability: string, id: string): Error {
  return capabilityError(
    "NotFound",
    capability,
    `You have no process ${JSON.stringify(id)} (or it ended more than an hour ago).`,
    {
      process_id: id,
      recovery: [
        {
          action: "check_state",
          description: "List your processes with process.list {include_exited: true}.",
        },
      ],
    },
  );
}

/** Wait for `p` at most `ms` (or until `signal` aborts); true when it settled. */
async function within(p: Promise<unknown>, ms: number, signal?: AbortSignal): Promise<boolean> {
  if (ms <= 0) {
    // Let an already-resolved promise's handlers run before answering "still running".
    await new Promise((r) => setImmediate(r));
    return false;
  }
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      p.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
        onAbort = () => resolve(false);
        signal?.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
}

export interface ProcessHandlerDeps {
  readonly launcher: Launcher;
  readonly table: ProcessTable;
}

export function createRun(d: ProcessHandlerDeps): CapabilityHandler {
  const capability = "process.run";
  return async (raw, ctx) => {
    const inputs = raw as RunInputs;
    const argv = argvOf(inputs.command);
    const env = envOf(capability, inputs.env);
    const wd = await resolveWorkdir(ctx, capability, inputs.cwd);
    const wallMs = (inputs.timeout_s ?? 120) * 1000;
    const req: SandboxRequest = {
      argv,
      cwd: wd.agentPath,
      env,
      // Policy's grant for this call: with it the only way out is the egress proxy.
      network: ctx.egress,
      limits: { wall_ms: wallMs, output_bytes: OUTPUT_BYTES },
    };
    const who = identityOf(ctx);

    if (inputs.background) {
      const release = d.table.reserve(ctx.agent, capability);
      let proc: SandboxProcess;
      try {
        proc = await d.launcher.start(req, who);
        const shown =
          typeof inputs.command === "string" ? inputs.command : showArgv(inputs.command);
        const rec = d.table.add({
          id: newProcessId(),
          agent: ctx.agent,
          command: cutChars(shown, COMMAND_SHOWN),
          cwd: wd.agentPath,
          startedAt: proc.startedAt,
          proc,
        });
        return { process_id: rec.id };
      } finally {
        release();
      }
    }

    const r = await d.launcher.run(req, who, ctx.signal);
    const limited = limitError(capability, r, wallMs);
    if (limited) throw limited;
    if (ctx.signal.aborted)
      throw capabilityError("Timeout", capability, "The call was cancelled before the run ended.", {
        exit_code: r.exit_code,
        signal: r.signal,
      });
    return {
      exit_code: r.exit_code,
      stdout: text(r.stdout),
      stderr: text(r.stderr),
      truncated: r.truncated,
      duration_ms: Math.max(0, Math.round(r.duration_ms)),
    };
  };
}

export function createList(d: ProcessHandlerDeps): CapabilityHandler {
  return async (raw, ctx) => {
    const inputs = raw as { include_exited?: boolean; limit?: number };
    const limit = inputs.limit ?? 100;
    const all = d.table
      .list(ctx.agent)
      .filter((rec) => inputs.include_exited || rec.result === undefined);
    return {
      processes: all.slice(0, limit).map(summaryOf),
      truncated: all.length > limit,
    };
  };
}

/** What process.list and process.info both say about a process. */
function summaryOf(rec: ProcessRecord): Record<string, unknown> {
  return {
    process_id: rec.id,
    command: rec.command,
    cwd: rec.cwd,
    state: stateOf(rec),
    started_at: iso(rec.startedAt),
    ended_at: rec.endedAt === undefined ? null : iso(rec.endedAt),
    exit_code: exitCodeOf(rec),
  };
}

export function createInfo(d: ProcessHandlerDeps): CapabilityHandler {
  const capability = "process.info";
  return async (raw, ctx) => {
    const inputs = raw as { process_id: string; tail_bytes?: number };
    const rec = d.table.get(ctx.agent, inputs.process_id);
    if (!rec) throw notFound(capability, inputs.process_id);
    const tail = inputs.tail_bytes ?? 4096;
    const out = outputOf(rec);
    return {
      ...summaryOf(rec),
      duration_ms: durationOf(rec, Date.now()),
      stdout_bytes: Math.max(out.stdout_bytes, out.stdout.length),
      stderr_bytes: Math.max(out.stderr_bytes, out.stderr.length),
      stdout_tail: text(tailBytes(out.stdout, tail)),
      stderr_tail: text(tailBytes(out.stderr, tail)),
    };
  };
}

export function createWait(d: ProcessHandlerDeps): CapabilityHandler {
  const capability = "process.wait";
  return async (raw, ctx) => {
    const inputs = raw as { process_id: string; timeout_s?: number };
    const rec = d.table.get(ctx.agent, inputs.process_id);
    if (!rec) throw notFound(capability, inputs.process_id);
    if (rec.result === undefined)
      await within(rec.proc.done, (inputs.timeout_s ?? 60) * 1000, ctx.signal);
    const out = outputOf(rec);
    const stdout = tailBytes(out.stdout, OUTPUT_BYTES);
    const stderr = tailBytes(out.stderr, OUTPUT_BYTES);
    return {
      process_id: rec.id,
      done: ended(rec),
      state: stateOf(rec),
      exit_code: exitCodeOf(rec),
      stdout: text(stdout),
      stderr: text(stderr),
      truncated:
        out.truncated || stdout.length < out.stdout.length || stderr.length < out.stderr.length,
      duration_ms: durationOf(rec, Date.now()),
    };
  };
}

const SIGNALS = { TERM: "SIGTERM", INT: "SIGINT", HUP: "SIGHUP", KILL: "SIGKILL" } as const;
/** After KILL, how long to wait for the sandbox to be reaped before answering. */
const KILL_SETTLE_MS = 5000;
/** With grace_s 0, a short look at whether the signal ended it, for an accurate state. */
const NO_GRACE_PEEK_MS = 100;

export function createKill(d: ProcessHandlerDeps): CapabilityHandler {
  const capability = "process.kill";
  return async (raw, ctx) => {
    const inputs = raw as { process_id: string; signal?: keyof typeof SIGNALS; grace_s?: number };
    const rec = d.table.get(ctx.agent, inputs.process_id);
    if (!rec) throw notFound(capability, inputs.process_id);
    if (rec.result !== undefined)
      throw capabilityError(
        "NotRunning",
        capability,
        `Process ${rec.id} has already ended (${stateOf(rec)}, exit code ${rec.result.exit_code}).`,
        { process_id: rec.id, state: stateOf(rec), exit_code: rec.result.exit_code },
      );
    const sig = SIGNALS[inputs.signal ?? "TERM"];
    const grace = (inputs.grace_s ?? 5) * 1000;
    rec.killRequested = true;
    rec.proc.kill(sig);
    let escalated = false;
    if (sig === "SIGKILL") {
      await within(rec.proc.done, KILL_SETTLE_MS);
    } else if (grace === 0) {
      await within(rec.proc.done, NO_GRACE_PEEK_MS);
    } else if (!(await within(rec.proc.done, grace))) {
      escalated = true;
      rec.proc.kill("SIGKILL");
      await within(rec.proc.done, KILL_SETTLE_MS);
    }
    return {
      process_id: rec.id,
      state: stateOf(rec),
      escalated,
      exit_code: exitCodeOf(rec),
    };
  };
}
