// Address parsing and classification: every textual form a URL or CONNECT target may use for an IP
// (inet_aton's decimal/octal/hex/short IPv4 forms, IPv6 with embedded IPv4, brackets, zone ids) is
// reduced to bytes, and every address the proxy would connect to is put in a class. Only "public"
// addresses are reachable unless an allow rule names the literal address. The tables are ordered:
// the first matching range decides, so the narrow ranges (metadata) come before the wide ones.

/** Why an address is (not) reachable. Everything but "public" is refused unless named literally. */
export type AddressClass =
  | "public"
  | "loopback"
  | "private"
  | "link-local"
  | "cgnat"
  | "ula"
  | "unspecified"
  | "metadata"
  | "multicast"
  | "broadcast"
  | "reserved"
  | "benchmarking"
  | "documentation";

/** An IP address as bytes (4 or 16) with its canonical text (dotted quad; RFC 5952 for IPv6). */
export interface IpAddress {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
  readonly text: string;
}

/** How an IPv6 address carries an IPv4 address whose class decided. */
export type Embedding = "ipv4-mapped" | "ipv4-translated" | "ipv4-compatible" | "nat64" | "6to4";

export interface Classification {
  readonly cls: AddressClass;
  /** Set when the class came from an IPv4 address embedded in an IPv6 one. */
  readonly via?: Embedding;
  readonly embedded?: string;
}

export type ParsedHost =
  | { readonly kind: "ip"; readonly ip: IpAddress }
  | { readonly kind: "name"; readonly name: string }
  | { readonly kind: "invalid"; readonly reason: string };

interface Range {
  readonly prefix: readonly number[];
  readonly bits: number;
  readonly cls: AddressClass;
}

const r = (prefix: readonly number[], bits: number, cls: AddressClass): Range => ({
  prefix,
  bits,
  cls,
});

const V4_RANGES: readonly Range[] = [
  r([169, 254, 169, 254], 32, "metadata"), // AWS, GCP, Azure IMDS, OpenStack
  r([169, 254, 170, 2], 32, "metadata"), // AWS ECS task metadata
  r([100, 100, 100, 200], 32, "metadata"), // Alibaba Cloud
  r([168, 63, 129, 16], 32, "metadata"), // Azure WireServer (a public address that is not)
  r([0], 8, "unspecified"),
  r([10], 8, "private"),
  r([100, 64], 10, "cgnat"),
  r([127], 8, "loopback"),
  r([169, 254], 16, "link-local"),
  r([172, 16], 12, "private"),
  r([192, 0, 0], 24, "reserved"), // IETF protocol assignments (incl. NAT64 discovery)
  r([192, 0, 2], 24, "documentation"),
  r([192, 88, 99], 24, "reserved"), // deprecated 6to4 relay anycast
  r([192, 168], 16, "private"),
  r([198, 18], 15, "benchmarking"),
  r([198, 51, 100], 24, "documentation"),
  r([203, 0, 113], 24, "documentation"),
  r([224], 4, "multicast"),
  r([255, 255, 255, 255], 32, "broadcast"),
  r([240], 4, "reserved"),
];

/** IPv6 ranges that are not decided by an embedded IPv4 address (those are handled first). */
const V6_RANGES: readonly Range[] = [
  r([0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54], 128, "metadata"), // AWS IMDS v6
  r([0x00, 0x64, 0xff, 0x9b, 0x00, 0x01], 48, "private"), // local-use NAT64 (RFC 8215)
  r([0x01, 0x00, 0, 0, 0, 0, 0, 0], 64, "reserved"), // discard-only
  r([0x20, 0x01, 0x00, 0x02, 0x00, 0x00], 48, "benchmarking"),
  r([0x20, 0x01, 0x0d, 0xb8], 32, "documentation"),
  r([0x3f, 0xff, 0x00], 20, "documentation"), // RFC 9637
  r([0x20, 0x01, 0x00, 0x10], 28, "reserved"), // ORCHID
  r([0x20, 0x01, 0x00, 0x20], 28, "reserved"), // ORCHIDv2
  r([0x20, 0x01, 0x00, 0x00], 32, "reserved"), // Teredo: tunnels to an obfuscated IPv4 peer
  r([0xfc], 7, "ula"),
  r([0xfe, 0x80], 10, "link-local"),
  r([0xfe, 0xc0], 10, "private"), // deprecated site-local
  r([0xff], 8, "multicast"),
  r([0x20], 3, "public"), // global unicast
];

function inRange(bytes: Uint8Array, range: Range): boolean {
  let bits = range.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((bytes[i] ?? 0) & mask) !== ((range.prefix[i] ?? 0) & mask)) return false;
  }
  return true;
}

function classifyV4(bytes: Uint8Array): AddressClass {
  for (const range of V4_RANGES) if (inRange(bytes, range)) return range.cls;
  return "public";
}

const allZero = (b: Uint8Array, from: number, to: number): boolean => {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
};

/** The IPv4 address an IPv6 address carries, and how; undefined when it carries none. */
export function embeddedV4(ip: IpAddress): { via: Embedding; v4: IpAddress } | undefined {
  if (ip.family !== 6) return undefined;
  const b = ip.bytes;
  const tail = (from: number): IpAddress => v4Of(b.subarray(from, from + 4));
  if (allZero(b, 0, 10) && b[10] === 0xff && b[11] === 0xff)
    return { via: "ipv4-mapped", v4: tail(12) };
  if (allZero(b, 0, 8) && b[8] === 0xff && b[9] === 0xff && b[10] === 0 && b[11] === 0)
    return { via: "ipv4-translated", v4: tail(12) };
  // ::/96 minus :: and ::1 (which are themselves, not an embedding)
  if (allZero(b, 0, 12) && !(allZero(b, 12, 15) && (b[15] === 0 || b[15] === 1)))
    return { via: "ipv4-compatible", v4: tail(12) };
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && allZero(b, 4, 12))
    return { via: "nat64", v4: tail(12) };
  if (b[0] === 0x20 && b[1] === 0x02) return { via: "6to4", v4: tail(2) };
  return undefined;
}

/** The class of an address; embedded IPv4 addresses are classified as themselves. */
export function classify(ip: IpAddress): Classification {
  if (ip.family === 4) return { cls: classifyV4(ip.bytes) };
  const b = ip.bytes;
  if (allZero(b, 0, 16)) return { cls: "unspecified" };
  if (allZero(b, 0, 15) && b[15] === 1) return { cls: "loopback" };
  const e = embeddedV4(ip);
  if (e) {
    const inner = classifyV4(e.v4.bytes);
    // A deprecated form (IPv4-compatible, SIIT-translated) of a public address is still not a
    // route anyone should take from here.
    const deprecated = e.via === "ipv4-compatible" || e.via === "ipv4-translated";
    const cls = inner === "public" && deprecated ? "reserved" : inner;
    return { cls, via: e.via, embedded: e.v4.text };
  }
  for (const range of V6_RANGES) if (inRange(b, range)) return { cls: range.cls };
  return { cls: "reserved" };
}

function v4Of(bytes: Uint8Array): IpAddress {
  const b = Uint8Array.from(bytes);
  return { family: 4, bytes: b, text: `${b[0]}.${b[1]}.${b[2]}.${b[3]}` };
}

function v6Of(bytes: Uint8Array): IpAddress {
  const b = Uint8Array.from(bytes);
  return { family: 6, bytes: b, text: formatV6(b) };
}

/** RFC 5952: lowercase, no leading zeros, the longest run (≥ 2) of zero groups as "::". */
function formatV6(b: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] ?? 0) << 8) | (b[i + 1] ?? 0));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number[]): string => g.map((x) => x.toString(16)).join(":");
  // ::ffff:a.b.c.d is the conventional text of a mapped address.
  if (allZero(b, 0, 10) && b[10] === 0xff && b[11] === 0xff)
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  if (best < 0) return hex(groups);
  return `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`;
}

/** The address a socket should be opened to: an IPv4-mapped address is its IPv4 address. */
export function unmap(ip: IpAddress): IpAddress {
  const e = embeddedV4(ip);
  return e?.via === "ipv4-mapped" ? e.v4 : ip;
}

/**
 * One IPv4 number as inet_aton and the WHATWG URL parser read it: "0x" hex, leading-0 octal,
 * else decimal. Returns undefined for anything else (including values past 2^32).
 */
function v4Number(part: string): number | undefined {
  let digits = part;
  let radix = 10;
  if (/^0x/i.test(part)) {
    digits = part.slice(2);
    radix = 16;
    if (digits === "") return 0;
  } else if (part.length > 1 && part.startsWith("0")) {
    digits = part.slice(1);
    radix = 8;
  }
  const ok = radix === 16 ? /^[0-9a-f]+$/i : radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (digits === "" || !ok.test(digits)) return undefined;
  // Leading zeros cannot make a value big; strip them before the length check.
  const trimmed = digits.replace(/^0+(?=.)/, "");
  if (trimmed.length > 11) return undefined;
  const n = parseInt(trimmed, radix);
  return n <= 0xffffffff ? n : undefined;
}

/** WHATWG "ends in a number": such a host must be an IPv4 address or nothing at all. */
function endsInNumber(host: string): boolean {
  const parts = host.split(".");
  if (parts[parts.length - 1] === "" && parts.length > 1) parts.pop();
  const last = parts[parts.length - 1] ?? "";
  return /^[0-9]+$/.test(last) || /^0x[0-9a-f]*$/i.test(last);
}

/** Any IPv4 text form: a.b.c.d, a.b.c, a.b, a, each part decimal, octal or hex. */
export function parseIpv4(text: string): IpAddress | undefined {
  if (text.length === 0 || text.length > 64) return undefined;
  const parts = text.split(".");
  if (parts[parts.length - 1] === "" && parts.length > 1) parts.pop();
  if (parts.length > 4) return undefined;
  const nums: number[] = [];
  for (const p of parts) {
    const n = v4Number(p);
    if (n === undefined) return undefined;
    nums.push(n);
  }
  const last = nums.pop() as number;
  if (nums.some((n) => n > 255)) return undefined;
  if (last >= 256 ** (4 - nums.length)) return undefined;
  let value = last;
  nums.forEach((n, i) => (value += n * 256 ** (3 - i)));
  return v4Of(
    Uint8Array.of(value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff),
  );
}

/** IPv6 text (no brackets, no zone) to 16 bytes; undefined unless it is well formed. */
export function parseIpv6(text: string): IpAddress | undefined {
  if (text.length < 2 || text.length > 45 || !/^[0-9a-f:.]+$/i.test(text)) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groupsOf = (s: string): number[] | undefined => {
    if (s === "") return [];
    const out: number[] = [];
    const parts = s.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i] as string;
      if (p.includes(".")) {
        // A dotted IPv4 tail, only as the last part, only in strict dotted-quad form.
        if (i !== parts.length - 1 || !/^\d{1,3}(\.\d{1,3}){3}$/.test(p)) return undefined;
        const q = p.split(".").map(Number);
        if (q.some((n) => n > 255)) return undefined;
        out.push(
          ((q[0] as number) << 8) | (q[1] as number),
          ((q[2] as number) << 8) | (q[3] as number),
        );
      } else {
        if (!/^[0-9a-f]{1,4}$/i.test(p)) return undefined;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const head = groupsOf(halves[0] as string);
  const tail = halves.length === 2 ? groupsOf(halves[1] as string) : [];
  if (!head || !tail) return undefined;
  // A dotted tail may only end the whole address.
  if (halves.length === 2 && (halves[0] as string).includes(".")) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return undefined;
    groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  } else {
    groups = head;
  }
  if (groups.length !== 8) return undefined;
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  return v6Of(bytes);
}

/**
 * Any IP text: IPv4 in every inet_aton form, IPv6 with or without brackets and with an optional
 * zone id (dropped: the zone only says which link, and link-local is refused anyway).
 */
export function parseIp(text: string): IpAddress | undefined {
  let t = text;
  if (t.startsWith("[") && t.endsWith("]")) t = t.slice(1, -1);
  else if (t.startsWith("[") || t.endsWith("]")) return undefined;
  if (t.includes(":")) {
    const pct = t.indexOf("%");
    if (pct >= 0) {
      const zone = t.slice(pct + 1).replace(/^25/, ""); // "%25eth0" is the URL-escaped form
      if (!/^[A-Za-z0-9_.-]{1,32}$/.test(zone)) return undefined;
      t = t.slice(0, pct);
    }
    return parseIpv6(t);
  }
  return parseIpv4(t);
}

const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

/**
 * A target host as a URL or CONNECT line gives it: an IP literal in any form, or a DNS name
 * (lowercased, one trailing dot dropped, LDH labels plus "_"). A name whose last label is a number
 * must be an IPv4 address, as in the WHATWG URL parser, so "127.1" and "0x7f.1" never reach DNS.
 */
export function parseHost(text: string): ParsedHost {
  if (text.length === 0) return { kind: "invalid", reason: "empty host" };
  if (text.length > 255) return { kind: "invalid", reason: "host longer than 255 characters" };
  if (text.startsWith("[") || text.includes(":")) {
    const ip = text.startsWith("[") && text.endsWith("]") ? parseIp(text) : undefined;
    return ip ? { kind: "ip", ip } : { kind: "invalid", reason: "malformed IPv6 literal" };
  }
  const lower = text.toLowerCase();
  if (endsInNumber(lower)) {
    const ip = parseIpv4(lower);
    return ip ? { kind: "ip", ip } : { kind: "invalid", reason: "malformed IPv4 literal" };
  }
  const name = lower.endsWith(".") ? lower.slice(0, -1) : lower;
  if (name.length === 0 || name.length > 253)
    return { kind: "invalid", reason: "host name length out of range" };
  for (const label of name.split("."))
    if (!LABEL.test(label)) return { kind: "invalid", reason: "malformed host name" };
  return { kind: "name", name };
}

/** Names that mean this machine whatever DNS says (RFC 6761 §6.3): refused before resolving. */
export function isLocalhostName(name: string): boolean {
  return name === "localhost" || name.endsWith(".localhost");
}

/** The host as egress policy rules write it: IPv6 in brackets, IPv4-mapped as plain IPv4. */
export function policyHost(ip: IpAddress): string {
  const u = unmap(ip);
  return u.family === 6 ? `[${u.text}]` : u.text;
}
