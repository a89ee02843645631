// The health vocabulary shared by /ready, /health and `kruxos health`.

export type HealthStatus = "ok" | "degraded" | "failing";

export interface ComponentHealth {
  readonly name: string;
  readonly status: HealthStatus;
  /** Why the component is not ok, in words an operator can act on. */
  readonly detail?: string;
  /** Component-specific facts (generation, head seq, layers …). */
  readonly facts?: Readonly<Record<string, unknown>>;
}

export function worst(statuses: readonly HealthStatus[]): HealthStatus {
  if (statuses.includes("failing")) return "failing";
  if (statuses.includes("degraded")) return "degraded";
  return "ok";
}
