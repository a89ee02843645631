// `kruxos boot`: the image entrypoint. Stage A, then supervisord with the config rendered from the
// same manifest. With --home it boots a host laid out under that folder, supervisord included.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { KruxError, createLogger, writeFileAtomic } from "../core/index.js";
import { renderSupervisordConf, withRuntimePaths } from "../config/index.js";
import { stageA } from "./stage-a.js";
import { which } from "./artifacts.js";

export interface BootOptions {
  readonly manifest?: string | undefined;
  readonly home?: string | undefined;
}

export async function boot(opts: BootOptions): Promise<number> {
  const log = createLogger({ program: "boot" }).child({ stage: "bootstrap" });
  let result;
  try {
    result = await stageA({ ...opts, withSupervisord: true }, log);
  } catch {
    return 1;
  }
  const { ctx } = result;
  const m = ctx.loaded.manifest;

  // The baked supervisord.conf must be what the baked manifest renders to; drift means the image
  // was altered after it was built.
  const baked = ctx.paths.supervisordConf;
  if (
    ctx.mode === "image" &&
    ctx.paths.manifestFile === ctx.paths.bakedManifest &&
    existsSync(baked)
  ) {
    if (readFileSync(baked, "utf8") !== renderSupervisordConf(m, ctx.loaded.sha256)) {
      const e = new KruxError(
        "ConfigDrift",
        `${baked} differs from what ${ctx.paths.manifestFile} renders to`,
      );
      log.error({ event: "BootstrapFailed", code: e.code, reason: e.message }, "boot failed");
      return 1;
    }
  }
  // supervisord runs from a config rendered for the paths actually in use (env overrides, host home).
  const conf = ctx.paths.renderedSupervisordConf;
  writeFileAtomic(conf, renderSupervisordConf(withRuntimePaths(m, ctx.paths), ctx.loaded.sha256));

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${ctx.paths.binDir}:${process.env.PATH ?? "/usr/bin:/bin"}`,
    KRUXOS_MANIFEST: ctx.paths.manifestFile,
    ...(ctx.paths.home !== undefined ? { KRUXOS_HOME: ctx.paths.home } : {}),
  };
  const supervisord = which("supervisord", env) ?? "supervisord";
  log.info({ event: "SupervisorStarting", config: conf }, "exec supervisord");
  // Node ≥ 22.15 can replace this process; older runtimes keep a thin parent that forwards signals.
  const execve = (
    process as unknown as { execve?: (f: string, a: string[], e: NodeJS.ProcessEnv) => never }
  ).execve;
  if (typeof execve === "function") execve(supervisord, [supervisord, "-n", "-c", conf], env);
  const child = spawn(supervisord, ["-n", "-c", conf], { env, stdio: "inherit" });
  for (const s of ["SIGTERM", "SIGINT", "SIGHUP", "SIGUSR2"] as const)
    process.on(s, () => child.kill(s));
  return new Promise((resolve) => {
    child.on("error", (err) => {
      log.error(
        { event: "BootstrapFailed", code: "MissingArtifact", reason: err.message },
        "cannot start supervisord",
      );
      resolve(1);
    });
    child.on("exit", (code, signal) =>
      resolve(code ?? (signal === "SIGTERM" || signal === "SIGINT" ? 0 : 1)),
    );
  });
}
