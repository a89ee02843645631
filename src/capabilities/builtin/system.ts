// In-process handlers for system.info, system.health and system.metrics. They take their facts
// from functions the gateway passes in (the /v1/meta body, the readiness health, the merged metrics
// text) and answer exactly the documented output shapes, nothing more.
import type { ComponentHealth, HealthStatus } from "../../core/index.js";
import { AGENT_WORKSPACE, type CapabilityHandler } from "../types.js";
import { parsePrometheusText, type MetricFamily } from "./prometheus.js";

export interface SystemHandlerDeps {
  /** The GET /v1/meta body (name, version, mode, manifest_sha256, ports, capability_count, …). */
  readonly meta: () => Readonly<Record<string, unknown>>;
  /** The aggregate health, as GET /health answers it. */
  readonly health: () =>
    | { status: HealthStatus; components: readonly ComponentHealth[] }
    | Promise<{ status: HealthStatus; components: readonly ComponentHealth[] }>;
  /** The appliance's Prometheus exposition text (all programs merged). */
  readonly metricsText: () => Promise<string>;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown, dflt: string): string => (typeof v === "string" ? v : dflt);
const count = (v: unknown): number =>
  Number.isInteger(v) && (v as number) >= 0 ? (v as number) : 0;
const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];

function info(meta: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const ports: Record<string, number> = {};
  if (isRecord(meta.ports))
    for (const [k, v] of Object.entries(meta.ports))
      if (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 65535)
        ports[k] = v as number;
  const sb = isRecord(meta.sandbox) ? meta.sandbox : {};
  return {
    name: str(meta.name, "kruxos"),
    version: str(meta.version, "0.0.0"),
    mode: meta.mode === "image" ? "image" : "host",
    ...(typeof meta.manifest_sha256 === "string" ? { manifest_sha256: meta.manifest_sha256 } : {}),
    workspace: AGENT_WORKSPACE,
    ports,
    capability_count: count(meta.capability_count),
    policy_generation: count(meta.policy_generation),
    sandbox: {
      layers: strings(sb.layers),
      required: strings(sb.required),
      landlock_abi: Number.isInteger(sb.landlock_abi) ? sb.landlock_abi : null,
      cgroup_mode: typeof sb.cgroup_mode === "string" ? sb.cgroup_mode : null,
    },
  };
}

function component(c: ComponentHealth): Record<string, unknown> {
  return {
    name: c.name,
    status: c.status,
    ...(typeof c.detail === "string" ? { detail: c.detail } : {}),
    ...(isRecord(c.facts) ? { facts: { ...c.facts } } : {}),
  };
}

interface MetricsInputs {
  readonly prefix?: string;
  readonly format?: "summary" | "prometheus";
  readonly max_samples?: number;
}

/** Keep only families with the prefix, and at most `max` samples (summary) or lines (text). */
function metrics(text: string, inputs: MetricsInputs): Record<string, unknown> {
  const prefix = inputs.prefix ?? "";
  const max = inputs.max_samples ?? 1000;
  if (inputs.format === "prometheus") {
    const kept: string[] = [];
    let truncated = false;
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      const name = line.startsWith("#") ? (line.split(/\s+/)[2] ?? "") : line.split(/[{\s]/)[0];
      if (!name?.startsWith(prefix)) continue;
      if (kept.length >= max) {
        truncated = true;
        break;
      }
      kept.push(line);
    }
    return { format: "prometheus", text: kept.length ? `${kept.join("\n")}\n` : "", truncated };
  }
  const families: MetricFamily[] = [];
  let left = max;
  let truncated = false;
  for (const f of parsePrometheusText(text)) {
    if (!f.name.startsWith(prefix)) continue;
    if (left <= 0) {
      truncated = true;
      break;
    }
    const samples = f.samples.slice(0, left);
    if (samples.length < f.samples.length) truncated = true;
    left -= samples.length;
    families.push({ name: f.name, type: f.type, help: f.help, samples });
  }
  return { format: "summary", families, truncated };
}

export function createSystemHandlers(
  deps: SystemHandlerDeps,
): Readonly<Record<"system.info" | "system.health" | "system.metrics", CapabilityHandler>> {
  return Object.freeze({
    "system.info": async () => info(deps.meta()),
    "system.health": async () => {
      const h = await deps.health();
      return { status: h.status, components: h.components.map(component) };
    },
    "system.metrics": async (inputs: unknown) =>
      metrics(await deps.metricsText(), (inputs ?? {}) as MetricsInputs),
  });
}
