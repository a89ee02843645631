// Refusals (failed authentications, protocol violations) arrive at the rate an attacker chooses;
// the records and log lines they cause must not. Within each window the first `perSource` events
// of a source, and no more than `perWindow` in all, are reported one by one; the rest are only
// counted, and one summary per window carries the counts. So a flood of any size and from any
// number of addresses adds at most perWindow + 1 reports per window.

export interface RefusalEvent {
  /** Where it came from (a peer address). */
  readonly source: string;
  /** What kind of refusal ("auth.failure", "peer.violation"). */
  readonly kind: string;
  /** Why, from a small closed set ("unknown", "rate_limited", "WS_ERR_INVALID_UTF8", …). */
  readonly reason: string;
}

export interface RefusalSummary {
  readonly window_start: string;
  readonly window_end: string;
  /** Every refusal in the window. */
  readonly total: number;
  /** Reported one by one. */
  readonly reported: number;
  /** Only counted here. */
  readonly suppressed: number;
  /** Distinct sources seen (sources past the tracking bound count as one, "other"). */
  readonly sources: number;
  /** The sources with most refusals, at most five. */
  readonly top_sources: readonly { readonly source: string; readonly count: number }[];
  /** Refusals by "kind:reason", the ten largest. */
  readonly by_reason: Readonly<Record<string, number>>;
}

export interface RefusalSamplerOptions<E extends RefusalEvent> {
  readonly perSource: number;
  readonly perWindow: number;
  readonly windowMs: number;
  /** Sources tracked per window; more are counted together (default 10,000). */
  readonly maxSources?: number;
  readonly report: (event: E) => void;
  readonly summary: (summary: RefusalSummary) => void;
  readonly now?: () => number;
}

const OTHER = "other";
const MAX_REASONS = 64;

export class RefusalSampler<E extends RefusalEvent> {
  private start = 0;
  private total = 0;
  private reported = 0;
  private readonly perSource = new Map<string, number>();
  private readonly reasons = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly opts: RefusalSamplerOptions<E>) {}

  /** Count one refusal; true when it was reported one by one. */
  add(event: E): boolean {
    if (this.closed) return false;
    const now = (this.opts.now ?? Date.now)();
    if (this.total === 0) this.open(now);
    this.total++;
    const maxSources = this.opts.maxSources ?? 10_000;
    const key =
      this.perSource.has(event.source) || this.perSource.size < maxSources ? event.source : OTHER;
    const n = (this.perSource.get(key) ?? 0) + 1;
    this.perSource.set(key, n);
    const reason = `${event.kind}:${event.reason}`;
    const rkey = this.reasons.has(reason) || this.reasons.size < MAX_REASONS ? reason : OTHER;
    this.reasons.set(rkey, (this.reasons.get(rkey) ?? 0) + 1);
    if (key === OTHER || n > this.opts.perSource || this.reported >= this.opts.perWindow)
      return false;
    this.reported++;
    this.safely(() => this.opts.report(event));
    return true;
  }

  /** End the current window now (its summary is emitted if anything was suppressed). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.total === 0) return;
    const end = (this.opts.now ?? Date.now)();
    const suppressed = this.total - this.reported;
    if (suppressed > 0) {
      const top = [...this.perSource.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 5)
        .map(([source, count]) => ({ source, count }));
      const byReason = Object.fromEntries(
        [...this.reasons.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10),
      ) as Record<string, number>;
      const summary: RefusalSummary = {
        window_start: new Date(this.start).toISOString(),
        window_end: new Date(end).toISOString(),
        total: this.total,
        reported: this.reported,
        suppressed,
        sources: this.perSource.size,
        top_sources: top,
        by_reason: byReason,
      };
      this.safely(() => this.opts.summary(summary));
    }
    this.total = 0;
    this.reported = 0;
    this.perSource.clear();
    this.reasons.clear();
  }

  /** Emit what the current window holds and stop. */
  close(): void {
    this.flush();
    this.closed = true;
  }

  private open(now: number): void {
    this.start = now;
    this.timer = setTimeout(() => this.flush(), this.opts.windowMs);
    this.timer.unref();
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch {
      // A failing sink (audit unavailable) must not turn one refusal into a crash.
    }
  }
}
