// JSON Schema validation for the whole appliance: one Ajv configuration, and every schema compiled
// once per process. The manifest, policy files, capability definitions and their inputs/outputs
// and the sandbox spec are all checked here, so "valid" means the same thing everywhere.
import { readFileSync } from "node:fs";
import path from "node:path";
import { Ajv, type ValidateFunction } from "ajv";
import formats from "ajv-formats";
import { appRoot } from "./app-root.js";

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
export function createAjv(opts: SchemaOptions = {}): Ajv {
  const ajv = new Ajv({
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

/** The validator of `schema` (compiled on first use). Throws when the schema itself is unusable. */
export function compileSchema(
  schema: Readonly<Record<string, unknown>>,
  opts: SchemaOptions = {},
): ValidateFunction {
  return shared(opts).compile(schema);
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
