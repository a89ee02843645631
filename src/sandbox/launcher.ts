// The launcher: turns a handler's SandboxRequest into a validated spec, runs the native helper
// with it, and turns the helper's status lines into a SandboxResult or a KruxError. It is the only
// code that decides what a sandbox looks like (layers, mounts, environment, limits); the helper
// only applies it. It refuses — never weakens — when a required layer is missing on this host.
import { spawn, type ChildProcess } from "node:child_process";
import { constants as osConstants } from "node:os";
import { realpath, stat } from "node:fs/promises";
import path from "node:path";
import type { Readable, Writable } from "node:stream";
import {
  AGENT_WORKSPACE,
  type CallIdentity,
  type Launcher,
  type LimitKind,
  type SandboxLimits,
  type SandboxProcess,
  type SandboxRequest,
  type SandboxResult,
} from "../capabilities/index.js";
import { Counter, Histogram, KruxError, type Logger, type Registry } from "../core/index.js";
import { missingRequired, type LayerName, type SandboxDiagnosis } from "./probe.js";
import {
  RELAY_PORT,
  RO_BINDS,
  SANDBOX_PATH,
  SPEC_VERSION,
  baseEnvironment,
  etcFiles,
  proxyEnvironment,
  caBundleEnvironment,
  SANDBOX_CA_BUNDLE,
  reservedEnvName,
  validateSpec,
  type SandboxSpec,
} from "./spec.js";
import {
  DEFAULT_GUARD_BOUNDS,
  removeNewDenied,
  scanMandatoryDeny,
  type DenyScan,
  type GuardBounds,
} from "./workspace-guard.js";

export interface LauncherOptions {
  readonly helper: string;
  /** What the probe found on this host; the launcher applies exactly the layers that work. */
  readonly diagnosis: SandboxDiagnosis;
  /** [sandbox].require: without any of these, sandboxed capabilities refuse with Unavailable. */
  readonly require: readonly string[];
  /** Host path of the tree agents address as /workspace. */
  readonly workspaceRoot: string;
  /** [sandbox].uid: the uid (and gid) inside. */
  readonly uid: number;
  /** [sandbox].host_uid: what the inside uid maps to when the appliance runs as root. */
  readonly rootHostUid: number;
  /** [sandbox.limits], the defaults and ceilings of every run. */
  readonly limits: SandboxLimits;
  readonly tmpMb: number;
  /** The egress proxy's unix socket, the only destination of a granted sandbox's relay. */
  readonly proxySocket: string;
  /**
   * The CA bundle (PEM: the system roots and the interception CA) a granted sandbox trusts:
   * written into its /etc and named by SSL_CERT_FILE and friends, so TLS toward intercepted hosts
   * verifies.
   */
  readonly caBundle?: string;
  /** Mint the per-call proxy credential (valid for ttlMs). */
  readonly mintCredential: (who: CallIdentity, ttlMs: number) => string;
  readonly log: Logger;
  readonly registry?: Registry;
  /** Security events: a mandatory-deny path created inside a sandbox and removed afterwards. */
  readonly onViolation?: (who: CallIdentity, removed: readonly string[]) => void;
  readonly guardBounds?: GuardBounds;
  /** A delegated cgroup v2 directory, when the host has one. */
  readonly cgroup?: string | null;
}

/** Discarded output beyond the capture limit after which the run is stopped as a flood. */
const FLOOD_BYTES = 64 * 1024 * 1024;
/** How long a helper asked to stop (SIGTERM) gets before SIGKILL. */
const KILL_GRACE_MS = 2_000;

export interface SandboxLauncher extends Launcher {
  /** Layers required but missing here (empty when sandboxed capabilities can run). */
  readonly missing: readonly string[];
  /** Layers not required but unavailable here, so not applied (a weaker sandbox, to report). */
  readonly weakened: readonly string[];
  /** Kill every sandbox still running (shutdown). */
  closeAll(): void;
}

export function createLauncher(o: LauncherOptions): SandboxLauncher {
  // cgroup counts as available only when a delegated cgroup was actually set up for us.
  const usable = (l: LayerName): boolean =>
    o.diagnosis.layers[l].ok && (l !== "cgroup" || Boolean(o.cgroup));
  const missing = [
    ...new Set([
      ...missingRequired(o.diagnosis, o.require),
      ...o.require.filter((l) => l === "cgroup" && !o.cgroup),
    ]),
  ];
  const layers = (Object.keys(o.diagnosis.layers) as LayerName[]).filter(usable);
  const metrics = o.registry ? launcherMetrics(o.registry) : undefined;
  const live = new Set<Run>();
  const bounds = o.guardBounds ?? DEFAULT_GUARD_BOUNDS;

  async function prepare(
    req: SandboxRequest,
    who: CallIdentity,
  ): Promise<{ spec: SandboxSpec; limits: SandboxLimits; scan: DenyScan }> {
    if (missing.length > 0) {
      throw new KruxError(
        "Unavailable",
        `the sandbox cannot run here: required layers unavailable: ${missing.join(", ")}`,
        { missing: [...missing], capability: who.capability },
      );
    }
    const limits = mergeLimits(o.limits, req.limits);
    const cwd = await insideCwd(o.workspaceRoot, req.cwd, who.capability);
    const argv = [await resolveProgram(req.argv, cwd, who.capability), ...req.argv.slice(1)];
    const env = baseEnvironment(cwd, who);
    for (const [name, value] of Object.entries(req.env ?? {})) {
      if (reservedEnvName(name)) {
        // Inputs that pass the schema but cannot be used: the same shape the gateway uses.
        throw new KruxError("InvalidParams", `the environment variable ${name} is reserved`, {
          errors: [
            {
              path: `/inputs/env/${name}`,
              message: "reserved: the proxy route and KRUXOS_ variables are set by the appliance",
            },
          ],
        });
      }
      env.push(`${name}=${value}`);
    }
    if (req.network) {
      env.push(...proxyEnvironment(o.mintCredential(who, limits.wall_ms + 60_000)));
      if (o.caBundle !== undefined) env.push(...caBundleEnvironment(SANDBOX_CA_BUNDLE));
    }
    const scan = await scanMandatoryDeny(o.workspaceRoot, bounds);
    if (scan.partial) {
      o.log.warn(
        { event: "SandboxGuardPartial", agent: who.agent, capability: who.capability },
        "the workspace is larger than the mandatory-deny walk's bounds; entries beyond it are not bound read-only",
      );
    }
    const euid = process.geteuid?.() ?? 0;
    const egid = process.getegid?.() ?? 0;
    const hostUid = euid === 0 ? o.rootHostUid : euid;
    const hostGid = euid === 0 ? o.rootHostUid : egid;
    const hostname = "kruxos-sandbox";
    const spec: SandboxSpec = {
      version: SPEC_VERSION,
      argv,
      env,
      cwd,
      uid: o.uid,
      gid: o.uid,
      host_uid: hostUid,
      host_gid: hostGid === 0 ? o.rootHostUid : hostGid,
      hostname,
      layers,
      mounts: {
        workspace: o.workspaceRoot,
        ro_binds: RO_BINDS,
        ro_overlays: scan.paths.map((p) => `${AGENT_WORKSPACE}/${p}`),
        files:
          req.network && o.caBundle !== undefined
            ? [
                ...etcFiles(o.uid, o.uid, hostname),
                { path: SANDBOX_CA_BUNDLE, content: o.caBundle },
              ]
            : etcFiles(o.uid, o.uid, hostname),
        tmp_mb: o.tmpMb,
      },
      network: req.network ? { relay_port: RELAY_PORT, proxy_socket: o.proxySocket } : null,
      limits: {
        wall_ms: limits.wall_ms,
        cpu_s: limits.cpu_s,
        memory_bytes: limits.memory_bytes,
        pids: limits.pids,
        open_files: limits.open_files,
        file_size_bytes: limits.file_size_bytes,
      },
      cgroup: layers.includes("cgroup") ? (o.cgroup ?? null) : null,
    };
    validateSpec(spec);
    return { spec, limits, scan };
  }

  async function launch(
    req: SandboxRequest,
    who: CallIdentity,
  ): Promise<{ run: Run; result: Promise<SandboxResult> }> {
    // The walk that chose the read-only overlays is also the "before" of the post-run sweep.
    const { spec, limits, scan: before } = await prepare(req, who);
    const t0 = performance.now();
    const run = new Run(o.helper, spec, req.stdin, limits.output_bytes, o.log, who);
    live.add(run);
    const result = run.finished.then(
      async (r) => {
        live.delete(run);
        metrics?.runs.inc({ outcome: r.limit ?? (r.exit_code === 0 ? "ok" : "nonzero") });
        // Mandatory-deny paths the run created could not be bound read-only before they existed:
        // they are removed now, reported to the agent on stderr and to operators as an event.
        const removed = await removeNewDenied(
          o.workspaceRoot,
          before,
          await scanMandatoryDeny(o.workspaceRoot, bounds),
        );
        if (removed.length === 0) return r;
        o.log.warn(
          { event: "SandboxMandatoryDenyRemoved", agent: who.agent, paths: removed },
          "removed mandatory-deny files created inside a sandbox",
        );
        o.onViolation?.(who, removed);
        const note = `kruxos: removed ${removed.join(", ")}: mandatory-deny files cannot be created from a sandbox\n`;
        return { ...r, stderr: Buffer.concat([r.stderr, Buffer.from(note)]) };
      },
      (e: unknown) => {
        live.delete(run);
        throw e;
      },
    );
    result.catch(() => undefined);
    await run.started;
    metrics?.spawn.observe((performance.now() - t0) / 1000);
    return { run, result };
  }

  return {
    missing,
    weakened: (Object.keys(o.diagnosis.layers) as LayerName[]).filter(
      (l) => !usable(l) && !o.require.includes(l),
    ),
    async run(req, who, signal) {
      const { run, result } = await launch(req, who);
      const onAbort = (): void => run.kill("SIGTERM");
      signal?.addEventListener("abort", onAbort, { once: true });
      try {
        return await result;
      } finally {
        signal?.removeEventListener("abort", onAbort);
      }
    },
    async start(req, who) {
      const { run, result } = await launch(req, who);
      return run.handle(result);
    },
    closeAll() {
      for (const run of live) run.kill("SIGKILL");
    },
  };
}

function launcherMetrics(registry: Registry): {
  spawn: Histogram;
  runs: Counter<"outcome">;
} {
  return {
    spawn: new Histogram({
      name: "kruxos_sandbox_spawn_seconds",
      help: "Time from launching the sandbox helper to the program's execve (all layers applied).",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [registry],
    }),
    runs: new Counter({
      name: "kruxos_sandbox_runs_total",
      help: "Sandboxed runs by outcome (ok, nonzero, or the limit that stopped them).",
      labelNames: ["outcome"],
      registers: [registry],
    }),
  };
}

function mergeLimits(
  base: SandboxLimits,
  asked: Partial<SandboxLimits> | undefined,
): SandboxLimits {
  const pick = (k: keyof SandboxLimits): number => {
    const v = asked?.[k];
    // The wall clock is the capability's to set (its timeout_s); every other limit can only be
    // lowered below the manifest's.
    if (v === undefined) return base[k];
    return k === "wall_ms" ? v : Math.min(v, base[k]);
  };
  return {
    wall_ms: pick("wall_ms"),
    cpu_s: pick("cpu_s"),
    memory_bytes: pick("memory_bytes"),
    pids: pick("pids"),
    open_files: pick("open_files"),
    file_size_bytes: pick("file_size_bytes"),
    output_bytes: pick("output_bytes"),
  };
}

function scopeError(capability: string, message: string, type: string): KruxError {
  const recovery =
    type === "PathOutOfScope"
      ? [
          {
            action: "fix_inputs",
            description: "Use a path relative to the workspace or under /workspace.",
          },
        ]
      : [
          {
            action: "check_path",
            description: "Check the path with filesystem.stat or filesystem.list.",
          },
        ];
  return new KruxError("CapabilityError", message, { type, capability, recovery });
}

/** The working directory inside the sandbox, checked to exist and to stay inside the workspace. */
async function insideCwd(workspaceRoot: string, cwd: string, capability: string): Promise<string> {
  const rel = cwd.startsWith("/")
    ? path.posix.relative(AGENT_WORKSPACE, path.posix.normalize(cwd))
    : path.posix.normalize(cwd);
  if (rel === ".." || rel.startsWith("../") || path.posix.isAbsolute(rel) || rel.includes("\0")) {
    throw scopeError(capability, `cwd ${cwd} is outside ${AGENT_WORKSPACE}`, "PathOutOfScope");
  }
  const rootReal = await realpath(workspaceRoot);
  let real: string;
  try {
    real = await realpath(path.join(rootReal, rel === "." ? "" : rel));
  } catch {
    throw scopeError(capability, `cwd ${cwd} does not exist`, "NotFound");
  }
  const within = path.relative(rootReal, real);
  if (within.startsWith("..") || path.isAbsolute(within)) {
    throw scopeError(
      capability,
      `cwd ${cwd} resolves outside ${AGENT_WORKSPACE}`,
      "PathOutOfScope",
    );
  }
  if (!(await stat(real)).isDirectory()) {
    throw scopeError(capability, `cwd ${cwd} is not a directory`, "NotFound");
  }
  return within === "" ? AGENT_WORKSPACE : `${AGENT_WORKSPACE}/${within.split(path.sep).join("/")}`;
}

/**
 * argv[0] as the helper needs it: names are looked up in the sandbox PATH (whose directories are
 * bound from the host unchanged, so the host's view answers); paths are kept as given.
 */
async function resolveProgram(
  argv: readonly string[],
  cwd: string,
  capability: string,
): Promise<string> {
  const prog = argv[0] ?? "";
  if (prog.includes("/")) return path.posix.isAbsolute(prog) ? prog : path.posix.resolve(cwd, prog);
  for (const dir of SANDBOX_PATH.split(":")) {
    const candidate = path.posix.join(dir, prog);
    try {
      const st = await stat(candidate);
      if (st.isFile() && (st.mode & 0o111) !== 0) return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new KruxError(
    "CapabilityError",
    `${prog}: not found in the sandbox PATH (${SANDBOX_PATH})`,
    {
      type: "NotFound",
      capability,
      recovery: [
        {
          action: "check_path",
          description: 'Check the program with process.run {command: "command -v NAME"}.',
        },
      ],
    },
  );
}

interface StatusEvent {
  event?: string;
  pid?: number;
  proc?: string;
  error?: string;
  code?: number;
  detail?: string;
  exit_code?: number;
  signal?: number | null;
  timed_out?: boolean;
  limit?: string | null;
}

/**
 * A bounded capture of one output stream: the last `cap` bytes are kept (the end of a build log
 * is where its errors are), the rest is counted and dropped.
 */
class Capture {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  /** Everything the program wrote. */
  total = 0;
  constructor(private readonly cap: number) {}
  add(chunk: Buffer): void {
    this.total += chunk.length;
    this.chunks.push(chunk);
    this.kept += chunk.length;
    while (this.kept > this.cap) {
      const first = this.chunks[0] as Buffer;
      const excess = this.kept - this.cap;
      if (first.length <= excess) {
        this.chunks.shift();
        this.kept -= first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.kept -= excess;
      }
    }
  }
  get discarded(): number {
    return this.total - this.kept;
  }
  get truncated(): boolean {
    return this.discarded > 0;
  }
  buffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

const SIGXCPU = osConstants.signals.SIGXCPU;
const SIGXFSZ = osConstants.signals.SIGXFSZ;

const SIGNAL_NAMES = new Map<number, string>(
  Object.entries(osConstants.signals).map(([name, n]) => [n, name]),
);

/** One helper process and what it reports. */
class Run {
  readonly started: Promise<number>;
  /** Resolves with the result, or rejects when the helper refused before the program ran. */
  readonly finished: Promise<SandboxResult>;
  private readonly child: ChildProcess;
  private readonly out: Capture;
  private readonly err: Capture;
  private readonly t0 = performance.now();
  private readonly startedAt = Date.now();
  private pid = 0;
  private flood = false;
  private killTimer: NodeJS.Timeout | undefined;

  constructor(
    helper: string,
    spec: SandboxSpec,
    stdin: string | Uint8Array | undefined,
    outputBytes: number,
    log: Logger,
    who: CallIdentity,
  ) {
    this.out = new Capture(outputBytes);
    this.err = new Capture(outputBytes);
    // No inherited environment or fds: the helper gets exactly the spec and its five pipes.
    this.child = spawn(helper, ["--run"], {
      stdio: ["pipe", "pipe", "pipe", "pipe", "pipe"],
      env: {},
      windowsHide: true,
    });
    const [stdinPipe, stdoutPipe, stderrPipe, specPipe, statusPipe] = this.child.stdio as [
      Writable,
      Readable,
      Readable,
      Writable,
      Readable,
    ];
    for (const w of [stdinPipe, specPipe]) w.on("error", () => undefined);
    specPipe.end(JSON.stringify(spec));
    stdinPipe.end(stdin === undefined ? undefined : Buffer.from(stdin));
    stdoutPipe.on("data", (c: Buffer) => this.onOutput(this.out, c));
    stderrPipe.on("data", (c: Buffer) => this.onOutput(this.err, c));
    let statusText = "";
    statusPipe.setEncoding("utf8");
    const events: StatusEvent[] = [];
    let onStarted: (pid: number) => void = () => undefined;
    let onRefused: (e: KruxError) => void = () => undefined;
    this.started = new Promise<number>((resolve, reject) => {
      onStarted = resolve;
      onRefused = reject;
    });
    // Parse each complete status line as it arrives so `started` resolves promptly. The helper
    // writes a handful of short lines; anything past 64 KiB is not the helper talking.
    statusPipe.on("data", (c: string) => {
      if (statusText.length < 64 * 1024) statusText += c;
      const lines = statusText.split("\n");
      for (const line of lines.slice(events.length, -1)) {
        let ev: StatusEvent;
        try {
          ev = JSON.parse(line) as StatusEvent;
        } catch {
          ev = { event: "garbage", detail: line.slice(0, 200) };
        }
        events.push(ev);
        if (ev.event === "started" && typeof ev.pid === "number") {
          this.pid = ev.pid;
          onStarted(ev.pid);
        }
      }
    });
    this.finished = new Promise<SandboxResult>((resolve, reject) => {
      this.child.on("error", (e) => {
        const err = new KruxError("Unavailable", `cannot run the sandbox helper: ${e.message}`, {
          helper,
        });
        onRefused(err);
        reject(err);
      });
      this.child.on("close", (code, signal) => {
        if (this.killTimer) clearTimeout(this.killTimer);
        const exit = events.find((e) => e.event === "exit");
        const error = events.find((e) => e.event === "error");
        if (exit && typeof exit.exit_code === "number") {
          const result = this.result(exit);
          onStarted(this.pid);
          resolve(result);
          return;
        }
        const err = refusal(error, code, signal, who);
        log.warn(
          { event: "SandboxRefused", agent: who.agent, capability: who.capability, code: err.code },
          err.message,
        );
        onRefused(err);
        reject(err);
      });
    });
    this.finished.catch(() => undefined);
    this.started.catch(() => undefined);
  }

  private onOutput(capture: Capture, chunk: Buffer): void {
    capture.add(chunk);
    if (!this.flood && this.out.discarded + this.err.discarded > FLOOD_BYTES) {
      this.flood = true;
      this.kill("SIGTERM");
    }
  }

  private result(exit: StatusEvent): SandboxResult {
    const sig = typeof exit.signal === "number" ? (SIGNAL_NAMES.get(exit.signal) ?? null) : null;
    let limit: LimitKind | null = null;
    if (this.flood) limit = "output";
    else if (exit.timed_out) limit = "wall";
    else if (exit.limit === "cpu" || exit.limit === "memory" || exit.limit === "file_size")
      limit = exit.limit;
    // A shell reports a child killed by SIGXCPU or SIGXFSZ as its own status 128+N; only the
    // kernel's rlimit enforcement sends those signals, so the limit is named either way.
    else if (exit.exit_code === 128 + SIGXCPU) limit = "cpu";
    else if (exit.exit_code === 128 + SIGXFSZ) limit = "file_size";
    return {
      exit_code: exit.exit_code as number,
      signal: sig,
      stdout: this.out.buffer(),
      stderr: this.err.buffer(),
      truncated: this.out.truncated || this.err.truncated,
      duration_ms: Math.round(performance.now() - this.t0),
      limit,
    };
  }

  kill(signal: NodeJS.Signals = "SIGTERM"): void {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    // SIGTERM asks the helper to kill the sandbox's pid 1 (and so all of it) and still report;
    // SIGKILL of the helper takes the sandbox with it (pid 1 dies with its parent).
    this.child.kill(signal);
    if (signal !== "SIGKILL" && !this.killTimer) {
      this.killTimer = setTimeout(() => this.child.kill("SIGKILL"), KILL_GRACE_MS);
      this.killTimer.unref();
    }
  }

  /** The background view of this run; `result` is the launcher's (swept) result. */
  handle(result: Promise<SandboxResult>): SandboxProcess {
    const done = result.catch((e: unknown) => ({
      exit_code: 125,
      signal: null,
      stdout: this.out.buffer(),
      stderr: Buffer.concat([this.err.buffer(), Buffer.from(`${(e as Error).message}\n`)]),
      truncated: this.out.truncated || this.err.truncated,
      duration_ms: Math.round(performance.now() - this.t0),
      limit: null,
    }));
    return {
      pid: this.pid,
      startedAt: this.startedAt,
      output: () => ({
        stdout: this.out.buffer(),
        stderr: this.err.buffer(),
        truncated: this.out.truncated || this.err.truncated,
        stdout_bytes: this.out.total,
        stderr_bytes: this.err.total,
      }),
      done,
      kill: (signal?: NodeJS.Signals) => this.kill(signal ?? "SIGTERM"),
    };
  }
}

/** The KruxError for a helper that ended without running the program to an exit report. */
function refusal(
  error: StatusEvent | undefined,
  code: number | null,
  signal: NodeJS.Signals | null,
  who: CallIdentity,
): KruxError {
  const detail = error?.detail ?? `the helper ended with ${signal ?? `status ${String(code)}`}`;
  if (error?.error === "exec" || code === 123) {
    const notFound = /ENOENT|No such file|ENOTDIR|Not a directory/.test(detail);
    return new KruxError(
      "CapabilityError",
      notFound ? `the program was not found in the sandbox: ${detail}` : `exec failed: ${detail}`,
      {
        type: notFound ? "NotFound" : "ExecFailed",
        capability: who.capability,
        recovery: [
          {
            action: "check_path",
            description: 'Check the program with process.run {command: "command -v NAME"}.',
          },
        ],
      },
    );
  }
  if (error?.error === "setup" || code === 122) {
    // A layer the probe reported working failed for this run: refuse rather than run weaker.
    return new KruxError("Unavailable", `the sandbox could not be set up: ${detail}`, {
      capability: who.capability,
    });
  }
  return new KruxError("InternalError", `the sandbox helper failed: ${detail}`, {
    capability: who.capability,
  });
}
