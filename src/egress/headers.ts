// Which headers cross the proxy: hop-by-hop headers, Proxy-* and the appliance's own X-Kruxos-*
// never do, in either direction; the rest pass as sent.
import { setOwn } from "../core/index.js";

/** Connection-level headers that describe one hop, never the end-to-end message. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** Headers for the next hop: hop-by-hop, Proxy-* and X-Kruxos-* go; the rest pass as sent. */
export function endToEndHeaders(rawHeaders: readonly string[]): Record<string, string | string[]> {
  const named = new Set<string>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2)
    if ((rawHeaders[i] as string).toLowerCase() === "connection")
      for (const t of (rawHeaders[i + 1] as string).split(",")) named.add(t.trim().toLowerCase());
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    const value = rawHeaders[i + 1] as string;
    if (HOP_BY_HOP.has(name) || named.has(name)) continue;
    if (name.startsWith("proxy-") || name.startsWith("x-kruxos-")) continue;
    const prev = Object.hasOwn(out, name) ? out[name] : undefined;
    setOwn(
      out,
      name,
      prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value],
    );
  }
  return out;
}
