// The policy engine: holds one compiled generation at a time, swaps it atomically on reload, keeps
// rate-limit counters across reloads, answers decisions, traces and egress questions, and reports
// metrics. A failed reload leaves the running generation untouched.
import { EventEmitter } from "node:events";
import { existsSync, readdirSync, readFileSync, watch, type FSWatcher } from "node:fs";
import path from "node:path";
import {
  Counter,
  Gauge,
  Histogram,
  matchesHostPattern,
  normalHost,
  type ComponentHealth,
  type Registry,
} from "../core/index.js";
import { compilePolicy, type CompiledPolicy } from "./compile.js";
import type { ConditionContext } from "./conditions.js";
import {
  chainFor,
  decideLayer,
  possibleTiers,
  traceOf,
  type Chain,
  type LayerDecision,
} from "./evaluate.js";
import {
  TIERS,
  TIER_RANK,
  formatProblem,
  type Decision,
  type EgressDecision,
  type LayerKind,
  type LayerTrace,
  type PolicyProblem,
  type PolicyRequest,
  type PolicySource,
  type ReloadResult,
  type Tier,
  type Trace,
} from "./types.js";

export interface PolicyEngineOptions {
  /** Policy files in layer order: the first is the system layer, the rest are org layers. */
  readonly files?: readonly string[];
  /** `<data>/policy/agents`: one `<agent>.yaml` per agent. Optional; missing is fine. */
  readonly agentDir?: string;
  /** Registers the kruxos_policy_* metrics here. */
  readonly registry?: Registry;
  /** Clock for rate limits (epoch ms). */
  readonly clock?: () => number;
  /** Debounce for watch(), ms. */
  readonly debounceMs?: number;
}

interface Metrics {
  readonly decisions: Counter<"tier">;
  readonly seconds: Histogram;
  readonly generation: Gauge;
  readonly reloadFailures: Counter;
}

/** A sliding window of the last `max` admitted calls (a ring of timestamps). */
class Window {
  private readonly times: number[] = [];
  private next = 0;
  constructor(private readonly max: number) {}
  /** ms until a slot frees, or 0 when a call may proceed now. */
  wait(now: number, windowMs: number): number {
    if (this.times.length < this.max) return 0;
    const oldest = this.times[this.next] as number;
    // min(): a clock that stepped backwards must not produce a wait longer than the window.
    return oldest > now - windowMs ? Math.min(windowMs, oldest + windowMs - now) : 0;
  }
  record(now: number): void {
    if (this.times.length < this.max) this.times.push(now);
    else {
      this.times[this.next] = now;
      this.next = (this.next + 1) % this.max;
    }
  }
}

const NO_POLICY_RANK = TIER_RANK.blocked;

export class PolicyEngine extends EventEmitter<{ reload: [ReloadResult] }> {
  private current: CompiledPolicy | undefined;
  private gen = 0;
  /** The last reload that swapped a generation in or was rejected (an unchanged one is not). */
  private lastReload: ReloadResult | undefined;
  private chains = new Map<string, Chain>();
  /** Rate-limit identity → "agent\0capability" → window. */
  private readonly windows = new Map<string, Map<string, Window>>();
  private readonly files: readonly string[];
  private readonly agentDir: string | undefined;
  private readonly clock: () => number;
  private readonly debounceMs: number;
  private readonly metrics: Metrics | undefined;
  private watchers: FSWatcher[] = [];
  private agentDirWatched = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: PolicyEngineOptions = {}) {
    super();
    this.files = opts.files ?? [];
    this.agentDir = opts.agentDir;
    this.clock = opts.clock ?? Date.now;
    this.debounceMs = opts.debounceMs ?? 200;
    const r = opts.registry;
    this.metrics = r && {
      decisions: new Counter({
        name: "kruxos_policy_decisions_total",
        help: "Policy decisions by tier.",
        labelNames: ["tier"],
        registers: [r],
      }),
      seconds: new Histogram({
        name: "kruxos_policy_evaluation_seconds",
        help: "Time to evaluate one policy decision.",
        buckets: [1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2],
        registers: [r],
      }),
      generation: new Gauge({
        name: "kruxos_policy_generation",
        help: "Generation of the policy in force (0 = none loaded).",
        registers: [r],
      }),
      reloadFailures: new Counter({
        name: "kruxos_policy_reload_failures_total",
        help: "Policy reloads rejected; the previous generation stayed in force.",
        registers: [r],
      }),
    };
  }

  /** An engine over in-memory sources (tests, `kruxos policy diff`); throws nothing. */
  static fromSources(
    sources: readonly PolicySource[],
    opts: PolicyEngineOptions = {},
  ): { engine: PolicyEngine; result: ReloadResult } {
    const engine = new PolicyEngine(opts);
    return { engine, result: engine.load(sources) };
  }

  /** 0 until a policy has loaded; +1 on every successful load. */
  get generation(): number {
    return this.gen;
  }

  /** The sources the configured files and agent directory hold right now. */
  readSources(): { sources: PolicySource[]; problems: PolicyProblem[] } {
    const sources: PolicySource[] = [];
    const problems: PolicyProblem[] = [];
    this.files.forEach((file, i) => {
      const kind: LayerKind = i === 0 ? "system" : "org";
      try {
        sources.push({ kind, file, text: readFileSync(file, "utf8") });
      } catch (err) {
        problems.push({ file, message: `cannot read: ${(err as Error).message}` });
      }
    });
    if (this.agentDir && existsSync(this.agentDir)) {
      let names: string[] = [];
      try {
        names = readdirSync(this.agentDir)
          .filter((n) => n.endsWith(".yaml"))
          .sort();
      } catch (err) {
        problems.push({ file: this.agentDir, message: `cannot list: ${(err as Error).message}` });
      }
      for (const name of names) {
        const file = path.join(this.agentDir, name);
        const agent = name.slice(0, -".yaml".length);
        try {
          sources.push({ kind: "agent", file, agent, text: readFileSync(file, "utf8") });
        } catch (err) {
          problems.push({ file, message: `cannot read: ${(err as Error).message}` });
        }
      }
    }
    return { sources, problems };
  }

  /** Read and compile every file; swap in the new generation only if all of them compile. */
  reload(opts: { onlyIfChanged?: boolean } = {}): ReloadResult {
    const { sources, problems } = this.readSources();
    if (problems.length > 0) return this.reject(problems);
    return this.load(sources, opts);
  }

  /** Compile the given sources and swap them in atomically, or keep the old generation. */
  load(sources: readonly PolicySource[], opts: { onlyIfChanged?: boolean } = {}): ReloadResult {
    const compiled = compilePolicy(sources);
    if (!compiled.ok) return this.reject(compiled.problems);
    const policy = compiled.policy;
    if (opts.onlyIfChanged && this.current?.digest === policy.digest) {
      const result: ReloadResult = {
        ok: true,
        generation: this.gen,
        changed: false,
        files: sources.map((s) => s.file),
      };
      return result;
    }
    // The swap: one assignment of the policy and its derived caches; counters whose rule is gone
    // are dropped, the rest carry over.
    this.current = policy;
    this.chains = new Map();
    this.gen += 1;
    for (const id of this.windows.keys()) if (!policy.rateLimitIds.has(id)) this.windows.delete(id);
    this.metrics?.generation.set(this.gen);
    const result: ReloadResult = {
      ok: true,
      generation: this.gen,
      changed: true,
      files: sources.map((s) => s.file),
    };
    this.lastReload = result;
    this.emit("reload", result);
    return result;
  }

  private reject(problems: readonly PolicyProblem[]): ReloadResult {
    this.metrics?.reloadFailures.inc();
    const result: ReloadResult = { ok: false, generation: this.gen, problems };
    this.lastReload = result;
    this.emit("reload", result);
    return result;
  }

  /**
   * The policy component of /ready and /health: failing until a generation is in force (with the
   * problems that kept the last one out), degraded while the last reload was rejected and the
   * previous generation stays in force.
   */
  health(): ComponentHealth {
    const last = this.lastReload;
    if (this.gen === 0)
      return {
        name: "policy",
        status: "failing",
        detail: last && !last.ok ? last.problems.map(formatProblem).join("; ") : "no policy loaded",
      };
    const rejected = last !== undefined && !last.ok;
    return {
      name: "policy",
      status: rejected ? "degraded" : "ok",
      ...(rejected
        ? { detail: `last reload rejected; generation ${this.gen} stays in force` }
        : {}),
      facts: {
        generation: this.gen,
        files: this.files.length,
        entries: this.capabilities().length,
      },
    };
  }

  private chain(policy: CompiledPolicy, agent: string): Chain {
    let c = this.chains.get(agent);
    if (!c) {
      c = chainFor(policy.files, agent);
      if (this.chains.size < 4096) this.chains.set(agent, c);
    }
    return c;
  }

  /** Decide one call. Counts the call against rate limits unless the decision is blocked. */
  evaluate(req: PolicyRequest): Decision {
    if (!this.metrics) return this.decide(req, true, undefined);
    const t0 = performance.now();
    const d = this.decide(req, true, undefined);
    this.metrics.seconds.observe((performance.now() - t0) / 1000);
    this.metrics.decisions.inc({ tier: d.tier });
    return d;
  }

  /**
   * The decision a call would get now, without counting it against rate limits or metrics: for
   * listings (tools/list, the policy matrix), never for deciding a real call.
   */
  preview(req: PolicyRequest): Decision {
    return this.decide(req, false, undefined);
  }

  /** The decision with a per-layer trace; consumes no rate-limit budget. */
  explain(req: PolicyRequest): Trace {
    const layers: LayerTrace[] = [];
    const decision = this.decide(req, false, layers);
    const policy = this.current;
    const chain = policy ? this.chain(policy, req.agent) : undefined;
    return {
      agent: req.agent,
      capability: req.capability,
      generation: this.gen,
      layers,
      default: {
        tier: TIERS[chain?.defaultRank ?? NO_POLICY_RANK] as Tier,
        file: chain?.defaultFile ?? "",
        line: chain?.defaultLine ?? 0,
        applied: decision.rule === "default" || decision.rule === "no-policy",
      },
      decision,
    };
  }

  private decide(req: PolicyRequest, consume: boolean, trace: LayerTrace[] | undefined): Decision {
    const policy = this.current;
    if (!policy) {
      // Fail closed until a policy has loaded.
      return {
        tier: "blocked",
        rule: "no-policy",
        file: "",
        line: 0,
        generation: 0,
        layer: "none",
        reason: "no policy loaded",
        notify: false,
      };
    }
    const { agent, capability } = req;
    const chain = this.chain(policy, agent);
    const ctx: ConditionContext = { agent, capability, inputs: req.inputs ?? {} };
    const now =
      req.now === undefined ? this.clock() : typeof req.now === "number" ? req.now : +req.now;
    let best: LayerDecision | undefined;
    let bestRank = -1;
    let bestRetryMs = 0;
    let notify = false;
    let admitted: Window[] | undefined;
    for (const layer of chain.layers) {
      let d = decideLayer(layer, capability, ctx);
      let retryMs = 0;
      if (d) {
        if (d.entry.notify) notify = true;
        const rl = d.entry.rateLimit;
        if (rl) {
          const key = `${agent}\0${capability}`;
          let perRule = this.windows.get(rl.identity);
          let w = perRule?.get(key);
          if (!w) {
            w = new Window(rl.max);
            if (consume) {
              if (!perRule) this.windows.set(rl.identity, (perRule = new Map()));
              perRule.set(key, w);
            }
          }
          const wait = w.wait(now, rl.windowMs);
          if (wait > 0 && rl.onExceed > d.rank) {
            retryMs = wait;
            d = {
              ...d,
              rank: rl.onExceed,
              rule: "rate_limit",
              line: rl.line,
              reason: "rate limit exceeded",
            };
          } else if (wait === 0) (admitted ??= []).push(w);
        }
        if (d.rank > bestRank) {
          best = d;
          bestRank = d.rank;
          bestRetryMs = retryMs;
        }
      }
      trace?.push(traceOf(layer, d));
    }
    if (consume && admitted && bestRank < TIER_RANK.blocked)
      for (const w of admitted) w.record(now);
    if (!best) {
      const tier = TIERS[chain.defaultRank] as Tier;
      return {
        tier,
        rule: "default",
        file: chain.defaultFile,
        line: chain.defaultLine,
        generation: this.gen,
        layer: chain.defaultLayer,
        notify: tier === "notify",
      };
    }
    const tier = TIERS[best.rank] as Tier;
    return {
      tier,
      rule: best.rule,
      file: best.layer.file,
      line: best.line,
      generation: this.gen,
      layer: best.layer.name,
      ...(best.reason !== undefined ? { reason: best.reason } : {}),
      notify: notify || tier === "notify",
      ...(bestRetryMs > 0
        ? { rate_limited: { retry_after_s: Math.ceil(bestRetryMs / 1000) } }
        : {}),
    };
  }

  /** Possible tiers for some inputs (see possibleTiers). */
  possibleTiers(agent: string, capability: string): Tier[] {
    return this.current ? possibleTiers(this.current, agent, capability) : ["blocked"];
  }

  /**
   * Outbound host:port for an agent. Default deny; a deny in any layer beats an allow in any
   * layer; "*.domain" matches subdomains (any depth) but not the domain itself.
   */
  egressDecision(agent: string, host: string, port: number): EgressDecision {
    const policy = this.current;
    const deny = (rule: string, file: string, line: number, layer: string): EgressDecision => ({
      allowed: false,
      rule,
      file,
      line,
      layer,
      generation: this.gen,
    });
    if (!policy) return deny("default-deny", "", 0, "none");
    const h = normalHost(host);
    const layers = this.chain(policy, agent).layers;
    const hit = (list: "allow" | "deny"): EgressDecision | undefined => {
      for (const layer of layers) {
        for (const d of layer[list]) {
          if (matchesHostPattern(d, h, port)) {
            return {
              allowed: list === "allow",
              rule: d.text,
              file: layer.file,
              line: d.line,
              layer: layer.name,
              generation: this.gen,
            };
          }
        }
      }
      return undefined;
    };
    return hit("deny") ?? hit("allow") ?? deny("default-deny", "", 0, "default");
  }

  /**
   * Whether any layer allows this agent some egress at all: the sandbox gets its proxy relay only
   * then (each connection is still decided by egressDecision in the proxy).
   */
  egressGranted(agent: string): boolean {
    const policy = this.current;
    if (!policy) return false;
    return this.chain(policy, agent).layers.some((l) => l.allow.length > 0);
  }

  /**
   * Whether the agent may reach `host` on at least one port (a name lookup is allowed only then:
   * a DNS query is itself a way out).
   */
  egressHostAllowed(agent: string, host: string): boolean {
    const policy = this.current;
    if (!policy) return false;
    let h = host.toLowerCase();
    if (h.endsWith(".")) h = h.slice(0, -1);
    const ports = new Set<number>();
    for (const layer of this.chain(policy, agent).layers)
      for (const d of layer.allow)
        if (d.wildcard ? h.endsWith("." + d.host) : h === d.host) ports.add(d.port);
    for (const port of ports) if (this.egressDecision(agent, h, port).allowed) return true;
    return false;
  }

  /** Agent names any layer mentions (agents sections and agent files). */
  agents(): string[] {
    const out = new Set<string>();
    for (const f of this.current?.files ?? []) {
      if (f.agent) out.add(f.agent);
      for (const a of f.agents.keys()) out.add(a);
    }
    return [...out].sort();
  }

  /** Exact capability names any layer mentions. */
  capabilities(): string[] {
    const out = new Set<string>();
    for (const f of this.current?.files ?? []) {
      for (const layer of [f.top, ...f.agents.values()])
        for (const k of layer.exact.keys()) out.add(k);
    }
    return [...out].sort();
  }

  /**
   * Reload when a policy file or the agent directory changes (debounced). Editors and atomic
   * writers replace files by rename, so the directories are watched, filtered by name.
   */
  watch(): () => void {
    this.unwatch();
    const byDir = new Map<string, Set<string>>();
    for (const f of this.files) {
      const dir = path.dirname(f);
      byDir.set(dir, (byDir.get(dir) ?? new Set()).add(path.basename(f)));
    }
    for (const [dir, names] of byDir)
      this.watchDir(dir, (name) => name === null || names.has(name));
    this.watchAgentDir();
    return () => this.unwatch();
  }

  private watchAgentDir(): void {
    if (!this.agentDir || this.agentDirWatched) return;
    if (existsSync(this.agentDir)) {
      this.agentDirWatched = this.watchDir(this.agentDir, () => true);
    } else {
      const base = path.basename(this.agentDir);
      this.watchDir(path.dirname(this.agentDir), (name) => name === null || name === base);
    }
  }

  private watchDir(dir: string, relevant: (name: string | null) => boolean): boolean {
    try {
      const w = watch(dir, { persistent: false }, (_event, name) => {
        if (relevant(name === null ? null : String(name))) this.schedule();
      });
      w.on("error", () => this.schedule());
      this.watchers.push(w);
      return true;
    } catch {
      return false;
    }
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.watchAgentDir();
      this.reload({ onlyIfChanged: true });
    }, this.debounceMs);
    this.timer.unref();
  }

  private unwatch(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    this.agentDirWatched = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Stop watching. */
  close(): void {
    this.unwatch();
  }
}
