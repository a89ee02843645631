// appliance: composition of the subsystems into programs and their lifecycle — stage A of the
// boot, supervisord and the seal, host mode, the metrics endpoint. It wires; it holds no policy,
// capability or protocol logic of its own.
export { boot } from "./boot.js";
export type { BootOptions } from "./boot.js";
export { up } from "./up.js";
export type { UpOptions } from "./up.js";
export { serveProgram, sealProgram } from "./serve.js";
export { loadContext, resolveManifestPath } from "./context.js";
export type { ApplianceContext } from "./context.js";
export { parseProcessInfo } from "./supervisord-client.js";
export { seal } from "./seal.js";
export type { SealOptions } from "./seal.js";
export { HostRunner } from "./host-runner.js";
export type { BuiltinProgram } from "./programs.js";
