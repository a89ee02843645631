// Capability definitions are data: config/capabilities/<category>/<verb>.yaml. They are read once,
// validated against schema/capability.schema.json and semantic rules, their input and output
// schemas compiled, and deep-frozen. The registry pairs them with handlers; only a capability with
// a handler (in an enabled category) is listed, described or callable.
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import type { ValidateFunction } from "ajv";
import { LineCounter, parseDocument } from "yaml";
import { CAPABILITY_CATEGORIES, appLayout } from "../config/index.js";
import { KruxError, appRoot, deepFreeze, readSchema, schemaValidator } from "../core/index.js";
import {
  compileCapabilitySchema,
  findings,
  secretPaths,
  stripKruxKeywords,
  undescribedProperties,
  type SchemaFinding,
} from "./schemas.js";
import type { CapabilityDefinition, CapabilityHandler, JsonSchema } from "./types.js";

/** Where the shipped definitions live: <app>/config/capabilities. */
export function defaultCapabilitiesDir(): string {
  return appLayout(appRoot()).capabilitiesDir;
}

const SCHEMA = "capability.schema.json";

export function capabilitySchema(): Record<string, unknown> {
  return readSchema(SCHEMA);
}

function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...yamlFiles(p));
    else if (e.isFile() && /\.ya?ml$/.test(e.name)) out.push(p);
  }
  return out.sort();
}

interface Problem {
  readonly path: string;
  readonly schema_path?: string;
  readonly message: string;
}

function invalid(file: string, problems: readonly Problem[], line?: number): KruxError {
  const first = problems[0] ?? { path: "", message: "invalid" };
  const where = `${file}${line ? `:${line}` : ""}`;
  const summary = problems.map((p) => `${p.path || "/"} ${p.message}`).join("; ");
  return new KruxError("CapabilityDefinitionInvalid", `${where}: ${summary}`, {
    file,
    path: first.path,
    ...(first.schema_path ? { schema_path: first.schema_path } : {}),
    ...(line ? { line } : {}),
    problems,
  });
}

const asProblems = (fs: readonly SchemaFinding[], prefix = ""): Problem[] =>
  fs.map((f) => ({ path: `${prefix}${f.path}`, schema_path: f.schemaPath, message: f.message }));

interface Compiled {
  readonly inputs: ValidateFunction;
  readonly outputs: ValidateFunction;
  readonly secrets: readonly string[];
  readonly mcpInputSchema: JsonSchema;
}

const compiledByDefinition = new WeakMap<CapabilityDefinition, Compiled>();

function compile(def: CapabilityDefinition): Compiled {
  let c = compiledByDefinition.get(def);
  if (!c) {
    c = {
      // Inputs are validated with defaults applied (on a copy); outputs as they are.
      inputs: compileCapabilitySchema(def.inputs, true),
      outputs: compileCapabilitySchema(def.outputs, false),
      secrets: Object.freeze(secretPaths(def.inputs)),
      mcpInputSchema: deepFreeze(stripKruxKeywords(def.inputs) as JsonSchema),
    };
    compiledByDefinition.set(def, c);
  }
  return c;
}

/** Read, validate and freeze one definition file. `root` is the capabilities directory. */
function loadOne(root: string, file: string): CapabilityDefinition {
  const rel = path.relative(root, file);
  const text = readFileSync(file, "utf8");
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const line = e ? lines.linePos(e.pos[0]).line : undefined;
    throw invalid(rel, [{ path: "", message: `not valid YAML: ${e?.message ?? ""}` }], line);
  }
  const value: unknown = doc.toJS();
  const lineOf = (pointer: string): number | undefined => {
    const segs = pointer
      .split("/")
      .slice(1)
      .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
    for (let n = segs.length; n >= 0; n--) {
      const node = doc.getIn(
        segs.slice(0, n).map((s) => (/^\d+$/.test(s) ? Number(s) : s)),
        true,
      ) as { range?: [number, number, number] } | undefined;
      if (node?.range) return lines.linePos(node.range[0]).line;
    }
    return undefined;
  };

  const validate = schemaValidator(SCHEMA);
  if (!validate(value)) {
    const problems = asProblems(findings(validate.errors));
    throw invalid(rel, problems, lineOf(problems[0]?.path ?? ""));
  }
  const def = value as CapabilityDefinition;

  // Semantic rules the schema cannot say.
  const parts = rel.split(path.sep);
  const stem = path.basename(file).replace(/\.ya?ml$/, "");
  const problems: Problem[] = [];
  if (parts.length !== 2)
    problems.push({ path: "", message: "must live at <category>/<verb>.yaml under the directory" });
  if (def.category !== parts[0])
    problems.push({
      path: "/category",
      message: `must equal its folder "${parts[0] ?? ""}"`,
    });
  if (def.name !== `${def.category}.${stem}`)
    problems.push({ path: "/name", message: `must be "${def.category}.${stem}" (folder.stem)` });
  if (!(CAPABILITY_CATEGORIES as readonly string[]).includes(def.category))
    problems.push({ path: "/category", message: "is not a known capability category" });
  for (const p of undescribedProperties(def.inputs))
    problems.push({ path: `/inputs${p}`, message: "input property needs a description" });
  const errorTypes = def.errors.map((e) => e.type);
  errorTypes.forEach((t, i) => {
    if (errorTypes.indexOf(t) !== i)
      problems.push({ path: `/errors/${i}/type`, message: `duplicate error type ${t}` });
  });
  if (problems.length > 0) throw invalid(rel, problems, lineOf(problems[0]?.path ?? ""));

  for (const key of ["inputs", "outputs"] as const) {
    try {
      compileCapabilitySchema(def[key], key === "inputs");
    } catch (err) {
      const at = `/${key}`;
      throw invalid(
        rel,
        [{ path: at, message: `is not a usable JSON Schema: ${(err as Error).message}` }],
        lineOf(at),
      );
    }
  }
  const compiled = compile(def);
  def.common_patterns.forEach((pattern, i) => {
    const copy = structuredClone(pattern.inputs);
    if (!compiled.inputs(copy)) {
      const at = `/common_patterns/${i}/inputs`;
      throw invalid(rel, asProblems(findings(compiled.inputs.errors), at), lineOf(at));
    }
  });

  // Freeze the very object the compiled validators were cached for.
  return deepFreeze(def);
}

/**
 * Every *.yaml under `dir` (recursively) as a validated, frozen definition, sorted by name. Any
 * problem — YAML, schema, name/folder mismatch, a schema that does not compile, an example that does
 * not validate, a duplicate name — throws KruxError CapabilityDefinitionInvalid naming the file.
 */
export function loadCapabilityDefinitions(
  dir: string = defaultCapabilitiesDir(),
): CapabilityDefinition[] {
  const defs = yamlFiles(dir).map((f) => loadOne(dir, f));
  const seen = new Set<string>();
  for (const d of defs) {
    if (seen.has(d.name)) throw invalid(d.name, [{ path: "/name", message: "is defined twice" }]);
    seen.add(d.name);
  }
  return defs.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export type InputValidation =
  | { readonly ok: true; readonly inputs: Readonly<Record<string, unknown>> }
  | { readonly ok: false; readonly errors: readonly SchemaFinding[] };

export type OutputValidation =
  { readonly ok: true } | { readonly ok: false; readonly errors: readonly SchemaFinding[] };

export interface McpTool {
  readonly name: string;
  readonly description: string;
  readonly inputSchema: JsonSchema;
  readonly annotations: {
    readonly title: string;
    readonly readOnlyHint: boolean;
    readonly destructiveHint: boolean;
    readonly idempotentHint: boolean;
    readonly openWorldHint: boolean;
  };
}

export interface ListOptions {
  readonly category?: string;
  readonly tag?: string;
  /** Also list capabilities that have no handler yet (for docs and operators). Default false. */
  readonly includeUnhandled?: boolean;
}

export interface RegistryOptions {
  /** Manifest [capabilities].enabled; capabilities of other categories are neither listed nor callable. */
  readonly enabledCategories?: readonly string[];
}

function titleOf(name: string): string {
  const [category = "", verb = ""] = name.split(".");
  const cap = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);
  return `${cap(category)}: ${verb.replace(/_/g, " ")}`;
}

export class CapabilityRegistry {
  private readonly defs = new Map<string, CapabilityDefinition>();
  private readonly handlers = new Map<string, CapabilityHandler>();
  private readonly enabled: ReadonlySet<string> | undefined;

  constructor(
    definitions: readonly CapabilityDefinition[],
    handlers: Readonly<Record<string, CapabilityHandler>> = {},
    opts: RegistryOptions = {},
  ) {
    for (const d of definitions) {
      if (this.defs.has(d.name))
        throw new KruxError("CapabilityDefinitionInvalid", `${d.name} is defined twice`, {
          file: d.name,
          path: "/name",
        });
      compile(d);
      this.defs.set(d.name, d);
    }
    this.enabled = opts.enabledCategories ? new Set(opts.enabledCategories) : undefined;
    this.registerAll(handlers);
  }

  /** Attach the handler of a defined capability. A handler without a definition is a server fault. */
  register(name: string, handler: CapabilityHandler): this {
    if (!this.defs.has(name))
      throw new KruxError(
        "CapabilityDefinitionInvalid",
        `a handler was registered for ${name}, which has no definition`,
        { file: name, path: "" },
      );
    if (this.handlers.has(name))
      throw new KruxError("CapabilityDefinitionInvalid", `${name} already has a handler`, {
        file: name,
        path: "",
      });
    this.handlers.set(name, handler);
    return this;
  }

  registerAll(handlers: Readonly<Record<string, CapabilityHandler>>): this {
    for (const [name, h] of Object.entries(handlers)) this.register(name, h);
    return this;
  }

  private offered(d: CapabilityDefinition): boolean {
    return this.enabled === undefined || this.enabled.has(d.category);
  }

  /** True when the capability is defined, enabled and has a handler: it can be called. */
  has(name: string): boolean {
    const d = this.defs.get(name);
    return d !== undefined && this.offered(d) && this.handlers.has(name);
  }

  /** Definitions by name, filtered; by default only callable ones. */
  list(opts: ListOptions = {}): CapabilityDefinition[] {
    return [...this.defs.values()]
      .filter((d) => (opts.includeUnhandled ? this.offered(d) : this.has(d.name)))
      .filter((d) => opts.category === undefined || d.category === opts.category)
      .filter((d) => opts.tag === undefined || d.tags.includes(opts.tag))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The definition of a callable capability (or of any defined one with includeUnhandled). */
  describe(
    name: string,
    opts: { includeUnhandled?: boolean } = {},
  ): CapabilityDefinition | undefined {
    const d = this.defs.get(name);
    if (!d) return undefined;
    if (opts.includeUnhandled ? this.offered(d) : this.has(name)) return d;
    return undefined;
  }

  /** The handler to dispatch to, when the capability is callable. */
  handler(name: string): CapabilityHandler | undefined {
    return this.has(name) ? this.handlers.get(name) : undefined;
  }

  /**
   * Check inputs against the capability's input schema. On success `inputs` is a copy with schema
   * defaults applied (the caller's object is never changed); on failure every problem with its JSON
   * pointer, for InvalidParams. Works for any defined capability (the scheduler checks targets).
   */
  validateInputs(name: string, inputs: unknown): InputValidation {
    const d = this.defs.get(name);
    if (!d)
      return {
        ok: false,
        errors: [{ path: "", schemaPath: "", message: `unknown capability ${name}` }],
      };
    const v = compile(d).inputs;
    const copy: unknown = inputs === undefined ? {} : structuredClone(inputs);
    if (v(copy)) return { ok: true, inputs: copy as Record<string, unknown> };
    return { ok: false, errors: findings(v.errors) };
  }

  /** Check a handler's result against the capability's output schema. */
  validateOutputs(name: string, data: unknown): OutputValidation {
    const d = this.defs.get(name);
    if (!d)
      return {
        ok: false,
        errors: [{ path: "", schemaPath: "", message: `unknown capability ${name}` }],
      };
    const v = compile(d).outputs;
    if (v(data)) return { ok: true };
    return { ok: false, errors: findings(v.errors) };
  }

  /** Input locations that may carry ${secret:NAME}, as JSON pointers with "*" for any key/index. */
  secretFields(name: string): readonly string[] {
    const d = this.defs.get(name);
    return d ? compile(d).secrets : [];
  }

  /** The MCP tools/list entry of a callable capability. */
  mcpTool(name: string): McpTool | undefined {
    const d = this.describe(name);
    if (!d) return undefined;
    const se = d.side_effects;
    return {
      name: d.name,
      description: `${d.purpose}\n\nWhen to use: ${d.when_to_use}`,
      inputSchema: compile(d).mcpInputSchema,
      annotations: {
        title: titleOf(d.name),
        readOnlyHint: se.reads && !se.writes && !se.destructive,
        destructiveHint: se.destructive,
        idempotentHint: se.idempotent,
        openWorldHint: se.network,
      },
    };
  }
}
