// Refusals — failed authentications and peer faults (a bad WebSocket frame, a malformed or too-slow
// HTTP request, a broken connection limit) on any server of a program. Each one is a metric; as
// log lines and audit records they come in bounded volume through core's RefusalSampler: the
// first `refusal_records_per_source` per source and window one by one, at most
// `refusal_records_per_window` in all, then one `refusal.summary` record with the counts. So no
// flood of refusals, from any number of addresses, adds more than per_window + 1 audit records
// per window, and the chain stays as verifiable as ever.
import {
  Counter,
  RefusalSampler,
  clip,
  registered,
  type AuthRefusalReport,
  type Logger,
  type PeerFault,
  type RefusalEvent,
  type Registry,
} from "../core/index.js";
import type { AuditEntry, AuditValue } from "../audit/index.js";
import type { Manifest } from "../config/index.js";

export interface Refusals {
  /** A failed authentication on `surface` ("agent", "user_api", "supervision_ws"). */
  auth(surface: string, f: AuthRefusalReport): void;
  /** A peer fault on one of the program's servers. */
  fault(f: PeerFault): void;
  /** Emit the current window's summary and stop. */
  close(): void;
}

interface Refusal extends RefusalEvent {
  readonly kind: "auth.failure" | "peer.violation";
  readonly detail: Readonly<Record<string, string | number>>;
}

export function createRefusals(opts: {
  readonly log: Logger;
  readonly registry: Registry;
  readonly audit: Manifest["audit"];
  /** Append to the audit log (the gateway's own, or through its intake socket). */
  readonly record: (entry: AuditEntry) => void;
}): Refusals {
  const authFailures = registered(
    opts.registry,
    "kruxos_auth_failures_total",
    () =>
      new Counter<"surface" | "reason">({
        name: "kruxos_auth_failures_total",
        help: "Refused authentications, by surface and reason (every one, also those only summarized in the audit log).",
        labelNames: ["surface", "reason"],
        registers: [opts.registry],
      }),
  );
  const summarized = new Counter({
    name: "kruxos_refusals_summarized_total",
    help: "Refusals counted in a refusal.summary audit record instead of one record each.",
    registers: [opts.registry],
  });
  const sampler = new RefusalSampler<Refusal>({
    perSource: opts.audit.refusal_records_per_source,
    perWindow: opts.audit.refusal_records_per_window,
    windowMs: opts.audit.refusal_window_s * 1000,
    report: (r) => {
      if (r.kind === "auth.failure")
        opts.log.warn({ event: "AuthFailed", ...r.detail }, "authentication refused");
      else opts.log.warn({ event: "PeerViolation", ...r.detail }, "a client broke the protocol");
      opts.record({ kind: r.kind, detail: r.detail });
    },
    summary: (s) => {
      summarized.inc(s.suppressed);
      opts.log.warn(
        { event: "RefusalsSummarized", ...s },
        `${s.suppressed} more refusals from ${s.sources} sources in this window`,
      );
      opts.record({
        kind: "refusal.summary",
        detail: {
          ...s,
          top_sources: s.top_sources.map((t) => ({ source: t.source, count: t.count })),
          by_reason: { ...s.by_reason },
        } as unknown as Record<string, AuditValue>,
      });
    },
  });
  return {
    auth(surface, f) {
      authFailures.inc({ surface, reason: f.reason });
      sampler.add({
        kind: "auth.failure",
        source: f.source,
        reason: f.reason,
        // The path is the client's; the record keeps a bounded prefix of it.
        detail: { surface, source: f.source, reason: f.reason, path: clip(f.path, 128) },
      });
    },
    fault(f) {
      sampler.add({
        kind: "peer.violation",
        source: f.source,
        reason: f.code,
        detail: {
          server: f.server,
          source: f.source,
          kind: f.kind,
          code: f.code,
          ...(f.closeCode !== undefined ? { close_code: f.closeCode } : {}),
          ...(f.who !== undefined ? { who: f.who } : {}),
        },
      });
    },
    close: () => sampler.close(),
  };
}
