// Certificates for the proxy's TLS interception: a per-appliance CA (ECDSA P-256, SHA-256) whose
// certificate the sandbox trusts, and leaf certificates for the hosts the proxy terminates TLS for,
// signed by it. The CA key is handed in as PEM (the caller keeps it in the vault); nothing here
// writes it anywhere. Leaves of one issuer share one key pair and are cached, so a busy host costs
// one signature per leaf lifetime (a week by default), not one per connection.
//
// The X.509 encoding is @peculiar/x509's. It needs a Reflect metadata polyfill (tsyringe checks for
// one as it loads) and takes about 200 ms to load, so both are loaded on first use: programs that
// never intercept (the gateway, the CLI) neither pay for it nor run with a patched global Reflect.
import { KeyObject, X509Certificate, createPrivateKey, randomBytes, webcrypto } from "node:crypto";
import { isIP } from "node:net";
import type * as X509 from "@peculiar/x509";
import { clip } from "../core/index.js";
import { parseIp, type IpAddress } from "./addresses.js";

export interface CaMaterial {
  /** PEM of the CA certificate (public; goes into sandboxes' CA bundle). */
  readonly certPem: string;
  /** PKCS#8 PEM of the CA private key (stored by the caller in the vault, never on disk in clear). */
  readonly keyPem: string;
}

export interface LeafMaterial {
  /** PEM of the leaf certificate for one host. */
  readonly certPem: string;
  /** PKCS#8 PEM of the leaf key (the same for every leaf of one issuer). */
  readonly keyPem: string;
}

export interface LeafIssuerOptions {
  /** How many hosts' leaves are kept, least recently used dropped first; default 1024. */
  readonly maxEntries?: number;
  /** Lifetime of a leaf in whole days, 2..365; default 7. Never past the CA's own notAfter. */
  readonly validityDays?: number;
  /** The clock; default `() => new Date()`. */
  readonly now?: () => Date;
}

const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;
/** Clocks in sandboxes and clients may lag ours: every certificate is valid from an hour ago. */
const BACKDATE_MS = HOUR_MS;
const CA_YEARS = 10;
/** A cached leaf with less than this left is reissued rather than served. */
const REISSUE_BEFORE_MS = DAY_MS;
const DEFAULT_MAX_ENTRIES = 1024;
const DEFAULT_VALIDITY_DAYS = 7;
const MAX_VALIDITY_DAYS = 365;

const EC_P256 = { name: "ECDSA", namedCurve: "P-256" } as const;
const ECDSA_SHA256 = { name: "ECDSA", hash: "SHA-256" } as const;
// Handed to every library call rather than installed as its global provider.
const crypto = webcrypto as unknown as Crypto;

type Lib = typeof X509;
let loading: Promise<Lib> | undefined;

/** @peculiar/x509, after the polyfill it needs: the order of the two imports is the point. */
function x509(): Promise<Lib> {
  loading ??= (async () => {
    await import("reflect-metadata");
    return await import("@peculiar/x509");
  })();
  return loading;
}

/** 128 random bits as hex; the library adds the 0x00 octet that keeps the DER INTEGER positive. */
function randomSerial(): string {
  return randomBytes(16).toString("hex");
}

/** PEM through OpenSSL's own parser, so what we hand out is what TLS stacks will read. */
function certPem(cert: X509.X509Certificate): string {
  return new X509Certificate(Buffer.from(cert.rawData)).toString();
}

function keyPem(key: CryptoKey): string {
  return KeyObject.from(key).export({ type: "pkcs8", format: "pem" }).toString();
}

function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return crypto.subtle.generateKey(EC_P256, true, ["sign", "verify"]);
}

/**
 * A new CA: ECDSA P-256, SHA-256, subject CN=`commonName` (e.g. "KruxOS egress interception CA
 * <appliance id>"), basicConstraints CA:true pathLen 0 (critical), keyUsage keyCertSign|cRLSign
 * (critical), subjectKeyIdentifier, random 128-bit positive serial, notBefore now-1h, notAfter
 * now+10 years.
 */
export async function createInterceptionCa(
  commonName: string,
  now: Date = new Date(),
): Promise<CaMaterial> {
  if (typeof commonName !== "string" || commonName.trim() === "" || /\p{Cc}/u.test(commonName))
    throw new RangeError("the CA's common name must be non-empty and free of control characters");
  const lib = await x509();
  const keys = await generateKeys();
  const notAfter = new Date(now.getTime());
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + CA_YEARS);
  const cert = await lib.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerial(),
      // A JSON name, not "CN=..." text, so a comma or "+" in the name cannot add attributes.
      name: [{ CN: [commonName] }],
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter,
      signingAlgorithm: ECDSA_SHA256,
      keys,
      extensions: [
        new lib.BasicConstraintsExtension(true, 0, true),
        new lib.KeyUsagesExtension(lib.KeyUsageFlags.keyCertSign | lib.KeyUsageFlags.cRLSign, true),
        await lib.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return Object.freeze({ certPem: certPem(cert), keyPem: keyPem(keys.privateKey) });
}

interface LeafHost {
  /** The cache key and the subject CN: a lower-cased name or the canonical IP text. */
  readonly text: string;
  readonly ip?: IpAddress;
}

/**
 * A host a leaf may name: a DNS name of letters, digits, dots and hyphens (lower-cased, labels of
 * 1..63 characters, not ending in a number) or an IPv4/IPv6 literal without zone. Never a wildcard.
 */
function leafHost(host: string): LeafHost {
  const shown = (): string => JSON.stringify(clip(String(host), 64));
  if (typeof host !== "string" || host.length === 0) throw new RangeError("host is empty");
  if (host.length > 253) throw new RangeError(`host ${shown()} is longer than 253 characters`);
  if (isIP(host) !== 0) {
    // A zone ("fe80::1%eth0") names a link, not an address a certificate can carry.
    const ip = host.includes("%") ? undefined : parseIp(host);
    if (!ip) throw new RangeError(`host ${shown()} is not an IP address a certificate can name`);
    return { text: ip.text, ip };
  }
  if (!/^[A-Za-z0-9.-]+$/.test(host))
    throw new RangeError(`host ${shown()} has characters other than A-Z, a-z, 0-9, "." and "-"`);
  const name = host.toLowerCase();
  const labels = name.split(".");
  if (labels.some((l) => l.length === 0 || l.length > 63))
    throw new RangeError(`host ${shown()} has an empty label or one longer than 63 characters`);
  // "127.1" or "10.0.0.010" would be read as addresses by URL parsers; such a name is no name.
  if (/^[0-9]+$/.test(labels[labels.length - 1] as string))
    throw new RangeError(`host ${shown()} ends in a number but is not an IP address`);
  return { text: name };
}

/** The iPAddress SAN from the bytes, spelled out in full so the library's parser has no choices. */
function ipSan(ip: IpAddress): string {
  if (ip.family === 4) return Array.from(ip.bytes).join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2)
    groups.push((((ip.bytes[i] ?? 0) << 8) | (ip.bytes[i + 1] ?? 0)).toString(16));
  return groups.join(":");
}

interface CaParts {
  readonly cert: X509.X509Certificate;
  readonly signingKey: CryptoKey;
  readonly keyId: string;
  readonly notAfterMs: number;
}

/** Parses and checks the CA material; every failure is an Error that says what is wrong. */
async function loadCa(lib: Lib, ca: CaMaterial, nowMs: number): Promise<CaParts> {
  let nodeCert: X509Certificate;
  let key: KeyObject;
  try {
    nodeCert = new X509Certificate(ca.certPem);
  } catch (e) {
    throw new Error(`the CA certificate does not parse: ${(e as Error).message}`, { cause: e });
  }
  try {
    key = createPrivateKey(ca.keyPem);
  } catch (e) {
    throw new Error(`the CA private key does not parse: ${(e as Error).message}`, { cause: e });
  }
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1")
    throw new Error("the CA private key is not an ECDSA P-256 key");
  if (!nodeCert.checkPrivateKey(key))
    throw new Error("the CA private key does not belong to the CA certificate");
  if (!nodeCert.ca)
    throw new Error(
      "the CA certificate is not a CA certificate (basicConstraints CA:TRUE missing)",
    );
  const cert = new lib.X509Certificate(ca.certPem);
  const usage = cert.getExtension(lib.KeyUsagesExtension);
  if (usage && (usage.usages & lib.KeyUsageFlags.keyCertSign) === 0)
    throw new Error("the CA certificate's keyUsage does not allow signing certificates");
  const notAfterMs = cert.notAfter.getTime();
  if (notAfterMs <= nowMs)
    throw new Error(`the CA certificate expired at ${cert.notAfter.toISOString()}`);
  // The leaves' authorityKeyIdentifier must equal the CA's subjectKeyIdentifier where it has one.
  const ski = cert.getExtension(lib.SubjectKeyIdentifierExtension);
  const keyId =
    ski?.keyId ??
    (await lib.AuthorityKeyIdentifierExtension.create(cert.publicKey, false, crypto)).keyId;
  if (keyId === undefined) throw new Error("no key identifier could be derived for the CA");
  const signingKey = await crypto.subtle.importKey(
    "pkcs8",
    key.export({ type: "pkcs8", format: "der" }),
    EC_P256,
    false,
    ["sign"],
  );
  return { cert, signingKey, keyId, notAfterMs };
}

interface CacheEntry {
  readonly leaf: Promise<LeafMaterial>;
  readonly notAfterMs: number;
  /** False while the leaf is being issued: until then every caller shares the one promise. */
  settled: boolean;
}

function positiveInteger(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new RangeError(`${name} must be an integer in ${min}..${max}`);
  return value;
}

/** Issues and caches leaf certificates for hosts, signed by a CA. */
export class LeafIssuer {
  private readonly cache = new Map<string, CacheEntry>();

  private constructor(
    private readonly lib: Lib,
    private readonly ca: CaParts,
    private readonly leafPublicKey: CryptoKey,
    private readonly leafKeyPem: string,
    private readonly maxEntries: number,
    private readonly validityMs: number,
    private readonly now: () => Date,
  ) {}

  /** Throws a clear Error if the cert and key do not match or the cert is not a CA. */
  static async create(ca: CaMaterial, opts: LeafIssuerOptions = {}): Promise<LeafIssuer> {
    const maxEntries = positiveInteger(
      "maxEntries",
      opts.maxEntries ?? DEFAULT_MAX_ENTRIES,
      1,
      1_000_000,
    );
    // A leaf reissued a day before it ends must live longer than a day.
    const days = positiveInteger(
      "validityDays",
      opts.validityDays ?? DEFAULT_VALIDITY_DAYS,
      2,
      MAX_VALIDITY_DAYS,
    );
    const now = opts.now ?? (() => new Date());
    const lib = await x509();
    const parts = await loadCa(lib, ca, now().getTime());
    const keys = await generateKeys();
    // The leaves' private key is kept only as the PEM every leaf hands out.
    return new LeafIssuer(
      lib,
      parts,
      keys.publicKey,
      keyPem(keys.privateKey),
      maxEntries,
      days * DAY_MS,
      now,
    );
  }

  /**
   * The leaf for `host` (a DNS name or an IPv4/IPv6 literal, no port): SAN dNSName or iPAddress
   * accordingly, CN=host, EKU serverAuth, keyUsage digitalSignature (critical), basicConstraints
   * CA:false, authorityKeyIdentifier, random serial, notBefore now-1h, notAfter now+validityDays.
   * Cached (LRU); concurrent calls for the same host share one promise; a cached leaf with less
   * than a day left is reissued. A bad host is a rejection with a RangeError.
   */
  leaf(host: string): Promise<LeafMaterial> {
    let target: LeafHost;
    try {
      target = leafHost(host);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    const nowMs = this.now().getTime();
    const cached = this.cache.get(target.text);
    if (cached) {
      this.cache.delete(target.text);
      if (!cached.settled || cached.notAfterMs - nowMs >= REISSUE_BEFORE_MS) {
        this.cache.set(target.text, cached); // the most recently used goes last
        return cached.leaf;
      }
    }
    const notAfterMs = Math.min(nowMs + this.validityMs, this.ca.notAfterMs);
    const entry: CacheEntry = {
      leaf: this.issue(target, nowMs, notAfterMs),
      notAfterMs,
      settled: false,
    };
    this.cache.set(target.text, entry);
    entry.leaf.then(
      () => (entry.settled = true),
      () => {
        // A failed issuance is not kept: the next call tries again.
        entry.settled = true;
        if (this.cache.get(target.text) === entry) this.cache.delete(target.text);
      },
    );
    while (this.cache.size > this.maxEntries)
      this.cache.delete(this.cache.keys().next().value as string);
    return entry.leaf;
  }

  private async issue(host: LeafHost, nowMs: number, notAfterMs: number): Promise<LeafMaterial> {
    const { lib, ca } = this;
    if (ca.notAfterMs <= nowMs)
      throw new Error(`the CA certificate expired at ${new Date(ca.notAfterMs).toISOString()}`);
    const san: X509.JsonGeneralName = host.ip
      ? { type: "ip", value: ipSan(host.ip) }
      : { type: "dns", value: host.text };
    const cert = await lib.X509CertificateGenerator.create(
      {
        serialNumber: randomSerial(),
        subject: [{ CN: [host.text] }],
        issuer: ca.cert.subjectName,
        notBefore: new Date(nowMs - BACKDATE_MS),
        notAfter: new Date(notAfterMs),
        signingAlgorithm: ECDSA_SHA256,
        publicKey: this.leafPublicKey,
        signingKey: ca.signingKey,
        extensions: [
          new lib.BasicConstraintsExtension(false, undefined, false),
          new lib.KeyUsagesExtension(lib.KeyUsageFlags.digitalSignature, true),
          new lib.ExtendedKeyUsageExtension([lib.ExtendedKeyUsage.serverAuth], false),
          new lib.SubjectAlternativeNameExtension([san], false),
          new lib.AuthorityKeyIdentifierExtension(ca.keyId, false),
        ],
      },
      crypto,
    );
    return Object.freeze({ certPem: certPem(cert), keyPem: this.leafKeyPem });
  }
}
