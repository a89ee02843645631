// JSON Schema validation for the whole appliance: one Ajv configuration, and every schema compiled
// once per process. The manifest, policy files, capability definitions and their inputs/outputs
// and the sandbox spec are all checked here, so "valid" means the same thing everywhere.
//
// Compiling is the costly part of start-up (about a quarter of a second for the appliance's own
// schemas), so the build precompiles them with ajv's standalone code
// (scripts/precompile-schemas.ts) into dist/src/generated/schema-validators, one module per
// schema named by the hash of the schema and its options. A schema found there is loaded, not
// compiled; any other (an edited definition before the next build) is compiled as before, so the
// cache can be stale or missing without changing what is valid.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv, type ValidateFunction } from "ajv";
import formats from "ajv-formats";
import { appRoot } from "./app-root.js";

/** Where the build puts the precompiled validators (beside the compiled sources). */
export const PRECOMPILED_SCHEMAS_DIR = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  "..",
  "generated",
  "schema-validators",
);

export interface SchemaOptions {
  /** Fill in each `default` while validating (the data is changed in place). */
  readonly useDefaults?: boolean;
  /** Annotation keywords the schemas may carry besides JSON Schema's (for example x-kruxos-secret). */
  readonly keywords?: readonly string[];
}

/**
 * Ajv as every schema of the appliance is compiled: strict (unknown keywords and formats are
 * schema errors), all errors reported, the ajv-formats formats.
 */
export function createAjv(opts: SchemaOptions = {}, build: { source?: boolean } = {}): Ajv {
  const ajv = new Ajv({
    // The build keeps the generated source, for standalone modules.
    ...(build.source ? { code: { source: true } } : {}),
    allErrors: true,
    strict: true,
    // `type: [string, "null"]` is the plain way to say "nullable" in draft-07.
    allowUnionTypes: true,
    // `if: {action: create} then: {required: [name]}` names properties defined one level up.
    strictRequired: false,
    useDefaults: opts.useDefaults ?? false,
  });
  formats.default(ajv);
  for (const keyword of opts.keywords ?? []) ajv.addKeyword({ keyword, schemaType: "boolean" });
  return ajv;
}

// One Ajv per set of options; Ajv itself keeps each schema object's compiled validator, so a
// schema is compiled once however often it is asked for.
const instances = new Map<string, Ajv>();
const optionsKey = (opts: SchemaOptions): string =>
  `${opts.useDefaults === true}\0${[...(opts.keywords ?? [])].sort().join("\0")}`;

function shared(opts: SchemaOptions): Ajv {
  const key = optionsKey(opts);
  let ajv = instances.get(key);
  if (!ajv) instances.set(key, (ajv = createAjv(opts)));
  return ajv;
}

/** The name of `schema` compiled with `opts`: what the precompiled module is called. */
export function schemaKey(
  schema: Readonly<Record<string, unknown>>,
  opts: SchemaOptions = {},
): string {
  return createHash("sha256")
    .update(optionsKey(opts))
    .update("\0")
    .update(JSON.stringify(schema))
    .digest("hex")
    .slice(0, 32);
}

let precompiled: Set<string> | undefined;
const requirePrecompiled = createRequire(path.join(PRECOMPILED_SCHEMAS_DIR, "index.json"));

function loadPrecompiled(key: string): ValidateFunction | undefined {
  if (precompiled === undefined) {
    const index = path.join(PRECOMPILED_SCHEMAS_DIR, "index.json");
    precompiled = new Set(
      existsSync(index) ? (JSON.parse(readFileSync(index, "utf8")) as string[]) : [],
    );
  }
  if (!precompiled.has(key)) return undefined;
  return requirePrecompiled(`./${key}.cjs`) as ValidateFunction;
}

/** What this process compiled (rather than loaded precompiled): the build's list of work. */
const compilations: { schema: Readonly<Record<string, unknown>>; opts: SchemaOptions }[] = [];

/** Every schema this process had to compile, with its options, in order. */
export function schemaCompilations(): readonly {
  readonly schema: Readonly<Record<string, unknown>>;
  readonly opts: SchemaOptions;
}[] {
  return compilations;
}

const byKey = new Map<string, ValidateFunction>();

/**
 * The validator of `schema`: precompiled by the build when it is one of the appliance's own,
 * otherwise compiled on first use. Throws when the schema itself is unusable.
 */
export function compileSchema(
  schema: Readonly<Record<string, unknown>>,
  opts: SchemaOptions = {},
): ValidateFunction {
  const key = schemaKey(schema, opts);
  let validate = byKey.get(key);
  if (validate) return validate;
  validate = loadPrecompiled(key);
  if (!validate) {
    validate = shared(opts).compile(schema);
    compilations.push({ schema, opts });
  }
  byKey.set(key, validate);
  return validate;
}

/** A schema shipped with the app: `<app>/schema/<file>`, parsed afresh. */
export function readSchema(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path.join(appRoot(), "schema", file), "utf8")) as Record<
    string,
    unknown
  >;
}

const fileValidators = new Map<string, ValidateFunction>();

/** The validator of `<app>/schema/<file>`, read and compiled once per process. */
export function schemaValidator(file: string, opts: SchemaOptions = {}): ValidateFunction {
  const key = `${file}\0${optionsKey(opts)}`;
  let validate = fileValidators.get(key);
  if (!validate) fileValidators.set(key, (validate = compileSchema(readSchema(file), opts)));
  return validate;
}
