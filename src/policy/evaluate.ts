// Evaluation over a compiled policy. Per layer: the most specific entry that says something decides
// (exact name, then wildcards from the longest prefix, then "*"; inside an entry the first matching
// rule, else the entry's tier). Across layers the strictest tier wins; on a tie the earlier layer is
// reported. When no layer decides, the strictest `defaults` of the files in the chain applies.
import type { ConditionContext } from "./conditions.js";
import type { CompiledEntry, CompiledFile, CompiledPolicy, Layer } from "./compile.js";
import { TIERS, TIER_RANK, type LayerTrace, type Tier } from "./types.js";

/** The layers and the default that apply to one agent, in order. */
export interface Chain {
  readonly layers: readonly Layer[];
  readonly defaultRank: number;
  readonly defaultFile: string;
  readonly defaultLine: number;
  readonly defaultLayer: string;
}

/** What one layer decided. */
export interface LayerDecision {
  readonly layer: Layer;
  readonly entry: CompiledEntry;
  readonly rank: number;
  readonly rule: string;
  readonly line: number;
  readonly reason: string | undefined;
  readonly skipped: readonly string[];
}

const FALLBACK_RANK = TIER_RANK.approval_required;
const MAX_CACHED_NAMES = 4096;

export function chainFor(files: readonly CompiledFile[], agent: string): Chain {
  const layers: Layer[] = [];
  let def: { rank: number; file: string; line: number; layer: string } | undefined;
  for (const f of files) {
    if (f.kind === "agent" && f.agent !== agent) continue;
    layers.push(f.top);
    const section = f.agents.get(agent);
    if (section) layers.push(section);
    if (f.defaults && (!def || f.defaults.rank > def.rank))
      def = { rank: f.defaults.rank, file: f.file, line: f.defaults.line, layer: f.kind };
  }
  return {
    layers,
    defaultRank: def?.rank ?? FALLBACK_RANK,
    defaultFile: def?.file ?? "",
    defaultLine: def?.line ?? 0,
    defaultLayer: def?.layer ?? "builtin",
  };
}

/** Entries naming `capability`, most specific first. */
export function candidates(layer: Layer, capability: string): readonly CompiledEntry[] {
  const cached = layer.candidates.get(capability);
  if (cached) return cached;
  const out: CompiledEntry[] = [];
  const exact = layer.exact.get(capability);
  if (exact) out.push(exact);
  if (layer.wildcards.size > 0) {
    for (let i = capability.lastIndexOf("."); i > 0; i = capability.lastIndexOf(".", i - 1)) {
      const w = layer.wildcards.get(capability.slice(0, i));
      if (w) out.push(w);
    }
  }
  if (layer.any) out.push(layer.any);
  if (layer.candidates.size < MAX_CACHED_NAMES) layer.candidates.set(capability, out);
  return out;
}

export function decideLayer(
  layer: Layer,
  capability: string,
  ctx: ConditionContext,
): LayerDecision | undefined {
  const list = candidates(layer, capability);
  let skipped: string[] | undefined;
  for (const entry of list) {
    for (const rule of entry.rules) {
      if (rule.test(ctx)) {
        return {
          layer,
          entry,
          rank: rule.rank,
          rule: rule.id,
          line: rule.line,
          reason: rule.reason,
          skipped: skipped ?? [],
        };
      }
    }
    if (entry.rank !== undefined) {
      return {
        layer,
        entry,
        rank: entry.rank,
        rule: "capability",
        line: entry.line,
        reason: undefined,
        skipped: skipped ?? [],
      };
    }
    (skipped ??= []).push(entry.key);
  }
  return undefined;
}

export function traceOf(layer: Layer, d: LayerDecision | undefined): LayerTrace {
  if (!d) {
    return {
      layer: layer.name,
      file: layer.file,
      entry: null,
      match: "none",
      rule: null,
      line: null,
      tier: null,
      skipped: [],
    };
  }
  return {
    layer: layer.name,
    file: layer.file,
    entry: d.entry.key,
    match: d.entry.match,
    rule: d.rule,
    line: d.line,
    tier: TIERS[d.rank] as Tier,
    skipped: d.skipped,
  };
}

/**
 * Every tier some inputs could produce, treating each rule's condition as unknown (may or may not
 * hold) and ignoring rate limits except that `on_exceed` is also possible. An over-approximation.
 */
export function possibleTiers(policy: CompiledPolicy, agent: string, capability: string): Tier[] {
  const chain = chainFor(policy.files, agent);
  // States: -1 = no layer decided yet, else the current maximum rank.
  let states = new Set<number>([-1]);
  for (const layer of chain.layers) {
    const options = new Set<number>();
    let closed = false;
    for (const entry of candidates(layer, capability)) {
      const rl = entry.rateLimit;
      const withLimit = (r: number): void => {
        options.add(r);
        if (rl) options.add(Math.max(r, rl.onExceed));
      };
      for (const rule of entry.rules) withLimit(rule.rank);
      if (entry.rank !== undefined) {
        withLimit(entry.rank);
        closed = true;
        break;
      }
    }
    if (!closed) options.add(-1);
    const next = new Set<number>();
    for (const s of states) for (const o of options) next.add(Math.max(s, o));
    states = next;
  }
  const out = new Set<number>();
  for (const s of states) out.add(s === -1 ? chain.defaultRank : s);
  return [...out].sort((a, b) => a - b).map((r) => TIERS[r] as Tier);
}
