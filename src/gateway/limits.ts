// Per-agent limits on calls: at most `maxConcurrent` in flight across all of the agent's sessions
// and transports, and `ratePerS` per second with bursts of twice that. The pipeline applies them to
// every call, whatever carried it, so no transport can forget them.
import { KruxError } from "../core/index.js";

export interface CallLimits {
  /** In-flight calls per agent, across all its connections. */
  readonly maxConcurrent: number;
  /** Sustained calls per second per agent, with a burst of twice that. */
  readonly ratePerS: number;
}

export interface RunOptions {
  /**
   * False for long waits (approvals.wait): they count against the rate but hold no in-flight
   * slot, so an agent waiting on approvals can still work.
   */
  readonly holdsSlot?: boolean;
  /**
   * An operator's decision runs the call it approved: it takes its slot but is never refused —
   * the agent asked for it long before.
   */
  readonly admitted?: boolean;
}

/** Per-agent in-flight and rate accounting shared by every connection of the gateway. */
export class AgentCallLimiter {
  private readonly inflight = new Map<string, number>();
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly limits: CallLimits) {}

  /** Run one call for `agent` within its rate and in-flight limits (see RunOptions). */
  async run<T>(
    agent: string,
    fn: () => Promise<T>,
    opts: RunOptions = {},
    now = Date.now(),
  ): Promise<T> {
    const holdsSlot = opts.holdsSlot ?? true;
    if (opts.admitted) return this.holding(agent, fn);
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
    return this.holding(agent, fn);
  }

  /** Calls of `agent` in flight now. */
  inFlight(agent: string): number {
    return this.inflight.get(agent) ?? 0;
  }

  private async holding<T>(agent: string, fn: () => Promise<T>): Promise<T> {
    this.inflight.set(agent, (this.inflight.get(agent) ?? 0) + 1);
    try {
      return await fn();
    } finally {
      const left = (this.inflight.get(agent) ?? 1) - 1;
      if (left <= 0) this.inflight.delete(agent);
      else this.inflight.set(agent, left);
    }
  }
}
