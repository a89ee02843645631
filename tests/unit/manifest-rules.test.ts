// Every semantic rule has a stable code, documentation, and a valid and an invalid fixture.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { RULES, validateManifestText } from "../../src/config/index.js";
import { REPO } from "../helpers/repo.js";

// Pinned: these codes are part of the product contract; renaming one breaks operators' tooling.
const CODES = [
  "E001",
  "E002",
  "E003",
  "E004",
  "E005",
  "E006",
  "E007",
  "E008",
  "E009",
  "E010",
  "E011",
  "E012",
  "E013",
  "E014",
  "E015",
  "W001",
  "W002",
  "W003",
  "W004",
  "W005",
];

const fixture = (code: string, kind: "valid" | "invalid"): string =>
  readFileSync(path.join(REPO, "tests", "fixtures", "rules", `${code}.${kind}.toml`), "utf8");

test("the rule catalogue is exactly the pinned codes", () => {
  assert.deepEqual(
    RULES.map((r) => r.code),
    CODES,
  );
  for (const r of RULES)
    assert.equal(r.severity, r.code.startsWith("E") ? "error" : "warning", r.code);
});

test("docs/manifest.md documents every rule code and no other", () => {
  const doc = readFileSync(path.join(REPO, "docs", "manifest.md"), "utf8");
  const documented = [...doc.matchAll(/^### ([EW]\d{3})\b/gm)].map((m) => m[1]);
  assert.deepEqual(documented, CODES);
});

for (const code of CODES) {
  test(`rule ${code}: the invalid fixture is reported with that code and the valid one is clean`, () => {
    const bad = validateManifestText(fixture(code, "invalid"));
    assert.ok(
      bad.manifest,
      `${code} invalid fixture must pass the schema so the rule itself is tested`,
    );
    const hits = bad.findings.filter((f) => f.code === code);
    assert.ok(hits.length > 0, `${code} not reported: ${JSON.stringify(bad.findings)}`);
    for (const h of hits) {
      assert.ok(h.path.length > 0);
      assert.ok(h.message.length > 0);
    }
    const good = validateManifestText(fixture(code, "valid"));
    assert.ok(good.manifest);
    assert.deepEqual(
      good.findings.filter((f) => f.code === code),
      [],
      `${code} valid fixture flagged`,
    );
    assert.deepEqual(
      good.findings.filter((f) => f.severity === "error"),
      [],
      `${code} valid fixture has errors`,
    );
  });
}

test("the default kruxos.toml is valid with no findings", () => {
  const r = validateManifestText(readFileSync(path.join(REPO, "kruxos.toml"), "utf8"));
  assert.ok(r.manifest);
  assert.deepEqual(r.findings, []);
});

test("the default kruxos.toml spells out exactly the schema defaults", () => {
  const written = validateManifestText(readFileSync(path.join(REPO, "kruxos.toml"), "utf8"));
  const empty = validateManifestText("");
  assert.deepEqual(written.manifest, empty.manifest);
});

test("an unknown key is an error that names the key and its line", () => {
  const r = validateManifestText("[gateway]\nport = 7700\nprot = 7701\n");
  assert.equal(r.manifest, undefined);
  assert.deepEqual(r.findings, [
    {
      code: "E000",
      severity: "error",
      path: "gateway.prot",
      message: 'unknown key "prot"',
      line: 3,
    },
  ]);
});

test("an unknown section is an error", () => {
  const r = validateManifestText("[gatewy]\nport = 1\n");
  assert.equal(r.findings[0]?.path, "gatewy");
  assert.equal(r.findings[0]?.line, 1);
});

test("a wrong type and an out-of-range port are errors with paths", () => {
  const r = validateManifestText('[gateway]\nport = "7700"\n[dashboard]\nport = 70000\n');
  const paths = r.findings.map((f) => f.path).sort();
  assert.deepEqual(paths, ["dashboard.port", "gateway.port"]);
});

test("control characters in paths and commands are refused (they could inject supervisord.conf sections)", () => {
  const r = validateManifestText('[paths]\ntmp = "/tmp\\n[program:evil]\\ncommand=/bin/sh"\n');
  assert.equal(r.manifest, undefined);
  assert.equal(r.findings[0]?.path, "paths.tmp");
  const c = validateManifestText(
    '[programs.gateway]\ncommand = "kruxos serve gateway\\n[program:x]"\n',
  );
  assert.equal(c.findings[0]?.path, "programs.gateway.command");
});

test("a program without a command is an error, not a silent second gateway", () => {
  const r = validateManifestText("[programs.foo]\npriority = 5\n");
  assert.deepEqual(
    r.findings.map((f) => [f.path, f.message]),
    [["programs.foo.command", 'missing required key "command"']],
  );
});

test("TOML syntax errors are findings with a line, not crashes", () => {
  const r = validateManifestText("[gateway]\nport = = 1\n");
  assert.equal(r.manifest, undefined);
  assert.equal(r.findings[0]?.code, "E000");
  assert.equal(r.findings[0]?.line, 2);
});

test("every schema property has a description, a default and examples", () => {
  const schema = JSON.parse(
    readFileSync(path.join(REPO, "schema", "kruxos.toml.schema.json"), "utf8"),
  ) as Record<string, unknown>;
  const missing: string[] = [];
  // A required property has no default by definition (ajv would fill it before checking `required`).
  const walk = (
    node: Record<string, unknown>,
    at: string,
    isProperty: boolean,
    required = false,
  ): void => {
    if (isProperty) {
      for (const k of ["description", ...(required ? [] : ["default"]), "examples"])
        if (!(k in node)) missing.push(`${at}: ${k}`);
    }
    const req = (node.required ?? []) as string[];
    for (const [k, v] of Object.entries(
      (node.properties ?? {}) as Record<string, Record<string, unknown>>,
    ))
      walk(v, `${at}.${k}`, true, req.includes(k));
    const ap = node.additionalProperties;
    if (ap && typeof ap === "object") {
      const entry = ap as Record<string, unknown>;
      if (!("description" in entry)) missing.push(`${at}.*: description`);
      walk(entry, `${at}.*`, false);
    }
  };
  walk(schema, "(root)", false);
  assert.deepEqual(missing, []);
  assert.equal(existsSync(path.join(REPO, "schema", "kruxos.toml.schema.json")), true);
});
