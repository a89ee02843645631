// One schema loader for the appliance: every shipped schema and every capability schema is
// compiled once per process, with one strict configuration.
import assert from "node:assert/strict";
import { test } from "node:test";
import { compileSchema, readSchema, schemaValidator } from "../../src/core/index.js";

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
