// Whether this machine can run the per-call sandbox the way the appliance requires it by default.
// Security tests that need it skip with this reason instead of failing on a host (or a CI runner)
// without user namespaces or seccomp; the reason names the layer and the helper's own detail.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const HELPER = path.join(REPO, "native", "build", "kruxos-sandbox");
/** The shipped default of [sandbox].require. */
const REQUIRED = ["user", "mount", "pid", "net", "no_new_privs", "seccomp"];

/** Undefined when the sandbox works here; otherwise why not. */
export function sandboxUnavailable(): string | undefined {
  if (process.platform !== "linux") return "the sandbox needs Linux";
  if (!existsSync(HELPER)) return `${HELPER} is not built (npm run build:native)`;
  let report: { layers?: Record<string, { ok: boolean; detail?: string }> };
  try {
    report = JSON.parse(
      execFileSync(HELPER, ["--probe"], { encoding: "utf8", env: {} }),
    ) as typeof report;
  } catch (err) {
    return `kruxos-sandbox --probe failed: ${(err as Error).message}`;
  }
  for (const layer of REQUIRED) {
    const l = report.layers?.[layer];
    if (!l?.ok) return `sandbox layer ${layer} unavailable here: ${l?.detail ?? "not reported"}`;
  }
  return undefined;
}

/**
 * Host processes whose command line is exactly `cmd` (seen from outside every sandbox), after
 * giving a killed namespace up to 5 s to be reaped (a loaded 2-CPU runner has needed more than
 * 2 s); ["still running"] when some stay.
 */
export async function hostProcesses(cmd: string): Promise<string[]> {
  for (let i = 0; i < 50; i++) {
    if (running(cmd).length === 0) return [];
    await new Promise((r) => setTimeout(r, 100));
  }
  return ["still running"];
}

/** Pids of host processes whose command line is exactly `cmd`, now. */
export function running(cmd: string): string[] {
  return readdirSync("/proc")
    .filter((d) => /^[0-9]+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0").join(" ").trim() === cmd;
      } catch {
        return false;
      }
    });
}

/**
 * A policy file for tests that exercise the sandbox rather than policy: every capability
 * autonomous except system.shutdown, and egress only to `allow` (nothing by default).
 */
export function autonomousPolicyFile(allow: readonly string[] = []): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), "kruxos-test-policy-")), "system.yaml");
  writeFileSync(
    file,
    [
      "version: 1",
      "defaults: { tier: autonomous }",
      "capabilities:",
      "  system.shutdown: { tier: blocked }",
      "network:",
      `  egress: { allow: ${JSON.stringify(allow)}, deny: [] }`,
      "",
    ].join("\n"),
  );
  return file;
}
