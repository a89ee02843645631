// A Launcher for unit tests of the process.* and git.* handlers: it runs the argv with
// child_process.spawn and NO sandbox. That is the point: these tests are about argument handling,
// output parsing and process bookkeeping, not isolation (tests/security and the sandbox tests cover
// that). It imitates the parts of the real launcher's contract the handlers rely on:
//  - cwd is an agent path under /workspace, mapped to the test's workspace directory, and must
//    exist (else CapabilityError NotFound, as is a program that cannot be found);
//  - env is exactly the request's env plus PATH (no inherited environment);
//  - limits.wall_ms kills the whole process group (limit "wall"), limits.output_bytes cuts each
//    stream (truncated), and the group dies with its leader, as a pid namespace dies with its init;
//  - start() returns a live background process.
// Every request is recorded in `requests`, so tests can assert what the handlers asked for.
import { spawn } from "node:child_process";
import { statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { KruxError } from "../../src/core/index.js";
import type {
  CallIdentity,
  Launcher,
  SandboxProcess,
  SandboxRequest,
  SandboxResult,
} from "../../src/capabilities/index.js";

const DEFAULT_OUTPUT = 1024 * 1024;
const DEFAULT_WALL = 120_000;

function notFound(message: string): KruxError {
  return new KruxError("CapabilityError", message, {
    type: "NotFound",
    capability: "test",
    recovery: [{ action: "check_path", description: "test launcher" }],
  });
}

class Capture {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  total = 0;
  constructor(private readonly max: number) {}
  push(b: Buffer): void {
    this.total += b.length;
    const room = this.max - this.size;
    if (b.length > room) this.truncated = true;
    if (room <= 0) return;
    const part = b.length > room ? b.subarray(0, room) : b;
    this.chunks.push(part);
    this.size += part.length;
  }
  get buffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

interface Launched {
  readonly pid: number;
  readonly startedAt: number;
  readonly done: Promise<SandboxResult>;
  output(): {
    stdout: Buffer;
    stderr: Buffer;
    truncated: boolean;
    stdout_bytes: number;
    stderr_bytes: number;
  };
  kill(signal?: NodeJS.Signals): void;
}

export class PlainLauncher implements Launcher {
  readonly requests: SandboxRequest[] = [];
  readonly identities: CallIdentity[] = [];

  constructor(readonly workspaceRoot: string) {}

  /** The host directory an agent cwd names. */
  hostPath(agentPath: string): string {
    if (agentPath !== "/workspace" && !agentPath.startsWith("/workspace/"))
      throw new Error(`test launcher: cwd ${agentPath} is not under /workspace`);
    return path.join(this.workspaceRoot, agentPath.slice("/workspace".length));
  }

  private launch(req: SandboxRequest, signal?: AbortSignal): Promise<Launched> {
    const cwd = this.hostPath(req.cwd);
    try {
      if (!statSync(cwd).isDirectory()) throw new Error("not a directory");
    } catch {
      return Promise.reject(notFound(`cwd ${req.cwd} does not exist`));
    }
    const [program, ...args] = req.argv;
    if (program === undefined) return Promise.reject(new Error("empty argv"));
    const limits = req.limits ?? {};
    const out = new Capture(limits.output_bytes ?? DEFAULT_OUTPUT);
    const err = new Capture(limits.output_bytes ?? DEFAULT_OUTPUT);
    const started = Date.now();
    const child = spawn(program, args, {
      cwd,
      env: { ...req.env, PATH: process.env.PATH ?? "/usr/bin:/bin" },
      detached: true, // its own process group, killed as a whole
      stdio: ["pipe", "pipe", "pipe"],
    });
    let limit: SandboxResult["limit"] = null;
    const killGroup = (sig: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        /* already gone */
      }
    };
    const wall = setTimeout(() => {
      limit = "wall";
      killGroup("SIGKILL");
    }, limits.wall_ms ?? DEFAULT_WALL);
    const onAbort = (): void => killGroup("SIGKILL");
    signal?.addEventListener("abort", onAbort, { once: true });
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.stdin.on("error", () => undefined); // EPIPE when the program does not read stdin
    if (req.stdin !== undefined) child.stdin.end(Buffer.from(req.stdin));
    else child.stdin.end();
    // The group dies with its leader (a pid namespace dies with its init).
    child.on("exit", () => killGroup("SIGKILL"));

    const done = new Promise<SandboxResult>((resolve) => {
      child.on("close", (code, sig) => {
        clearTimeout(wall);
        signal?.removeEventListener("abort", onAbort);
        const signum = sig ? (os.constants.signals[sig] ?? 0) : 0;
        resolve({
          exit_code: code ?? 128 + signum,
          signal: sig ?? null,
          stdout: out.buffer,
          stderr: err.buffer,
          truncated: out.truncated || err.truncated,
          duration_ms: Date.now() - started,
          limit,
        });
      });
    });
    return new Promise<Launched>((resolve, reject) => {
      child.once("error", (e: NodeJS.ErrnoException) => {
        clearTimeout(wall);
        reject(e.code === "ENOENT" ? notFound(`program ${program} not found`) : e);
      });
      child.once("spawn", () =>
        resolve({
          pid: child.pid ?? 0,
          startedAt: started,
          done,
          output: () => ({
            stdout: out.buffer,
            stderr: err.buffer,
            truncated: out.truncated || err.truncated,
            stdout_bytes: out.total,
            stderr_bytes: err.total,
          }),
          kill: (sig: NodeJS.Signals = "SIGKILL") => killGroup(sig),
        }),
      );
    });
  }

  async run(req: SandboxRequest, who: CallIdentity, signal?: AbortSignal): Promise<SandboxResult> {
    this.requests.push(req);
    this.identities.push(who);
    const l = await this.launch(req, signal);
    return l.done;
  }

  async start(req: SandboxRequest, who: CallIdentity): Promise<SandboxProcess> {
    this.requests.push(req);
    this.identities.push(who);
    return this.launch(req);
  }
}
