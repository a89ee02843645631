// The audit record: its fields, its deterministic CBOR bytes and its place in the hash chain.
// Everything that decides which bytes get hashed lives here, so the writer and the verifier
// cannot drift apart.
import { createHash } from "node:crypto";
import { Decoder, Encoder } from "cbor-x";
import { KruxError } from "../core/index.js";

/** Version of the record format; bumped only with a migration note in docs/audit.md. */
export const AUDIT_RECORD_VERSION = 1;

/** Every kind of audit record. Outsiders (SIEM exports, dashboards) match on these strings. */
export const AUDIT_KINDS = [
  "capability.intent",
  "capability.result",
  "auth.failure",
  "approval.requested",
  "approval.accepted",
  "approval.rejected",
  "approval.expired",
  "egress.connection",
  "egress.closed",
  "sandbox.weakened",
  "sandbox.violation",
  "policy.reload",
  "config.rejected",
  "boot.started",
  "boot.sealed",
  "vault.access",
  "vault.denied",
  "vault.use",
  "vault.rotate",
  "operator.action",
  "peer.violation",
  "refusal.summary",
  "audit.halted",
  "audit.resumed",
  "audit.tail_repaired",
] as const;

export type AuditKind = (typeof AUDIT_KINDS)[number];

export const AUDIT_OUTCOME_STATUSES = ["ok", "error", "denied", "pending", "cancelled"] as const;
export type AuditOutcomeStatus = (typeof AUDIT_OUTCOME_STATUSES)[number];

/** A JSON-like value: the only thing `detail` may hold (no Buffers, Dates, undefined or NaN). */
export type AuditValue =
  string | number | boolean | null | readonly AuditValue[] | { readonly [key: string]: AuditValue };

export interface AuditDecision {
  readonly tier: string;
  readonly rule: string;
  readonly file: string;
  readonly line: number;
  readonly generation: number;
}

export interface AuditOutcome {
  readonly status: AuditOutcomeStatus;
  readonly error_type?: string;
}

/** What a caller supplies; the log adds v, seq, ts, prev_hash and hash. */
export interface AuditEntry {
  readonly kind: AuditKind;
  readonly agent?: string;
  readonly session?: string;
  readonly capability?: string;
  /** Hex SHA-256 of the call's canonical inputs (the inputs themselves never enter the log). */
  readonly inputs_digest?: string;
  readonly decision?: AuditDecision;
  readonly outcome?: AuditOutcome;
  readonly duration_ms?: number;
  readonly approval_id?: string;
  readonly actor?: string;
  /** Small, free-form context; at most MAX_DETAIL_BYTES once encoded. */
  readonly detail?: { readonly [key: string]: AuditValue };
}

export interface AuditRecord extends AuditEntry {
  readonly v: typeof AUDIT_RECORD_VERSION;
  readonly seq: number;
  /** ISO 8601 UTC with milliseconds. */
  readonly ts: string;
  readonly prev_hash: string;
  readonly hash: string;
}

/** The chain's anchor: the first record's prev_hash is 32 zero bytes. */
export const GENESIS_HASH = "0".repeat(64);
export const MAX_DETAIL_BYTES = 2048;
/** No record the writer produces comes near this; a larger length prefix means damage. */
export const MAX_RECORD_BYTES = 64 * 1024;

// Plain CBOR only: no record/structure extension (would make bytes depend on encoder history),
// no float32 narrowing, no tags for byte arrays, and minimal map headers ("preferred serialization").
const encoder = new Encoder({
  useRecords: false,
  variableMapSize: true,
  useFloat32: 0,
  tagUint8Array: false,
  pack: false,
  bundleStrings: false,
  structuredClone: false,
  useToJSON: false,
  largeBigIntToFloat: false,
  useTimestamp32: false,
});
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });

/**
 * RFC 8949 §4.2.1 orders map keys by their encoded bytes. For text keys that is: shorter UTF-8
 * first, then bytewise — which is not JS's default string order (UTF-16 code units).
 */
function compareKeys(a: string, b: string): number {
  // ASCII keys (all of the record's own) compare the same as UTF-16 strings; skip the buffers.
  if (isAscii(a) && isAscii(b)) return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
  const ba = Buffer.from(a, "utf8");
  const bb = Buffer.from(b, "utf8");
  return ba.length - bb.length || Buffer.compare(ba, bb);
}
function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * A copy with every map's keys in canonical order; undefined properties are absent; strings (keys
 * too) are well-formed Unicode — a lone surrogate becomes U+FFFD, as it would when read back. An
 * agent can put a lone surrogate in a string the record carries (a transaction id); cbor-x writes
 * it as bytes that are not UTF-8, which read back differently, and the record would then fail
 * verification as "modified".
 */
export function canonicalize(value: unknown, where = "record"): unknown {
  if (typeof value === "string") return value.toWellFormed();
  if (value === null || typeof value === "boolean") return value;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw invalid(`${where} is not a finite number`);
    return value;
  }
  if (Array.isArray(value)) return value.map((v, i) => canonicalize(v, `${where}[${i}]`));
  if (typeof value === "object") {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null)
      throw invalid(`${where} is not a plain object`);
    const out: Record<string, unknown> = {};
    const keys = Object.keys(value)
      .map((k) => [k.toWellFormed(), k] as const)
      .sort((a, b) => compareKeys(a[0], b[0]));
    for (const [k, own] of keys) {
      // cbor-x renames a decoded "__proto__" key, so such a record could never verify.
      if (k === "__proto__") throw invalid(`${where} has a key named __proto__`);
      const v = (value as Record<string, unknown>)[own];
      if (v === undefined) continue;
      if (Object.hasOwn(out, k)) throw invalid(`${where} has two keys that read back the same`);
      out[k] = canonicalize(v, `${where}.${k}`);
    }
    return out;
  }
  throw invalid(`${where} has unsupported type ${typeof value}`);
}

function invalid(message: string): KruxError {
  return new KruxError("InternalError", `invalid audit record: ${message}`);
}

/** Deterministic CBOR: the same logical value gives the same bytes, whatever the key order. */
export function encodeCanonical(value: unknown): Buffer {
  // cbor-x may hand back a view on its reusable buffer; copy before the next encode.
  return Buffer.from(encoder.encode(canonicalize(value)));
}

export function decodeCbor(bytes: Uint8Array): unknown {
  return decoder.decode(bytes);
}

/** SHA-256(prev_hash bytes ‖ canonical CBOR of the record without `hash`), hex. */
export function chainHash(record: Omit<AuditRecord, "hash"> | AuditRecord): string {
  const { hash: _drop, ...body } = record as AuditRecord;
  return createHash("sha256")
    .update(Buffer.from(record.prev_hash, "hex"))
    .update(encodeCanonical(body))
    .digest("hex");
}

const HEX64 = /^[0-9a-f]{64}$/;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const ENTRY_KEYS = new Set([
  "kind",
  "agent",
  "session",
  "capability",
  "inputs_digest",
  "decision",
  "outcome",
  "duration_ms",
  "approval_id",
  "actor",
  "detail",
]);
const RECORD_KEYS = new Set([...ENTRY_KEYS, "v", "seq", "ts", "prev_hash", "hash"]);
const DECISION_KEYS = new Set(["tier", "rule", "file", "line", "generation"]);
const OUTCOME_KEYS = new Set(["status", "error_type"]);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Why `entry` is not a valid entry, or undefined when it is. */
export function entryProblem(
  entry: unknown,
  keys: ReadonlySet<string> = ENTRY_KEYS,
): string | undefined {
  if (!isPlainObject(entry)) return "not an object";
  for (const k of Object.keys(entry)) {
    if (!keys.has(k)) return `unknown field ${k}`;
  }
  const e = entry;
  if (!(AUDIT_KINDS as readonly unknown[]).includes(e.kind))
    return `unknown kind ${String(e.kind)}`;
  for (const k of ["agent", "session", "capability", "approval_id", "actor"]) {
    if (e[k] !== undefined && typeof e[k] !== "string") return `${k} is not a string`;
  }
  if (
    e.inputs_digest !== undefined &&
    !(typeof e.inputs_digest === "string" && HEX64.test(e.inputs_digest))
  )
    return "inputs_digest is not a hex SHA-256";
  if (
    e.duration_ms !== undefined &&
    !(typeof e.duration_ms === "number" && Number.isFinite(e.duration_ms) && e.duration_ms >= 0)
  )
    return "duration_ms is not a non-negative number";
  if (e.decision !== undefined) {
    const d = e.decision;
    if (!isPlainObject(d) || Object.keys(d).some((k) => !DECISION_KEYS.has(k)))
      return "decision has unknown fields";
    if (typeof d.tier !== "string" || typeof d.rule !== "string" || typeof d.file !== "string")
      return "decision.tier, rule and file must be strings";
    if (!Number.isSafeInteger(d.line) || !Number.isSafeInteger(d.generation))
      return "decision.line and generation must be integers";
  }
  if (e.outcome !== undefined) {
    const o = e.outcome;
    if (!isPlainObject(o) || Object.keys(o).some((k) => !OUTCOME_KEYS.has(k)))
      return "outcome has unknown fields";
    if (!(AUDIT_OUTCOME_STATUSES as readonly unknown[]).includes(o.status))
      return "outcome.status is not ok|error|denied|pending";
    if (o.error_type !== undefined && typeof o.error_type !== "string")
      return "outcome.error_type is not a string";
  }
  if (e.detail !== undefined) {
    if (!isPlainObject(e.detail)) return "detail is not an object";
    let size: number;
    try {
      size = encodeCanonical(e.detail).length;
    } catch (err) {
      return (err as Error).message;
    }
    if (size > MAX_DETAIL_BYTES) return `detail is ${size} bytes encoded (max ${MAX_DETAIL_BYTES})`;
  }
  return undefined;
}

/** Why a decoded value is not a well-formed v1 record (hash not checked), or undefined. */
export function recordProblem(value: unknown): string | undefined {
  if (!isPlainObject(value)) return "not a map";
  const r = value;
  if (r.v !== AUDIT_RECORD_VERSION) return `unsupported version ${String(r.v)}`;
  if (!Number.isSafeInteger(r.seq) || (r.seq as number) < 1) return "seq is not a positive integer";
  if (typeof r.ts !== "string" || !ISO_MS.test(r.ts))
    return "ts is not ISO 8601 UTC with milliseconds";
  if (typeof r.prev_hash !== "string" || !HEX64.test(r.prev_hash))
    return "prev_hash is not hex SHA-256";
  if (typeof r.hash !== "string" || !HEX64.test(r.hash)) return "hash is not hex SHA-256";
  const { v: _v, seq: _s, ts: _t, prev_hash: _p, hash: _h, ...entry } = r;
  const extra = Object.keys(r).find((k) => !RECORD_KEYS.has(k));
  if (extra) return `unknown field ${extra}`;
  return entryProblem(entry);
}

export type DecodedFrame =
  | { readonly ok: true; readonly record: AuditRecord }
  | { readonly ok: false; readonly problem: string };

/**
 * Decode one record's bytes and check everything a record can say about itself: well-formed,
 * canonically encoded (re-encoding gives the same bytes) and its hash matches its content.
 * Whether it fits the chain is the caller's business.
 */
export function decodeRecord(bytes: Uint8Array): DecodedFrame {
  let value: unknown;
  try {
    value = decoder.decode(bytes);
  } catch (err) {
    return { ok: false, problem: `not CBOR: ${(err as Error).message}` };
  }
  const problem = recordProblem(value);
  if (problem) return { ok: false, problem };
  const record = value as AuditRecord;
  let again: Buffer;
  try {
    again = encodeCanonical(record);
  } catch (err) {
    return { ok: false, problem: (err as Error).message };
  }
  if (Buffer.compare(again, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) !== 0)
    return { ok: false, problem: "bytes are not the canonical encoding of their content" };
  if (chainHash(record) !== record.hash)
    return { ok: false, problem: "hash does not match content" };
  return { ok: true, record };
}
