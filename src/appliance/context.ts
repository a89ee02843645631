// How a program finds its manifest and paths. `kruxos up` and host-mode `kruxos boot` pass
// KRUXOS_HOME and KRUXOS_MANIFEST to the programs they start; in the image both are absent and
// the baked manifest and its [paths] apply.
import { appVersion, createLogger, type Logger } from "../core/index.js";
import {
  hostPaths,
  imagePaths,
  loadManifest,
  resolveManifestPath,
  type LoadedManifest,
  type RuntimePaths,
} from "../config/index.js";

export interface ApplianceContext {
  readonly loaded: LoadedManifest;
  readonly paths: RuntimePaths;
  readonly mode: "image" | "host";
  readonly version: string;
}

export function loadContext(
  opts: { manifest?: string | undefined; home?: string | undefined },
  env = process.env,
): ApplianceContext {
  const home = opts.home ?? env.KRUXOS_HOME;
  const file = resolveManifestPath(opts.manifest, home, env);
  const loaded = loadManifest(file);
  const paths =
    home !== undefined
      ? hostPaths(loaded.manifest, home, file, env)
      : imagePaths(loaded.manifest, file, env);
  return { loaded, paths, mode: home !== undefined ? "host" : "image", version: appVersion() };
}

export function programLogger(ctx: ApplianceContext | undefined, program: string): Logger {
  return createLogger({ program, level: ctx?.loaded.manifest.observability.log_level ?? "info" });
}
