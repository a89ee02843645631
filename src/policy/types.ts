// The public vocabulary of the policy engine: tiers, requests, decisions, traces and problems.

export const TIERS = ["autonomous", "notify", "approval_required", "blocked"] as const;
export type Tier = (typeof TIERS)[number];

/** Tier → rank; a higher rank is stricter. */
export const TIER_RANK: Readonly<Record<Tier, number>> = Object.freeze({
  autonomous: 0,
  notify: 1,
  approval_required: 2,
  blocked: 3,
});

/** Which kind of file a layer comes from. */
export type LayerKind = "system" | "org" | "agent";

/**
 * One policy file: its YAML text (what the engine reads from disk), or an already parsed document
 * (policy held as data, e.g. JSON from an API; it goes through the same schema and semantic checks,
 * but has no positions, so its lines are reported as 0).
 */
export type PolicySource = {
  readonly kind: LayerKind;
  /** Absolute path (or any stable label) reported in decisions as `file`. */
  readonly file: string;
  /** For kind "agent": the agent the file applies to (from `<name>.yaml`). */
  readonly agent?: string;
} & (
  | { readonly text: string; readonly data?: never }
  | { readonly data: unknown; readonly text?: never }
);

export interface PolicyRequest {
  readonly agent: string;
  readonly capability: string;
  readonly inputs?: unknown;
  /** Clock for rate limits (epoch ms or a Date); defaults to the engine's clock. */
  readonly now?: number | Date;
}

export interface Decision {
  readonly tier: Tier;
  /** The deciding rule id, "capability" (an entry's own tier), "rate_limit" or "default". */
  readonly rule: string;
  readonly file: string;
  /** 1-based line in `file`; 0 when no file decided (no policy loaded / built-in default). */
  readonly line: number;
  readonly generation: number;
  /** "system", "org", "agent", or "<kind>/agents.<name>" for an agents section. */
  readonly layer: string;
  readonly reason?: string;
  /** Operators get an event: the tier is notify or a deciding entry has `notify: true`. */
  readonly notify: boolean;
  readonly rate_limited?: { readonly retry_after_s: number };
}

export type MatchKind = "exact" | "wildcard" | "any";

/** What one layer contributed to a decision (`kruxos policy check`). */
export interface LayerTrace {
  readonly layer: string;
  readonly file: string;
  /** The entry key that decided the layer, or null when the layer said nothing. */
  readonly entry: string | null;
  readonly match: MatchKind | "none";
  /** Rule id, "capability" or "rate_limit"; null when the layer said nothing. */
  readonly rule: string | null;
  readonly line: number | null;
  readonly tier: Tier | null;
  /** Entries that named the capability but said nothing (no tier, no rule matched). */
  readonly skipped: readonly string[];
}

export interface Trace {
  readonly agent: string;
  readonly capability: string;
  readonly generation: number;
  readonly layers: readonly LayerTrace[];
  readonly default: {
    readonly tier: Tier;
    readonly file: string;
    readonly line: number;
    readonly applied: boolean;
  };
  readonly decision: Decision;
}

export interface EgressDecision {
  readonly allowed: boolean;
  /** The matching destination as written ("api.github.com:443") or "default-deny". */
  readonly rule: string;
  readonly file: string;
  readonly line: number;
  readonly layer: string;
  readonly generation: number;
}

/** One reason a policy file was rejected. */
export interface PolicyProblem {
  readonly file: string;
  readonly line?: number;
  /** Dotted path inside the file ("capabilities.process.run.rules.0.when"). */
  readonly path?: string;
  readonly message: string;
}

export type ReloadResult =
  | {
      readonly ok: true;
      readonly generation: number;
      readonly changed: boolean;
      readonly files: readonly string[];
    }
  | {
      readonly ok: false;
      readonly generation: number;
      readonly problems: readonly PolicyProblem[];
    };

export interface PolicyChange {
  readonly agent: string;
  readonly capability: string;
  /** Effective tier with inputs {} under the old and the new policy. */
  readonly from: Tier;
  readonly to: Tier;
  /** Every tier some inputs could produce (conditions treated as unknown), old and new. */
  readonly possible_from: readonly Tier[];
  readonly possible_to: readonly Tier[];
}

export function formatProblem(p: PolicyProblem): string {
  const where = p.line ? `${p.file}:${p.line}` : p.file;
  return p.path ? `${where}: ${p.path}: ${p.message}` : `${where}: ${p.message}`;
}
