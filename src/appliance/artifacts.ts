// The runtime closure: everything the appliance executes or reads at boot must already be there.
// Nothing is installed or downloaded; a missing piece stops the boot.
import { execFile } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import path from "node:path";
import { policyFiles } from "../config/index.js";
import type { ApplianceContext } from "./context.js";

export interface Artifact {
  readonly name: string;
  readonly path: string;
  readonly kind: "executable" | "file";
  /** For executables: arguments that must exit 0 (and optionally print `expect`). */
  readonly probe?: { readonly args: readonly string[]; readonly expect?: RegExp };
}

export interface ArtifactProblem {
  readonly artifact: string;
  readonly path: string;
  readonly detail: string;
}

export function which(cmd: string, env = process.env): string | undefined {
  for (const dir of (env.PATH ?? "").split(":")) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      if (statSync(p).isFile()) return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export function runtimeArtifacts(ctx: ApplianceContext, withSupervisord: boolean): Artifact[] {
  const list: Artifact[] = [
    { name: "node", path: process.execPath, kind: "executable" },
    {
      name: "native helper",
      path: ctx.paths.sandboxHelper,
      kind: "executable",
      probe: { args: ["--version"], expect: /"name":"kruxos-sandbox"/ },
    },
    { name: "git", path: which("git") ?? "git (not on PATH)", kind: "executable" },
    {
      name: "manifest schema",
      path: path.join(ctx.paths.schemaDir, "kruxos.toml.schema.json"),
      kind: "file",
    },
    {
      name: "dashboard assets",
      path: path.join(ctx.paths.dashboardDir, "index.html"),
      kind: "file",
    },
    { name: "cli", path: ctx.paths.cliMain, kind: "file" },
    ...policyFiles(ctx.loaded.manifest, ctx.paths).map((f): Artifact => ({
      name: "policy file",
      path: f,
      kind: "file",
    })),
  ];
  if (withSupervisord)
    list.push({
      name: "supervisord",
      path: which("supervisord") ?? "supervisord (not on PATH)",
      kind: "executable",
    });
  return list;
}

function probe(file: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 5000, maxBuffer: 64 * 1024 }, (err, stdout) =>
      err ? reject(err) : resolve(stdout),
    );
  });
}

export async function checkArtifacts(list: readonly Artifact[]): Promise<ArtifactProblem[]> {
  const problems: ArtifactProblem[] = [];
  for (const a of list) {
    try {
      const st = statSync(a.path);
      if (!st.isFile()) throw new Error("not a regular file");
      if (a.kind === "executable") accessSync(a.path, constants.X_OK);
      else accessSync(a.path, constants.R_OK);
      if (a.probe) {
        const out = await probe(a.path, a.probe.args);
        if (a.probe.expect && !a.probe.expect.test(out))
          throw new Error(`unexpected output from ${a.probe.args.join(" ")}`);
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      problems.push({
        artifact: a.name,
        path: a.path,
        detail: e.code === "ENOENT" ? "missing" : e.message,
      });
    }
  }
  return problems;
}
