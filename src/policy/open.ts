// The appliance's policy engine, opened the same way by every program and command that needs one:
// the manifest's policy files where they are at run time, then the per-agent folder.
import { policyFiles, type Manifest, type RuntimePaths } from "../config/index.js";
import { PolicyEngine, type PolicyEngineOptions } from "./engine.js";

/**
 * A policy engine over the manifest's [policy].files (mapped to the runtime paths) and
 * `<data>/policy/agents`. Nothing is loaded yet: attach a "reload" listener first if the results
 * are to be audited, then call reload() (and watch() when [policy].reload is on).
 */
export function openPolicyEngine(
  m: Manifest,
  paths: RuntimePaths,
  opts: Omit<PolicyEngineOptions, "files" | "agentDir"> = {},
): PolicyEngine {
  return new PolicyEngine({
    ...opts,
    files: policyFiles(m, paths),
    agentDir: paths.policyAgentsDir,
  });
}
