// `kruxos seal` as supervisord runs it: wait for the required programs, then write the sentinel.
// Kept apart from the program servers so this process starts without loading them.
import { unixRequest } from "../core/index.js";
import { kruxosVerb, metricsSocket } from "../config/index.js";
import { loadContext, programLogger, type ApplianceContext } from "./context.js";
import { seal } from "./seal.js";
import { getAllProcessInfo } from "./supervisord-client.js";

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
    const sock = metricsSocket(ctx.paths.metricsSocketDir, verb.arg ?? "");
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
