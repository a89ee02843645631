// capabilities/process: the five process.* handlers. It owns turning process.run inputs into a
// sandbox request (shell or argv form, the confined working directory, env without unresolved
// secret placeholders, limits) and the in-memory table of every agent's background processes. It
// does not sandbox (the Launcher it is handed does), resolve secrets (a placeholder is refused) or
// decide policy (the gateway asks policy before a handler runs).
import type { Launcher } from "../ports/index.js";
import type { CapabilityHandler } from "../types.js";
import { createInfo, createKill, createList, createRun, createWait } from "./handlers.js";
import { ProcessTable, type ProcessRecord } from "./table.js";

export { ProcessTable, stateOf } from "./table.js";
export type { ProcessRecord, ProcessState, ProcessTableOptions } from "./table.js";

export interface ProcessHandlerOptions {
  readonly launcher: Launcher;
  /** Background processes running at once, per agent (default 8). */
  readonly maxBackground?: number;
  /** Ended background processes remembered per agent, oldest forgotten first (default 64). */
  readonly keepExited?: number;
  /** How long an ended process stays visible to process.list/info/wait (default 1 hour). */
  readonly retentionMs?: number;
  /** Told when a background process ends. */
  readonly onEnded?: (rec: ProcessRecord) => void;
}

export interface ProcessCapabilities {
  /** process.run|list|info|wait|kill, keyed by capability name. */
  readonly handlers: Record<string, CapabilityHandler>;
  /** The background processes; the gateway calls table.closeAll() at shutdown. */
  readonly table: ProcessTable;
}

export function createProcessHandlers(deps: ProcessHandlerOptions): ProcessCapabilities {
  const table = new ProcessTable({
    maxBackground: deps.maxBackground ?? 8,
    keepExited: deps.keepExited ?? 64,
    retentionMs: deps.retentionMs ?? 60 * 60 * 1000,
    ...(deps.onEnded ? { onEnded: deps.onEnded } : {}),
  });
  const d = { launcher: deps.launcher, table };
  return {
    handlers: {
      "process.run": createRun(d),
      "process.list": createList(d),
      "process.info": createInfo(d),
      "process.wait": createWait(d),
      "process.kill": createKill(d),
    },
    table,
  };
}
