// The deterministic pipeline of SPEC §0, for every call from every transport:
//
//   registry (known, handled, inputs valid) → policy decision → [approval queue] → audit intent
//   (durable before a side effect) → execute with a deadline → audit result → structured answer
//
// Every refusal is audited too, so no call — allowed, denied or queued — leaves no record. When the
// audit log cannot take the intent, the call does not run (fail_mode = halt → Unavailable).
import {
  ERROR_CATALOGUE,
  KruxError,
  asKruxError,
  type ErrorCode,
  type Logger,
} from "../core/index.js";
import type {
  CapabilityRegistry,
  CapabilityDefinition,
  CallContext,
} from "../capabilities/index.js";
import type { Decision, PolicyEngine, Tier } from "../policy/index.js";
import { inputsDigest, type Approval, type ApprovalQueue } from "../approvals/index.js";
import type { AuditEntry, AuditLog } from "../audit/index.js";
import {
  malformedPlaceholder,
  mentionsPlaceholder,
  placeholderNames,
  secretDenied,
  type SecretResolver,
} from "../vault/index.js";
import { secretValues } from "../capabilities/index.js";
import { invalidParams } from "./jsonrpc.js";
import { AgentCallLimiter, type CallLimits } from "./limits.js";
import type {
  AgentIdentity,
  CallOptions,
  CapabilitySummary,
  InvokeResult,
  McpTool,
  Pipeline,
} from "./pipeline-types.js";
import type { SessionRegistry } from "./sessions.js";

/** What a transaction id may be: an identifier, never free text (it is recorded in the audit). */
const TRANSACTION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface PipelineEvents {
  /** Operator-visible events (notify tier, approvals, denials) for the supervision stream. */
  readonly publish: (event: { type: string; [k: string]: unknown }) => void;
}

export interface GatewayPipelineDeps {
  readonly registry: CapabilityRegistry;
  readonly policy: PolicyEngine;
  readonly approvals: ApprovalQueue;
  readonly audit: AuditLog;
  readonly workspaceRoot: string;
  /** Per-agent calls in flight and per second, for every call whatever carried it. */
  readonly limits: CallLimits;
  /** The gateway's sessions, whose call counts the pipeline keeps. */
  readonly sessions?: SessionRegistry;
  readonly log: Logger;
  readonly events?: PipelineEvents;
  readonly metrics?: {
    readonly observeCall: (capability: string, outcome: string, seconds: number) => void;
  };
  /**
   * The vault's resolver: placeholders are checked against their secrets' scope before a call
   * runs, and every value that could have been placed is redacted from what the call returns.
   */
  readonly secrets?: Pick<SecretResolver, "refusal" | "redactor">;
}

/** Every string in `v` with its JSON pointer (keys too, as the pointer of their own value). */
function* strings(v: unknown, at = ""): Generator<[string, string]> {
  if (typeof v === "string") yield [at, v];
  else if (Array.isArray(v)) for (const [i, x] of v.entries()) yield* strings(x, `${at}/${i}`);
  else if (v !== null && typeof v === "object")
    for (const [k, x] of Object.entries(v)) {
      const p = `${at}/${k.replaceAll("~", "~0").replaceAll("/", "~1")}`;
      yield [p, k];
      yield* strings(x, p);
    }
}

function decisionOf(d: Decision): NonNullable<AuditEntry["decision"]> {
  return { tier: d.tier, rule: d.rule, file: d.file, line: d.line, generation: d.generation };
}

const APPROVAL_TOOLS: McpTool[] = [
  {
    name: "approvals.check",
    description:
      "Check an approval by id: pending, accepted, rejected, expired, or completed with the call's result.",
    inputSchema: {
      type: "object",
      additionalProperties: false,
      required: ["approval_id"],
      properties: {
        approval_id: {
          type: "string",
          description: "The approval_id from an ApprovalRequired answer.",
        },
      },
    },
    annotations: {
      title: "Check an approval",
      readOnlyHint: true,
      destructiveHint: false,
      idempotentHint: true,
      openWorldHint: false,
    },
  },
  {
    name: "approvals.wait",
    description:
      "Wait until an operator decides an approval (or timeout_s passes) and return the call's result once it ran.",
    inputSchema: {
      type: "object",
      additionalProperties: false,
      required: ["approval_id"],
      properties: {
        approval_id: {
          type: "string",
          description: "The approval_id from an ApprovalRequired answer.",
        },
        timeout_s: {
          type: "number",
          minimum: 0,
          maximum: 300,
          description: "How long to wait, seconds (default 30, at most 300).",
        },
      },
    },
    annotations: {
      title: "Wait for an approval",
      readOnlyHint: true,
      destructiveHint: false,
      idempotentHint: true,
      openWorldHint: false,
    },
  },
];

/**
 * Rejects when the call's deadline passes (Timeout) or its client goes away (Cancelled), whichever
 * comes first; never settles otherwise. Its listeners go when the signals fire or are collected.
 */
function stopped(
  def: CapabilityDefinition,
  deadline: AbortSignal,
  client: AbortSignal | undefined,
): Promise<never> {
  return new Promise((_, reject) => {
    const timeout = (): void =>
      reject(
        new KruxError("CapabilityError", `${def.name} took longer than ${def.timeout_s} s`, {
          type: "Timeout",
          capability: def.name,
        }),
      );
    const cancel = (): void =>
      reject(
        new KruxError("CapabilityError", `${def.name} was cancelled by the client`, {
          type: "Cancelled",
          capability: def.name,
        }),
      );
    deadline.addEventListener("abort", timeout, { once: true });
    if (client?.aborted) cancel();
    else client?.addEventListener("abort", cancel, { once: true });
  });
}

export class GatewayPipeline implements Pipeline {
  private readonly unsubscribe: () => void;
  private readonly limiter: AgentCallLimiter;

  constructor(private readonly d: GatewayPipelineDeps) {
    this.limiter = new AgentCallLimiter(d.limits);
    // An operator's accept runs the stored call exactly once, wherever the accept came from.
    this.unsubscribe = d.approvals.onChange((a) => {
      if (a.status === "accepted") void this.executeApproved(a.id);
    });
  }

  /** Calls accepted before a restart whose execution never finished. */
  async resumeAccepted(): Promise<void> {
    for (const a of this.d.approvals.accepted()) await this.executeApproved(a.id);
  }

  close(): void {
    this.unsubscribe();
  }

  private mayCall(agent: string, name: string): boolean {
    return !this.d.policy.possibleTiers(agent, name).every((t: Tier) => t === "blocked");
  }

  private definition(name: string): CapabilityDefinition {
    const def = this.d.registry.describe(name);
    if (!def)
      throw invalidParams(`unknown capability "${name}"`, [
        { path: "/name", message: "no such capability (see capabilities.list)" },
      ]);
    return def as CapabilityDefinition;
  }

  /** One call of `agent`'s session within the agent's limits. */
  private limited<T>(
    agent: AgentIdentity,
    fn: () => Promise<T>,
    opts: { holdsSlot?: boolean; admitted?: boolean } = {},
  ): Promise<T> {
    const counted = (): Promise<T> =>
      this.d.sessions ? this.d.sessions.call(agent.session, fn) : fn();
    return this.limiter.run(agent.name, counted, opts);
  }

  async list(
    agent: AgentIdentity,
    filter: { category?: string; tag?: string },
  ): Promise<CapabilitySummary[]> {
    return this.limited(agent, async () => this.listNow(agent, filter));
  }

  private listNow(
    agent: AgentIdentity,
    filter: { category?: string; tag?: string },
  ): CapabilitySummary[] {
    return this.d.registry
      .list(filter)
      .filter((c) => this.mayCall(agent.name, c.name))
      .map((c) => ({
        name: c.name,
        category: c.category,
        purpose: c.purpose,
        when_to_use: c.when_to_use,
        tier: this.d.policy.preview({ agent: agent.name, capability: c.name, inputs: {} }).tier,
        tags: c.tags,
      }));
  }

  async describe(agent: AgentIdentity, name: string): Promise<Record<string, unknown>> {
    return this.limited(agent, async () => {
      const def = this.definition(name);
      return { ...def, possible_tiers: this.d.policy.possibleTiers(agent.name, name) };
    });
  }

  async tools(agent: AgentIdentity): Promise<McpTool[]> {
    const tools = this.d.registry
      .list()
      .filter((c) => this.mayCall(agent.name, c.name))
      .map((c) => this.d.registry.mcpTool(c.name))
      .filter((t): t is McpTool => t !== undefined);
    return [...tools, ...APPROVAL_TOOLS];
  }

  private async record(entry: AuditEntry, durable = false): Promise<number> {
    try {
      return (await this.d.audit.append(entry, { durable })).seq;
    } catch (err) {
      const e = asKruxError(err);
      // A halted log said so once (AuditHalted); each call it refuses meanwhile is not news.
      const halted = e.data.halted_since !== undefined;
      this.d.log[halted ? "debug" : "error"](
        { event: "AuditWriteFailed", code: e.code, kind: entry.kind },
        e.message,
      );
      throw new KruxError(
        "Unavailable",
        "the audit log cannot be written; no call runs without its record",
        {
          component: "audit",
          ...(halted ? { halted_since: e.data.halted_since } : {}),
        },
      );
    }
  }

  async invoke(
    agent: AgentIdentity,
    name: string,
    inputs: unknown,
    opts: CallOptions = {},
  ): Promise<InvokeResult> {
    return this.limited(agent, () => this.invokeNow(agent, name, inputs, opts));
  }

  private async invokeNow(
    agent: AgentIdentity,
    name: string,
    inputs: unknown,
    opts: CallOptions,
  ): Promise<InvokeResult> {
    const def = this.definition(name);
    const txn = opts.transactionId;
    if (txn !== undefined && !TRANSACTION_ID.test(txn))
      throw invalidParams("invalid transaction_id", [
        {
          path: "/transaction_id",
          message: "must be 1 to 128 characters: letters, digits and . _ : -",
        },
      ]);
    const checked = this.d.registry.validateInputs(name, inputs);
    if (!checked.ok)
      throw invalidParams(
        `invalid inputs for ${name}`,
        checked.errors.map((e) => ({ path: `/inputs${e.path}`, message: e.message })),
      );
    this.checkPlaceholders(name, checked.inputs);
    const digest = inputsDigest(checked.inputs);
    const decision = this.d.policy.evaluate({
      agent: agent.name,
      capability: name,
      inputs: checked.inputs,
    });
    const base: AuditEntry = {
      kind: "capability.result",
      agent: agent.name,
      session: agent.session,
      capability: name,
      inputs_digest: digest,
      decision: decisionOf(decision),
    };
    if (decision.rate_limited) {
      await this.record({ ...base, outcome: { status: "denied", error_type: "RateLimited" } });
      throw new KruxError("RateLimited", `rate limit of ${name} exceeded`, {
        retry_after_s: decision.rate_limited.retry_after_s,
        capability: name,
        rule: decision.rule,
      });
    }
    if (decision.tier === "blocked") {
      const seq = await this.record({
        ...base,
        outcome: { status: "denied", error_type: "PolicyDenied" },
      });
      this.d.log.info(
        {
          event: "CallDenied",
          agent: agent.name,
          capability: name,
          rule: decision.rule,
          audit_seq: seq,
        },
        `${name} denied by ${decision.rule}`,
      );
      this.d.events?.publish({
        type: "call.denied",
        agent: agent.name,
        capability: name,
        rule: decision.rule,
        audit_seq: seq,
      });
      throw new KruxError("PolicyDenied", `policy blocks ${name}`, {
        capability: name,
        rule: decision.rule,
        policy: `${decision.file}:${decision.line}`,
        file: decision.file,
        line: decision.line,
        generation: decision.generation,
        reason: decision.reason ?? `tier blocked by ${decision.layer} layer`,
      });
    }
    if (decision.tier === "approval_required") {
      let queued: ReturnType<ApprovalQueue["request"]>;
      try {
        queued = this.d.approvals.request({
          agent: agent.name,
          capability: name,
          inputs: checked.inputs,
          generation: decision.generation,
          rule: decision.rule,
        });
      } catch (err) {
        // A full queue for this agent: the refusal is a record like any other denial.
        const e = asKruxError(err);
        await this.record({ ...base, outcome: { status: "denied", error_type: e.code } });
        throw e;
      }
      const { approval, created } = queued;
      if (created) {
        await this.record({
          ...base,
          kind: "approval.requested",
          approval_id: approval.id,
          outcome: { status: "pending" },
        });
        this.d.events?.publish({
          type: "approval.requested",
          approval_id: approval.id,
          agent: agent.name,
          capability: name,
          rule: decision.rule,
        });
      }
      throw new KruxError("ApprovalRequired", `${name} needs an operator's approval`, {
        approval_id: approval.id,
        expires_at: approval.expires_at,
        capability: name,
        rule: decision.rule,
        policy: `${decision.file}:${decision.line}`,
      });
    }
    return this.execute(agent, def, checked.inputs, digest, decision, opts);
  }

  /**
   * Placeholders only where the capability definition marks a field secret-capable, and only
   * well-formed: a placeholder smuggled into a path, a command's name or a file's content, or a
   * near-miss that would go out literally, is refused as invalid input before policy sees it.
   */
  private checkPlaceholders(name: string, inputs: unknown): void {
    const marked = new Set(
      secretValues(inputs, this.d.registry.secretFields(name)).map((f) => f.path),
    );
    for (const [at, text] of strings(inputs)) {
      if (!mentionsPlaceholder(text)) continue;
      if (!marked.has(at))
        throw invalidParams(`a \${secret:…} placeholder in a field that cannot carry one`, [
          {
            path: `/inputs${at}`,
            message: `${name} accepts secret placeholders only in the fields its definition marks x-kruxos-secret`,
          },
        ]);
      if (malformedPlaceholder(text))
        throw invalidParams("a malformed secret placeholder", [
          {
            path: `/inputs${at}`,
            message: "write a placeholder exactly as ${secret:NAME} (NAME: letters, digits, _ . -)",
          },
        ]);
    }
  }

  /** The secrets named by placeholders in `inputs` (their fields were checked at invoke). */
  private secretNames(name: string, inputs: unknown): string[] {
    const names = new Set<string>();
    for (const f of secretValues(inputs, this.d.registry.secretFields(name)))
      for (const n of placeholderNames(f.value)) names.add(n);
    return [...names];
  }

  private async execute(
    agent: AgentIdentity,
    def: CapabilityDefinition,
    inputs: unknown,
    digest: string,
    decision: Decision | undefined,
    opts: CallOptions & { readonly approvalId?: string },
  ): Promise<InvokeResult> {
    const { approvalId, transactionId } = opts;
    const handler = this.d.registry.handler(def.name);
    if (!handler)
      throw invalidParams(`unknown capability "${def.name}"`, [
        { path: "/name", message: "no handler" },
      ]);
    const sideEffect =
      def.side_effects.writes || def.side_effects.destructive || def.side_effects.network;
    const common: AuditEntry = {
      kind: "capability.intent",
      agent: agent.name,
      session: agent.session,
      capability: def.name,
      inputs_digest: digest,
      ...(decision ? { decision: decisionOf(decision) } : {}),
      ...(approvalId ? { approval_id: approvalId } : {}),
      ...(transactionId ? { detail: { transaction_id: transactionId } } : {}),
    };
    // The intent of a side-effecting call is durable before the call runs.
    const intentSeq = await this.record(common, sideEffect);
    const started = performance.now();
    const deadline = AbortSignal.timeout(def.timeout_s * 1000);
    const client = opts.signal;
    const ctx: CallContext = {
      agent: agent.name,
      session: agent.session,
      callId: `call-${intentSeq}`,
      capability: def.name,
      workspaceRoot: this.d.workspaceRoot,
      // The handler stops (a sandbox is killed) when the deadline passes or the client goes away.
      signal: client ? AbortSignal.any([deadline, client]) : deadline,
      // Policy's network grant for this agent: the egress proxy still decides each connection.
      egress: this.d.policy.egressGranted(agent.name),
      ...(transactionId ? { transactionId } : {}),
      // The policy format has no key that names mandatory-deny files yet: none can be unlocked.
      mandatoryDenyAllowed: () => false,
    };
    let data: unknown;
    let failure: KruxError | undefined;
    // Checked now, after policy and any approval: the scope in force when the call runs decides.
    // The destination is checked again where the value is placed (the egress proxy).
    const refused = this.d.secrets?.refusal(this.secretNames(def.name, inputs), {
      agent: agent.name,
      capability: def.name,
    });
    if (refused) {
      await this.record({
        ...common,
        kind: "vault.denied",
        outcome: { status: "denied", error_type: "SecretDenied" },
        detail: {
          ...common.detail,
          call: ctx.callId,
          secret: refused.name,
          reason: refused.reason,
          destination: null,
        },
      });
      failure = secretDenied(def.name, refused);
    } else {
      try {
        data = await Promise.race([handler(inputs, ctx), stopped(def, deadline, client)]);
      } catch (err) {
        failure = asKruxError(err);
      }
    }
    // Whatever came back, no value that could have been placed for this agent and capability
    // leaves in it (results, error messages and their data).
    const redactor = this.d.secrets?.redactor({ agent: agent.name, capability: def.name });
    if (redactor && !redactor.empty) {
      data = redactor.value(data);
      if (failure)
        failure = new KruxError(
          failure.code,
          redactor.text(failure.message),
          redactor.value(failure.data),
        );
    }
    // A client that went away gets no answer, but the record says the call was cancelled.
    if (client?.aborted && !deadline.aborted)
      failure = new KruxError("CapabilityError", `${def.name} was cancelled by the client`, {
        type: "Cancelled",
        capability: def.name,
      });
    const duration_ms = Math.round((performance.now() - started) * 1000) / 1000;
    const cancelled = failure?.data.type === "Cancelled";
    const outcome = failure
      ? {
          status: cancelled ? ("cancelled" as const) : ("error" as const),
          error_type:
            failure.code === "CapabilityError"
              ? String(failure.data.type ?? "CapabilityError")
              : failure.code,
        }
      : { status: "ok" as const };
    const seq = await this.record({ ...common, kind: "capability.result", outcome, duration_ms });
    this.d.metrics?.observeCall(def.name, outcome.status, duration_ms / 1000);
    this.d.log.info(
      {
        event: "CapabilityCalled",
        agent: agent.name,
        capability: def.name,
        outcome: outcome.status,
        ...(failure ? { error_type: outcome.error_type } : {}),
        duration_ms,
        audit_seq: seq,
        ...(approvalId ? { approval_id: approvalId } : {}),
      },
      `${def.name} ${outcome.status}`,
    );
    if (decision?.notify)
      this.d.events?.publish({
        type: "call.notify",
        agent: agent.name,
        capability: def.name,
        outcome: outcome.status,
        audit_seq: seq,
      });
    if (failure) throw failure;
    return { success: true, data, duration_ms, audit_seq: seq };
  }

  private async executeApproved(id: string): Promise<void> {
    const a = this.d.approvals.claim(id);
    if (!a) return; // another path already runs it
    const agent: AgentIdentity = { name: a.agent, session: `approval:${a.id}`, source: "approval" };
    try {
      const def = this.definition(a.capability);
      // It counts against the agent's calls in flight, but is never refused: it was asked for
      // when the agent invoked it, and an operator has decided.
      const result = await this.limited(
        agent,
        () => this.execute(agent, def, a.inputs, a.inputs_digest, undefined, { approvalId: a.id }),
        { admitted: true },
      );
      this.d.approvals.complete(a.id, { result });
    } catch (err) {
      const e = asKruxError(err);
      this.d.approvals.complete(a.id, {
        error: { code: e.code, message: e.message, data: e.data },
      });
    }
  }

  private own(agent: AgentIdentity, id: string): Approval {
    const a = this.d.approvals.get(id);
    // Another agent's approval is indistinguishable from a missing one.
    if (!a || a.agent !== agent.name)
      throw invalidParams(`no approval ${id} for this agent`, [
        { path: "/approval_id", message: "unknown approval" },
      ]);
    return a;
  }

  private view(a: Approval): Record<string, unknown> {
    return {
      approval_id: a.id,
      status: a.status,
      capability: a.capability,
      inputs_digest: a.inputs_digest,
      created_at: a.created_at,
      expires_at: a.expires_at,
      decided_at: a.decided_at,
      approver: a.approver,
      reason: a.reason,
      ...(a.status === "completed" ? { result: a.result } : {}),
      ...(a.status === "failed" ? { error: a.error } : {}),
    };
  }

  async approvalCheck(agent: AgentIdentity, approvalId: string): Promise<Record<string, unknown>> {
    return this.limited(agent, async () => this.view(this.own(agent, approvalId)));
  }

  async approvalWait(
    agent: AgentIdentity,
    approvalId: string,
    timeoutS: number,
    signal: AbortSignal,
  ): Promise<Record<string, unknown>> {
    return this.limited(agent, () => this.approvalWaitNow(agent, approvalId, timeoutS, signal), {
      holdsSlot: false,
    });
  }

  private async approvalWaitNow(
    agent: AgentIdentity,
    approvalId: string,
    timeoutS: number,
    signal: AbortSignal,
  ): Promise<Record<string, unknown>> {
    this.own(agent, approvalId);
    const a =
      (await this.d.approvals.wait(approvalId, timeoutS * 1000, signal)) ??
      this.own(agent, approvalId);
    if (a.status === "rejected")
      throw new KruxError("ApprovalRejected", `an operator rejected ${a.capability}`, {
        approval_id: a.id,
        reason: a.reason,
        approver: a.approver,
      });
    if (a.status === "expired")
      throw new KruxError(
        "ApprovalExpired",
        `nobody decided on ${a.capability} before ${a.expires_at}`,
        {
          approval_id: a.id,
          reason: "expired",
          approver: null,
        },
      );
    if (a.status === "failed") {
      const e = a.error as {
        code?: string;
        message?: string;
        data?: Record<string, unknown>;
      } | null;
      throw new KruxError(
        (e?.code && Object.hasOwn(ERROR_CATALOGUE, e.code) ? e.code : "InternalError") as ErrorCode,
        e?.message ?? "the approved call failed",
        { ...(e?.data ?? {}), approval_id: a.id },
      );
    }
    return this.view(a);
  }
}
