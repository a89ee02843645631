// A delegated cgroup v2 for the sandboxes, where the host gives us one (systemd `Delegate=yes`,
// a container with a private cgroup namespace). cgroup v2 forbids processes in a cgroup that hands
// controllers to its children, so the appliance moves itself into `<own>/kruxos-appliance` and
// the sandboxes live under `<own>/kruxos-sandboxes` with memory, pids and cpu enabled; the helper
// makes one `call-<pid>` child per run there. Anything short of that answers null and the
// sandbox uses rlimits alone (the probe and /health say so).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const ROOT = "/sys/fs/cgroup";

export interface CgroupSetup {
  /** The parent of per-call cgroups, or null when limits are rlimits only. */
  readonly dir: string | null;
  /** Why there is none (null when there is one). */
  readonly reason: string | null;
}

/** Prepare the sandboxes' parent cgroup; never throws. */
export function delegatedCgroup(): CgroupSetup {
  try {
    const line = readFileSync("/proc/self/cgroup", "utf8")
      .split("\n")
      .find((l) => l.startsWith("0::"));
    if (!line) return { dir: null, reason: "no cgroup v2 entry in /proc/self/cgroup" };
    const own = path.join(ROOT, line.slice(3));
    const have = readFileSync(path.join(own, "cgroup.controllers"), "utf8").trim().split(/\s+/);
    const want = ["memory", "pids", "cpu"].filter((c) => have.includes(c));
    if (!want.includes("memory") || !want.includes("pids")) {
      return { dir: null, reason: `${own} offers "${have.join(" ")}", not memory and pids` };
    }
    const appliance = path.join(own, "kruxos-appliance");
    const sandboxes = path.join(own, "kruxos-sandboxes");
    mkdirSync(appliance, { recursive: true });
    mkdirSync(sandboxes, { recursive: true });
    // Leave the parent empty of processes (ours move; a shared parent makes this fail, which is
    // the answer: not delegated to us alone).
    writeFileSync(path.join(appliance, "cgroup.procs"), String(process.pid));
    const enable = want.map((c) => `+${c}`).join(" ");
    writeFileSync(path.join(own, "cgroup.subtree_control"), enable);
    writeFileSync(path.join(sandboxes, "cgroup.subtree_control"), enable);
    return { dir: sandboxes, reason: null };
  } catch (err) {
    return { dir: null, reason: (err as Error).message };
  }
}
