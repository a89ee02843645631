// `kruxos up`: host mode. Stage A, then every manifest program in this process (other commands as
// children), the appliance-wide metrics endpoint, and the seal. SIGINT/SIGTERM stop it cleanly.
import path from "node:path";
import { createLogger, createRegistry, type Registry } from "../core/index.js";
import { kruxosVerb, type ProgramSpec } from "../config/index.js";
import { HostRunner, type InProcessProgram } from "./host-runner.js";
import { BUILTIN_PROGRAMS, buildInfo, type BuiltinProgram } from "./programs.js";
import { startMetricsEndpoint } from "./metrics.js";
import { close } from "./net.js";
import { seal } from "./seal.js";
import { untilSignal } from "./serve.js";
import { stageA } from "./stage-a.js";
import { programLogger } from "./context.js";

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
    PATH: `${path.join(ctx.paths.app, "bin")}:${process.env.PATH ?? ""}`,
  };
  const runner = HostRunner.fromManifest(m, resolve, programLogger(ctx, "kruxos"), env);
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
  const stopped = untilSignal();
  await runner.startAll();

  const host = (h: string): string => (h === "0.0.0.0" || h === "::" ? "127.0.0.1" : h);
  const out = opts.banner ?? process.stderr;
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

  const signal = await stopped;
  bootLog.info({ event: "ShutdownStarted", signal }, "shutting down");
  sealAbort.abort();
  await runner.stopAll();
  if (metrics) await close(metrics);
  bootLog.info({ event: "ShutdownCompleted" }, "stopped");
  return 0;
}
