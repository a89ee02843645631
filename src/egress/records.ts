// The egress audit records: one `egress.connection` per decision (allowed or refused; for an
// allowed connection it is durable before anything is dialled) and one `egress.closed` after every
// allowed connection, with bytes and duration. The shape is the audit log's AuditEntry, built here
// so every record the proxy writes has the same fields.
import type { CallIdentity } from "../capabilities/index.js";
import type { EgressDecision } from "../policy/index.js";

/** Longest target text kept in a record (raw targets of refused requests can be anything). */
const MAX_TARGET_IN_RECORD = 300;

export type AuditScalar = string | number | boolean | null;

/**
 * What the proxy hands the audit log. `egress.connection` records a decision (allowed or refused) and
 * is durable before an allowed connection is dialled; every allowed one is followed by exactly one
 * `egress.closed`. Structurally an audit AuditEntry: the wiring appends it as it is.
 */
export interface EgressAuditEntry {
  readonly kind: "egress.connection" | "egress.closed";
  readonly agent?: string;
  readonly session?: string;
  readonly capability?: string;
  readonly decision?: {
    readonly tier: "allowed" | "denied";
    readonly rule: string;
    readonly file: string;
    readonly line: number;
    readonly generation: number;
  };
  readonly outcome: { readonly status: "ok" | "denied" | "error"; readonly error_type?: string };
  readonly duration_ms?: number;
  readonly detail: {
    readonly call: string | null;
    readonly method: string;
    readonly target: string;
    readonly address: string | null;
    readonly rule: string;
    readonly layer: string;
    readonly reason: string | null;
    readonly bytes_in: number;
    readonly bytes_out: number;
    readonly [key: string]: AuditScalar;
  };
}

export interface Attempt {
  readonly method: string;
  readonly target: string;
  readonly who?: CallIdentity;
}

export function auditDecision(d: EgressDecision | undefined, allowed: boolean) {
  return d
    ? {
        decision: {
          tier: allowed ? ("allowed" as const) : ("denied" as const),
          rule: d.rule,
          file: d.file,
          line: d.line,
          generation: d.generation,
        },
      }
    : {};
}

export function record(
  kind: EgressAuditEntry["kind"],
  a: Attempt,
  outcome: EgressAuditEntry["outcome"],
  detail: {
    rule: string;
    layer: string;
    reason: string | null;
    address?: string | null;
    bytes_in?: number;
    bytes_out?: number;
    [key: string]: AuditScalar | undefined;
  },
  extra: { decision?: NonNullable<EgressAuditEntry["decision"]>; duration_ms?: number } = {},
): EgressAuditEntry {
  const { rule, layer, reason, address, bytes_in, bytes_out, ...rest } = detail;
  return {
    kind,
    ...(a.who ? { agent: a.who.agent, session: a.who.session, capability: a.who.capability } : {}),
    ...extra,
    outcome,
    detail: {
      ...(rest as Record<string, AuditScalar>),
      call: a.who?.callId ?? null,
      method: a.method,
      target: a.target.slice(0, MAX_TARGET_IN_RECORD),
      address: address ?? null,
      rule,
      layer,
      reason,
      bytes_in: bytes_in ?? 0,
      bytes_out: bytes_out ?? 0,
    },
  };
}
