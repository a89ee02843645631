// Build step (part of `npm run build:ts`, and so of the Nix build): precompile every JSON Schema the
// appliance compiles at start-up into ajv standalone modules, so boot loads validators instead of
// generating them (src/core/schemas.ts). Which schemas, with which options, is found by running
// the real loaders — the default manifest, every capability definition, the shipped policy — and
// taking what core recorded as compiled; nothing here repeats a call site's options.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import standaloneCode from "ajv/dist/standalone/index.js";
import {
  PRECOMPILED_SCHEMAS_DIR,
  appRoot,
  createAjv,
  schemaCompilations,
  schemaKey,
  schemaValidator,
} from "../src/core/index.js";
import { loadManifest } from "../src/config/index.js";
import { loadCapabilityDefinitions } from "../src/capabilities/index.js";
import { compilePolicy } from "../src/policy/index.js";

// What was built before must not be loaded while finding what to build.
rmSync(PRECOMPILED_SCHEMAS_DIR, { recursive: true, force: true });

const root = appRoot();
loadManifest(path.join(root, "kruxos.toml"));
loadCapabilityDefinitions();
const system = path.join(root, "config", "policy", "system.yaml");
const policy = compilePolicy([
  { kind: "system", file: system, text: readFileSync(system, "utf8") },
]);
if (!policy.ok) throw new Error(`the shipped policy does not compile: ${policy.problems.length}`);
// The launcher validates each spec it builds with the file's validator, no options.
schemaValidator("sandbox-spec.schema.json");

mkdirSync(PRECOMPILED_SCHEMAS_DIR, { recursive: true });
const keys: string[] = [];
for (const { schema, opts } of schemaCompilations()) {
  const ajv = createAjv(opts, { source: true });
  const code = standaloneCode.default(ajv, ajv.compile(schema));
  const key = schemaKey(schema, opts);
  writeFileSync(path.join(PRECOMPILED_SCHEMAS_DIR, `${key}.cjs`), code);
  keys.push(key);
}
// The index is written last: a build cut short leaves no index, and nothing is loaded.
writeFileSync(path.join(PRECOMPILED_SCHEMAS_DIR, "index.json"), `${JSON.stringify(keys)}\n`);
