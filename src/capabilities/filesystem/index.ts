// capabilities/filesystem: the ten filesystem.* handlers, confined to the workspace (race-safe
// against symlink and hard-link escapes), bounded in size, and refusing mandatory-deny files. It
// owns path confinement and the mandatory-deny list; it does not decide policy (the gateway asks
// policy first and passes `mandatoryDenyAllowed`) and does not load the YAML definitions.
import { createCopy, createMove } from "./move-copy.js";
import { createRead, createStat, createWrite } from "./files.js";
import type { CapabilityHandler } from "../types.js";
import { DEFAULT_OPTIONS, type FilesystemOptions } from "./options.js";
import { createSearch } from "./search.js";
import { createDelete, createList, createMkdir } from "./tree.js";
import { createWatch } from "./watch.js";

export type { FilesystemOptions } from "./options.js";
export { DEFAULT_OPTIONS as FILESYSTEM_DEFAULTS } from "./options.js";
export { MANDATORY_DENY, mandatoryDenyReason } from "./paths.js";

/** The handlers, keyed by capability name. */
export function createFilesystemHandlers(
  opts: Partial<FilesystemOptions> = {},
): Record<string, CapabilityHandler> {
  const o: FilesystemOptions = { ...DEFAULT_OPTIONS, ...opts };
  return {
    "filesystem.read": createRead(o),
    "filesystem.write": createWrite(o),
    "filesystem.list": createList(o),
    "filesystem.move": createMove(),
    "filesystem.delete": createDelete(),
    "filesystem.search": createSearch(o),
    "filesystem.stat": createStat(),
    "filesystem.mkdir": createMkdir(),
    "filesystem.copy": createCopy(o),
    "filesystem.watch": createWatch(o),
  };
}
