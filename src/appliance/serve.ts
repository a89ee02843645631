// `kruxos serve <program>` and `kruxos seal`: one program per process, as supervisord runs them.
import { createRegistry, type Logger } from "../core/index.js";
import { metricsSocket as metricsSocketOf } from "../config/index.js";
import { loadContext, programLogger, type ApplianceContext } from "./context.js";
import { BUILTIN_PROGRAMS, buildInfo, type BuiltinProgram } from "./programs.js";
import { scrapeSockets, serveRegistryOnSocket, startMetricsEndpoint } from "./metrics.js";
import { close } from "./net.js";

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
      metricsSocketOf(ctx.paths.metricsSocketDir, name),
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
