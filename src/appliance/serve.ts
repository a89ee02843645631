// `kruxos serve <program>` and `kruxos seal`: one program per process, as supervisord runs them.
import { createRegistry, unixRequest, type Logger } from "../core/index.js";
import { kruxosVerb } from "../config/index.js";
import path from "node:path";
import { loadContext, programLogger, type ApplianceContext } from "./context.js";
import { BUILTIN_PROGRAMS, buildInfo, type BuiltinProgram } from "./programs.js";
import { scrapeSockets, serveRegistryOnSocket, startMetricsEndpoint } from "./metrics.js";
import { close } from "./net.js";
import { seal } from "./seal.js";
import { getAllProcessInfo } from "./supervisord-client.js";

/** Resolve when SIGTERM or SIGINT arrives. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (s: NodeJS.Signals): void => {
      process.off("SIGTERM", on);
      process.off("SIGINT", on);
      resolve(s);
    };
    process.on("SIGTERM", on);
    process.on("SIGINT", on);
  });
}

export async function serveProgram(
  name: BuiltinProgram,
  opts: { manifest?: string },
): Promise<number> {
  let log: Logger = programLogger(undefined, name);
  let ctx: ApplianceContext;
  try {
    ctx = loadContext({ manifest: opts.manifest });
  } catch (err) {
    log.error(
      { event: "ProgramFailed", error: (err as Error).message },
      "cannot load the manifest",
    );
    return 1;
  }
  log = programLogger(ctx, name);
  const registry = createRegistry(name);
  buildInfo(registry, ctx.version, ctx.loaded.sha256);
  try {
    const program = await BUILTIN_PROGRAMS[name]({ ctx, log, registry });
    const metricsSocket = await serveRegistryOnSocket(
      registry,
      path.join(ctx.paths.metricsSocketDir, `${name}.sock`),
    );
    // The gateway also serves the appliance-wide endpoint, merging every program's registry.
    const endpoint =
      name === "gateway"
        ? await startMetricsEndpoint(
            {
              host: ctx.loaded.manifest.observability.metrics_host,
              port: ctx.loaded.manifest.observability.metrics_port,
            },
            async () => [
              await registry.metrics(),
              ...(await scrapeSockets(ctx.paths.metricsSocketDir, name)),
            ],
          )
        : undefined;
    const signal = await untilSignal();
    log.info({ event: "ProgramStopping", signal }, "stopping");
    await program.close();
    await close(metricsSocket);
    if (endpoint) await close(endpoint);
    return 0;
  } catch (err) {
    log.error({ event: "ProgramFailed", error: (err as Error).message }, `${name} failed`);
    return 1;
  }
}

export async function sealProgram(opts: { manifest?: string }): Promise<number> {
  const base = programLogger(undefined, "bootstrap-seal").child({ stage: "bootstrap" });
  let ctx: ApplianceContext;
  try {
    ctx = loadContext({ manifest: opts.manifest });
  } catch (err) {
    base.error(
      { event: "BootstrapSealFailed", error: (err as Error).message },
      "cannot load the manifest",
    );
    return 1;
  }
  const m = ctx.loaded.manifest;
  const log = programLogger(ctx, "bootstrap-seal").child({ stage: "bootstrap" });
  const required = Object.entries(m.programs)
    .filter(([, p]) => p.required_for_readiness)
    .map(([n]) => n);
  // supervisord calls a program RUNNING once it has stayed up `startsecs`; a built-in program is
  // only counted once it also answers on its metrics socket, which it binds after its listeners.
  const serving = async (name: string): Promise<boolean> => {
    const verb = kruxosVerb(m.programs[name]?.command ?? "");
    if (verb?.verb !== "serve") return true;
    const sock = path.join(ctx.paths.metricsSocketDir, `${verb.arg ?? ""}.sock`);
    return unixRequest(sock, "GET", "/metrics", undefined, {}, 1000).then(
      (r) => r.status === 200,
      () => false,
    );
  };
  const ok = await seal({
    states: async () =>
      new Map(
        await Promise.all(
          (await getAllProcessInfo(ctx.paths.supervisorSocket)).map(
            async (p): Promise<[string, string]> => [
              p.name,
              p.statename === "RUNNING" && !(await serving(p.name)) ? "STARTING" : p.statename,
            ],
          ),
        ),
      ),
    required,
    sentinel: ctx.paths.sentinel,
    timeoutMs: m.appliance.seal_timeout_s * 1000,
    pollMs: m.appliance.seal_poll_ms,
    log,
  });
  return ok ? 0 : 1;
}
