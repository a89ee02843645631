// Failed authentications per source, in a sliding window: a source past `maxFailures` in the
// window is told to slow down (429). The limiter only ever holds back *failed* attempts — the
// caller verifies a token first, and a token that verifies is never refused, so a client that
// fails on purpose from an agent's address cannot lock that agent out. Memory is bounded: at most
// `maxFailures` timestamps per source and `maxSources` sources (the oldest are forgotten first).

export interface AuthLimiterOptions {
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly maxSources?: number;
}

export class AuthLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(private readonly opts: AuthLimiterOptions) {}

  /** Seconds until this source's failures fall below the limit, or 0 when under it. */
  retryAfter(source: string, now = Date.now()): number {
    const times = this.prune(source, now);
    if (times.length < this.opts.maxFailures) return 0;
    const oldest = times[times.length - this.opts.maxFailures] ?? now;
    return Math.max(1, Math.ceil((oldest + this.opts.windowMs - now) / 1000));
  }

  fail(source: string, now = Date.now()): void {
    const times = this.prune(source, now);
    times.push(now);
    // Only the newest maxFailures matter for the verdict; a flood cannot grow the list.
    if (times.length > this.opts.maxFailures) times.splice(0, times.length - this.opts.maxFailures);
    this.failures.delete(source);
    this.failures.set(source, times);
    const max = this.opts.maxSources ?? 10_000;
    while (this.failures.size > max) {
      const first = this.failures.keys().next().value;
      if (first === undefined) break;
      this.failures.delete(first);
    }
  }

  private prune(source: string, now: number): number[] {
    const times = (this.failures.get(source) ?? []).filter((t) => now - t < this.opts.windowMs);
    if (times.length === 0) this.failures.delete(source);
    else this.failures.set(source, times);
    return times;
  }
}
