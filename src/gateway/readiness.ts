// Readiness: /ready is 200 only when the bootstrap sentinel exists and every required component is
// healthy. Component checks touch disks and databases, so they run on a timer and /ready answers
// from the last result; the sentinel is a single stat per request.
import { existsSync } from "node:fs";
import { worst, type ComponentHealth, type HealthStatus } from "../core/index.js";

export interface ReadinessOptions {
  readonly sentinel: string;
  /** Components whose health gates readiness (manifest [gateway].ready_requires, plus sandbox when required). */
  readonly requires: readonly string[];
  /** Evaluate every component (required or not) for /health. */
  readonly check: () => Promise<readonly ComponentHealth[]>;
  readonly intervalMs?: number;
}

export interface ReadyBody {
  readonly ready: boolean;
  readonly since?: string;
  readonly requirements?: readonly { name: string; ok: boolean; detail?: string }[];
  readonly reason?: string;
  readonly missing?: readonly string[];
}

export class Readiness {
  private components: readonly ComponentHealth[] = [];
  private readySince: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;

  constructor(private readonly opts: ReadinessOptions) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.opts.intervalMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  refresh(): Promise<void> {
    this.checking ??= this.opts
      .check()
      .then((c) => {
        this.components = c;
      })
      .catch((err: unknown) => {
        this.components = [{ name: "health", status: "failing", detail: (err as Error).message }];
      })
      .finally(() => {
        this.checking = undefined;
      });
    return this.checking;
  }

  health(): { status: HealthStatus; components: readonly ComponentHealth[] } {
    const sealed = existsSync(this.opts.sentinel);
    const bootstrap: ComponentHealth = sealed
      ? { name: "bootstrap", status: "ok" }
      : { name: "bootstrap", status: "failing", detail: "the bootstrap seal has not been written" };
    const components = [bootstrap, ...this.components];
    return { status: worst(components.map((c) => c.status)), components };
  }

  ready(): ReadyBody {
    const requirements = [{ name: "bootstrap", ok: existsSync(this.opts.sentinel) }];
    for (const name of this.opts.requires) {
      const c = this.components.find((x) => x.name === name);
      const ok = c?.status === "ok";
      requirements.push({ name, ok, ...(ok ? {} : { detail: c?.detail ?? "not checked yet" }) });
    }
    const missing = requirements.filter((r) => !r.ok).map((r) => r.name);
    if (missing.length > 0) {
      this.readySince = undefined;
      const reason = missing.includes("bootstrap")
        ? "bootstrap seal not written"
        : `unhealthy: ${missing.join(", ")}`;
      return { ready: false, reason, missing };
    }
    this.readySince ??= new Date().toISOString();
    return { ready: true, since: this.readySince, requirements };
  }
}
