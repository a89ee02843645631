// Destination patterns, `host:port` or `*.domain:port`: one grammar for policy's egress rules and
// the vault's secret scopes, so an operator writes a host the same way in both places. Hosts
// compare case-insensitively, a trailing dot is ignored, ports must be equal; `*.domain` matches
// subdomains at any depth but not the domain itself.

export interface HostPattern {
  /** As written. */
  readonly text: string;
  /** Lower case, no trailing dot; for a wildcard the domain after "*.". */
  readonly host: string;
  readonly wildcard: boolean;
  readonly port: number;
}

/** The pattern, or a message saying what is wrong with it. */
export function parseHostPattern(text: string): HostPattern | string {
  const colon = text.lastIndexOf(":");
  if (colon <= 0) return `"${text}" is not host:port`;
  const portText = text.slice(colon + 1);
  const port = Number(portText);
  if (!/^[0-9]{1,5}$/.test(portText) || port < 1 || port > 65535)
    return `port out of range in "${text}"`;
  let host = text.slice(0, colon).toLowerCase();
  if (host.endsWith(".")) host = host.slice(0, -1);
  const wildcard = host.startsWith("*.");
  if (wildcard) host = host.slice(2);
  if (host === "") return `no host in "${text}"`;
  return { text, host, wildcard, port };
}

/** A host as patterns compare it: lower case, no trailing dot. */
export function normalHost(host: string): string {
  const h = host.toLowerCase();
  return h.endsWith(".") ? h.slice(0, -1) : h;
}

/** Whether `host` (already normalHost) on `port` is matched by `p`. */
export function matchesHostPattern(p: HostPattern, host: string, port: number): boolean {
  if (p.port !== port) return false;
  return p.wildcard ? host.endsWith("." + p.host) : host === p.host;
}
