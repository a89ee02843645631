// Where things are at run time. The image uses the manifest's [paths] as written; host mode maps
// every root under one home folder (and the app root to the package). Environment variables
// KRUXOS_DATA_DIR, KRUXOS_WORKSPACE and KRUXOS_RUN_DIR override either.
import { existsSync } from "node:fs";
import path from "node:path";
import { appRoot } from "../core/index.js";
import type { Manifest, PathsSpec } from "./types.js";

export interface RuntimePaths extends PathsSpec {
  /** Host mode home folder, when running in host mode. */
  readonly home: string | undefined;
  /** Derived locations used across programs. */
  readonly sentinel: string;
  readonly supervisorSocket: string;
  readonly egressSocket: string;
  /** The gateway's internal socket where the proxy (a separate program) appends audit records. */
  readonly auditSocket: string;
  readonly metricsSocketDir: string;
  readonly secretsDir: string;
  readonly supervisordConf: string;
  readonly manifestFile: string;
}

function derive(
  p: PathsSpec,
  m: Manifest,
  home: string | undefined,
  supervisordConf: string,
  manifestFile: string,
): RuntimePaths {
  return Object.freeze({
    ...p,
    home,
    sentinel: path.join(p.run, "bootstrap.done"),
    supervisorSocket: path.join(p.run, "supervisor.sock"),
    egressSocket: path.join(p.run, m.proxy.socket),
    auditSocket: path.join(p.run, "audit.sock"),
    metricsSocketDir: path.join(p.run, "metrics"),
    secretsDir: path.join(p.data, "secrets"),
    supervisordConf,
    manifestFile,
  });
}

function envOverrides(p: PathsSpec, env: NodeJS.ProcessEnv): PathsSpec {
  return {
    ...p,
    data: env.KRUXOS_DATA_DIR || p.data,
    workspace: env.KRUXOS_WORKSPACE || p.workspace,
    run: env.KRUXOS_RUN_DIR || p.run,
  };
}

/** Paths inside the image (or any host laid out like it). */
export function imagePaths(
  m: Manifest,
  manifestFile: string,
  env: NodeJS.ProcessEnv = process.env,
): RuntimePaths {
  const p = envOverrides(m.paths, env);
  return derive(p, m, undefined, path.join(p.etc, "supervisord.conf"), manifestFile);
}

/** Host-mode paths: everything under `home`, the app root being this package. */
export function hostPaths(
  m: Manifest,
  home: string,
  manifestFile: string,
  env: NodeJS.ProcessEnv = process.env,
): RuntimePaths {
  const h = path.resolve(home);
  const p = envOverrides(
    {
      app: appRoot(),
      etc: path.join(h, "etc"),
      data: path.join(h, "data"),
      workspace: path.join(h, "workspace"),
      run: path.join(h, "run"),
      tmp: path.join(h, "tmp"),
    },
    env,
  );
  return derive(p, m, h, path.join(p.etc, "supervisord.conf"), manifestFile);
}

/**
 * Map an absolute path written in the manifest (for example a policy file under /opt/kruxos) to
 * where it lives at run time: the longest of the app, etc and data roots containing it is replaced.
 */
export function mapManifestPath(m: Manifest, rt: RuntimePaths, p: string): string {
  // Only roots that hold configuration are mapped; a file under /tmp or the workspace is taken as
  // written (it is the operator's own file, not a path inside the appliance's layout).
  const roots = (["app", "etc", "data"] as const)
    .map((k) => [m.paths[k], rt[k]] as const)
    .sort((a, b) => b[0].length - a[0].length);
  for (const [from, to] of roots) {
    const rel = path.relative(from, p);
    if (rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel))) return path.join(to, rel);
  }
  return p;
}

/** The manifest with its [paths] replaced by runtime paths: what host-mode supervisord is rendered from. */
export function withRuntimePaths(m: Manifest, rt: RuntimePaths): Manifest {
  const { app, etc, data, workspace, run, tmp } = rt;
  return Object.freeze({ ...m, paths: Object.freeze({ app, etc, data, workspace, run, tmp }) });
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
