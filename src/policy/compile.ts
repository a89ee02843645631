// Compile policy files once: YAML (with positions) → JSON Schema (ajv, compiled once) → semantic
// checks → an evaluation structure of Maps and precompiled condition closures. Either every file
// compiles or the whole set is rejected with its problems; nothing is half-applied.
import { createHash } from "node:crypto";
import type { ErrorObject } from "ajv";
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Node } from "yaml";
import { parseHostPattern, readSchema, schemaValidator, type HostPattern } from "../core/index.js";
import { AGENT_NAME } from "../config/index.js";
import { compileCondition, ConditionError, type Test } from "./conditions.js";
import {
  TIER_RANK,
  type LayerKind,
  type MatchKind,
  type PolicyProblem,
  type PolicySource,
  type Tier,
} from "./types.js";

export interface CompiledRule {
  readonly id: string;
  readonly rank: number;
  readonly line: number;
  readonly reason: string | undefined;
  readonly test: Test;
}

export interface CompiledRateLimit {
  readonly max: number;
  readonly windowMs: number;
  readonly onExceed: number;
  readonly line: number;
  /** Stable across reloads while file, section, key, max and window are unchanged. */
  readonly identity: string;
}

export interface CompiledEntry {
  readonly key: string;
  readonly match: MatchKind;
  readonly rank: number | undefined;
  readonly line: number;
  readonly rules: readonly CompiledRule[];
  readonly rateLimit: CompiledRateLimit | undefined;
  readonly notify: boolean;
}

/** An egress rule: the shared host:port pattern and where it is written. */
export interface Destination extends HostPattern {
  readonly line: number;
}

/** One layer: a file's top level, or one `agents.<name>` section of a file. */
export interface Layer {
  readonly name: string;
  readonly file: string;
  readonly exact: ReadonlyMap<string, CompiledEntry>;
  /** Keyed by the prefix before ".*". */
  readonly wildcards: ReadonlyMap<string, CompiledEntry>;
  readonly any: CompiledEntry | undefined;
  readonly allow: readonly Destination[];
  readonly deny: readonly Destination[];
  /** Candidate entries per capability name, most specific first (filled lazily). */
  readonly candidates: Map<string, readonly CompiledEntry[]>;
}

export interface CompiledFile {
  readonly kind: LayerKind;
  readonly file: string;
  readonly agent: string | undefined;
  readonly defaults: { readonly rank: number; readonly line: number } | undefined;
  readonly top: Layer;
  readonly agents: ReadonlyMap<string, Layer>;
}

export interface CompiledPolicy {
  readonly files: readonly CompiledFile[];
  /** sha256 over every source, to tell a real change from a touched file. */
  readonly digest: string;
  /** Every rate-limit identity in this policy (counters of others are dropped on reload). */
  readonly rateLimitIds: ReadonlySet<string>;
}

export type CompileResult =
  | { readonly ok: true; readonly policy: CompiledPolicy }
  | { readonly ok: false; readonly problems: readonly PolicyProblem[] };

const WINDOW_MS: Readonly<Record<string, number>> = {
  "60s": 60_000,
  "5m": 300_000,
  "1h": 3_600_000,
};

const SCHEMA = "policy.schema.json";

export function policySchema(): Record<string, unknown> {
  return readSchema(SCHEMA);
}

export function compilePolicy(sources: readonly PolicySource[]): CompileResult {
  const problems: PolicyProblem[] = [];
  const files: CompiledFile[] = [];
  const rateLimitIds = new Set<string>();
  const hash = createHash("sha256");
  for (const src of sources) {
    const body = src.text ?? JSON.stringify(src.data);
    hash.update(`${src.kind}\0${src.file}\0${src.agent ?? ""}\0${body.length}\0${body}`);
    const compiled = compileFile(src, problems, rateLimitIds);
    if (compiled) files.push(compiled);
  }
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, policy: { files, digest: hash.digest("hex"), rateLimitIds } };
}

// --- one file ------------------------------------------------------------------------------------

type Lines = Map<string, number>;

/** "capabilities.process.run.rules" → capabilities["process.run"].rules (names hold dots). */
export const dotted = (segs: readonly string[]): string =>
  segs.map((s, i) => (s.includes(".") ? `["${s}"]` : i === 0 ? s : `.${s}`)).join("");

const pointer = (segs: readonly string[]): string =>
  segs.map((s) => "/" + s.replaceAll("~", "~0").replaceAll("/", "~1")).join("");

/** Line of every key and sequence item, keyed by JSON pointer (ajv's instancePath format). */
function collectLines(node: Node | null, lc: LineCounter, at: string, out: Lines): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const here = at + pointer([key]);
      const start = (pair.key as Node | null)?.range?.[0];
      if (start !== undefined) out.set(here, lc.linePos(start).line);
      collectLines(pair.value as Node | null, lc, here, out);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => {
      const here = `${at}/${i}`;
      const start = (item as Node | null)?.range?.[0];
      if (start !== undefined) out.set(here, lc.linePos(start).line);
      collectLines(item as Node | null, lc, here, out);
    });
  }
}

/** The line of the nearest ancestor of `segs` that has one. */
function lineOf(lines: Lines, segs: readonly string[]): number | undefined {
  for (let n = segs.length; n > 0; n--) {
    const l = lines.get(pointer(segs.slice(0, n)));
    if (l !== undefined) return l;
  }
  return undefined;
}

function schemaProblem(file: string, lines: Lines, e: ErrorObject): PolicyProblem {
  const segs = e.instancePath
    .split("/")
    .slice(1)
    .map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"));
  let message = e.message ?? "invalid";
  let at = segs;
  if (e.keyword === "additionalProperties") {
    const key = String((e.params as { additionalProperty: string }).additionalProperty);
    at = [...segs, key];
    message = `unknown key "${key}"`;
  } else if (e.keyword === "propertyNames") {
    const key = String((e.params as { propertyName: string }).propertyName);
    at = [...segs, key];
    message = `"${key}" is not a valid name here`;
  } else if (e.keyword === "required") {
    message = `missing required key "${String((e.params as { missingProperty: string }).missingProperty)}"`;
  } else if (e.keyword === "enum") {
    message = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(", ")}`;
  }
  const line = lineOf(lines, at);
  return {
    file,
    ...(line !== undefined ? { line } : {}),
    path: dotted(at) || "(root)",
    message,
  };
}

/** A private copy: compiled closures must not change when the caller mutates its object. */
function cloneData(
  file: string,
  data: unknown,
  problems: PolicyProblem[],
): { raw: unknown; lines: Lines } | undefined {
  try {
    return { raw: structuredClone(data), lines: new Map() };
  } catch (err) {
    problems.push({ file, message: `not plain data: ${(err as Error).message}` });
    return undefined;
  }
}

function parseYaml(
  file: string,
  text: string,
  problems: PolicyProblem[],
): { raw: unknown; lines: Lines } | undefined {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    for (const err of doc.errors) {
      problems.push({
        file,
        ...(err.linePos ? { line: err.linePos[0].line } : {}),
        message: `YAML: ${err.message.split("\n")[0] ?? err.code}`,
      });
    }
    return undefined;
  }
  const lines: Lines = new Map();
  collectLines(doc.contents as Node | null, lc, "", lines);
  try {
    return { raw: doc.toJS({ maxAliasCount: 50 }), lines };
  } catch (err) {
    problems.push({ file, message: `YAML: ${(err as Error).message}` });
    return undefined;
  }
}

interface RawEntry {
  tier?: Tier;
  rules?: { id: string; when: unknown; tier: Tier; reason?: string }[];
  rate_limit?: { max: number; window: string; on_exceed: Tier };
  notify?: boolean;
}
interface RawSection {
  capabilities?: Record<string, RawEntry>;
  network?: { egress?: { allow?: string[]; deny?: string[] } };
}
interface RawFile extends RawSection {
  version: 1;
  defaults?: { tier: Tier };
  agents?: Record<string, RawSection>;
}

function compileFile(
  src: PolicySource,
  problems: PolicyProblem[],
  rateLimitIds: Set<string>,
): CompiledFile | undefined {
  const { file } = src;
  const parsed =
    src.text === undefined
      ? cloneData(file, src.data, problems)
      : parseYaml(file, src.text, problems);
  if (!parsed) return undefined;
  const { raw, lines } = parsed;
  const v = schemaValidator(SCHEMA);
  if (!v(raw)) {
    for (const e of v.errors ?? []) problems.push(schemaProblem(file, lines, e));
    return undefined;
  }
  const data = raw as RawFile;
  const before = problems.length;
  const at = (segs: string[], message: string): void => {
    const line = lineOf(lines, segs);
    problems.push({ file, ...(line !== undefined ? { line } : {}), path: dotted(segs), message });
  };
  if (src.kind === "agent") {
    if (src.agent === undefined || !AGENT_NAME.test(src.agent))
      at([], `agent file name must be <agent>.yaml with an agent name matching ${AGENT_NAME}`);
    if (data.agents) at(["agents"], "an agent file applies to one agent; agents: is not allowed");
  }
  const ruleIds = new Map<string, string>();
  const section = (sec: RawSection, base: string[], name: string): Layer =>
    compileSection(sec, base, name, {
      file,
      lines,
      at,
      ruleIds,
      rateLimitIds,
    });
  const top = section(data, [], src.kind);
  const agents = new Map<string, Layer>();
  for (const [agent, sec] of Object.entries(data.agents ?? {})) {
    agents.set(agent, section(sec, ["agents", agent], `${src.kind}/agents.${agent}`));
  }
  if (problems.length > before) return undefined;
  return {
    kind: src.kind,
    file,
    agent: src.agent,
    defaults: data.defaults
      ? { rank: TIER_RANK[data.defaults.tier], line: lines.get(pointer(["defaults"])) ?? 0 }
      : undefined,
    top,
    agents,
  };
}

interface SectionCtx {
  readonly file: string;
  readonly lines: Lines;
  readonly at: (segs: string[], message: string) => void;
  readonly ruleIds: Map<string, string>;
  readonly rateLimitIds: Set<string>;
}

function compileSection(sec: RawSection, base: string[], name: string, c: SectionCtx): Layer {
  const exact = new Map<string, CompiledEntry>();
  const wildcards = new Map<string, CompiledEntry>();
  let any: CompiledEntry | undefined;
  for (const [key, raw] of Object.entries(sec.capabilities ?? {})) {
    const segs = [...base, "capabilities", key];
    const match: MatchKind = key === "*" ? "any" : key.endsWith(".*") ? "wildcard" : "exact";
    const rules: CompiledRule[] = [];
    (raw.rules ?? []).forEach((r, i) => {
      const rs = [...segs, "rules", String(i)];
      const seen = c.ruleIds.get(r.id);
      if (seen !== undefined) c.at([...rs, "id"], `rule id "${r.id}" is already used at ${seen}`);
      c.ruleIds.set(r.id, dotted(rs));
      try {
        rules.push({
          id: r.id,
          rank: TIER_RANK[r.tier],
          line: c.lines.get(pointer(rs)) ?? 0,
          reason: r.reason,
          test: compileCondition(r.when),
        });
      } catch (err) {
        if (!(err instanceof ConditionError)) throw err;
        c.at([...rs, "when", ...err.at], err.message);
      }
    });
    if ((raw.rate_limit || raw.notify !== undefined) && raw.tier === undefined)
      c.at(
        segs,
        "rate_limit and notify need a tier on the same entry (so the entry always decides)",
      );
    let rateLimit: CompiledRateLimit | undefined;
    if (raw.rate_limit) {
      const { max, window, on_exceed } = raw.rate_limit;
      const identity = `${c.file}\0${name}\0${key}\0${max}\0${window}`;
      c.rateLimitIds.add(identity);
      rateLimit = {
        max,
        windowMs: WINDOW_MS[window] ?? 60_000,
        onExceed: TIER_RANK[on_exceed],
        line: c.lines.get(pointer([...segs, "rate_limit"])) ?? 0,
        identity,
      };
    }
    const entry: CompiledEntry = {
      key,
      match,
      rank: raw.tier === undefined ? undefined : TIER_RANK[raw.tier],
      line: c.lines.get(pointer(segs)) ?? 0,
      rules,
      rateLimit,
      notify: raw.notify === true,
    };
    if (match === "any") any = entry;
    else if (match === "wildcard") wildcards.set(key.slice(0, -2), entry);
    else exact.set(key, entry);
  }
  const dests = (kind: "allow" | "deny"): Destination[] =>
    (sec.network?.egress?.[kind] ?? []).flatMap((text, i) => {
      const segs = [...base, "network", "egress", kind, String(i)];
      const d = parseDestination(text, c.lines.get(pointer(segs)) ?? 0);
      if (typeof d === "string") {
        c.at(segs, d);
        return [];
      }
      return [d];
    });
  return {
    name,
    file: c.file,
    exact,
    wildcards,
    any,
    allow: dests("allow"),
    deny: dests("deny"),
    candidates: new Map(),
  };
}

function parseDestination(text: string, line: number): Destination | string {
  const p = parseHostPattern(text);
  return typeof p === "string" ? p : { ...p, line };
}
