// Component health the gateway's readiness checks, until each subsystem answers for its own.
import { unixRequest, type ComponentHealth } from "../core/index.js";
import { formatProblem, type PolicyEngine, type ReloadResult } from "../policy/index.js";
import { missingRequired, type SandboxDiagnosis } from "../sandbox/index.js";

export function policyHealth(
  policy: PolicyEngine,
  lastReload: ReloadResult | undefined,
  files: number,
): ComponentHealth {
  if (policy.generation === 0)
    return {
      name: "policy",
      status: "failing",
      detail:
        lastReload && !lastReload.ok
          ? lastReload.problems.map(formatProblem).join("; ")
          : "no policy loaded",
    };
  const rejected = lastReload && !lastReload.ok;
  return {
    name: "policy",
    status: rejected ? "degraded" : "ok",
    ...(rejected
      ? { detail: `last reload rejected; generation ${policy.generation} stays in force` }
      : {}),
    facts: { generation: policy.generation, files, entries: policy.capabilities().length },
  };
}

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

export async function proxyHealth(socket: string): Promise<ComponentHealth> {
  try {
    const r = await unixRequest(socket, "GET", "/livez", undefined, {}, 1000);
    return r.status === 200
      ? { name: "proxy", status: "ok" }
      : { name: "proxy", status: "failing", detail: `HTTP ${r.status}` };
  } catch (err) {
    return { name: "proxy", status: "failing", detail: (err as Error).message };
  }
}
