// `kruxos policy diff OLD NEW`: which agent × capability pairs change their effective tier.
import type { PolicyEngine } from "./engine.js";
import type { PolicyChange } from "./types.js";

/**
 * Every agent × capability whose tier with inputs {} changes, or whose set of possible tiers (any
 * inputs, conditions treated as unknown) changes — so a loosened input-dependent rule is reported
 * even when the empty-input tier stays the same. Consumes no rate-limit budget.
 */
export function diffPolicies(
  before: PolicyEngine,
  after: PolicyEngine,
  agents: readonly string[],
  capabilities: readonly string[],
): PolicyChange[] {
  const changes: PolicyChange[] = [];
  for (const agent of agents) {
    for (const capability of capabilities) {
      const from = before.explain({ agent, capability, inputs: {} }).decision.tier;
      const to = after.explain({ agent, capability, inputs: {} }).decision.tier;
      const possibleFrom = before.possibleTiers(agent, capability);
      const possibleTo = after.possibleTiers(agent, capability);
      if (from !== to || possibleFrom.join() !== possibleTo.join()) {
        changes.push({
          agent,
          capability,
          from,
          to,
          possible_from: possibleFrom,
          possible_to: possibleTo,
        });
      }
    }
  }
  return changes;
}
