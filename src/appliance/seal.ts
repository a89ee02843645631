// The bootstrap seal: wait until every program required for readiness is RUNNING, then write the
// sentinel atomically. On timeout, log BootstrapSealTimeout and write nothing.
import { writeFileAtomic, type Logger } from "../core/index.js";

/** Current state per program name, in supervisord's vocabulary (RUNNING, STARTING, BACKOFF, FATAL …). */
export type ProgramStates = () => Promise<ReadonlyMap<string, string>>;

export interface SealOptions {
  readonly states: ProgramStates;
  readonly required: readonly string[];
  readonly sentinel: string;
  readonly timeoutMs: number;
  readonly pollMs: number;
  readonly log: Logger;
  readonly signal?: AbortSignal;
}

export async function seal(opts: SealOptions): Promise<boolean> {
  const { log } = opts;
  const start = Date.now();
  log.info(
    { event: "BootstrapSealStarted", required: opts.required, timeout_s: opts.timeoutMs / 1000 },
    "seal started",
  );
  let last = new Map<string, string>();
  let lastError: string | undefined;
  while (!opts.signal?.aborted) {
    try {
      last = new Map(await opts.states());
      lastError = undefined;
    } catch (err) {
      lastError = (err as Error).message;
    }
    const waiting = opts.required.filter((n) => last.get(n) !== "RUNNING");
    if (waiting.length === 0 && lastError === undefined) {
      const sealedAt = new Date().toISOString();
      writeFileAtomic(
        opts.sentinel,
        JSON.stringify({ sealed_at: sealedAt, programs: opts.required }) + "\n",
        0o644,
      );
      log.info(
        { event: "BootstrapCompleted", duration_ms: Date.now() - start, sentinel: opts.sentinel },
        "sealed",
      );
      return true;
    }
    if (Date.now() - start >= opts.timeoutMs) {
      log.error(
        {
          event: "BootstrapSealTimeout",
          waiting: Object.fromEntries(waiting.map((n) => [n, last.get(n) ?? "UNKNOWN"])),
          ...(lastError ? { error: lastError } : {}),
          timeout_s: opts.timeoutMs / 1000,
        },
        "seal timed out; no sentinel written",
      );
      return false;
    }
    await new Promise((r) => setTimeout(r, opts.pollMs));
  }
  return false;
}
