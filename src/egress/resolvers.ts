// Resolvers: how the proxy turns a name into addresses (once per connection) and, for /v1/resolve,
// into other record types. The system resolver (getaddrinfo: /etc/hosts, then DNS) is the default;
// a dns.promises.Resolver pointed at chosen servers is the alternative.
import dns from "node:dns";
import type { Resolve } from "./admission.js";

export type RecordType = "A" | "AAAA" | "CNAME" | "MX" | "TXT" | "NS" | "SRV" | "CAA";
export const RECORD_TYPES: readonly RecordType[] = [
  "A",
  "AAAA",
  "CNAME",
  "MX",
  "TXT",
  "NS",
  "SRV",
  "CAA",
];
/** Non-address records as text (MX "PRIORITY EXCHANGE", SRV "PRIORITY WEIGHT PORT TARGET", …). */
export type ResolveRecords = (
  host: string,
  type: Exclude<RecordType, "A" | "AAAA">,
) => Promise<string[]>;

/** The system resolver: every address getaddrinfo gives, in its order. */
export const systemResolve: Resolve = (host) =>
  dns.promises.lookup(host, { all: true, verbatim: true });

/** A Resolve over one DNS resolver (A and AAAA queries), for a resolver other than the system's. */
export function resolveWith(resolver: dns.promises.Resolver): Resolve {
  return async (host) => {
    const [v4, v6] = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
    if (v4.status === "rejected" && v6.status === "rejected") throw v4.reason;
    return [
      ...(v4.status === "fulfilled" ? v4.value.map((address) => ({ address, family: 4 })) : []),
      ...(v6.status === "fulfilled" ? v6.value.map((address) => ({ address, family: 6 })) : []),
    ];
  };
}

/** ResolveRecords over one resolver (or the module's default one). */
export function recordsWith(
  r: Pick<
    dns.promises.Resolver,
    "resolveCname" | "resolveMx" | "resolveTxt" | "resolveNs" | "resolveSrv" | "resolveCaa"
  > = dns.promises,
): ResolveRecords {
  return async (host, type) => {
    switch (type) {
      case "CNAME":
        return r.resolveCname(host);
      case "MX":
        return (await r.resolveMx(host)).map((x) => `${x.priority} ${x.exchange}`);
      case "TXT":
        return (await r.resolveTxt(host)).map((chunks) => chunks.join(""));
      case "NS":
        return r.resolveNs(host);
      case "SRV":
        return (await r.resolveSrv(host)).map(
          (x) => `${x.priority} ${x.weight} ${x.port} ${x.name}`,
        );
      case "CAA":
        return (await r.resolveCaa(host)).map((x) => {
          const { critical, ...rest } = x;
          const [tag, value] = Object.entries(rest)[0] ?? ["", ""];
          return `${critical} ${tag} ${String(value)}`;
        });
    }
  };
}
