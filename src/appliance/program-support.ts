// What the program starters share: their runtime, how a program stops, the listeners' guard, the
// refusals of a program that is not the gateway, and the stack of what a starter has opened — so
// a start that fails halfway closes what it opened instead of leaving timers, sockets and
// databases that keep the process alive.
import type { Logger, Registry } from "../core/index.js";
import { SUBKEY_EGRESS_CREDENTIALS, deriveSubkey } from "../vault/index.js";
import type { ApplianceContext } from "./context.js";
import { auditThroughGateway } from "./audit-intake.js";
import { createRefusals, type Refusals } from "./refusals.js";

export type BuiltinProgram = "proxy" | "gateway" | "dashboard";

export interface ProgramRuntime {
  readonly ctx: ApplianceContext;
  readonly log: Logger;
  readonly registry: Registry;
}

export interface RunningProgram {
  close(): Promise<void>;
}

/**
 * What a starter has opened, closed in reverse order: by the running program's close(), or at
 * once when the start fails halfway. A failing close is logged and the rest still close.
 */
export class Opened {
  private readonly stack: { readonly what: string; readonly close: () => unknown }[] = [];

  constructor(private readonly log: Logger) {}

  /** Remember how to close `what`; returns `value` so opening and registering read as one. */
  add<T>(what: string, value: T, close: (v: T) => unknown): T {
    this.stack.push({ what, close: () => close(value) });
    return value;
  }

  async closeAll(): Promise<void> {
    for (const { what, close } of this.stack.splice(0).reverse()) {
      try {
        await close();
      } catch (err) {
        this.log.error(
          { event: "ProgramCloseFailed", what, error: (err as Error).message },
          `closing ${what} failed`,
        );
      }
    }
  }
}

/** Run a starter's body; if it throws, what it opened is closed before the error goes on. */
export async function starting(
  log: Logger,
  body: (opened: Opened) => Promise<void>,
): Promise<RunningProgram> {
  const opened = new Opened(log);
  try {
    await body(opened);
  } catch (err) {
    await opened.closeAll();
    throw err;
  }
  return { close: () => opened.closeAll() };
}

/**
 * Timeouts and peer-fault reporting shared by a program's listeners ([gateway] header_timeout_s and
 * body_timeout_s apply to every HTTP listener of the appliance except the egress proxy).
 */
export function guardOf(ctx: ApplianceContext, registry: Registry, refusals: Refusals) {
  const g = ctx.loaded.manifest.gateway;
  return {
    registry,
    onFault: (f: Parameters<Refusals["fault"]>[0]) => refusals.fault(f),
    headersTimeoutMs: g.header_timeout_s * 1000,
    requestTimeoutMs: Math.max(g.body_timeout_s, g.header_timeout_s) * 1000,
  };
}

/**
 * Refusals of a program that is not the gateway: its records reach the log through the gateway's
 * audit intake (the log's single writer); while the gateway is away they are logged only.
 */
export function intakeRefusals(ctx: ApplianceContext, log: Logger, registry: Registry): Refusals {
  const append = auditThroughGateway(ctx.paths.auditSocket);
  return createRefusals({
    log,
    registry,
    audit: ctx.loaded.manifest.audit,
    record: (entry) => {
      append(entry, false).catch((err: Error) =>
        log.warn(
          { event: "AuditWriteFailed", kind: entry.kind, error: err.message },
          "refusal record not appended",
        ),
      );
    },
  });
}

/** The per-call proxy credentials' key: derived from the vault key, the same in every program. */
export function egressKey(ctx: ApplianceContext): Buffer {
  return deriveSubkey(
    ctx.paths.secretsDir,
    ctx.loaded.manifest.vault.key_source,
    SUBKEY_EGRESS_CREDENTIALS,
    process.env,
    ctx.paths.vaultDb,
  );
}
