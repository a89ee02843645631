// The JSON-RPC methods of SPEC §4 for capabilities and approvals: parameter checking (with schema
// paths for InvalidParams) and the per-agent concurrency and rate limits, in front of the pipeline.
import { KruxError, clip } from "../core/index.js";
import { invalidParams, methodNotFound, type Dispatch } from "./jsonrpc.js";
import type { AgentIdentity, Pipeline } from "./pipeline-types.js";

export interface CallLimits {
  /** In-flight calls per agent, across all its connections. */
  readonly maxConcurrent: number;
  /** Sustained calls per second per agent, with a burst of twice that. */
  readonly ratePerS: number;
}

type Params = Record<string, unknown>;

type ParamType = "string" | "object" | "number" | "any";

interface ParamSpec {
  readonly required: readonly string[];
  readonly types: ReadonlyMap<string, ParamType>;
}

const spec = (required: readonly string[], types: Record<string, ParamType>): ParamSpec => ({
  required,
  types: new Map(Object.entries(types)),
});

// A Map, not an object: a client names the method, and "toString" or "__proto__" must be just
// another unknown name, not an inherited member.
const METHODS: ReadonlyMap<string, ParamSpec> = new Map([
  ["capabilities.list", spec([], { category: "string", tag: "string" })],
  ["capabilities.describe", spec(["name"], { name: "string" })],
  [
    "capabilities.invoke",
    spec(["name"], { name: "string", inputs: "object", transaction_id: "string" }),
  ],
  [
    "capabilities.call",
    spec(["name"], { name: "string", inputs: "object", transaction_id: "string" }),
  ],
  ["approvals.check", spec(["approval_id"], { approval_id: "string" })],
  ["approvals.wait", spec(["approval_id"], { approval_id: "string", timeout_s: "number" })],
]);

export const RPC_METHODS = Object.freeze([...METHODS.keys()]);

function checkParams(method: string, expected: ParamSpec, params: unknown): Params {
  if (Array.isArray(params) || typeof params !== "object" || params === null)
    throw invalidParams(`${method} takes named parameters (an object)`, [
      { path: "", message: "must be an object" },
    ]);
  const p = params as Params;
  const errors: { path: string; message: string }[] = [];
  for (const k of expected.required)
    if (!Object.hasOwn(p, k) || p[k] === undefined)
      errors.push({ path: `/${k}`, message: "is required" });
  for (const [k, v] of Object.entries(p)) {
    const type = expected.types.get(k);
    if (!type)
      errors.push({ path: `/${clip(k, 64)}`, message: "is not a parameter of this method" });
    else if (type === "object" && (typeof v !== "object" || v === null || Array.isArray(v)))
      errors.push({ path: `/${k}`, message: "must be an object" });
    else if (type !== "object" && type !== "any" && typeof v !== type)
      errors.push({ path: `/${k}`, message: `must be a ${type}` });
  }
  if (errors.length > 0) throw invalidParams(`invalid params for ${method}`, errors);
  return p;
}

/** Per-agent in-flight and rate accounting shared by every connection of the gateway. */
export class AgentCallLimiter {
  private readonly inflight = new Map<string, number>();
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly limits: CallLimits) {}

  /**
   * Run one call for `agent` within its rate and in-flight limits. Long waits (approvals.wait)
   * pass `holdsSlot: false`: they count against the rate but do not occupy an in-flight slot, so
   * an agent waiting on approvals can still work.
   */
  async run<T>(
    agent: string,
    fn: () => Promise<T>,
    opts: { holdsSlot?: boolean } = {},
    now = Date.now(),
  ): Promise<T> {
    const holdsSlot = opts.holdsSlot ?? true;
    const b = this.buckets.get(agent) ?? { tokens: this.limits.ratePerS * 2, at: now };
    b.tokens = Math.min(
      this.limits.ratePerS * 2,
      b.tokens + ((now - b.at) / 1000) * this.limits.ratePerS,
    );
    b.at = now;
    this.buckets.set(agent, b);
    if (b.tokens < 1)
      throw new KruxError("RateLimited", `more than ${this.limits.ratePerS} calls per second`, {
        retry_after_s: Math.max(1, Math.ceil((1 - b.tokens) / this.limits.ratePerS)),
        limit: "rate",
      });
    const n = this.inflight.get(agent) ?? 0;
    if (holdsSlot && n >= this.limits.maxConcurrent)
      throw new KruxError("RateLimited", `more than ${this.limits.maxConcurrent} calls in flight`, {
        retry_after_s: 1,
        limit: "concurrency",
      });
    b.tokens -= 1;
    if (!holdsSlot) return fn();
    this.inflight.set(agent, n + 1);
    try {
      return await fn();
    } finally {
      const left = (this.inflight.get(agent) ?? 1) - 1;
      if (left <= 0) this.inflight.delete(agent);
      else this.inflight.set(agent, left);
    }
  }
}

/** The dispatch function of one agent connection. */
export function rpcDispatch(
  pipeline: Pipeline,
  agent: AgentIdentity,
  limiter: AgentCallLimiter,
  signal: AbortSignal,
): Dispatch {
  return async (method, params) => {
    const methodSpec = METHODS.get(method);
    if (!methodSpec) throw methodNotFound(method);
    const p = checkParams(method, methodSpec, params);
    return limiter.run(
      agent.name,
      async () => {
        switch (method) {
          case "capabilities.list":
            return {
              capabilities: await pipeline.list(agent, {
                ...(p.category ? { category: p.category as string } : {}),
                ...(p.tag ? { tag: p.tag as string } : {}),
              }),
            };
          case "capabilities.describe":
            return pipeline.describe(agent, p.name as string);
          case "capabilities.invoke":
          case "capabilities.call":
            return pipeline.invoke(
              agent,
              p.name as string,
              p.inputs ?? {},
              p.transaction_id as string | undefined,
            );
          case "approvals.check":
            return pipeline.approvalCheck(agent, p.approval_id as string);
          default: {
            const timeout = Math.min(Math.max(Number(p.timeout_s ?? 30), 0), 300);
            return pipeline.approvalWait(agent, p.approval_id as string, timeout, signal);
          }
        }
      },
      { holdsSlot: method !== "approvals.wait" },
    );
  };
}
