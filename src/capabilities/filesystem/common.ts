// Shared plumbing for the handlers: opening the workspace for a call, turning errno failures into
// CapabilityErrors, and mandatory-deny checks on both the path as written and as resolved.
import { KruxError } from "../../core/index.js";
import { checkDeny, openWorkspace, type Workspace } from "./confine.js";
import { fromErrno } from "./errors.js";
import type { CallContext, CapabilityHandler } from "../types.js";

/** Wrap a handler body: one Workspace per call; system-call failures become CapabilityErrors. */
export function handler<I>(
  capability: string,
  body: (inputs: I, ws: Workspace) => Promise<unknown>,
): CapabilityHandler {
  return async (inputs: unknown, ctx: CallContext) => {
    const ws = await openWorkspace(ctx, capability);
    try {
      return await body(inputs as I, ws);
    } catch (err) {
      if (err instanceof KruxError) throw err;
      const i = (inputs ?? {}) as { path?: unknown; to?: unknown };
      const display = String(i.path ?? i.to ?? ".");
      throw fromErrno(err, capability, display);
    }
  };
}

/** Mandatory deny on the lexical path and on the path as resolved through symlinked directories. */
export function checkDenyBoth(
  ws: Workspace,
  lexical: readonly string[],
  resolved: readonly string[],
  display: string,
): void {
  checkDeny(ws, lexical, display);
  checkDeny(ws, resolved, display);
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

export function modeString(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, "0")}`;
}
