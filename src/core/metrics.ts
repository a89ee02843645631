// Prometheus metrics. Each program owns a prom-client Registry labelled with its program name; the
// appliance's one metrics endpoint merges the expositions of all programs, in-process (host mode) or
// scraped from each program's unix socket (image mode), with the same merge function.
import { Registry, collectDefaultMetrics } from "prom-client";

export { Registry };
export { Counter, Gauge, Histogram } from "prom-client";

export function createRegistry(program: string, withProcessMetrics = true): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ program });
  if (withProcessMetrics) collectDefaultMetrics({ register: registry, prefix: "kruxos_" });
  return registry;
}

/**
 * The metric `name` already in `registry`, or the one `make` registers. A program reopening a
 * component (or two servers sharing a family) counts into one metric instead of failing on a
 * duplicate name.
 */
export function registered<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

interface Family {
  help: string | undefined;
  type: string | undefined;
  samples: string[];
}

/**
 * Merge Prometheus text expositions into one, grouping samples by metric family so each family
 * has exactly one HELP and TYPE line (the format forbids repeats). The first exposition's HELP wins.
 */
export function mergeExpositions(texts: readonly string[]): string {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (!f) {
      f = { help: undefined, type: undefined, samples: [] };
      families.set(name, f);
    }
    return f;
  };
  for (const text of texts) {
    let current: string | undefined;
    for (const line of text.split("\n")) {
      if (line === "") continue;
      const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (meta) {
        const [, kind, name = "", rest = ""] = meta;
        const f = family(name);
        if (kind === "HELP") f.help ??= rest;
        else f.type ??= rest;
        current = name;
        continue;
      }
      if (line.startsWith("#")) continue;
      const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0] ?? "";
      // Histogram/summary samples (_bucket, _sum, _count) belong to the family declared before them.
      const owner = current && name.startsWith(current) ? current : name;
      family(owner).samples.push(line);
    }
  }
  const out: string[] = [];
  for (const [name, f] of families) {
    out.push(`# HELP ${name} ${f.help ?? name}`);
    if (f.type) out.push(`# TYPE ${name} ${f.type}`);
    out.push(...f.samples);
    out.push("");
  }
  return out.join("\n");
}
