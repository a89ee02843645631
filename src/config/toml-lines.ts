// Map dotted manifest paths to the TOML line that writes them, so findings can point at a line.
// A light scan (table headers and `key =` lines) is enough: the file already parsed as TOML.

export function tomlLineIndex(source: string): Map<string, number> {
  const index = new Map<string, number>();
  let table: string[] = [];
  const lines = source.split("\n");
  const unquote = (k: string): string =>
    k
      .trim()
      .replace(/^"(.*)"$/, "$1")
      .replace(/^'(.*)'$/, "$1");
  const splitKey = (k: string): string[] => (k.match(/"[^"]*"|'[^']*'|[^.]+/g) ?? []).map(unquote);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    const header = /^\[\[?\s*([^\]]+?)\s*\]\]?/.exec(line);
    if (header?.[1]) {
      table = splitKey(header[1]);
      if (!index.has(table.join("."))) index.set(table.join("."), i + 1);
      return;
    }
    const kv = /^((?:"[^"]*"|'[^']*'|[A-Za-z0-9_.\- ])+?)\s*=/.exec(line);
    if (kv?.[1]) {
      const full = [...table, ...splitKey(kv[1])].join(".");
      if (!index.has(full)) index.set(full, i + 1);
    }
  });
  return index;
}

/** The line of `path`, or of its closest written ancestor. */
export function lineOf(index: Map<string, number>, path: string): number | undefined {
  const parts = path.split(".");
  while (parts.length > 0) {
    const hit = index.get(parts.join("."));
    if (hit !== undefined) return hit;
    parts.pop();
  }
  return undefined;
}
