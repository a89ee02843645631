// Conditions compile once into closures. Regular expressions are screened for catastrophic
// backtracking before they are accepted, and globs run on a small NFA (no backtracking at all).
import path from "node:path";

/** What a condition sees: the request, with inputs as given by the caller. */
export interface ConditionContext {
  readonly agent: string;
  readonly capability: string;
  readonly inputs: unknown;
}

export type Test = (ctx: ConditionContext) => boolean;

/** Strings longer than this never satisfy `matches` or `glob` (documented in docs/policy.md). */
export const MAX_MATCH_INPUT = 4096;

/** A compile failure at a path inside the condition tree (relative to the `when`). */
export class ConditionError extends Error {
  constructor(
    readonly at: readonly string[],
    message: string,
  ) {
    super(message);
  }
}

const COMBINATORS = new Set(["all", "any", "not"]);

export function compileCondition(when: unknown, at: readonly string[] = []): Test {
  const obj = when as Record<string, unknown>;
  const parts: Test[] = [];
  for (const [key, value] of Object.entries(obj)) {
    const here = [...at, key];
    if (key === "all" || key === "any") {
      const subs = (value as unknown[]).map((c, i) => compileCondition(c, [...here, String(i)]));
      parts.push(key === "all" ? allOf(subs) : anyOf(subs));
    } else if (key === "not") {
      const sub = compileCondition(value, here);
      parts.push((ctx) => !sub(ctx));
    } else {
      parts.push(compileOperators(key, value as Record<string, unknown>, here));
    }
  }
  return allOf(parts);
}

function allOf(tests: Test[]): Test {
  if (tests.length === 0) return () => true;
  if (tests.length === 1) return tests[0] as Test;
  return (ctx) => {
    for (const t of tests) if (!t(ctx)) return false;
    return true;
  };
}

function anyOf(tests: Test[]): Test {
  return (ctx) => {
    for (const t of tests) if (t(ctx)) return true;
    return false;
  };
}

/** A dotted path into the request: `agent`, `capability` or `inputs.<key>.<key>…`. */
function resolver(dotted: string): (ctx: ConditionContext) => unknown {
  const [root, ...rest] = dotted.split(".");
  return (ctx) => {
    let cur: unknown =
      root === "agent" ? ctx.agent : root === "capability" ? ctx.capability : ctx.inputs;
    for (const seg of rest) {
      if (cur === null || typeof cur !== "object" || !Object.hasOwn(cur, seg)) return undefined;
      cur = (cur as Record<string, unknown>)[seg];
    }
    return cur;
  };
}

type Predicate = (v: unknown) => boolean;

function compileOperators(
  dotted: string,
  ops: Record<string, unknown>,
  at: readonly string[],
): Test {
  if (COMBINATORS.has(dotted)) throw new ConditionError(at, "combinator used as a path");
  const get = resolver(dotted);
  const preds: Predicate[] = Object.entries(ops).map(([op, arg]) =>
    compileOperator(op, arg, [...at, op]),
  );
  if (preds.length === 1) {
    const p = preds[0] as Predicate;
    return (ctx) => p(get(ctx));
  }
  return (ctx) => {
    const v = get(ctx);
    for (const p of preds) if (!p(v)) return false;
    return true;
  };
}

function compileOperator(op: string, arg: unknown, at: readonly string[]): Predicate {
  switch (op) {
    case "equals":
      return (v) => v === arg;
    case "in": {
      const list = arg as unknown[];
      if (list.every((x) => typeof x === "string")) {
        const set = new Set(list as string[]);
        return (v) => typeof v === "string" && set.has(v);
      }
      return (v) => list.some((x) => x === v);
    }
    case "prefix": {
      const p = arg as string;
      return (v) => typeof v === "string" && v.startsWith(p);
    }
    case "glob": {
      const g = compileGlob(arg as string, at);
      return (v) => {
        if (typeof v !== "string" || v.length > MAX_MATCH_INPUT) return false;
        const n = path.posix.normalize(v);
        if (n === ".." || n.startsWith("../")) return false;
        return g(n);
      };
    }
    case "matches": {
      const re = compileSafeRegex(arg as string, at);
      return (v) => typeof v === "string" && v.length <= MAX_MATCH_INPUT && re.test(v);
    }
    case "lt":
      return (v) => typeof v === "number" && v < (arg as number);
    case "lte":
      return (v) => typeof v === "number" && v <= (arg as number);
    case "gt":
      return (v) => typeof v === "number" && v > (arg as number);
    case "gte":
      return (v) => typeof v === "number" && v >= (arg as number);
    case "exists": {
      const want = arg as boolean;
      return (v) => (v !== undefined) === want;
    }
    default:
      throw new ConditionError(at, `unknown operator "${op}"`);
  }
}

// --- regular expressions -------------------------------------------------------------------------

/**
 * Accept a regular expression only if it cannot backtrack exponentially: no backreferences, and no
 * repeated group (`*`, `+`, `{n,m}`) whose body holds a quantifier or an alternation ((a+)+,
 * (a|a)*, ((ab)*c)+); `(…)?` is allowed.
 * Polynomial backtracking (\s*\s*x) remains possible and is bounded by MAX_MATCH_INPUT.
 */
export function compileSafeRegex(source: string, at: readonly string[] = []): RegExp {
  const why = redosHazard(source);
  if (why) throw new ConditionError(at, `regular expression rejected (${why}): ${source}`);
  try {
    return new RegExp(source);
  } catch (err) {
    throw new ConditionError(at, `invalid regular expression: ${(err as Error).message}`);
  }
}

interface Group {
  quantified: boolean; // holds a quantifier anywhere inside
  alternation: boolean; // holds a top-level `|`
}

const QUANT_BRACES = /^\{\d+(,\d*)?\}/;

export function redosHazard(src: string): string | undefined {
  const stack: Group[] = [{ quantified: false, alternation: false }];
  const top = (): Group => stack[stack.length - 1] as Group;
  // Length of the quantifier at i (0 when none).
  const quantAt = (i: number): number => {
    const c = src[i];
    if (c === "*" || c === "+" || c === "?") return 1;
    if (c === "{") return QUANT_BRACES.exec(src.slice(i))?.[0].length ?? 0;
    return 0;
  };
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === "\\") {
      const n = src[i + 1] ?? "";
      if (/[1-9]/.test(n) || n === "k") return "backreference";
      i++;
      continue;
    }
    if (c === "[") {
      for (i++; i < src.length && src[i] !== "]"; i++) if (src[i] === "\\") i++;
      continue;
    }
    if (c === "(") {
      stack.push({ quantified: false, alternation: false });
      if (src[i + 1] === "?") i++; // (?: (?= (?! (?<name> (?<= (?<! — modifiers, not quantifiers
      continue;
    }
    if (c === "|") {
      top().alternation = true;
      continue;
    }
    if (c === ")") {
      if (stack.length === 1) return undefined; // unbalanced: let RegExp report it
      const g = stack.pop() as Group;
      const q = quantAt(i + 1);
      // `?` runs the group at most once, so only repetition can multiply the ways to match.
      const repeats = q > 0 && src[i + 1] !== "?";
      if (repeats && (g.quantified || g.alternation)) {
        return g.quantified ? "nested quantifier" : "quantified alternation";
      }
      if (q > 0 || g.quantified) top().quantified = true;
      i += q;
      if (q > 0 && src[i + 1] === "?") i++; // lazy modifier
      continue;
    }
    const q = quantAt(i);
    if (q > 0) {
      top().quantified = true;
      i += q - 1;
      if (src[i + 1] === "?") i++;
    }
  }
  return undefined;
}

// --- globs ---------------------------------------------------------------------------------------

const enum G {
  Lit,
  One, // ?   one character other than /
  Star, // *  any run without /
  DStar, // ** any run, / included
  Opt, // start of "**/" as a whole segment, compiled as (** /)?: may skip the next two tokens
}

interface GTok {
  readonly k: G;
  readonly c?: string;
}

/** Compile a glob to a matcher: `*` and `?` stay inside a segment, `**` crosses `/`. */
export function compileGlob(pattern: string, at: readonly string[] = []): (s: string) => boolean {
  if (pattern.split("/").includes(".."))
    throw new ConditionError(at, `glob must not contain ".." segments: ${pattern}`);
  const toks: GTok[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === "*" && pattern[i + 1] === "*") {
      const wholeSegment = (i === 0 || pattern[i - 1] === "/") && pattern[i + 2] === "/";
      if (wholeSegment) {
        toks.push({ k: G.Opt }, { k: G.DStar }, { k: G.Lit, c: "/" });
        i += 2;
      } else {
        toks.push({ k: G.DStar });
        i += 1;
        while (pattern[i + 1] === "*") i++; // *** is **
      }
    } else if (c === "*") toks.push({ k: G.Star });
    else if (c === "?") toks.push({ k: G.One });
    else toks.push({ k: G.Lit, c });
  }
  const m = toks.length;
  // NFA simulation: `cur[j]` = the first j tokens can match the input read so far.
  return (s) => {
    let cur = new Uint8Array(m + 1);
    let next = new Uint8Array(m + 1);
    cur[0] = 1;
    closure(cur);
    for (let i = 0; i < s.length; i++) {
      const ch = s[i] as string;
      next.fill(0);
      let any = false;
      for (let j = 0; j < m; j++) {
        if (!cur[j]) continue;
        const t = toks[j] as GTok;
        switch (t.k) {
          case G.Lit:
            if (t.c === ch) next[j + 1] = 1;
            break;
          case G.One:
            if (ch !== "/") next[j + 1] = 1;
            break;
          case G.Star:
            if (ch !== "/") next[j] = 1;
            break;
          case G.DStar:
            next[j] = 1;
            break;
          case G.Opt:
            break;
        }
      }
      closure(next);
      for (let j = 0; j <= m; j++) if (next[j]) any = true;
      if (!any) return false;
      [cur, next] = [next, cur];
    }
    return cur[m] === 1;
  };
  // Epsilon moves only go forward, so one pass in token order reaches the fixed point.
  function closure(set: Uint8Array): void {
    for (let j = 0; j < m; j++) {
      if (!set[j]) continue;
      const k = (toks[j] as GTok).k;
      if (k === G.Star || k === G.DStar || k === G.Opt) set[j + 1] = 1;
      if (k === G.Opt) set[j + 3] = 1;
    }
  }
}
