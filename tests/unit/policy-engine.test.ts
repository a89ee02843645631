// The policy engine: operators, precedence, layering, file:line, rate limits, atomic reload, check
// traces, diffs and egress. Tiers, rule ids and metric names are written out literally.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { Registry } from "../../src/core/index.js";
import { hostPaths, loadManifest } from "../../src/config/index.js";
import {
  PolicyEngine,
  openPolicyEngine,
  diffPolicies,
  formatTrace,
  redosHazard,
  type PolicySource,
  type ReloadResult,
} from "../../src/policy/index.js";
import { REPO, tempDir } from "../helpers/repo.js";

const sys = (text: string, file = "/p/system.yaml"): PolicySource => ({
  kind: "system",
  file,
  text,
});
const org = (text: string, file = "/p/org.yaml"): PolicySource => ({ kind: "org", file, text });
const agentFile = (agent: string, text: string): PolicySource => ({
  kind: "agent",
  agent,
  file: `/data/policy/agents/${agent}.yaml`,
  text,
});

function engineOf(...sources: PolicySource[]): PolicyEngine {
  const { engine, result } = PolicyEngine.fromSources(sources);
  assert.ok(result.ok, JSON.stringify(result));
  return engine;
}

function problemsOf(result: ReloadResult): string {
  assert.equal(result.ok, false, "expected the policy to be rejected");
  return result.ok ? "" : result.problems.map((p) => `${p.line}|${p.path}|${p.message}`).join("\n");
}

/** One rule on capability "t.cap" whose `when` is the given YAML flow map. */
function ruleOn(when: string): PolicyEngine {
  return engineOf(
    sys(`version: 1
defaults: { tier: approval_required }
capabilities:
  t.cap:
    tier: blocked
    rules:
      - id: hit
        when: ${when}
        tier: autonomous
`),
  );
}

function holds(when: string, inputs: unknown, agent = "a"): boolean {
  const d = ruleOn(when).evaluate({ agent, capability: "t.cap", inputs });
  return d.rule === "hit";
}

test("equals compares strictly, type included", () => {
  assert.equal(holds(`{ inputs.branch: { equals: main } }`, { branch: "main" }), true);
  assert.equal(holds(`{ inputs.branch: { equals: main } }`, { branch: "dev" }), false);
  assert.equal(holds(`{ inputs.n: { equals: 1 } }`, { n: "1" }), false);
  assert.equal(holds(`{ inputs.f: { equals: true } }`, { f: true }), true);
  assert.equal(holds(`{ inputs.f: { equals: null } }`, { f: null }), true);
  assert.equal(holds(`{ agent: { equals: researcher } }`, {}, "researcher"), true);
});

test("in accepts any listed value and nothing else", () => {
  assert.equal(holds(`{ inputs.b: { in: [main, dev] } }`, { b: "dev" }), true);
  assert.equal(holds(`{ inputs.b: { in: [main, dev] } }`, { b: "prod" }), false);
  assert.equal(holds(`{ inputs.n: { in: [1, 2] } }`, { n: 2 }), true);
  assert.equal(holds(`{ inputs.n: { in: [1, 2] } }`, { n: "2" }), false);
});

test("prefix needs a string with that start", () => {
  assert.equal(holds(`{ inputs.c: { prefix: "git " } }`, { c: "git status" }), true);
  assert.equal(holds(`{ inputs.c: { prefix: "git " } }`, { c: "gitk" }), false);
  assert.equal(holds(`{ inputs.c: { prefix: "1" } }`, { c: 12 }), false);
});

test("glob normalises paths; * stays in a segment, ** crosses directories", () => {
  const w = `{ inputs.path: { glob: "/workspace/*.md" } }`;
  assert.equal(holds(w, { path: "/workspace/README.md" }), true);
  assert.equal(holds(w, { path: "/workspace/docs/README.md" }), false);
  assert.equal(holds(w, { path: "/workspace/docs/../README.md" }), true);
  assert.equal(holds(w, { path: "/workspace//README.md" }), true);
  const deep = `{ inputs.path: { glob: "/workspace/**" } }`;
  assert.equal(holds(deep, { path: "/workspace/a/b/c.txt" }), true);
  assert.equal(holds(deep, { path: "/workspace/../etc/passwd" }), false);
  assert.equal(holds(deep, { path: "/etc/passwd" }), false);
  const dirs = `{ inputs.path: { glob: "/workspace/**/*.py" } }`;
  assert.equal(holds(dirs, { path: "/workspace/x.py" }), true);
  assert.equal(holds(dirs, { path: "/workspace/a/b/x.py" }), true);
  assert.equal(holds(dirs, { path: "/workspace/a/b/x.pyc" }), false);
  const rel = `{ inputs.path: { glob: "**" } }`;
  assert.equal(holds(rel, { path: "src/x.ts" }), true);
  assert.equal(holds(rel, { path: "src/../../x.ts" }), false, "a .. escape never matches");
  assert.equal(holds(`{ inputs.path: { glob: "/w/?.txt" } }`, { path: "/w/a.txt" }), true);
  assert.equal(holds(`{ inputs.path: { glob: "/w/?.txt" } }`, { path: "/w/ab.txt" }), false);
});

test("matches runs a bounded regular expression", () => {
  const ls = `{ inputs.command: { matches: "^ls( |$)" } }`;
  assert.equal(holds(ls, { command: "ls -la" }), true);
  assert.equal(holds(ls, { command: "ls" }), true);
  assert.equal(holds(ls, { command: "lsblk" }), false);
  assert.equal(holds(ls, { command: ["ls"] }), false);
  assert.equal(holds(`{ inputs.c: { matches: "^a" } }`, { c: "a" + "x".repeat(5000) }), false);
});

test("lt, lte, gt and gte compare numbers only", () => {
  assert.equal(holds(`{ inputs.n: { lt: 10 } }`, { n: 9 }), true);
  assert.equal(holds(`{ inputs.n: { lt: 10 } }`, { n: 10 }), false);
  assert.equal(holds(`{ inputs.n: { lte: 10 } }`, { n: 10 }), true);
  assert.equal(holds(`{ inputs.n: { gt: 10 } }`, { n: 10 }), false);
  assert.equal(holds(`{ inputs.n: { gte: 10 } }`, { n: 10 }), true);
  assert.equal(holds(`{ inputs.n: { gte: 1, lt: 5 } }`, { n: 5 }), false);
  assert.equal(holds(`{ inputs.n: { lt: 10 } }`, { n: "9" }), false);
});

test("exists tells a present value from a missing one", () => {
  assert.equal(holds(`{ inputs.force: { exists: true } }`, { force: false }), true);
  assert.equal(holds(`{ inputs.force: { exists: true } }`, {}), false);
  assert.equal(holds(`{ inputs.force: { exists: false } }`, {}), true);
  assert.equal(holds(`{ inputs.a.b: { exists: true } }`, { a: { b: 0 } }), true);
  assert.equal(holds(`{ inputs.a.b: { exists: true } }`, { a: "b" }), false);
  assert.equal(holds(`{ inputs.toString: { exists: true } }`, {}), false, "no prototype lookups");
});

test("all, any, not and several keys combine as documented", () => {
  const both = `{ inputs.a: { equals: 1 }, inputs.b: { equals: 2 } }`;
  assert.equal(holds(both, { a: 1, b: 2 }), true);
  assert.equal(holds(both, { a: 1, b: 3 }), false);
  const any = `{ any: [ { inputs.a: { equals: 1 } }, { inputs.b: { equals: 2 } } ] }`;
  assert.equal(holds(any, { a: 0, b: 2 }), true);
  assert.equal(holds(any, { a: 0, b: 0 }), false);
  const all = `{ all: [ { inputs.a: { equals: 1 } }, { not: { inputs.b: { equals: 2 } } } ] }`;
  assert.equal(holds(all, { a: 1, b: 3 }), true);
  assert.equal(holds(all, { a: 1, b: 2 }), false);
  assert.equal(holds(`{ any: [] }`, {}), false);
  assert.equal(holds(`{ all: [] }`, {}), true);
  assert.equal(holds(`{}`, {}), true);
});

test("within a layer an exact name beats a longer wildcard, which beats a shorter one, which beats *", () => {
  const e = engineOf(
    sys(`version: 1
defaults: { tier: blocked }
capabilities:
  "*": { tier: approval_required }
  "git.*": { tier: notify }
  "git.remote.*": { tier: blocked }
  git.remote.fetch: { tier: autonomous }
`),
  );
  const tier = (c: string): string => e.evaluate({ agent: "a", capability: c }).tier;
  assert.equal(tier("git.remote.fetch"), "autonomous");
  assert.equal(tier("git.remote.push"), "blocked");
  assert.equal(tier("git.status"), "notify");
  assert.equal(tier("process.run"), "approval_required");
  assert.equal(tier("git"), "approval_required", "git.* does not name git itself");
});

test("the first matching rule wins; an entry without a tier falls through to a wildcard", () => {
  const e = engineOf(
    sys(`version: 1
capabilities:
  "process.*": { tier: blocked }
  process.run:
    rules:
      - { id: first, when: { inputs.c: { prefix: "ls" } }, tier: notify }
      - { id: second, when: { inputs.c: { prefix: "l" } }, tier: autonomous }
`),
  );
  assert.equal(
    e.evaluate({ agent: "a", capability: "process.run", inputs: { c: "ls" } }).rule,
    "first",
  );
  assert.equal(
    e.evaluate({ agent: "a", capability: "process.run", inputs: { c: "lx" } }).rule,
    "second",
  );
  const fell = e.explain({ agent: "a", capability: "process.run", inputs: { c: "rm" } });
  assert.equal(fell.decision.tier, "blocked");
  assert.deepEqual(fell.layers[0]?.skipped, ["process.run"]);
  assert.equal(fell.layers[0]?.entry, "process.*");
});

test("an agent layer saying autonomous cannot loosen a system approval_required", () => {
  const system = sys(`version: 1
defaults: { tier: approval_required }
capabilities:
  process.run: { tier: approval_required }
  filesystem.read: { tier: autonomous }
`);
  const loosen = `version: 1
capabilities:
  process.run: { tier: autonomous }
  filesystem.read: { tier: blocked }
`;
  const e = engineOf(system, agentFile("researcher", loosen));
  const run = e.evaluate({ agent: "researcher", capability: "process.run" });
  assert.equal(run.tier, "approval_required");
  assert.equal(run.layer, "system");
  assert.equal(e.evaluate({ agent: "researcher", capability: "filesystem.read" }).tier, "blocked");
  assert.equal(e.evaluate({ agent: "other", capability: "filesystem.read" }).tier, "autonomous");
  // The same through an agents: section of the org file.
  const e2 = engineOf(
    system,
    org(`version: 1
agents:
  researcher:
    capabilities:
      "*": { tier: autonomous }
`),
  );
  assert.equal(
    e2.evaluate({ agent: "researcher", capability: "process.run" }).tier,
    "approval_required",
  );
});

test("the strictest defaults apply only when no layer decides", () => {
  const e = engineOf(
    sys(`version: 1
defaults: { tier: approval_required }
capabilities:
  a.x: { tier: autonomous }
`),
    org(`version: 1
defaults: { tier: blocked }
`),
  );
  const d = e.evaluate({ agent: "a", capability: "b.y" });
  assert.deepEqual(
    [d.tier, d.rule, d.file, d.line, d.layer],
    ["blocked", "default", "/p/org.yaml", 2, "org"],
  );
  assert.equal(e.evaluate({ agent: "a", capability: "a.x" }).tier, "autonomous");
});

test("decisions carry the file and line of the rule, entry or defaults that decided", () => {
  const text = `# comment
version: 1
defaults:
  tier: approval_required
capabilities:
  filesystem.read: { tier: autonomous }

  process.run:
    tier: approval_required
    rules:
      - id: allow-ls
        when: { inputs.command: { matches: "^ls( |$)" } }
        tier: autonomous
        reason: listing is harmless
      - id: deny-rm
        when: { inputs.command: { prefix: "rm " } }
        tier: blocked
`;
  const e = engineOf(sys(text, "/etc/kruxos/system.yaml"));
  const at = (capability: string, inputs: unknown = {}): string => {
    const d = e.evaluate({ agent: "a", capability, inputs });
    return `${d.rule}@${d.file}:${d.line}`;
  };
  assert.equal(at("filesystem.read"), "capability@/etc/kruxos/system.yaml:6");
  assert.equal(at("process.run", { command: "ls" }), "allow-ls@/etc/kruxos/system.yaml:11");
  assert.equal(at("process.run", { command: "rm -rf /" }), "deny-rm@/etc/kruxos/system.yaml:15");
  assert.equal(at("process.run", { command: "cat" }), "capability@/etc/kruxos/system.yaml:8");
  assert.equal(at("git.clone"), "default@/etc/kruxos/system.yaml:3");
  const d = e.evaluate({ agent: "a", capability: "process.run", inputs: { command: "ls" } });
  assert.equal(d.reason, "listing is harmless");
  assert.equal(d.generation, 1);
  assert.equal(text.split("\n")[10]?.trim(), "- id: allow-ls");
});

test("a rate limit turns calls beyond max into on_exceed with retry_after_s", () => {
  const e = engineOf(
    sys(`version: 1
capabilities:
  process.run:
    tier: autonomous
    rate_limit: { max: 3, window: 60s, on_exceed: blocked }
`),
  );
  const call = (now: number, agent = "a") => e.evaluate({ agent, capability: "process.run", now });
  for (let i = 0; i < 3; i++) assert.equal(call(1_000 + i).tier, "autonomous");
  const over = call(10_000);
  assert.equal(over.tier, "blocked");
  assert.equal(over.rule, "rate_limit");
  assert.deepEqual(over.rate_limited, { retry_after_s: 51 });
  assert.equal(call(10_000, "b").tier, "autonomous", "counters are per agent");
  assert.equal(call(61_000).tier, "autonomous", "the oldest call left the window");
  assert.equal(call(61_000).tier, "blocked", "the next oldest has not");
  // explain() shows the limit but does not spend it.
  assert.equal(
    e.explain({ agent: "c", capability: "process.run", now: 1 }).decision.tier,
    "autonomous",
  );
  for (let i = 0; i < 5; i++) e.preview({ agent: "c", capability: "process.run", now: 1 });
  for (let i = 0; i < 3; i++)
    assert.equal(call(2, "c").tier, "autonomous", "preview() spends nothing");
  assert.equal(call(2, "c").tier, "blocked");
});

test("rate-limit counters survive a reload that keeps the rule and reset when it changes", () => {
  const text = (max: number, onExceed: string) => `version: 1
# a comment that moves lines: counters are keyed by the rule, not its position
capabilities:
  process.run:
    tier: autonomous
    rate_limit: { max: ${max}, window: 5m, on_exceed: ${onExceed} }
`;
  const e = engineOf(sys(text(2, "blocked")));
  const call = () => e.evaluate({ agent: "a", capability: "process.run", now: 5 });
  call();
  call();
  assert.equal(call().tier, "blocked");
  assert.ok(e.load([sys("\n" + text(2, "approval_required"))]).ok);
  assert.equal(call().tier, "approval_required", "same rule: the count carried over");
  assert.ok(e.load([sys(text(3, "blocked"))]).ok);
  assert.equal(call().tier, "autonomous", "max changed: a fresh counter");
});

test("notify entries and the notify tier raise an operator event", () => {
  const e = engineOf(
    sys(`version: 1
capabilities:
  a.quiet: { tier: autonomous }
  a.loud: { tier: autonomous, notify: true }
  a.tier: { tier: notify }
`),
  );
  const n = (c: string): boolean => e.evaluate({ agent: "x", capability: c }).notify;
  assert.deepEqual([n("a.quiet"), n("a.loud"), n("a.tier")], [false, true, true]);
});

test("before any policy loads every decision is blocked", () => {
  const e = new PolicyEngine();
  const d = e.evaluate({ agent: "a", capability: "filesystem.read" });
  assert.deepEqual([d.tier, d.rule, d.generation], ["blocked", "no-policy", 0]);
  assert.equal(e.egressDecision("a", "api.github.com", 443).allowed, false);
});

const GOOD = `version: 1
defaults: { tier: approval_required }
capabilities:
  filesystem.read: { tier: autonomous }
`;

test("an invalid file keeps the old generation in force; a good one bumps it", async () => {
  const tmp = tempDir("kruxos-policy-");
  try {
    const file = path.join(tmp.dir, "system.yaml");
    writeFileSync(file, GOOD);
    const registry = new Registry();
    const e = new PolicyEngine({ files: [file], registry });
    const seen: ReloadResult[] = [];
    e.on("reload", (r) => seen.push(r));
    assert.deepEqual(e.reload(), { ok: true, generation: 1, changed: true, files: [file] });
    const cases: [string, string, RegExp][] = [
      ["bad YAML", "version: 1\ncapabilities: {\n", /YAML/],
      [
        "unknown key",
        GOOD + "  process.run: { tier: blocked, colour: red }\n",
        /capabilities\["process\.run"\]\.colour\|unknown key "colour"/,
      ],
      [
        "bad tier",
        GOOD + "  process.run: { tier: maybe }\n",
        /process\.run"\]\.tier\|must be one of/,
      ],
      [
        "bad regex",
        GOOD +
          '  p.r:\n    rules:\n      - { id: r, when: { inputs.c: { matches: "(" } }, tier: blocked }\n',
        /^7\|.*invalid regular expression/,
      ],
      [
        "nested quantifier",
        GOOD +
          '  p.r:\n    rules:\n      - { id: r, when: { inputs.c: { matches: "^(a+)+$" } }, tier: blocked }\n',
        /nested quantifier/,
      ],
      [
        "quantified alternation",
        GOOD +
          '  p.r:\n    rules:\n      - { id: r, when: { inputs.c: { matches: "^(a|aa)*$" } }, tier: blocked }\n',
        /quantified alternation/,
      ],
      [
        "backreference",
        GOOD +
          '  p.r:\n    rules:\n      - { id: r, when: { inputs.c: { matches: "(a)\\\\1" } }, tier: blocked }\n',
        /backreference/,
      ],
      [
        "unknown path root",
        GOOD +
          "  p.r:\n    rules:\n      - { id: r, when: { input.c: { equals: 1 } }, tier: blocked }\n",
        /unknown key "input\.c"/,
      ],
      [
        "duplicate rule id",
        GOOD +
          "  p.r:\n    rules:\n      - { id: r, when: {}, tier: blocked }\n      - { id: r, when: {}, tier: blocked }\n",
        /already used/,
      ],
      ["wrong version", GOOD.replace("version: 1", "version: 2"), /version/],
    ];
    for (const [name, text, expected] of cases) {
      writeFileSync(file, text);
      const r = e.reload();
      assert.match(problemsOf(r), expected, name);
      assert.equal(r.generation, 1, name);
      assert.equal(e.generation, 1, name);
      assert.equal(
        e.evaluate({ agent: "a", capability: "filesystem.read" }).tier,
        "autonomous",
        name,
      );
    }
    writeFileSync(file, GOOD.replace("autonomous", "notify"));
    const ok = e.reload();
    assert.ok(ok.ok);
    assert.equal(e.generation, 2);
    assert.equal(e.evaluate({ agent: "a", capability: "filesystem.read" }).tier, "notify");
    assert.equal(seen.length, cases.length + 2);
    assert.equal(seen.filter((r) => !r.ok).length, cases.length);
    assert.match(readFileSync(file, "utf8"), /notify/);
    const m = await registry.metrics();
    assert.match(m, new RegExp(`^kruxos_policy_reload_failures_total ${cases.length}$`, "m"));
    assert.match(m, /^kruxos_policy_generation 2$/m);
  } finally {
    tmp.cleanup();
  }
});

test("a half-written set never applies: one bad file among good ones rejects them all", () => {
  const { engine } = PolicyEngine.fromSources([sys(GOOD)]);
  const r = engine.load([
    sys(GOOD.replace("autonomous", "blocked")),
    org("version: 1\nbogus: true\n"),
  ]);
  assert.match(problemsOf(r), /^2\|bogus\|unknown key "bogus"$/m);
  assert.equal(engine.evaluate({ agent: "a", capability: "filesystem.read" }).tier, "autonomous");
});

test("unknown keys are rejected with their path, at any depth", () => {
  const { result } = PolicyEngine.fromSources([
    sys(`version: 1
network:
  egress: { allow: [], deny: [], log: true }
agents:
  bot:
    capabilities:
      x.y:
        rules:
          - { id: a, when: { inputs.c: { equals: 1, like: 2 } }, tier: blocked }
`),
  ]);
  const p = problemsOf(result);
  assert.match(p, /^3\|network\.egress\.log\|unknown key "log"$/m);
  assert.match(
    p,
    /^9\|agents\.bot\.capabilities\["x\.y"\]\.rules\.0\.when\["inputs\.c"\]\.like\|unknown key "like"$/m,
  );
});

test("watch() reloads on change and an invalid edit leaves the policy in force", async () => {
  const tmp = tempDir("kruxos-policy-");
  try {
    const file = path.join(tmp.dir, "system.yaml");
    const agents = path.join(tmp.dir, "agents");
    writeFileSync(file, GOOD);
    const e = new PolicyEngine({ files: [file], agentDir: agents, debounceMs: 30 });
    assert.ok(e.reload().ok);
    const stop = e.watch();
    // The watchers do not hold the process open (the appliance's servers do); this test must.
    const keepAlive = setInterval(() => {}, 1000);
    const next = (): Promise<ReloadResult> =>
      new Promise((res, rej) => {
        const t = setTimeout(() => rej(new Error("no reload within 5 s")), 5000);
        e.once("reload", (r) => {
          clearTimeout(t);
          res(r);
        });
      });
    try {
      let r = next();
      writeFileSync(file + ".tmp", GOOD.replace("autonomous", "notify"));
      renameSync(file + ".tmp", file);
      assert.ok((await r).ok);
      assert.equal(e.generation, 2);
      r = next();
      writeFileSync(file, "version: 1\nnope: 1\n");
      assert.equal((await r).ok, false);
      assert.equal(e.generation, 2);
      assert.equal(e.evaluate({ agent: "a", capability: "filesystem.read" }).tier, "notify");
      r = next();
      mkdirSync(agents);
      writeFileSync(file, GOOD);
      assert.ok((await r).ok);
      r = next();
      writeFileSync(
        path.join(agents, "bot.yaml"),
        "version: 1\ncapabilities:\n  filesystem.read: { tier: blocked }\n",
      );
      assert.ok((await r).ok);
      assert.equal(e.evaluate({ agent: "bot", capability: "filesystem.read" }).tier, "blocked");
      assert.equal(e.evaluate({ agent: "a", capability: "filesystem.read" }).tier, "autonomous");
    } finally {
      stop();
      clearInterval(keepAlive);
    }
  } finally {
    tmp.cleanup();
  }
});

test("check traces every layer: entry, rule, line and tier, or no match", () => {
  const e = engineOf(
    sys(`version: 1
defaults: { tier: approval_required }
capabilities:
  "process.*": { tier: approval_required }
`),
    org(`version: 1
capabilities:
  process.run:
    rules:
      - { id: allow-ls, when: { inputs.command: { prefix: ls } }, tier: autonomous }
agents:
  bot:
    capabilities:
      "*": { tier: notify }
`),
  );
  const t = e.explain({ agent: "bot", capability: "process.run", inputs: { command: "ls" } });
  assert.deepEqual(
    t.layers.map((l) => [l.layer, l.match, l.entry, l.rule, l.line, l.tier]),
    [
      ["system", "wildcard", "process.*", "capability", 4, "approval_required"],
      ["org", "exact", "process.run", "allow-ls", 5, "autonomous"],
      ["org/agents.bot", "any", "*", "capability", 9, "notify"],
    ],
  );
  assert.equal(t.decision.tier, "approval_required");
  assert.equal(t.decision.layer, "system");
  assert.equal(t.default.applied, false);
  const none = e.explain({ agent: "x", capability: "git.clone" });
  assert.deepEqual(
    none.layers.map((l) => [l.layer, l.match]),
    [
      ["system", "none"],
      ["org", "none"],
    ],
  );
  assert.equal(none.default.applied, true);
  assert.match(
    formatTrace(t),
    /org\s+\/p\/org\.yaml: exact "process\.run" → rule allow-ls at line 5 → autonomous/,
  );
  assert.match(formatTrace(none), /system\s+\/p\/system\.yaml: no match/);
});

test("diff lists each agent × capability whose tier, or set of possible tiers, changes", () => {
  const before = engineOf(
    sys(`version: 1
defaults: { tier: approval_required }
capabilities:
  filesystem.read: { tier: autonomous }
  process.run: { tier: approval_required }
`),
  );
  const after = engineOf(
    sys(`version: 1
defaults: { tier: approval_required }
capabilities:
  filesystem.read: { tier: autonomous }
  process.run:
    tier: approval_required
    rules:
      - { id: ls, when: { inputs.command: { prefix: ls } }, tier: autonomous }
agents:
  bot:
    capabilities:
      filesystem.read: { tier: blocked }
`),
  );
  const changes = diffPolicies(
    before,
    after,
    ["bot", "other"],
    ["filesystem.read", "process.run", "git.clone"],
  );
  assert.deepEqual(
    changes.map((c) => [c.agent, c.capability, c.from, c.to, c.possible_to.join("|")]),
    [
      ["bot", "filesystem.read", "autonomous", "blocked", "blocked"],
      [
        "bot",
        "process.run",
        "approval_required",
        "approval_required",
        "autonomous|approval_required",
      ],
      [
        "other",
        "process.run",
        "approval_required",
        "approval_required",
        "autonomous|approval_required",
      ],
    ],
  );
  assert.deepEqual(diffPolicies(before, before, ["bot"], ["filesystem.read", "process.run"]), []);
  assert.deepEqual(after.agents(), ["bot"]);
  assert.deepEqual(after.capabilities(), ["filesystem.read", "process.run"]);
});

test("egress is default-deny, deny beats allow across layers, *.domain matches subdomains only", () => {
  const e = engineOf(
    sys(`version: 1
network:
  egress:
    allow: ["api.github.com:443", "*.example.com:443"]
    deny: []
`),
    org(`version: 1
network:
  egress:
    deny: ["evil.example.com:443"]
agents:
  bot:
    network:
      egress:
        allow: ["example.com:80"]
        deny: ["api.github.com:443"]
`),
  );
  const q = (agent: string, host: string, port: number): string => {
    const d = e.egressDecision(agent, host, port);
    return `${d.allowed ? "allow" : "deny"} ${d.rule}${d.line ? `@${d.file}:${d.line}` : ""}`;
  };
  assert.equal(q("a", "api.github.com", 443), "allow api.github.com:443@/p/system.yaml:4");
  assert.equal(q("a", "API.GitHub.com.", 443), "allow api.github.com:443@/p/system.yaml:4");
  assert.equal(q("a", "api.github.com", 80), "deny default-deny");
  assert.equal(q("a", "files.example.com", 443), "allow *.example.com:443@/p/system.yaml:4");
  assert.equal(q("a", "a.b.example.com", 443), "allow *.example.com:443@/p/system.yaml:4");
  assert.equal(q("a", "example.com", 443), "deny default-deny");
  assert.equal(q("a", "notexample.com", 443), "deny default-deny");
  assert.equal(q("a", "evil.example.com", 443), "deny evil.example.com:443@/p/org.yaml:4");
  assert.equal(q("bot", "api.github.com", 443), "deny api.github.com:443@/p/org.yaml:10");
  assert.equal(q("bot", "example.com", 80), "allow example.com:80@/p/org.yaml:9");
  assert.equal(q("a", "example.com", 80), "deny default-deny");
  const { result } = PolicyEngine.fromSources([
    sys(`version: 1\nnetwork: { egress: { allow: ["x.com:70000"] } }\n`),
  ]);
  assert.match(problemsOf(result), /port out of range/);
});

test("metrics count decisions by tier and time evaluations", async () => {
  const registry = new Registry();
  const { engine } = PolicyEngine.fromSources([sys(GOOD)], { registry });
  engine.evaluate({ agent: "a", capability: "filesystem.read" });
  engine.evaluate({ agent: "a", capability: "process.run" });
  engine.evaluate({ agent: "a", capability: "process.run" });
  const m = await registry.metrics();
  assert.match(m, /^kruxos_policy_decisions_total\{tier="autonomous"\} 1$/m);
  assert.match(m, /^kruxos_policy_decisions_total\{tier="approval_required"\} 2$/m);
  assert.match(m, /^kruxos_policy_evaluation_seconds_count 3$/m);
  assert.match(m, /^kruxos_policy_generation 1$/m);
});

test("the shipped system policy compiles and is strict", () => {
  const file = path.join(REPO, "config", "policy", "system.yaml");
  const loaded = new PolicyEngine({ files: [file] });
  loaded.reload();
  assert.equal(loaded.health().status, "ok");
  const e = engineOf(sys(readFileSync(file, "utf8"), file));
  const tier = (c: string): string => e.evaluate({ agent: "any", capability: c }).tier;
  assert.equal(tier("filesystem.read"), "autonomous");
  assert.equal(tier("filesystem.write"), "approval_required");
  assert.equal(tier("process.run"), "approval_required");
  assert.equal(tier("system.shutdown"), "blocked");
  assert.equal(e.egressDecision("any", "api.github.com", 443).allowed, false);
});

test("policy health fails for a file that does not compile", () => {
  const tmp = tempDir("kruxos-policy-");
  try {
    const file = path.join(tmp.dir, "org.yaml");
    writeFileSync(file, "version: 1\ncapabilities:\n  x.y: { tier: sometimes }\n");
    const e = new PolicyEngine({ files: [file] });
    e.reload();
    const h = e.health();
    assert.equal(h.status, "failing");
    assert.match(h.detail ?? "", /org\.yaml:3: capabilities\["x\.y"\]\.tier: must be one of/);
    const missing = new PolicyEngine({ files: [path.join(tmp.dir, "missing.yaml")] });
    missing.reload();
    assert.equal(missing.health().status, "failing");
    assert.match(missing.health().detail ?? "", /missing\.yaml: cannot read/);
  } finally {
    tmp.cleanup();
  }
});

test("policy health: failing before any load, degraded while a rejected reload leaves the old generation, ok again after a good one", () => {
  const tmp = tempDir("kruxos-policy-");
  try {
    const file = path.join(tmp.dir, "system.yaml");
    const e = new PolicyEngine({ files: [file] });
    assert.deepEqual(e.health(), { name: "policy", status: "failing", detail: "no policy loaded" });
    writeFileSync(file, GOOD);
    e.reload();
    assert.deepEqual(e.health(), {
      name: "policy",
      status: "ok",
      facts: { generation: 1, files: 1, entries: 1 },
    });
    writeFileSync(file, "version: 1\ncapabilities:\n  x.y: { tier: sometimes }\n");
    e.reload();
    assert.deepEqual(e.health(), {
      name: "policy",
      status: "degraded",
      detail: "last reload rejected; generation 1 stays in force",
      facts: { generation: 1, files: 1, entries: 1 },
    });
    writeFileSync(file, GOOD.replace("autonomous", "notify"));
    e.reload();
    assert.equal(e.health().status, "ok");
    assert.deepEqual(e.health().facts, { generation: 2, files: 1, entries: 1 });
  } finally {
    tmp.cleanup();
  }
});

test("the ReDoS screen accepts ordinary patterns and rejects catastrophic ones", () => {
  for (const ok of [
    "^ls( |$)",
    "^git (status|log)$",
    "(?:ab)?c",
    "^[a-z]+\\.(js|ts)$",
    "a{2,3}b",
    "^\\d+$",
  ]) {
    assert.equal(redosHazard(ok), undefined, ok);
  }
  for (const bad of [
    "(a+)+",
    "(a*)*b",
    "(a|aa)+",
    "((ab)*c)+",
    "(\\w+\\s?)*$",
    "(a)\\1",
    "(x+){2,}",
  ]) {
    assert.notEqual(redosHazard(bad), undefined, bad);
  }
});

test("the appliance's engine reads the manifest's policy files at their run-time place, then the agents folder", () => {
  const tmp = tempDir("kruxos-policy-");
  try {
    const loaded = loadManifest(path.join(REPO, "kruxos.toml"));
    const paths = hostPaths(loaded.manifest, tmp.dir, loaded.file, {});
    mkdirSync(path.join(tmp.dir, "data", "policy", "agents"), { recursive: true });
    writeFileSync(
      path.join(tmp.dir, "data", "policy", "agents", "alice.yaml"),
      "version: 1\ncapabilities:\n  filesystem.read: { tier: blocked }\n",
    );
    const e = openPolicyEngine(loaded.manifest, paths);
    assert.equal(e.generation, 0, "nothing is loaded before reload()");
    const r = e.reload();
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.files, [
      path.join(REPO, "config", "policy", "system.yaml"),
      path.join(tmp.dir, "data", "policy", "agents", "alice.yaml"),
    ]);
    assert.equal(e.evaluate({ agent: "bob", capability: "filesystem.read" }).tier, "autonomous");
    assert.equal(e.evaluate({ agent: "alice", capability: "filesystem.read" }).tier, "blocked");
  } finally {
    tmp.cleanup();
  }
});
