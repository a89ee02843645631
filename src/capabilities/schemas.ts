// JSON Schema plumbing for capabilities: how their schemas are compiled (core's loader, with our
// x-kruxos-secret keyword; inputs with defaults applied), the walk that finds x-kruxos-secret
// fields, the copy without x-kruxos-* keys that MCP clients see, and ajv errors as {path, message}
// findings.
import type { ErrorObject, ValidateFunction } from "ajv";
import { compileSchema } from "../core/index.js";
import type { JsonSchema } from "./types.js";

export const SECRET_KEYWORD = "x-kruxos-secret";

export interface SchemaFinding {
  /** JSON pointer into the validated value, pointing at the offending key ("" is the root). */
  readonly path: string;
  /** JSON pointer into the schema, for example "#/properties/command/oneOf". */
  readonly schemaPath: string;
  readonly message: string;
}

/**
 * A capability's input schema (`defaults` true: validated with defaults applied, on a copy) or
 * output schema, compiled once. Throws when the schema itself is unusable.
 */
export function compileCapabilitySchema(schema: JsonSchema, defaults: boolean): ValidateFunction {
  return compileSchema(schema, { useDefaults: defaults, keywords: [SECRET_KEYWORD] });
}

const escapePointer = (s: string): string => s.replace(/~/g, "~0").replace(/\//g, "~1");

/** Ajv errors as findings whose path names the offending key itself (missing or unknown). */
export function findings(errors: readonly ErrorObject[] | null | undefined): SchemaFinding[] {
  const out: SchemaFinding[] = [];
  const seen = new Set<string>();
  for (const e of errors ?? []) {
    let path = e.instancePath;
    let message = e.message ?? "is invalid";
    if (e.keyword === "required") {
      const key = String((e.params as { missingProperty: string }).missingProperty);
      path = `${path}/${escapePointer(key)}`;
      message = `is required`;
    } else if (e.keyword === "additionalProperties") {
      const key = String((e.params as { additionalProperty: string }).additionalProperty);
      path = `${path}/${escapePointer(key)}`;
      message = `is not a known property`;
    } else if (e.keyword === "enum") {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
      message = `must be one of ${allowed.map((v) => JSON.stringify(v)).join(", ")}`;
    }
    const key = `${path}\0${e.schemaPath}\0${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ path, schemaPath: e.schemaPath, message });
  }
  return out;
}

type SchemaNode = Readonly<Record<string, unknown>>;
const isNode = (v: unknown): v is SchemaNode =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Input locations marked x-kruxos-secret, as JSON pointers where "*" stands for any key of a map
 * or any index of an array: "/env/*", "/headers/*", "/body", "/credentials/password".
 */
export function secretPaths(schema: JsonSchema): string[] {
  const out = new Set<string>();
  const walk = (node: unknown, at: string): void => {
    if (!isNode(node)) return;
    if (node[SECRET_KEYWORD] === true) out.add(at);
    if (isNode(node.properties))
      for (const [k, v] of Object.entries(node.properties)) walk(v, `${at}/${escapePointer(k)}`);
    if (isNode(node.additionalProperties)) walk(node.additionalProperties, `${at}/*`);
    if (isNode(node.patternProperties))
      for (const v of Object.values(node.patternProperties)) walk(v, `${at}/*`);
    if (isNode(node.items)) walk(node.items, `${at}/*`);
    else if (Array.isArray(node.items)) for (const v of node.items) walk(v, `${at}/*`);
    for (const k of ["oneOf", "anyOf", "allOf"])
      if (Array.isArray(node[k])) for (const v of node[k] as unknown[]) walk(v, at);
    for (const k of ["if", "then", "else", "not"]) walk(node[k], at);
  };
  walk(schema, "");
  return [...out].sort();
}

/**
 * The string values of `inputs` at the given secret paths (see secretPaths), with their concrete
 * pointers — where the call site looks for ${secret:NAME} placeholders to resolve.
 */
export function secretValues(
  inputs: unknown,
  paths: readonly string[],
): { path: string; value: string }[] {
  const out: { path: string; value: string }[] = [];
  for (const pattern of paths) {
    const segs = pattern.split("/").slice(1);
    const visit = (value: unknown, i: number, at: string): void => {
      if (i === segs.length) {
        if (typeof value === "string") out.push({ path: at, value });
        return;
      }
      const seg = segs[i] ?? "";
      if (Array.isArray(value)) {
        if (seg === "*") value.forEach((v, n) => visit(v, i + 1, `${at}/${n}`));
        return;
      }
      if (!isNode(value)) return;
      if (seg === "*") {
        for (const [k, v] of Object.entries(value)) visit(v, i + 1, `${at}/${escapePointer(k)}`);
      } else {
        const key = seg.replace(/~1/g, "/").replace(/~0/g, "~");
        if (Object.hasOwn(value, key)) visit(value[key], i + 1, `${at}/${seg}`);
      }
    };
    visit(inputs, 0, "");
  }
  return out;
}

/** A deep copy of a schema without any x-kruxos-* keyword (what MCP clients receive). */
export function stripKruxKeywords(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(stripKruxKeywords);
  if (!isNode(schema)) return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    // Input names are snake_case (schema/capability.schema.json), so no property is mistaken for one.
    if (k.startsWith("x-kruxos-")) continue;
    out[k] = stripKruxKeywords(v);
  }
  return out;
}

/** Every object-level property in an input schema, for the "every input has a description" rule. */
export function undescribedProperties(schema: JsonSchema): string[] {
  const missing: string[] = [];
  const walk = (node: unknown, at: string): void => {
    if (!isNode(node)) return;
    if (isNode(node.properties))
      for (const [k, v] of Object.entries(node.properties)) {
        const p = `${at}/${escapePointer(k)}`;
        if (!isNode(v) || typeof v.description !== "string" || v.description.length === 0)
          missing.push(p);
        walk(v, p);
      }
    if (isNode(node.additionalProperties)) walk(node.additionalProperties, `${at}/*`);
    if (isNode(node.items)) walk(node.items, `${at}/*`);
    for (const k of ["oneOf", "anyOf", "allOf"])
      if (Array.isArray(node[k])) for (const v of node[k] as unknown[]) walk(v, at);
  };
  walk(schema, "");
  return missing;
}
