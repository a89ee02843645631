// The sandbox component of /ready and /health, from the probe's diagnosis and the manifest's
// [sandbox].require.
import type { ComponentHealth } from "../core/index.js";
import { missingRequired, type SandboxDiagnosis } from "./probe.js";

/**
 * Ok when every required layer works; degraded otherwise (sandboxed capabilities then refuse,
 * while the rest of the appliance serves). The facts list the layers that work here.
 */
export function sandboxHealth(d: SandboxDiagnosis, required: readonly string[]): ComponentHealth {
  const missing = missingRequired(d, required);
  return {
    name: "sandbox",
    status: missing.length === 0 ? "ok" : "degraded",
    ...(missing.length
      ? {
          detail: `required layers unavailable: ${missing.join(", ")}; sandboxed capabilities refuse`,
        }
      : {}),
    facts: {
      layers: Object.entries(d.layers)
        .filter(([, l]) => l.ok)
        .map(([n]) => n),
      landlock_abi: d.landlock_abi,
      cgroup_mode: d.cgroup_mode,
    },
  };
}
