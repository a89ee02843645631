// sandbox: the native helper `kruxos-sandbox` as the rest of the appliance sees it — where the
// binary lives, probing which kernel sandbox layers actually work on this host, and reporting
// them for /health, /v1/meta and `kruxos sandbox diagnose`. It owns the helper's command line and
// the probe format. It does not decide which layers are required (the manifest's
// [sandbox].require, validated by config) nor turn a diagnosis into health status or refusals
// (its callers do, with missingRequired).
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
