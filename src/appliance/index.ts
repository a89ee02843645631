// appliance: composition of the subsystems into programs and their lifecycle — stage A of the
// boot, one starter per program (proxy, gateway, dashboard) and the one place capability handlers
// get their ports, supervisord and the seal, host mode, the metrics endpoint, the refusals' audit
// sampling. It wires; it holds no policy, capability or protocol logic of its own.
import type { BootOptions } from "./boot.js";
import type { BuiltinProgram } from "./programs.js";
import type { UpOptions } from "./up.js";

// The program servers (fastify, ws, SQLite …) load only when a verb needs them, so light verbs such
// as `kruxos seal` and the image healthcheck start quickly.
export async function boot(opts: BootOptions): Promise<number> {
  return (await import("./boot.js")).boot(opts);
}
export async function up(opts: UpOptions): Promise<number> {
  return (await import("./up.js")).up(opts);
}
export async function serveProgram(
  name: BuiltinProgram,
  opts: { manifest?: string },
): Promise<number> {
  return (await import("./serve.js")).serveProgram(name, opts);
}
export type { BootOptions, UpOptions };
export { sealProgram } from "./seal-program.js";
export { loadContext } from "./context.js";
export type { ApplianceContext } from "./context.js";
export { parseProcessInfo } from "./supervisord-client.js";
export { seal } from "./seal.js";
export type { SealOptions } from "./seal.js";
export { HostRunner } from "./host-runner.js";
export type { BuiltinProgram } from "./programs.js";
