// Capability definitions are what the model reads and what the gateway enforces: all 47 exist and
// validate, their names match their paths, every input and error is explained, MCP tools derive
// from them faithfully, and the registry only offers what it can actually run.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { parse as parseYaml } from "yaml";
import {
  CapabilityRegistry,
  createAgentHandlers,
  createSystemHandlers,
  loadCapabilityDefinitions,
  secretValues,
  type CallContext,
  type CapabilityDefinition,
  type CapabilityHandler,
} from "../../src/capabilities/index.js";
import { Counter, Histogram, KruxError, createRegistry } from "../../src/core/index.js";
import { REPO, tempDir } from "../helpers/repo.js";
import { RECOVERY_ACTIONS } from "../helpers/recovery-actions.js";

const DIR = path.join(REPO, "config", "capabilities");

// SPEC §5, pinned literally.
const THE_47 = [
  "filesystem.read",
  "filesystem.write",
  "filesystem.list",
  "filesystem.move",
  "filesystem.delete",
  "filesystem.search",
  "filesystem.stat",
  "filesystem.mkdir",
  "filesystem.copy",
  "filesystem.watch",
  "process.run",
  "process.list",
  "process.kill",
  "process.wait",
  "process.info",
  "network.http_request",
  "network.dns_lookup",
  "network.port_check",
  "network.download",
  "git.log",
  "git.diff",
  "git.status",
  "git.commit",
  "git.branch",
  "git.checkout",
  "git.clone",
  "scheduler.cron_create",
  "scheduler.cron_list",
  "scheduler.cron_delete",
  "alerts.send",
  "alerts.list",
  "alerts.acknowledge",
  "system.metrics",
  "system.health",
  "system.info",
  "system.shutdown",
  "agent.session",
  "agent.capabilities",
  "agent.briefing",
  "agent.whoami",
  "secrets.list",
  "secrets.use",
  "secrets.rotate",
  "comms.send",
  "comms.receive",
  "comms.subscribe",
  "comms.publish",
];

const fileOf = (name: string): string => {
  const [category = "", verb = ""] = name.split(".");
  return path.join(DIR, category, `${verb}.yaml`);
};

let cached: CapabilityDefinition[] | undefined;
const definitions = (): CapabilityDefinition[] => (cached ??= loadCapabilityDefinitions(DIR));
const byName = (name: string): CapabilityDefinition => {
  const d = definitions().find((x) => x.name === name);
  assert.ok(d, `${name} is not defined`);
  return d;
};

const ctx = (over: Partial<CallContext> = {}): CallContext => ({
  agent: "researcher",
  session: "s_0123456789abcdef",
  workspaceRoot: "/tmp/kruxos-test-workspace",
  egress: false,
  signal: new AbortController().signal,
  callId: "call-1",
  capability: "test",
  mandatoryDenyAllowed: () => false,
  ...over,
});

const noop: CapabilityHandler = async () => ({});

test("all 47 capabilities of the spec have a definition file", () => {
  assert.equal(new Set(THE_47).size, 47);
  const missing = THE_47.filter((n) => !existsSync(fileOf(n)));
  assert.deepEqual(missing, [], `missing definition files: ${missing.join(", ")}`);
});

test("every definition validates against the schema and its semantic rules, and there are exactly the 47", () => {
  const names = definitions().map((d) => d.name);
  assert.deepEqual([...names].sort(), [...THE_47].sort());
});

test("each definition's name and category match its folder and file name", () => {
  for (const name of THE_47) {
    if (!existsSync(fileOf(name))) continue; // reported by the existence test
    const raw = parseYaml(readFileSync(fileOf(name), "utf8")) as { name: string; category: string };
    assert.equal(raw.name, name, fileOf(name));
    assert.equal(raw.category, name.split(".")[0], fileOf(name));
  }
});

test("definitions are frozen: nothing downstream can change what the model was told", () => {
  const d = byName("process.run");
  assert.ok(Object.isFrozen(d));
  assert.ok(Object.isFrozen(d.inputs));
  assert.ok(Object.isFrozen(d.errors[0]?.recovery));
});

test("every input property, at every depth, has a description", () => {
  const walk = (node: unknown, at: string, out: string[]): void => {
    if (typeof node !== "object" || node === null) return;
    const n = node as Record<string, unknown>;
    if (typeof n.properties === "object" && n.properties !== null)
      for (const [k, v] of Object.entries(n.properties as Record<string, unknown>)) {
        const d = (v as { description?: unknown }).description;
        if (typeof d !== "string" || d.length < 5) out.push(`${at}/${k}`);
        walk(v, `${at}/${k}`, out);
      }
    if (typeof n.additionalProperties === "object") walk(n.additionalProperties, `${at}/*`, out);
    if (typeof n.items === "object") walk(n.items, `${at}/*`, out);
  };
  for (const d of definitions()) {
    const out: string[] = [];
    walk(d.inputs, "", out);
    assert.deepEqual(out, [], `${d.name}: inputs without description`);
    assert.equal(d.inputs.type, "object", d.name);
    assert.equal(d.inputs.additionalProperties, false, `${d.name} must reject unknown inputs`);
  }
});

test("every error type is PascalCase, capability-specific, and has at least one recovery from the vocabulary", () => {
  const generic = [
    "PolicyDenied",
    "ApprovalRequired",
    "RateLimited",
    "InvalidParams",
    "InternalError",
  ];
  for (const d of definitions()) {
    for (const e of d.errors) {
      assert.match(e.type, /^[A-Z][a-zA-Z0-9]*$/, `${d.name} ${e.type}`);
      assert.ok(!generic.includes(e.type), `${d.name} lists generic ${e.type}`);
      assert.ok(e.recovery.length >= 1, `${d.name} ${e.type} has no recovery`);
      for (const r of e.recovery) {
        assert.ok(RECOVERY_ACTIONS.includes(r.action), `${d.name} ${e.type}: ${r.action}`);
        assert.ok(r.description.length >= 10);
      }
    }
    assert.ok(d.common_patterns.length >= 1, `${d.name} has no example`);
  }
});

test("default tiers follow risk: reads run autonomously, exec and outbound writes need more, shutdown is blocked", () => {
  assert.equal(byName("system.shutdown").permission_tier, "blocked");
  assert.equal(byName("process.run").permission_tier, "approval_required");
  assert.equal(byName("git.clone").permission_tier, "approval_required");
  assert.equal(byName("secrets.rotate").permission_tier, "approval_required");
  for (const n of ["agent.whoami", "system.info", "system.health", "git.status", "git.log"])
    assert.equal(byName(n).permission_tier, "autonomous", n);
  // filesystem.* is confined to the workspace and its tiers are argued in its own definitions.
  for (const d of definitions().filter((x) => x.category !== "filesystem")) {
    if (d.name.startsWith("process.") || d.name.startsWith("git."))
      assert.equal(d.execution, "sandboxed", d.name);
    if (d.name.startsWith("network.")) assert.equal(d.execution, "in_process", d.name);
    if (d.side_effects.destructive || (d.side_effects.writes && d.side_effects.network))
      assert.notEqual(d.permission_tier, "autonomous", `${d.name} writes or destroys autonomously`);
  }
});

test("MCP tools carry purpose and when_to_use, the input schema without x-kruxos keys, and annotations from side effects", () => {
  const all: Record<string, CapabilityHandler> = {};
  for (const d of definitions()) all[d.name] = noop;
  const reg = new CapabilityRegistry(definitions(), all);
  for (const d of definitions()) {
    const t = reg.mcpTool(d.name);
    assert.ok(t, d.name);
    assert.equal(t.name, d.name);
    assert.equal(t.description, `${d.purpose}\n\nWhen to use: ${d.when_to_use}`);
    assert.doesNotMatch(JSON.stringify(t.inputSchema), /x-kruxos-/, d.name);
    const se = d.side_effects;
    assert.deepEqual(
      {
        readOnlyHint: t.annotations.readOnlyHint,
        destructiveHint: t.annotations.destructiveHint,
        idempotentHint: t.annotations.idempotentHint,
        openWorldHint: t.annotations.openWorldHint,
      },
      {
        readOnlyHint: se.reads && !se.writes && !se.destructive,
        destructiveHint: se.destructive,
        idempotentHint: se.idempotent,
        openWorldHint: se.network,
      },
      d.name,
    );
    assert.ok(t.annotations.title.length > 0);
  }
  assert.equal(reg.mcpTool("git.status")?.annotations.readOnlyHint, true);
  assert.equal(reg.mcpTool("process.run")?.annotations.readOnlyHint, false);
  assert.equal(reg.mcpTool("process.run")?.annotations.destructiveHint, true);
  assert.equal(reg.mcpTool("network.http_request")?.annotations.openWorldHint, true);
  assert.equal(reg.mcpTool("system.info")?.annotations.openWorldHint, false);
  // The stripped copy is separate: the definition still marks its secret fields.
  assert.match(JSON.stringify(byName("process.run").inputs), /x-kruxos-secret/);
});

test("invalid inputs are reported with JSON pointers to the offending keys and schema paths", () => {
  const reg = new CapabilityRegistry(definitions(), { "process.run": noop });
  const missing = reg.validateInputs("process.run", {});
  assert.equal(missing.ok, false);
  if (!missing.ok)
    assert.deepEqual(
      missing.errors.map((e) => e.path),
      ["/command"],
    );

  const unknown = reg.validateInputs("process.run", { command: "ls", shell: true });
  assert.equal(unknown.ok, false);
  if (!unknown.ok) {
    assert.equal(unknown.errors[0]?.path, "/shell");
    assert.equal(unknown.errors[0]?.schemaPath, "#/additionalProperties");
  }

  const wrongType = reg.validateInputs("process.run", { command: "ls", timeout_s: 99999 });
  assert.equal(wrongType.ok, false);
  if (!wrongType.ok) {
    assert.equal(wrongType.errors[0]?.path, "/timeout_s");
    assert.equal(wrongType.errors[0]?.schemaPath, "#/properties/timeout_s/maximum");
  }

  const nested = reg.validateInputs("process.run", { command: "env", env: { "bad name": "x" } });
  assert.equal(nested.ok, false);
  if (!nested.ok) assert.ok(nested.errors.some((e) => e.path.startsWith("/env")));
});

test("valid inputs come back as a copy with schema defaults applied", () => {
  const reg = new CapabilityRegistry(definitions(), { "process.run": noop });
  const given = { command: ["make", "test"] };
  const r = reg.validateInputs("process.run", given);
  assert.equal(r.ok, true);
  if (r.ok)
    assert.deepEqual(r.inputs, { command: ["make", "test"], timeout_s: 120, background: false });
  assert.deepEqual(given, { command: ["make", "test"] });
});

test("only capabilities with a handler are listed, described, exposed as MCP tools or callable", () => {
  const reg = new CapabilityRegistry(definitions(), { "system.info": noop });
  assert.deepEqual(
    reg.list().map((d) => d.name),
    ["system.info"],
  );
  assert.equal(reg.has("system.info"), true);
  assert.equal(reg.has("process.run"), false);
  assert.equal(reg.describe("process.run"), undefined);
  assert.equal(reg.mcpTool("process.run"), undefined);
  assert.equal(reg.handler("process.run"), undefined);
  assert.equal(reg.list({ includeUnhandled: true }).length, definitions().length);
  reg.register("process.run", noop);
  assert.deepEqual(
    reg.list().map((d) => d.name),
    ["process.run", "system.info"],
  );
  assert.deepEqual(
    reg.list({ category: "process" }).map((d) => d.name),
    ["process.run"],
  );
  assert.deepEqual(
    reg.list({ tag: "shell" }).map((d) => d.name),
    ["process.run"],
  );
});

test("a category the manifest does not enable is not offered even with a handler", () => {
  const reg = new CapabilityRegistry(
    definitions(),
    { "system.info": noop, "process.run": noop },
    { enabledCategories: ["system", "agent"] },
  );
  assert.deepEqual(
    reg.list().map((d) => d.name),
    ["system.info"],
  );
  assert.equal(reg.handler("process.run"), undefined);
});

test("a handler for an undefined capability, or a second handler, is refused", () => {
  const reg = new CapabilityRegistry(definitions());
  assert.throws(
    () => reg.register("process.teleport", noop),
    (e: unknown) => e instanceof KruxError && e.code === "CapabilityDefinitionInvalid",
  );
  reg.register("system.info", noop);
  assert.throws(() => reg.register("system.info", noop), KruxError);
});

test("secret-capable input fields are found wherever they are marked", () => {
  const reg = new CapabilityRegistry(definitions());
  assert.deepEqual(reg.secretFields("process.run"), ["/command", "/command/*", "/env/*"]);
  assert.deepEqual(reg.secretFields("network.http_request"), ["/body", "/headers/*", "/url"]);
  assert.deepEqual(reg.secretFields("network.download"), ["/headers/*", "/url"]);
  assert.deepEqual(reg.secretFields("git.clone"), [
    "/credentials/password",
    "/credentials/username",
  ]);
  assert.deepEqual(reg.secretFields("git.status"), []);
  assert.deepEqual(
    secretValues(
      { url: "https://x.test/", headers: { Authorization: "Bearer ${secret:t}" }, body: "b" },
      reg.secretFields("network.http_request"),
    ),
    [
      { path: "/body", value: "b" },
      { path: "/headers/Authorization", value: "Bearer ${secret:t}" },
      { path: "/url", value: "https://x.test/" },
    ],
  );
});

function writeDef(dir: string, rel: string, mutate: (d: Record<string, unknown>) => void): void {
  const base = parseYaml(readFileSync(fileOf("system.info"), "utf8")) as Record<string, unknown>;
  mutate(base);
  mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
  writeFileSync(path.join(dir, rel), JSON.stringify(base));
}

function rejects(
  rel: string,
  mutate: (d: Record<string, unknown>) => void,
  expectedPath: string | RegExp,
): void {
  const { dir, cleanup } = tempDir();
  try {
    writeDef(dir, rel, mutate);
    assert.throws(
      () => loadCapabilityDefinitions(dir),
      (e: unknown) => {
        assert.ok(e instanceof KruxError);
        assert.equal(e.code, "CapabilityDefinitionInvalid");
        assert.equal(e.data.file, rel);
        if (typeof expectedPath === "string") assert.equal(e.data.path, expectedPath);
        else assert.match(String(e.data.path), expectedPath);
        return true;
      },
    );
  } finally {
    cleanup();
  }
}

test("a broken definition is refused with its file and the path inside it", () => {
  rejects("system/info.yaml", (d) => (d.surprise = 1), "/surprise");
  rejects("system/about.yaml", () => undefined, "/name");
  rejects("agent/info.yaml", () => undefined, "/category");
  rejects("system/info.yaml", (d) => (d.permission_tier = "sometimes"), "/permission_tier");
  rejects(
    "system/info.yaml",
    (d) => ((d.inputs as { properties: unknown }).properties = { verbose: { type: "boolean" } }),
    "/inputs/properties/verbose/description",
  );
  rejects(
    "system/info.yaml",
    (d) =>
      (d.errors = [
        {
          type: "Broken",
          when: "it breaks in a way",
          recovery: [{ action: "pray", description: "hope for the best" }],
        },
      ]),
    "/errors/0/recovery/0/action",
  );
  rejects(
    "system/info.yaml",
    (d) =>
      (d.errors = [
        {
          type: "PolicyDenied",
          when: "policy says no",
          recovery: [{ action: "ask_operator", description: "ask a human" }],
        },
      ]),
    "/errors/0/type",
  );
  rejects(
    "system/info.yaml",
    (d) => (d.errors = [{ type: "Broken", when: "it breaks in a way", recovery: [] }]),
    "/errors/0/recovery",
  );
  rejects(
    "system/info.yaml",
    (d) => (d.common_patterns = [{ description: "with a bogus input", inputs: { bogus: true } }]),
    /^\/common_patterns\/0\/inputs/,
  );
  rejects(
    "system/info.yaml",
    (d) => ((d.outputs as Record<string, unknown>).properties = { x: { type: "strnig" } }),
    /^\/outputs/,
  );
});

test("the shipped YAML gives a line number with a schema failure", () => {
  const { dir, cleanup } = tempDir();
  try {
    mkdirSync(path.join(dir, "system"));
    const text = readFileSync(fileOf("system.info"), "utf8").replace(
      /^permission_tier: .*$/m,
      "permission_tier: sometimes",
    );
    writeFileSync(path.join(dir, "system", "info.yaml"), text);
    const line = text.split("\n").findIndex((l) => l.startsWith("permission_tier:")) + 1;
    assert.throws(
      () => loadCapabilityDefinitions(dir),
      (e: unknown) => e instanceof KruxError && e.data.line === line,
    );
  } finally {
    cleanup();
  }
});

// The six in-process handlers: their real outputs must match what the model was promised.

async function metricsText(): Promise<string> {
  const r = createRegistry("gateway", false);
  const calls = new Counter({
    name: "kruxos_capability_calls_total",
    help: "Calls by capability and outcome.",
    labelNames: ["capability", "outcome"],
    registers: [r],
  });
  calls.inc({ capability: "process.run", outcome: "ok" }, 3);
  calls.inc({ capability: 'we"ird\\name', outcome: "error" });
  const h = new Histogram({
    name: "kruxos_capability_duration_seconds",
    help: "Capability duration.",
    buckets: [0.1, 1],
    registers: [r],
  });
  h.observe(0.5);
  return r.metrics();
}

function registryWithBuiltins(): CapabilityRegistry {
  const reg = new CapabilityRegistry(definitions());
  reg.registerAll(
    createSystemHandlers({
      meta: () => ({
        name: "kruxos",
        version: "0.1.0",
        meta_version: 1,
        manifest_sha256: "ab".repeat(32),
        mode: "host",
        ports: {
          agent: 7700,
          supervision_ws: 7701,
          user_api: 7703,
          dashboard: 7800,
          proxy: 3128,
          metrics: 9464,
        },
        metrics: "http://127.0.0.1:9464/metrics",
        capability_count: 47,
        policy_generation: 3,
        sandbox: {
          layers: ["userns", "seccomp"],
          landlock_abi: 4,
          cgroup_mode: null,
          required: [],
        },
      }),
      health: () => ({
        status: "degraded",
        components: [
          { name: "bootstrap", status: "ok" },
          {
            name: "sandbox",
            status: "degraded",
            detail: "landlock missing",
            facts: { layers: ["userns"] },
          },
        ],
      }),
      metricsText,
    }),
  );
  reg.registerAll(
    createAgentHandlers({
      registry: reg,
      sessionInfo: () => ({
        transport: "mcp",
        connected_at: "2025-01-15T06:00:00.000Z",
        call_count: 4,
        state_keys: 2,
        client: { name: "claude-code", version: "1.0.0" },
      }),
      effectiveTier: (_c, name) => (name === "system.metrics" ? "blocked" : "autonomous"),
    }),
  );
  return reg;
}

async function outputOf(reg: CapabilityRegistry, name: string, inputs: unknown): Promise<unknown> {
  const v = reg.validateInputs(name, inputs);
  assert.ok(v.ok, `${name} inputs: ${JSON.stringify(v)}`);
  const h = reg.handler(name);
  assert.ok(h, `${name} has no handler`);
  const data = await h(v.inputs, ctx());
  const out = reg.validateOutputs(name, data);
  assert.ok(
    out.ok,
    `${name} output does not match its schema: ${JSON.stringify(out)}\n${JSON.stringify(data)}`,
  );
  return data;
}

test("system.info, system.health and system.metrics answer exactly their output schemas", async () => {
  const reg = registryWithBuiltins();
  const info = (await outputOf(reg, "system.info", {})) as Record<string, unknown>;
  assert.equal(info.workspace, "/workspace");
  assert.equal(info.capability_count, 47);
  assert.ok(!("metrics" in info) && !("meta_version" in info), "only documented fields");
  // A sparse meta still yields a schema-valid answer.
  const sparse = createSystemHandlers({
    meta: () => ({}),
    health: () => ({ status: "ok", components: [] }),
    metricsText: async () => "",
  });
  assert.ok(reg.validateOutputs("system.info", await sparse["system.info"]({}, ctx())).ok);

  const health = (await outputOf(reg, "system.health", {})) as { status: string };
  assert.equal(health.status, "degraded");

  const summary = (await outputOf(reg, "system.metrics", { prefix: "kruxos_capability_" })) as {
    families: {
      name: string;
      type: string;
      samples: { labels: Record<string, string>; value: number | null }[];
    }[];
  };
  const calls = summary.families.find((f) => f.name === "kruxos_capability_calls_total");
  assert.equal(calls?.type, "counter");
  assert.ok(calls?.samples.some((s) => s.labels.capability === 'we"ird\\name' && s.value === 1));
  const hist = summary.families.find((f) => f.name === "kruxos_capability_duration_seconds");
  assert.equal(hist?.type, "histogram");
  assert.ok(hist && hist.samples.length >= 4, "buckets, sum and count belong to the family");

  const text = (await outputOf(reg, "system.metrics", {
    format: "prometheus",
    max_samples: 3,
  })) as {
    text: string;
    truncated: boolean;
  };
  assert.equal(text.text.trim().split("\n").length, 3);
  assert.equal(text.truncated, true);
});

test("agent.whoami, agent.session and agent.capabilities answer exactly their output schemas", async () => {
  const reg = registryWithBuiltins();
  assert.deepEqual(await outputOf(reg, "agent.whoami", {}), {
    agent: "researcher",
    session: "s_0123456789abcdef",
    workspace: "/workspace",
  });
  const s = (await outputOf(reg, "agent.session", {})) as Record<string, unknown>;
  assert.equal(s.transport, "mcp");
  assert.equal(s.call_count, 4);

  const summary = (await outputOf(reg, "agent.capabilities", {})) as {
    capabilities: { name: string; tier: string }[];
    count: number;
  };
  const names = summary.capabilities.map((c) => c.name);
  assert.ok(names.includes("agent.whoami") && names.includes("system.info"));
  assert.ok(!names.includes("system.metrics"), "blocked capabilities are left out");
  assert.ok(!names.includes("process.run"), "capabilities without a handler are left out");
  assert.equal(summary.count, names.length);

  const full = (await outputOf(reg, "agent.capabilities", {
    category: "agent",
    detail: "full",
  })) as {
    capabilities: { inputs: unknown; when_to_use: string }[];
  };
  assert.ok(
    full.capabilities.length === 3 && full.capabilities.every((c) => c.when_to_use && c.inputs),
  );
});
