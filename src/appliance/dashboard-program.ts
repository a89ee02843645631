// The dashboard program: the operators' web UI, its assets built into the app, `/api/*` proxied to
// the user API and `/ws` to the event stream.
import { createDashboardServer } from "../supervision/index.js";
import { httpObserver } from "./metrics.js";
import { close, listen } from "./net.js";
import {
  guardOf,
  intakeRefusals,
  starting,
  type ProgramRuntime,
  type RunningProgram,
} from "./program-support.js";

export function startDashboard({ ctx, log, registry }: ProgramRuntime): Promise<RunningProgram> {
  const m = ctx.loaded.manifest;
  return starting(log, async (opened) => {
    const refusals = opened.add("refusals", intakeRefusals(ctx, log, registry), (r) => r.close());
    const server = opened.add(
      "dashboard listener",
      createDashboardServer({
        guard: guardOf(ctx, registry, refusals),
        assetsDir: ctx.paths.dashboardDir,
        apiPort: m.supervision.api_port,
        wsPort: m.supervision.ws_port,
        upstreamHost: m.supervision.host === "0.0.0.0" ? "127.0.0.1" : m.supervision.host,
        onRequest: httpObserver(registry, "dashboard"),
      }),
      close,
    );
    await listen(server, { host: m.dashboard.host, port: m.dashboard.port });
    log.info(
      { event: "ProgramListening", address: `${m.dashboard.host}:${m.dashboard.port}` },
      "dashboard listening",
    );
  });
}
