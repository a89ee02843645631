// Human-readable `kruxos policy check` output.
import type { Trace } from "./types.js";

export function formatTrace(t: Trace): string {
  const out = [`policy generation ${t.generation}: agent ${t.agent}, capability ${t.capability}`];
  for (const l of t.layers) {
    const said =
      l.entry === null
        ? "no match"
        : `${l.match} "${l.entry}" → ${l.rule === "capability" ? "entry tier" : `rule ${l.rule}`} at line ${l.line} → ${l.tier}`;
    const skipped = l.skipped.length > 0 ? ` (said nothing: ${l.skipped.join(", ")})` : "";
    out.push(`  ${l.layer.padEnd(24)} ${l.file}: ${said}${skipped}`);
  }
  const d = t.default;
  out.push(
    `  ${"default".padEnd(24)} ${d.file || "(built in)"}:${d.line} → ${d.tier}${d.applied ? " (applied)" : ""}`,
  );
  const dec = t.decision;
  const limited = dec.rate_limited ? `, retry after ${dec.rate_limited.retry_after_s}s` : "";
  out.push(
    `decision: ${dec.tier} (rule ${dec.rule}, ${dec.file || "(built in)"}:${dec.line}, layer ${dec.layer}${dec.notify ? ", notify" : ""}${limited})`,
  );
  return out.join("\n");
}
