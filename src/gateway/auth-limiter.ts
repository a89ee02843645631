// Repeated authentication failures from one source are answered 429 for a while: a sliding window
// per source address, bounded in memory (oldest sources are forgotten first).

export interface AuthLimiterOptions {
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly maxSources?: number;
}

export class AuthLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(private readonly opts: AuthLimiterOptions) {}

  /** Seconds until this source may try again, or 0 when it may try now. */
  retryAfter(source: string, now = Date.now()): number {
    const times = this.prune(source, now);
    if (times.length < this.opts.maxFailures) return 0;
    const oldest = times[0] ?? now;
    return Math.max(1, Math.ceil((oldest + this.opts.windowMs - now) / 1000));
  }

  fail(source: string, now = Date.now()): void {
    const times = this.prune(source, now);
    times.push(now);
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
