// The approval queue (SPEC §7) in approval_queue.db. A call that policy marks approval_required is
// stored exactly as invoked (placeholders such as ${secret:NAME} are kept, never resolved values),
// bound to the SHA-256 of its canonical JSON. States:
//
//   pending ──accept──▶ accepted ──claim──▶ executing ──▶ completed | failed
//      │ └──reject──▶ rejected
//      └──(expires_at passes)──▶ expired
//
// `claim` is one conditional UPDATE, so an accepted call is executed exactly once even with
// several gateways or a restart in between; the result is kept for approvals.wait / check.
import { createHash, randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { KruxError, canonicalJson, type Db } from "../core/index.js";

export type ApprovalStatus =
  "pending" | "accepted" | "rejected" | "expired" | "executing" | "completed" | "failed";

export interface Approval {
  readonly id: string;
  readonly agent: string;
  readonly capability: string;
  readonly inputs: unknown;
  readonly inputs_digest: string;
  readonly policy_generation: number;
  readonly rule: string;
  readonly created_at: string;
  readonly expires_at: string;
  readonly status: ApprovalStatus;
  readonly approver: string | null;
  readonly reason: string | null;
  readonly decided_at: string | null;
  readonly result: unknown;
  readonly error: unknown;
}

interface Row {
  id: string;
  agent: string;
  capability: string;
  inputs_json: string;
  inputs_digest: string;
  policy_generation: number;
  rule: string;
  created_at: string;
  expires_at: string;
  status: ApprovalStatus;
  approver: string | null;
  reason: string | null;
  decided_at: string | null;
  result_json: string | null;
  error_json: string | null;
}

export function inputsDigest(inputs: unknown): string {
  return createHash("sha256")
    .update(canonicalJson(inputs ?? {}), "utf8")
    .digest("hex");
}

const fromRow = (r: Row): Approval => ({
  id: r.id,
  agent: r.agent,
  capability: r.capability,
  inputs: JSON.parse(r.inputs_json) as unknown,
  inputs_digest: r.inputs_digest,
  policy_generation: r.policy_generation,
  rule: r.rule,
  created_at: r.created_at,
  expires_at: r.expires_at,
  status: r.status,
  approver: r.approver,
  reason: r.reason,
  decided_at: r.decided_at,
  result: r.result_json === null ? null : (JSON.parse(r.result_json) as unknown),
  error: r.error_json === null ? null : (JSON.parse(r.error_json) as unknown),
});

export interface ApprovalQueueOptions {
  readonly ttlMs?: number;
  /** Calls one agent may have pending at once (default 32); one more is refused. */
  readonly maxPendingPerAgent?: number;
  readonly now?: () => Date;
}

export type DecideResult =
  | { ok: true; approval: Approval }
  | { ok: false; reason: "not_found" | "not_pending"; approval?: Approval };

export class ApprovalQueue {
  private readonly events = new EventEmitter();
  private readonly ttlMs: number;
  private readonly maxPending: number;
  private readonly now: () => Date;

  constructor(
    private readonly db: Db,
    opts: ApprovalQueueOptions = {},
  ) {
    this.ttlMs = opts.ttlMs ?? 3_600_000;
    this.maxPending = opts.maxPendingPerAgent ?? 32;
    this.now = opts.now ?? (() => new Date());
    this.events.setMaxListeners(0);
    db.exec(`CREATE TABLE IF NOT EXISTS approvals (
      id TEXT PRIMARY KEY,
      agent TEXT NOT NULL,
      capability TEXT NOT NULL,
      inputs_json TEXT NOT NULL,
      inputs_digest TEXT NOT NULL,
      policy_generation INTEGER NOT NULL,
      rule TEXT NOT NULL,
      created_at TEXT NOT NULL,
      expires_at TEXT NOT NULL,
      status TEXT NOT NULL,
      approver TEXT,
      reason TEXT,
      decided_at TEXT,
      result_json TEXT,
      error_json TEXT
    );
    CREATE INDEX IF NOT EXISTS approvals_dedupe ON approvals (agent, capability, inputs_digest, status);
    CREATE INDEX IF NOT EXISTS approvals_status ON approvals (status, expires_at);
    CREATE INDEX IF NOT EXISTS approvals_agent_status ON approvals (agent, status);`);
  }

  /**
   * Queue a call, or return the pending one with the same agent, capability and inputs. An agent
   * that already has `maxPendingPerAgent` calls pending gets RateLimited (limit
   * "pending_approvals") instead: a client cannot grow the queue operators have to read.
   */
  request(call: {
    agent: string;
    capability: string;
    inputs: unknown;
    generation: number;
    rule: string;
  }): { approval: Approval; created: boolean } {
    this.expireDue();
    const digest = inputsDigest(call.inputs);
    const tx = this.db.transaction(() => {
      const existing = this.db
        .prepare(
          "SELECT * FROM approvals WHERE agent = ? AND capability = ? AND inputs_digest = ? AND status = 'pending'",
        )
        .get(call.agent, call.capability, digest) as Row | undefined;
      if (existing) return { approval: fromRow(existing), created: false };
      const { n } = this.db
        .prepare("SELECT count(*) AS n FROM approvals WHERE agent = ? AND status = 'pending'")
        .get(call.agent) as { n: number };
      if (n >= this.maxPending)
        throw new KruxError(
          "RateLimited",
          `${n} calls of this agent already wait for an operator; at most ${this.maxPending}`,
          {
            limit: "pending_approvals",
            max: this.maxPending,
            pending: n,
            retry_after_s: 60,
            recovery: [
              {
                action: "wait_for_approval",
                description:
                  "Wait for pending approvals to be decided (approvals.wait) before queueing more calls.",
              },
              {
                action: "ask_operator",
                description: "An operator can decide the pending approvals (kruxos approve list).",
              },
            ],
          },
        );
      const now = this.now();
      const row: Row = {
        id: `apr_${randomUUID().replace(/-/g, "")}`,
        agent: call.agent,
        capability: call.capability,
        inputs_json: canonicalJson(call.inputs ?? {}),
        inputs_digest: digest,
        policy_generation: call.generation,
        rule: call.rule,
        created_at: now.toISOString(),
        expires_at: new Date(now.getTime() + this.ttlMs).toISOString(),
        status: "pending",
        approver: null,
        reason: null,
        decided_at: null,
        result_json: null,
        error_json: null,
      };
      this.db
        .prepare(
          `INSERT INTO approvals VALUES (@id, @agent, @capability, @inputs_json, @inputs_digest, @policy_generation, @rule,
           @created_at, @expires_at, @status, @approver, @reason, @decided_at, @result_json, @error_json)`,
        )
        .run(row);
      return { approval: fromRow(row), created: true };
    });
    const out = tx();
    if (out.created) this.emit(out.approval);
    return out;
  }

  get(id: string): Approval | undefined {
    this.expireDue();
    const r = this.db.prepare("SELECT * FROM approvals WHERE id = ?").get(id) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  list(filter: { status?: ApprovalStatus; agent?: string; limit?: number } = {}): Approval[] {
    this.expireDue();
    const rows = this.db
      .prepare(
        `SELECT * FROM approvals WHERE (@status IS NULL OR status = @status) AND (@agent IS NULL OR agent = @agent)
         ORDER BY created_at DESC LIMIT @limit`,
      )
      .all({
        status: filter.status ?? null,
        agent: filter.agent ?? null,
        limit: filter.limit ?? 100,
      }) as Row[];
    return rows.map(fromRow);
  }

  decide(
    id: string,
    d: { decision: "accept" | "reject"; approver: string; reason?: string },
  ): DecideResult {
    this.expireDue();
    const status = d.decision === "accept" ? "accepted" : "rejected";
    const changed = this.db
      .prepare(
        "UPDATE approvals SET status = ?, approver = ?, reason = ?, decided_at = ? WHERE id = ? AND status = 'pending'",
      )
      .run(status, d.approver, d.reason ?? null, this.now().toISOString(), id).changes;
    const approval = this.get(id);
    if (!approval) return { ok: false, reason: "not_found" };
    if (changed !== 1) return { ok: false, reason: "not_pending", approval };
    this.emit(approval);
    return { ok: true, approval };
  }

  /** How many approvals wait for an operator (for the pending gauge: a count, not the rows). */
  countPending(): number {
    this.expireDue();
    return (
      this.db.prepare("SELECT count(*) AS n FROM approvals WHERE status = 'pending'").get() as {
        n: number;
      }
    ).n;
  }

  /** Take an accepted call for execution; only one caller ever gets it. */
  claim(id: string): Approval | undefined {
    const changed = this.db
      .prepare("UPDATE approvals SET status = 'executing' WHERE id = ? AND status = 'accepted'")
      .run(id).changes;
    return changed === 1 ? this.get(id) : undefined;
  }

  complete(id: string, outcome: { result: unknown } | { error: unknown }): Approval | undefined {
    const ok = "result" in outcome;
    this.db
      .prepare(
        "UPDATE approvals SET status = ?, result_json = ?, error_json = ? WHERE id = ? AND status = 'executing'",
      )
      .run(
        ok ? "completed" : "failed",
        ok ? JSON.stringify(outcome.result ?? null) : null,
        ok ? null : JSON.stringify(outcome.error),
        id,
      );
    const a = this.get(id);
    if (a) this.emit(a);
    return a;
  }

  /** Calls accepted but never finished executing (a crash between accept and completion). */
  accepted(): Approval[] {
    return (
      this.db
        .prepare("SELECT * FROM approvals WHERE status = 'accepted' ORDER BY decided_at")
        .all() as Row[]
    ).map(fromRow);
  }

  /** Expiry is a denial: pending approvals past expires_at become expired. */
  expireDue(): Approval[] {
    const now = this.now().toISOString();
    const due = this.db
      .prepare("SELECT * FROM approvals WHERE status = 'pending' AND expires_at <= ?")
      .all(now) as Row[];
    if (due.length === 0) return [];
    this.db
      .prepare(
        "UPDATE approvals SET status = 'expired', decided_at = ? WHERE status = 'pending' AND expires_at <= ?",
      )
      .run(now, now);
    const expired = due.map((r) => fromRow({ ...r, status: "expired", decided_at: now }));
    for (const a of expired) this.emit(a);
    return expired;
  }

  /** Resolve when the approval leaves pending/accepted/executing, or on timeout (with its current state). */
  wait(id: string, timeoutMs: number, signal?: AbortSignal): Promise<Approval | undefined> {
    const settled = (a: Approval | undefined): boolean =>
      !a || ["rejected", "expired", "completed", "failed"].includes(a.status);
    const first = this.get(id);
    if (settled(first)) return Promise.resolve(first);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        clearInterval(expiry);
        this.events.off(id, onChange);
        signal?.removeEventListener("abort", done);
        resolve(this.get(id));
      };
      const onChange = (a: Approval): void => {
        if (settled(a)) done();
      };
      const timer = setTimeout(done, timeoutMs);
      // Expiry happens by the clock, not by an event: look once a second.
      const expiry = setInterval(() => this.expireDue(), 1000);
      this.events.on(id, onChange);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  onChange(listener: (a: Approval) => void): () => void {
    this.events.on("*", listener);
    return () => this.events.off("*", listener);
  }

  private emit(a: Approval): void {
    this.events.emit(a.id, a);
    this.events.emit("*", a);
  }
}
