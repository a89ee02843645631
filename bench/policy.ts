// Policy decision latency at 10, 1,000 and 10,000 rules, printed beside Cedar (the
// @cedar-policy/cedar-wasm devDependency) evaluating a policy set of the same size with the same
// conditions, in the same run. Cedar has no tiers or first-match order, so its set is "equivalent"
// in size and condition work per rule (one permit per rule: principal, action, resource equality
// plus the rule's condition), not in meaning. Run alone: node dist/bench/policy.js
import { pathToFileURL } from "node:url";
import { stringify } from "yaml";
import { PolicyEngine, type PolicyRequest } from "../src/policy/index.js";

const SIZES = [10, 1_000, 10_000];
const RULES_PER_CAPABILITY = 10;
const DECISIONS = 5_000;
const WARMUP = 500;
const CEDAR_BUDGET_MS = 4_000;

/** Deterministic PRNG so both engines see the same policies and requests. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Cond =
  | { kind: "equals"; field: "branch"; value: string }
  | { kind: "prefix"; field: "command"; value: string }
  | { kind: "lt"; field: "n"; value: number };

interface Rule {
  readonly id: string;
  readonly capability: string;
  readonly cond: Cond;
  readonly tier: string;
}

const TIERS = ["autonomous", "notify", "approval_required", "blocked"];
const WORDS = ["ls", "cat", "git", "rm", "make", "npm", "grep", "find"];

function rulesOf(n: number, rnd: () => number): Rule[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const rules: Rule[] = [];
  for (let i = 0; i < n; i++) {
    const capability = `cat${Math.floor(i / RULES_PER_CAPABILITY / 10)}.cap${Math.floor(i / RULES_PER_CAPABILITY)}`;
    const k = i % 3;
    const cond: Cond =
      k === 0
        ? { kind: "equals", field: "branch", value: `b${Math.floor(rnd() * 20)}` }
        : k === 1
          ? { kind: "prefix", field: "command", value: pick(WORDS) + " -" + pick(["a", "l", "r"]) }
          : { kind: "lt", field: "n", value: Math.floor(rnd() * 100) };
    rules.push({ id: `r${i}`, capability, cond, tier: pick(TIERS) });
  }
  return rules;
}

function kruxosPolicy(rules: readonly Rule[]): string {
  const capabilities: Record<string, { tier: string; rules: unknown[] }> = {};
  for (const r of rules) {
    const entry = (capabilities[r.capability] ??= { tier: "approval_required", rules: [] });
    const op = r.cond.kind === "prefix" ? "prefix" : r.cond.kind;
    entry.rules.push({
      id: r.id,
      when: { [`inputs.${r.cond.field}`]: { [op]: r.cond.value } },
      tier: r.tier,
    });
  }
  return stringify({ version: 1, defaults: { tier: "approval_required" }, capabilities });
}

function cedarPolicy(rules: readonly Rule[]): string {
  return rules
    .map((r) => {
      const c = r.cond;
      const when =
        c.kind === "equals"
          ? `context.${c.field} == "${c.value}"`
          : c.kind === "prefix"
            ? `context.${c.field} like "${c.value}*"`
            : `context.${c.field} < ${c.value}`;
      return `@id("${r.id}")\npermit(principal == Agent::"agent0", action == Action::"invoke", resource == Capability::"${r.capability}") when { ${when} };`;
    })
    .join("\n");
}

function requestsOf(rules: readonly Rule[], rnd: () => number): PolicyRequest[] {
  const caps = [...new Set(rules.map((r) => r.capability))];
  return Array.from({ length: DECISIONS + WARMUP }, () => ({
    agent: "agent0",
    capability: caps[Math.floor(rnd() * caps.length)] as string,
    inputs: {
      branch: `b${Math.floor(rnd() * 20)}`,
      command: `${WORDS[Math.floor(rnd() * WORDS.length)]} -${["a", "l", "r", "x"][Math.floor(rnd() * 4)]}`,
      n: Math.floor(rnd() * 200),
    },
  }));
}

function percentiles(ns: number[]): { p50: number; p99: number } {
  const s = [...ns].sort((a, b) => a - b);
  const at = (q: number): number =>
    (s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN) / 1000;
  return { p50: at(0.5), p99: at(0.99) };
}

/**
 * p50/p99 over up to DECISIONS timed decisions after the warm-up, stopping early once `budgetMs` is
 * spent (Cedar at 10,000 policies takes tens of ms a call); n says how many were timed.
 */
function time(
  requests: readonly PolicyRequest[],
  decide: (r: PolicyRequest) => unknown,
  budgetMs = Infinity,
): { p50: number; p99: number; n: number } {
  const ns: number[] = [];
  const started = performance.now();
  for (let i = 0; i < requests.length; i++) {
    const t0 = process.hrtime.bigint();
    decide(requests[i] as PolicyRequest);
    const dt = Number(process.hrtime.bigint() - t0);
    if (i >= WARMUP) ns.push(dt);
    else if (performance.now() - started > budgetMs / 4) i = WARMUP - 1; // shorten the warm-up too
    if (ns.length >= 100 && performance.now() - started > budgetMs) break;
  }
  return { ...percentiles(ns), n: ns.length };
}

interface CedarApi {
  getCedarVersion(): string;
  preparsePolicySet(
    id: string,
    policies: { staticPolicies: string },
  ): { type: string; errors?: { message: string }[] };
  statefulIsAuthorized(call: {
    principal: { type: string; id: string };
    action: { type: string; id: string };
    resource: { type: string; id: string };
    context: Record<string, unknown>;
    preparsedPolicySetId: string;
    entities: unknown[];
  }): { type: string; response?: { decision: string }; errors?: { message: string }[] };
}

async function loadCedar(): Promise<CedarApi | string> {
  const spec = "@cedar-policy/cedar-wasm/nodejs"; // a variable: the bench must build without it
  try {
    const mod = (await import(spec)) as CedarApi & { default?: CedarApi };
    return typeof mod.statefulIsAuthorized === "function"
      ? mod
      : (mod.default ?? "no statefulIsAuthorized export");
  } catch (err) {
    return `cannot load ${spec}: ${(err as Error).message.split("\n")[0]}`;
  }
}

const us = (x: number): string => x.toFixed(1).padStart(8);

export async function benchPolicy(): Promise<string> {
  const cedar = await loadCedar();
  const lines = [
    `# policy decision latency, µs per decision; compile = YAML/Cedar text to a ready policy set (${DECISIONS} decisions after ${WARMUP} warm-up, ${RULES_PER_CAPABILITY} rules per capability, node ${process.version})`,
    typeof cedar === "string"
      ? `# cedar not measured: ${cedar}`
      : `# beside: Cedar ${cedar.getCedarVersion()} via @cedar-policy/cedar-wasm (preparsed policy set, one permit per rule)`,
    `${"rules".padStart(7)} ${"compile ms".padStart(11)} ${"kruxos p50".padStart(10)} ${"p99".padStart(8)}${typeof cedar === "string" ? "" : ` ${"cedar ms".padStart(9)} ${"cedar p50".padStart(10)} ${"p99".padStart(8)} ${"n".padStart(5)}`}`,
  ];
  for (const n of SIZES) {
    const rnd = prng(n);
    const rules = rulesOf(n, rnd);
    const requests = requestsOf(rules, rnd);
    const text = kruxosPolicy(rules);
    const t0 = performance.now();
    const { engine, result } = PolicyEngine.fromSources([
      { kind: "system", file: `bench-${n}.yaml`, text },
    ]);
    const compileMs = performance.now() - t0;
    if (!result.ok) throw new Error(`bench policy rejected: ${JSON.stringify(result.problems[0])}`);
    const ours = time(requests, (r) => engine.evaluate(r));
    let row = `${String(n).padStart(7)} ${compileMs.toFixed(0).padStart(11)} ${us(ours.p50).padStart(10)} ${us(ours.p99)}`;
    if (typeof cedar !== "string") {
      const id = `bench-${n}`;
      const c0 = performance.now();
      const parsed = cedar.preparsePolicySet(id, { staticPolicies: cedarPolicy(rules) });
      if (parsed.type !== "success")
        throw new Error(`cedar rejected the policy set: ${parsed.errors?.[0]?.message}`);
      const cedarMs = performance.now() - c0;
      const theirs = time(
        requests,
        (r) => {
          const answer = cedar.statefulIsAuthorized({
            principal: { type: "Agent", id: r.agent },
            action: { type: "Action", id: "invoke" },
            resource: { type: "Capability", id: r.capability },
            context: r.inputs as Record<string, unknown>,
            preparsedPolicySetId: id,
            entities: [],
          });
          if (answer.type !== "success")
            throw new Error(`cedar failed: ${answer.errors?.[0]?.message}`);
        },
        CEDAR_BUDGET_MS,
      );
      row += ` ${cedarMs.toFixed(0).padStart(9)} ${us(theirs.p50).padStart(10)} ${us(theirs.p99)} ${String(theirs.n).padStart(5)}`;
    }
    lines.push(row);
  }
  return lines.join("\n");
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(await benchPolicy());
}
