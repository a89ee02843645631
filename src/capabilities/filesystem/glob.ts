// Glob matching for filesystem.search without regular expressions, so an agent's glob cannot
// backtrack catastrophically: `*` and `?` within one path segment (the classic two-pointer
// algorithm, O(n·m)), `[abc]`/`[!a-z]` classes, `**` across segments (memoised, O(n·m) over
// segments) and `{a,b}` alternatives (expanded, at most 64).
const MAX_ALTERNATIVES = 64;

type Token =
  | { kind: "char"; c: string }
  | { kind: "any" }
  | { kind: "star" }
  | { kind: "class"; negate: boolean; ranges: [string, string][] };

function tokenize(seg: string): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i] ?? "";
    if (c === "*") {
      if (out.at(-1)?.kind !== "star") out.push({ kind: "star" });
    } else if (c === "?") out.push({ kind: "any" });
    else if (c === "[") {
      const end = seg.indexOf("]", i + 2);
      if (end < 0) {
        out.push({ kind: "char", c });
        continue;
      }
      let body = seg.slice(i + 1, end);
      const negate = body.startsWith("!") || body.startsWith("^");
      if (negate) body = body.slice(1);
      const ranges: [string, string][] = [];
      for (let k = 0; k < body.length; k++) {
        const lo = body[k] ?? "";
        if (body[k + 1] === "-" && k + 2 < body.length) {
          ranges.push([lo, body[k + 2] ?? lo]);
          k += 2;
        } else ranges.push([lo, lo]);
      }
      out.push({ kind: "class", negate, ranges });
      i = end;
    } else if (c === "\\" && i + 1 < seg.length) {
      out.push({ kind: "char", c: seg[++i] ?? "" });
    } else out.push({ kind: "char", c });
  }
  return out;
}

function one(t: Token, c: string): boolean {
  if (t.kind === "any") return true;
  if (t.kind === "char") return t.c === c;
  if (t.kind === "class") return t.ranges.some(([lo, hi]) => c >= lo && c <= hi) !== t.negate;
  return false;
}

function matchSegment(p: Token[], s: string): boolean {
  let pi = 0;
  let si = 0;
  let star = -1;
  let mark = 0;
  while (si < s.length) {
    const t = p[pi];
    if (t && t.kind !== "star" && one(t, s[si] ?? "")) {
      pi++;
      si++;
    } else if (t?.kind === "star") {
      star = pi++;
      mark = si;
    } else if (star >= 0) {
      pi = star + 1;
      si = ++mark;
    } else return false;
  }
  while (p[pi]?.kind === "star") pi++;
  return pi === p.length;
}

function expandBraces(glob: string): string[] {
  const open = glob.indexOf("{");
  const close = open < 0 ? -1 : glob.indexOf("}", open);
  if (open < 0 || close < 0) return [glob];
  const head = glob.slice(0, open);
  const tail = glob.slice(close + 1);
  const out: string[] = [];
  for (const alt of glob.slice(open + 1, close).split(",")) {
    for (const e of expandBraces(head + alt + tail)) {
      out.push(e);
      if (out.length > MAX_ALTERNATIVES)
        throw new Error(`more than ${MAX_ALTERNATIVES} alternatives`);
    }
  }
  return out;
}

type Compiled = (Token[] | "**")[];

/** A matcher for workspace paths ("a/b/c.ts"). A glob without "/" matches the file name alone. */
export function compileGlob(glob: string): (path: string) => boolean {
  const basenameOnly = !glob.includes("/");
  const alternatives: Compiled[] = expandBraces(glob).map((g) =>
    g
      .split("/")
      .filter((s) => s !== "")
      .map((s) => (s === "**" ? "**" : tokenize(s))),
  );
  return (path: string) => {
    const segs = path.split("/");
    const target = basenameOnly ? [segs.at(-1) ?? ""] : segs;
    return alternatives.some((alt) => matchSegments(alt, target));
  };
}

function matchSegments(p: Compiled, s: string[]): boolean {
  const memo = new Map<number, boolean>();
  const go = (i: number, j: number): boolean => {
    const key = i * (s.length + 1) + j;
    const known = memo.get(key);
    if (known !== undefined) return known;
    let r: boolean;
    const t = p[i];
    if (t === undefined) r = j === s.length;
    else if (t === "**") r = go(i + 1, j) || (j < s.length && go(i, j + 1));
    else r = j < s.length && matchSegment(t, s[j] ?? "") && go(i + 1, j + 1);
    memo.set(key, r);
    return r;
  };
  return go(0, 0);
}
