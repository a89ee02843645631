// sandbox: running agent code under the native helper `kruxos-sandbox`. It owns the helper's
// command line and probe format, probing which kernel layers work on this host and the sandbox
// health component built from that probe, the launcher (the run spec and its schema check, the
// pinned environment, the mandatory-deny guard over the workspace, limits, cancellation, results),
// and delegated cgroup setup. It does not decide which layers are required (the manifest's
// [sandbox].require, validated by config), talk to the network (a sandbox's only way out is the
// egress proxy's socket), or read secrets (the per-call proxy credential is minted by a function
// it is handed).
export {
  LAYER_NAMES,
  PROBE_VERSION,
  helperPath,
  probeSandbox,
  parseProbeOutput,
  missingRequired,
  formatDiagnosis,
} from "./probe.js";
export type { LayerName, LayerStatus, SandboxDiagnosis } from "./probe.js";
export { sandboxHealth } from "./health.js";
export { createLauncher } from "./launcher.js";
export type { LauncherOptions, SandboxLauncher } from "./launcher.js";
export { SPEC_VERSION, RELAY_PORT, SANDBOX_PATH, baseEnvironment, validateSpec } from "./spec.js";
export type { SandboxSpec } from "./spec.js";
export { scanMandatoryDeny } from "./workspace-guard.js";
export { delegatedCgroup } from "./cgroup.js";
export type { CgroupSetup } from "./cgroup.js";
