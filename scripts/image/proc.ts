// Running external tools for the image build: argv arrays only (never a shell), output captured,
// and failures turned into BuildError messages that say what to do.
import { spawn } from "node:child_process";

/** A build failure with a message meant for the person running the build. */
export class BuildError extends Error {
  override readonly name = "BuildError";
}

/** The Debian package that provides each tool we may run, for "apt-get install" hints. */
const APT_PACKAGE: Readonly<Record<string, string>> = {
  mmdebstrap: "mmdebstrap",
  podman: "podman",
  git: "git",
  npm: "npm",
};

export interface RunOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** What this step is, for error messages ("build the Debian base with mmdebstrap"). */
  readonly purpose: string;
  /** Stream the tool's stderr to ours as it runs instead of only on failure. */
  readonly passStderr?: boolean;
}

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
}

const TAIL_LINES = 40;

/** Run `cmd args…` and resolve with its output; reject with a BuildError unless it exits 0. */
export function run(cmd: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...args], {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => {
      err.push(b);
      if (opts.passStderr) process.stderr.write(b);
    });
    child.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") {
        const pkg = APT_PACKAGE[cmd] ?? cmd;
        reject(
          new BuildError(
            `${cmd} is not installed (needed to ${opts.purpose}); install it with: apt-get install ${pkg}`,
          ),
        );
      } else {
        reject(new BuildError(`cannot run ${cmd} (needed to ${opts.purpose}): ${e.message}`));
      }
    });
    child.on("close", (code, signal) => {
      const stdout = Buffer.concat(out).toString("utf8");
      const stderr = Buffer.concat(err).toString("utf8");
      if (code === 0) {
        resolve({ stdout, stderr });
        return;
      }
      const tail = stderr.trimEnd().split("\n").slice(-TAIL_LINES).join("\n");
      const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
      reject(
        new BuildError(`${cmd} ${how} while trying to ${opts.purpose}${tail ? `:\n${tail}` : ""}`),
      );
    });
  });
}

/** True when `cmd` can be started (used to fail early, before long steps). */
export async function haveCommand(cmd: string, versionArg = "--version"): Promise<boolean> {
  try {
    await run(cmd, [versionArg], { purpose: `check for ${cmd}` });
    return true;
  } catch {
    return false;
  }
}
