// Where things are at run time: every file and folder the appliance uses is derived here, from
// the roots, and nowhere else. The image uses the manifest's [paths] as written; host mode maps
// every root under one home folder (and the app root to the package). Environment variables
// KRUXOS_DATA_DIR, KRUXOS_WORKSPACE and KRUXOS_RUN_DIR override either.
import { existsSync } from "node:fs";
import path from "node:path";
import { appRoot } from "../core/index.js";
import type { Manifest, PathsSpec } from "./types.js";

/** What lives under the app root (read-only in the image). */
export function appLayout(app: string) {
  return {
    binDir: path.join(app, "bin"),
    /** The `kruxos` command. */
    command: path.join(app, "bin", "kruxos"),
    cliMain: path.join(app, "dist", "src", "cli", "main.js"),
    schemaDir: path.join(app, "schema"),
    capabilitiesDir: path.join(app, "config", "capabilities"),
    dashboardDir: path.join(app, "config", "dashboard"),
    sandboxHelper: path.join(app, "native", "build", "kruxos-sandbox"),
    /** The default manifest host mode falls back to. */
    defaultManifest: path.join(app, "kruxos.toml"),
  } as const;
}

/** What lives under the data root (persistent). */
export function dataLayout(data: string) {
  return {
    secretsDir: path.join(data, "secrets"),
    /** Agents, users and their token hashes. */
    agentsDb: path.join(data, "agents.db"),
    approvalsDb: path.join(data, "approval_queue.db"),
    /** The secret store (values encrypted under keys the vault key wraps). */
    vaultDb: path.join(data, "vault.db"),
    auditDir: path.join(data, "audit"),
    /** One `<agent>.yaml` policy file per agent. */
    policyAgentsDir: path.join(data, "policy", "agents"),
  } as const;
}

/** What lives in the secrets folder (0700; every file 0600). */
export function secretsLayout(secretsDir: string) {
  return {
    vaultKeyFile: path.join(secretsDir, "vault.key"),
    /** The scrypt salt of passphrase mode. */
    vaultSaltFile: path.join(secretsDir, "vault.salt"),
    /** The first admin's token, for the operator to pick up. */
    adminTokenFile: path.join(secretsDir, "admin.token"),
  } as const;
}

/** What lives under the run root (recreated at every boot). */
export function runLayout(run: string) {
  return {
    sentinel: path.join(run, "bootstrap.done"),
    supervisorSocket: path.join(run, "supervisor.sock"),
    supervisordPid: path.join(run, "supervisord.pid"),
    /** The supervisord.conf rendered for the paths in use, which `kruxos boot` runs. */
    renderedSupervisordConf: path.join(run, "supervisord.conf"),
    /** The gateway's internal socket where the proxy (a separate program) appends audit records. */
    auditSocket: path.join(run, "audit.sock"),
    metricsSocketDir: path.join(run, "metrics"),
  } as const;
}

/** What lives under the etc root (baked into the image). */
export function etcLayout(etc: string) {
  return {
    /** The supervisord.conf baked with the image, checked against the manifest at boot. */
    supervisordConf: path.join(etc, "supervisord.conf"),
    bakedManifest: path.join(etc, "kruxos.toml"),
  } as const;
}

/** The unix socket where `program` serves its Prometheus registry. */
export function metricsSocket(metricsSocketDir: string, program: string): string {
  return path.join(metricsSocketDir, `${program}.sock`);
}

/** The audit log's folder under a data root (for callers that have only the root). */
export function auditDir(data: string): string {
  return dataLayout(data).auditDir;
}

export interface RuntimePaths
  extends
    PathsSpec,
    ReturnType<typeof appLayout>,
    ReturnType<typeof dataLayout>,
    ReturnType<typeof secretsLayout>,
    ReturnType<typeof runLayout>,
    ReturnType<typeof etcLayout> {
  /** Host mode home folder, when running in host mode. */
  readonly home: string | undefined;
  readonly egressSocket: string;
  readonly manifestFile: string;
}

function derive(
  p: PathsSpec,
  m: Manifest,
  home: string | undefined,
  manifestFile: string,
): RuntimePaths {
  const data = dataLayout(p.data);
  return Object.freeze({
    ...p,
    home,
    ...appLayout(p.app),
    ...data,
    ...secretsLayout(data.secretsDir),
    ...runLayout(p.run),
    ...etcLayout(p.etc),
    egressSocket: path.join(p.run, m.proxy.socket),
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
  return derive(p, m, undefined, manifestFile);
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
  return derive(p, m, h, manifestFile);
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

/** The manifest's [policy].files in layer order (system first), where they are at run time. */
export function policyFiles(m: Manifest, rt: RuntimePaths): string[] {
  return m.policy.files.map((f) => mapManifestPath(m, rt, f));
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
    return existsSync(local) ? local : appLayout(appRoot()).defaultManifest;
  }
  return IMAGE_MANIFEST;
}
