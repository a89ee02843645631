// A reader for the Prometheus text exposition format (version 0.0.4), enough to turn the
// appliance's own /metrics text into the JSON families system.metrics answers with.

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

export interface MetricSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** null for NaN; ±Infinity is clamped to ±Number.MAX_VALUE so the result stays JSON. */
  readonly value: number | null;
}

export interface MetricFamily {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly samples: MetricSample[];
}

const TYPES = new Set<string>(["counter", "gauge", "histogram", "summary", "untyped"]);
const SUFFIXES = ["_bucket", "_sum", "_count", "_total", "_created"];

function unescapeHelp(s: string): string {
  return s.replace(/\\(\\|n)/g, (_m, c: string) => (c === "n" ? "\n" : "\\"));
}

function parseValue(s: string): number | null {
  if (s === "NaN") return null;
  if (s === "+Inf" || s === "Inf") return Number.MAX_VALUE;
  if (s === "-Inf") return -Number.MAX_VALUE;
  const n = Number(s);
  return Number.isNaN(n) ? null : n;
}

/** Parse `{a="x",b="y\"z"}` starting at `i` (the "{"); returns labels and the index after "}". */
function parseLabels(line: string, i: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let p = i + 1;
  for (;;) {
    while (line[p] === " " || line[p] === ",") p++;
    if (line[p] === "}" || p >= line.length) return { labels, end: p + 1 };
    const eq = line.indexOf("=", p);
    if (eq < 0) return { labels, end: line.length };
    const key = line.slice(p, eq).trim();
    p = eq + 1;
    if (line[p] !== '"') return { labels, end: line.length };
    p++;
    let v = "";
    while (p < line.length && line[p] !== '"') {
      if (line[p] === "\\" && p + 1 < line.length) {
        const c = line[p + 1];
        v += c === "n" ? "\n" : (c ?? "");
        p += 2;
      } else {
        v += line[p];
        p++;
      }
    }
    labels[key] = v;
    p++;
  }
}

export function parsePrometheusText(text: string): MetricFamily[] {
  const families = new Map<
    string,
    { name: string; type: MetricType; help: string; samples: MetricSample[] }
  >();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) {
      f = { name, type: "untyped", help: "", samples: [] };
      families.set(name, f);
    }
    return f;
  };
  let current: string | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    if (line.startsWith("#")) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s+(.*))?$/.exec(line);
      if (!m) continue;
      const f = family(m[2] ?? "");
      current = f.name;
      if (m[1] === "HELP") f.help = unescapeHelp(m[3] ?? "");
      else if (TYPES.has(m[3] ?? "")) f.type = m[3] as MetricType;
      continue;
    }
    const nameEnd = line.search(/[{\s]/);
    if (nameEnd <= 0) continue;
    const name = line.slice(0, nameEnd);
    let rest = nameEnd;
    let labels: Record<string, string> = {};
    if (line[nameEnd] === "{") {
      const parsed = parseLabels(line, nameEnd);
      labels = parsed.labels;
      rest = parsed.end;
    }
    const value = line.slice(rest).trim().split(/\s+/)[0] ?? "";
    const owner =
      current !== undefined && (name === current || SUFFIXES.some((s) => name === current + s))
        ? current
        : name;
    family(owner).samples.push({ name, labels, value: parseValue(value) });
  }
  return [...families.values()];
}
