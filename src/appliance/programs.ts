// The built-in programs: proxy, gateway, dashboard — one starter each (proxy-program.ts,
// gateway-program.ts, dashboard-program.ts). The same starters run as separate processes under
// supervisord (`kruxos serve X`) and side by side in one process (`kruxos up`).
import { Gauge } from "../core/index.js";
import { startDashboard } from "./dashboard-program.js";
import { startGateway } from "./gateway-program.js";
import { buildInfo } from "./metrics.js";
import type { BuiltinProgram, ProgramRuntime, RunningProgram } from "./program-support.js";
import { startProxy } from "./proxy-program.js";

export type { BuiltinProgram, ProgramRuntime, RunningProgram };

type Starter = (rt: ProgramRuntime) => Promise<RunningProgram>;

const STARTERS: ReadonlyMap<BuiltinProgram, Starter> = new Map([
  ["proxy", startProxy],
  ["gateway", startGateway],
  ["dashboard", startDashboard],
]);

/** Start a built-in program; once it serves, `kruxos_program_up{program}` is 1 in its registry. */
async function startBuiltin(name: BuiltinProgram, rt: ProgramRuntime): Promise<RunningProgram> {
  const start = STARTERS.get(name);
  if (!start) throw new Error(`no built-in program ${name}`);
  const running = await start(rt);
  new Gauge({
    name: "kruxos_program_up",
    help: "1 while the program serves.",
    registers: [rt.registry],
  }).set(1);
  return running;
}

export const BUILTIN_PROGRAMS: Readonly<Record<BuiltinProgram, Starter>> = {
  proxy: (rt) => startBuiltin("proxy", rt),
  gateway: (rt) => startBuiltin("gateway", rt),
  dashboard: (rt) => startBuiltin("dashboard", rt),
};

export { buildInfo };
