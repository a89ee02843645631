// How a program finds its manifest and paths. `kruxos up` and host-mode `kruxos boot` pass
// KRUXOS_HOME and KRUXOS_MANIFEST to the programs they start; in the image both are absent and
// the baked manifest and its [paths] apply.
import { existsSync } from "node:fs";
import path from "node:path";
import { appRoot, appVersion, createLogger, type Logger } from "../core/index.js";
import {
  hostPaths,
  imagePaths,
  loadManifest,
  type LoadedManifest,
  type RuntimePaths,
} from "../config/index.js";

export interface ApplianceContext {
  readonly loaded: LoadedManifest;
  readonly paths: RuntimePaths;
  readonly mode: "image" | "host";
  readonly version: string;
}

export const IMAGE_MANIFEST = "/etc/kruxos/kruxos.toml";

/** --manifest, then KRUXOS_MANIFEST, then (host mode) ./kruxos.toml or the app's default, else the baked file. */
export function resolveManifestPath(
  explicit: string | undefined,
  home: string | undefined,
  env = process.env,
): string {
  if (explicit) return path.resolve(explicit);
  if (env.KRUXOS_MANIFEST) return path.resolve(env.KRUXOS_MANIFEST);
  if (home !== undefined || !existsSync(IMAGE_MANIFEST)) {
    const local = path.resolve("kruxos.toml");
    return existsSync(local) ? local : path.join(appRoot(), "kruxos.toml");
  }
  return IMAGE_MANIFEST;
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
