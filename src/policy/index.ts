// policy: the layered YAML policy (system → org → agent). It owns reading, validating and
// compiling policy files, how the appliance's engine is opened from the manifest, atomic hot reload
// by generation, its own health component, decisions with rule id and file:line, rate-limit
// counters, check traces, diffs, and egress host:port decisions and grants. It decides but does not
// execute calls, hold approvals or write audit records (it emits reload results for the caller to
// audit).
export { PolicyEngine } from "./engine.js";
/** The agent-name rule is config's (agents.db shares it); kept here under its old name. */
export { AGENT_NAME } from "../config/index.js";
export type { PolicyEngineOptions } from "./engine.js";
export { openPolicyEngine } from "./open.js";
export { compilePolicy, policySchema } from "./compile.js";
export type { CompileResult } from "./compile.js";
export { diffPolicies } from "./diff.js";
export { formatTrace } from "./trace.js";
export { MAX_MATCH_INPUT, redosHazard } from "./conditions.js";
export { TIERS, TIER_RANK, formatProblem } from "./types.js";
export type {
  Tier,
  LayerKind,
  PolicySource,
  PolicyRequest,
  Decision,
  LayerTrace,
  MatchKind,
  Trace,
  EgressDecision,
  PolicyProblem,
  ReloadResult,
  PolicyChange,
} from "./types.js";
