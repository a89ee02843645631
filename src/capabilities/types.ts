// The shapes shared by capability definitions, the registry and handlers. CallContext and
// CapabilityHandler are the contract every handler (in-process or sandboxed) is written against;
// keep them small and stable.

import type { Recovery } from "../core/index.js";

export type PermissionTier = "autonomous" | "notify" | "approval_required" | "blocked";

/** The fixed recovery vocabulary of schema/capability.schema.json (definitions.recovery.action). */
export type RecoveryAction =
  | "retry"
  | "retry_later"
  | "fix_inputs"
  | "reduce_scope"
  | "increase_timeout"
  | "check_path"
  | "check_state"
  | "use_other_capability"
  | "request_approval"
  | "wait_for_approval"
  | "ask_operator";

export type JsonSchema = Readonly<Record<string, unknown>>;

export interface SideEffects {
  readonly reads: boolean;
  readonly writes: boolean;
  readonly destructive: boolean;
  readonly idempotent: boolean;
  readonly network: boolean;
}

/** A recovery step whose action is one of the capability vocabulary's (core's Recovery, narrowed). */
export type RecoveryStep = Recovery<RecoveryAction>;

export interface CapabilityErrorSpec {
  /** PascalCase; sent as data.type of a -32005 CapabilityError. */
  readonly type: string;
  readonly when: string;
  readonly recovery: readonly RecoveryStep[];
}

export interface CommonPattern {
  readonly description: string;
  readonly inputs: Readonly<Record<string, unknown>>;
}

/** One validated, deep-frozen config/capabilities/<category>/<verb>.yaml. */
export interface CapabilityDefinition {
  readonly schema_version: 1;
  readonly name: string;
  readonly category: string;
  readonly version: number;
  readonly purpose: string;
  readonly when_to_use: string;
  readonly permission_tier: PermissionTier;
  readonly tags: readonly string[];
  readonly execution: "in_process" | "sandboxed";
  /** Hard wall-clock ceiling of one call, enforced by the gateway. */
  readonly timeout_s: number;
  readonly side_effects: SideEffects;
  readonly inputs: JsonSchema;
  readonly outputs: JsonSchema;
  readonly common_patterns: readonly CommonPattern[];
  readonly errors: readonly CapabilityErrorSpec[];
}

/** What a handler knows about the call it serves. Nothing else is ambient. */
export interface CallContext {
  /** The calling agent's name. */
  readonly agent: string;
  /** The agent's session id. */
  readonly session: string;
  /** The call's id, `call-<seq>` of its audit intent record: ties sandboxes and egress to it. */
  readonly callId: string;
  /** The capability being called. */
  readonly capability: string;
  /** Absolute host path of the workspace root that agents address as /workspace. */
  readonly workspaceRoot: string;
  /**
   * Aborted when the call's timeout passes or the client goes away (socket closed, MCP
   * cancellation, HTTP request aborted); a sandboxed run is then killed.
   */
  readonly signal: AbortSignal;
  /**
   * The network grant policy gives this call: true when the agent may reach anything through the
   * egress proxy (which still decides every connection). Sandboxes get the proxy relay only then.
   */
  readonly egress: boolean;
  /** The transaction the call belongs to, when the agent named one. */
  readonly transactionId?: string;
  /** Policy's answer for a mandatory-deny path (relative to the workspace): true when policy names it. */
  readonly mandatoryDenyAllowed: (relPath: string) => boolean;
}

/**
 * Executes one capability. `inputs` have already passed the capability's input schema (defaults
 * applied); the resolved value must match its output schema. Failures throw (the gateway maps them).
 */
export type CapabilityHandler = (inputs: unknown, ctx: CallContext) => Promise<unknown>;

/** Where agents address the workspace in every mode (SPEC §5). */
export const AGENT_WORKSPACE = "/workspace";
