// `kruxos up`: host mode. Stage A, then every manifest program in this process (other commands as
// children), the appliance-wide metrics endpoint, and the seal. SIGINT/SIGTERM end it within 10 s
// whatever state the programs are in; a program required for readiness that can no longer come up
// ends it with exit 1 and a message saying which program, which address and what to do.
import net from "node:net";
import path from "node:path";
import { createLogger, createRegistry, type Logger, type Registry } from "../core/index.js";
import { kruxosVerb, type ProgramSpec } from "../config/index.js";
import { HostRunner, type InProcessProgram, type ProgramFailure } from "./host-runner.js";
import { BUILTIN_PROGRAMS, buildInfo, type BuiltinProgram } from "./programs.js";
import { startMetricsEndpoint } from "./metrics.js";
import { close } from "./net.js";
import { seal } from "./seal.js";
import { untilSignal } from "./serve.js";
import { stageA } from "./stage-a.js";
import { programLogger } from "./context.js";

// The operator is promised that a signal ends host mode within 10 s. The programs get most of it;
// whatever is still pending at the limit does not hold the process.
const STOP_GRACE_MS = 7_000;
const SHUTDOWN_LIMIT_MS = 9_000;
// Once everything is closed the process ends by itself; a handle still open after this is a leak.
const EXIT_GRACE_MS = 500;

export interface UpOptions {
  readonly manifest?: string | undefined;
  readonly home: string;
  /** Where the human-readable banner goes (stderr keeps stdout pure JSON logs). */
  readonly banner?: NodeJS.WritableStream;
}

export async function up(opts: UpOptions): Promise<number> {
  const bootLog = createLogger({ program: "boot" }).child({ stage: "bootstrap" });
  let result;
  try {
    result = await stageA(
      { manifest: opts.manifest, home: path.resolve(opts.home), withSupervisord: false },
      bootLog,
    );
  } catch {
    return 1;
  }
  const { ctx } = result;
  const m = ctx.loaded.manifest;
  const hostRegistry = createRegistry("kruxos");
  buildInfo(hostRegistry, ctx.version, ctx.loaded.sha256);
  const registries: Registry[] = [hostRegistry];
  const sealAbort = new AbortController();

  const resolve = (name: string, spec: ProgramSpec): InProcessProgram | undefined => {
    const verb = kruxosVerb(spec.command);
    if (verb?.verb === "serve" && verb.arg && Object.hasOwn(BUILTIN_PROGRAMS, verb.arg)) {
      const program = verb.arg as BuiltinProgram;
      const registry = createRegistry(program, false);
      registries.push(registry);
      return {
        // A failed attempt may have registered metrics before failing; each attempt starts clean.
        start: () => {
          registry.clear(); // (clear() also drops the default labels)
          registry.setDefaultLabels({ program });
          return BUILTIN_PROGRAMS[program]({ ctx, log: programLogger(ctx, program), registry });
        },
      };
    }
    if (verb?.verb === "seal")
      return {
        start: async () => {
          const exited = seal({
            states: async () => runner.states(),
            required: Object.entries(m.programs)
              .filter(([, p]) => p.required_for_readiness)
              .map(([n]) => n),
            sentinel: ctx.paths.sentinel,
            timeoutMs: m.appliance.seal_timeout_s * 1000,
            pollMs: m.appliance.seal_poll_ms,
            log: programLogger(ctx, name).child({ stage: "bootstrap" }),
            signal: sealAbort.signal,
          });
          return { close: async () => sealAbort.abort(), exited };
        },
      };
    return undefined;
  };
  const env = {
    ...process.env,
    KRUXOS_HOME: ctx.paths.home,
    KRUXOS_MANIFEST: ctx.paths.manifestFile,
    PATH: `${ctx.paths.binDir}:${process.env.PATH ?? ""}`,
  };
  // What ends this process: a signal, or a required program that can no longer come up.
  let end: End | undefined;
  let finish: (e: End) => void = () => undefined;
  const ended = new Promise<End>((resolve) => {
    finish = (e) => {
      end ??= e;
      resolve(end);
    };
  });
  const runner = HostRunner.fromManifest(m, resolve, programLogger(ctx, "kruxos"), env, {
    onUnrecoverable: (failure) => finish({ failure }),
  });
  const metrics = await startMetricsEndpoint(
    { host: m.observability.metrics_host, port: m.observability.metrics_port },
    () => Promise.all(registries.map((r) => r.metrics())),
  ).catch((err: Error) => {
    bootLog.error(
      { event: "MetricsUnavailable", error: err.message },
      "metrics endpoint could not start",
    );
    return undefined;
  });
  void untilSignal().then((signal) => finish({ signal }));
  await Promise.race([runner.startAll(), ended]);

  const out = opts.banner ?? process.stderr;
  if (end === undefined) {
    const host = (h: string): string => (h === "0.0.0.0" || h === "::" ? "127.0.0.1" : h);
    out.write(
      [
        "",
        `KruxOS ${ctx.version} is up (host mode, home ${ctx.paths.home})`,
        `  dashboard:   http://${host(m.dashboard.host)}:${m.dashboard.port}/`,
        `  agents:      ws://${host(m.gateway.host)}:${m.gateway.port}/rpc  (probes: /livez /ready /health /v1/meta)`,
        `  metrics:     http://${host(m.observability.metrics_host)}:${m.observability.metrics_port}/metrics`,
        `  admin token: ${result.adminTokenFile}${result.firstBoot ? " (created now)" : ""}`,
        "  stop with Ctrl-C",
        "",
      ].join("\n"),
    );
  }

  const why = await ended;
  const code = "failure" in why ? 1 : 0;
  if ("failure" in why) hostModeFailed(why.failure, bootLog, out);
  bootLog.info(
    {
      event: "ShutdownStarted",
      ...("signal" in why ? { signal: why.signal } : { reason: "HostModeFailed" }),
    },
    "shutting down",
  );
  // A close that never settles must not keep the process: past the limit it ends anyway.
  const limit = setTimeout(() => {
    bootLog.error(
      { event: "ShutdownTimedOut", limit_ms: SHUTDOWN_LIMIT_MS, ...openHandles() },
      "shutdown did not complete in time; exiting",
    );
    process.exit(1);
  }, SHUTDOWN_LIMIT_MS);
  sealAbort.abort();
  await runner.stopAll(STOP_GRACE_MS);
  if (metrics) await close(metrics);
  clearTimeout(limit);
  bootLog.info({ event: "ShutdownCompleted" }, "stopped");
  // Everything this process started is closed, so the event loop should now be empty. If a
  // program left something open (a listener of a start that failed halfway, say), name it, and
  // exit anyway: unref'd, this timer only fires when something else keeps the process alive.
  setTimeout(() => {
    bootLog.warn(
      { event: "ShutdownLeftHandles", ...openHandles() },
      "handles still open after shutdown; exiting",
    );
    process.exit(code);
  }, EXIT_GRACE_MS).unref();
  return code;
}

type End = { readonly signal: NodeJS.Signals } | { readonly failure: ProgramFailure };

/** The loud failure: one JSON line for machines, a few plain lines on stderr for the operator. */
function hostModeFailed(f: ProgramFailure, log: Logger, out: NodeJS.WritableStream): void {
  const inUse = f.reason === "PortInUse";
  const where = f.address ?? "its address";
  const headline = inUse
    ? `${f.program} cannot listen on ${where}: the address is already in use`
    : `${f.program} cannot start (${f.attempts} attempt${f.attempts === 1 ? "" : "s"}): ${f.error}`;
  const advice = inUse
    ? `Is another KruxOS appliance (or another service) running on ${where}? Stop it, or give ` +
      "this appliance its own home and ports: kruxos up --home DIR --manifest FILE, with a " +
      "manifest whose listeners use other ports."
    : `${f.program} is required for readiness and is not retried any more; its ProgramState ` +
      "log lines say why. Fix that and run kruxos up again.";
  log.error(
    {
      event: "HostModeFailed",
      program: f.program,
      reason: f.reason,
      ...(f.address !== undefined ? { address: f.address } : {}),
      error: f.error,
      advice,
    },
    `${headline}; host mode stops`,
  );
  out.write(`\nkruxos up: ${headline}.\n  ${advice}\n  Stopping (exit 1).\n\n`);
}

/**
 * What still keeps the event loop alive. process.getActiveResourcesInfo() names only types
 * ("PipeWrap"); the handles themselves say which listener or child it is.
 */
function openHandles(): { resources: string[]; handles: string[] } {
  const handles =
    (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles?.() ?? [];
  return {
    resources: process.getActiveResourcesInfo(),
    handles: handles.flatMap((h) => {
      if (h instanceof net.Server) {
        const a = h.address();
        return [`server ${typeof a === "string" ? a : a ? `${a.address}:${a.port}` : "(unbound)"}`];
      }
      if (h instanceof net.Socket) {
        // stdio is a handle too, and not a leak.
        const fd = (h as unknown as { fd?: number }).fd;
        if (fd !== undefined && fd <= 2) return [];
        return [`socket ${h.remoteAddress ?? "unix"}:${h.remotePort ?? ""}`];
      }
      const pid = (h as { pid?: unknown }).pid;
      if (typeof pid === "number") return [`child ${pid}`];
      return [(h as object | null)?.constructor?.name ?? typeof h];
    }),
  };
}
