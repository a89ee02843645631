// The app layer: the compiled application, its schemas and configuration assets, the CLI launcher,
// the native sandbox helper, and the baked manifest with its rendered supervisord.conf. Everything is
// root-owned and read-only to the image user.
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import type { PlannedEntry } from "./layer.js";
import { BuildError } from "./proc.js";
import { bufferEntry, dirEntry, fileEntry, walkTree, withParents } from "./tree.js";

/** Where `npm run build:native` leaves the sandbox helper. */
export const HELPER_PATH = "native/build/kruxos-sandbox";

export interface AppLayerInput {
  readonly repoRoot: string;
  /** [paths].app, e.g. /opt/kruxos. */
  readonly appDir: string;
  /** [paths].etc, e.g. /etc/kruxos. */
  readonly etcDir: string;
  /** The manifest file's exact bytes, baked as <etc>/kruxos.toml. */
  readonly manifest: Buffer;
  readonly supervisordConf: string;
  readonly mtime: number;
  /** Fail instead of warning when the native helper has not been built. */
  readonly requireHelper: boolean;
  readonly warn: (line: string) => void;
}

export interface AppLayerPlan {
  readonly entries: PlannedEntry[];
  readonly helperIncluded: boolean;
  readonly launcherIncluded: boolean;
}

export function appEntries(input: AppLayerInput): AppLayerPlan {
  const { repoRoot, mtime } = input;
  const app = input.appDir.replace(/^\/+/, "");
  const etc = input.etcDir.replace(/^\/+/, "");
  const o = { mtime };
  const src = (rel: string): string => path.join(repoRoot, rel);
  const entries: PlannedEntry[] = [dirEntry(app, o), dirEntry(etc, o)];

  // Required: the package manifest, the compiled sources and the schemas.
  if (!existsSync(src("package.json"))) throw new BuildError(`${src("package.json")} is missing`);
  entries.push(fileEntry(`${app}/package.json`, src("package.json"), o, 0o644));
  if (!isDir(src("dist/src"))) {
    throw new BuildError(`${src("dist/src")} is missing: compile first with npm run build`);
  }
  entries.push(...walkTree(src("dist/src"), `${app}/dist/src`, o));
  if (!isDir(src("schema"))) throw new BuildError(`${src("schema")} is missing`);
  entries.push(...walkTree(src("schema"), `${app}/schema`, o));

  // Configuration assets (policy, capabilities) when the tree has them.
  if (isDir(src("config"))) entries.push(...walkTree(src("config"), `${app}/config`, o));
  else
    input.warn(
      "warning: config/ not found; the image will have no bundled policy or capability files",
    );

  // The launcher the OCI Entrypoint names.
  const launcherIncluded = existsSync(src("bin/kruxos"));
  if (launcherIncluded) entries.push(fileEntry(`${app}/bin/kruxos`, src("bin/kruxos"), o, 0o755));
  else input.warn("warning: bin/kruxos not found; the image's Entrypoint will not exist");

  // The native sandbox helper.
  const helperIncluded = existsSync(src(HELPER_PATH));
  if (helperIncluded) {
    entries.push(fileEntry(`${app}/${HELPER_PATH}`, src(HELPER_PATH), o, 0o755));
  } else if (input.requireHelper) {
    throw new BuildError(`${src(HELPER_PATH)} is missing: build it with npm run build:native`);
  } else {
    input.warn(`warning: ${HELPER_PATH} not found; the image will have no sandbox helper`);
  }

  // The baked manifest and the config rendered from it.
  entries.push(bufferEntry(`${etc}/kruxos.toml`, input.manifest, o));
  entries.push(
    bufferEntry(`${etc}/supervisord.conf`, Buffer.from(input.supervisordConf, "utf8"), o),
  );

  return { entries: withParents(entries, o), helperIncluded, launcherIncluded };
}

/** The Node runtime layer: this very node binary as /usr/local/bin/node. */
export function nodeRuntimeEntries(nodeBinary: string, mtime: number): PlannedEntry[] {
  return withParents([fileEntry("usr/local/bin/node", nodeBinary, { mtime }, 0o755)], { mtime });
}

function isDir(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory();
}
