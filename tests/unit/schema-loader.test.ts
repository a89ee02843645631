// One schema loader for the appliance: every shipped schema and every capability schema is
// compiled once per process, with one strict configuration — or, for the appliance's own schemas,
// loaded as the build precompiled it, with the same verdicts.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { parse } from "smol-toml";
import {
  PRECOMPILED_SCHEMAS_DIR,
  appRoot,
  compileSchema,
  createAjv,
  readSchema,
  schemaCompilations,
  schemaKey,
  schemaValidator,
} from "../../src/core/index.js";
import { loadManifest } from "../../src/config/index.js";
import { loadCapabilityDefinitions } from "../../src/capabilities/index.js";
import { compilePolicy } from "../../src/policy/index.js";

// First, before this file compiles anything else: the build's cache covers start-up.
test("the appliance's own schemas are loaded precompiled at start-up: manifest, capabilities, policy, sandbox spec", () => {
  assert.ok(
    existsSync(path.join(PRECOMPILED_SCHEMAS_DIR, "index.json")),
    "npm run build:ts writes the precompiled validators",
  );
  const before = schemaCompilations().length;
  loadManifest(path.join(appRoot(), "kruxos.toml"));
  const defs = loadCapabilityDefinitions();
  const system = path.join(appRoot(), "config", "policy", "system.yaml");
  assert.ok(
    compilePolicy([{ kind: "system", file: system, text: readFileSync(system, "utf8") }]).ok,
  );
  schemaValidator("sandbox-spec.schema.json");
  assert.ok(defs.length > 40);
  assert.deepEqual(
    schemaCompilations()
      .slice(before)
      .map((c) => String(c.schema.title ?? c.schema.$id ?? JSON.stringify(c.schema).slice(0, 80))),
    [],
    "compiled at run time although the build should have precompiled them",
  );
});

test("a precompiled validator gives the same verdicts, errors and defaults as a fresh compile", () => {
  const schema = readSchema("kruxos.toml.schema.json");
  const precompiled = compileSchema(schema, { useDefaults: true });
  const fresh = createAjv({ useDefaults: true }).compile(schema);
  assert.notEqual(precompiled, fresh);
  const text = readFileSync(path.join(appRoot(), "kruxos.toml"), "utf8");
  const a = JSON.parse(JSON.stringify(parse(text))) as Record<string, unknown>;
  const b = structuredClone(a);
  assert.equal(precompiled(a), fresh(b));
  assert.deepEqual(a, b, "defaults filled in the same way");
  const broken = { ...structuredClone(b), gateway: { port: "seven" }, unknown_table: {} };
  const broken2 = structuredClone(broken);
  assert.equal(precompiled(broken), false);
  assert.equal(fresh(broken2), false);
  assert.deepEqual(precompiled.errors, fresh.errors);
});

test("a schema the build did not see is compiled, under another key than any edited copy", () => {
  const schema = { type: "object", properties: { n: { type: "integer", minimum: 3 } } };
  const before = schemaCompilations().length;
  const v = compileSchema(schema);
  assert.equal(schemaCompilations().length, before + 1);
  assert.ok(!v({ n: 2 }));
  const edited = { type: "object", properties: { n: { type: "integer", minimum: 1 } } };
  assert.notEqual(schemaKey(edited), schemaKey(schema));
  assert.ok(compileSchema(edited)({ n: 2 }));
  assert.notEqual(schemaKey(schema, { useDefaults: true }), schemaKey(schema));
});

test("a shipped schema is compiled once however often it is asked for", () => {
  const a = schemaValidator("kruxos.toml.schema.json", { useDefaults: true });
  assert.equal(schemaValidator("kruxos.toml.schema.json", { useDefaults: true }), a);
  assert.equal(schemaValidator("policy.schema.json"), schemaValidator("policy.schema.json"));
});

test("the same schema object is compiled once", () => {
  const schema = { type: "object", properties: { n: { type: "integer" } } };
  assert.equal(compileSchema(schema), compileSchema(schema));
});

test("readSchema gives a fresh copy each time, so callers cannot change the shipped schema", () => {
  const a = readSchema("kruxos.toml.schema.json");
  a.title = "changed";
  assert.notEqual(readSchema("kruxos.toml.schema.json").title, "changed");
});

test("with useDefaults the data gains its defaults; without, it is left as it is", () => {
  const schema = {
    type: "object",
    properties: { mode: { type: "string", default: "halt" } },
    additionalProperties: false,
  };
  const filled: Record<string, unknown> = {};
  assert.ok(compileSchema(schema, { useDefaults: true })(filled));
  assert.deepEqual(filled, { mode: "halt" });
  const untouched: Record<string, unknown> = {};
  assert.ok(compileSchema(schema)(untouched));
  assert.deepEqual(untouched, {});
});

test("unknown keywords are schema errors unless named as annotation keywords", () => {
  assert.throws(() => compileSchema({ type: "string", "x-kruxos-test": true }), /unknown keyword/);
  const v = compileSchema(
    { type: "string", "x-kruxos-test": true },
    { keywords: ["x-kruxos-test"] },
  );
  assert.ok(v("text"));
  assert.ok(!v(1));
});

test("every error is reported, with formats known", () => {
  const v = compileSchema({
    type: "object",
    properties: { a: { type: "string", format: "uri" }, b: { type: "integer" } },
  });
  assert.ok(!v({ a: "not a uri", b: "x" }));
  assert.deepEqual(v.errors?.map((e) => e.instancePath).sort(), ["/a", "/b"]);
});
