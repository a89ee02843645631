// Sandbox spawn latency: `/bin/true` through the real launcher and native helper (all layers the
// host supports, with and without the network relay), beside a bare fork+exec from node and
// Debian's bubblewrap doing the same with comparable namespaces, all in this run.
import { spawn } from "node:child_process";
import { chownSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { appRoot, createLogger } from "../src/core/index.js";
import { createLauncher, helperPath, probeSandbox } from "../src/sandbox/index.js";

const pct = (xs: number[], p: number): number =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;

function spawnWait(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: "ignore", env: {} });
    c.on("error", reject);
    c.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}`))));
  });
}

async function time(n: number, f: () => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  for (let i = 0; i < 10; i++) await f();
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await f();
    xs.push(performance.now() - t);
  }
  return { p50: pct(xs, 50), p99: pct(xs, 99) };
}

async function which(cmd: string): Promise<boolean> {
  try {
    await spawnWait(cmd, ["--version"]);
    return true;
  } catch {
    return false;
  }
}

export async function benchSandbox(n = 200): Promise<string> {
  const helper = helperPath(appRoot());
  const diagnosis = await probeSandbox(helper);
  const ws = mkdtempSync(path.join(tmpdir(), "kruxos-bench-ws-"));
  const root = process.geteuid?.() === 0;
  if (root) chownSync(ws, 1100, 1100);
  // A stand-in proxy socket: the relay only connects to it when the program opens a connection.
  const sock = path.join(ws, "..", `kruxos-bench-${process.pid}.sock`);
  const server = createServer((s) => s.end());
  await new Promise<void>((r) => server.listen(sock, r));
  const launcher = createLauncher({
    helper,
    diagnosis,
    require: [],
    workspaceRoot: ws,
    uid: 1100,
    rootHostUid: 1100,
    limits: {
      wall_ms: 10_000,
      cpu_s: 10,
      memory_bytes: 1 << 30,
      pids: 64,
      open_files: 256,
      file_size_bytes: 1 << 26,
      output_bytes: 1 << 16,
    },
    tmpMb: 16,
    proxySocket: sock,
    mintCredential: () => "bench",
    log: createLogger({ program: "bench", level: "error" }),
  });
  const who = { agent: "bench", session: "s", callId: "call-0", capability: "process.run" };
  const lines: string[] = [
    `# sandbox spawn latency, /bin/true, ${n} runs each (ms)`,
    `# layers applied: ${Object.entries(diagnosis.layers)
      .filter(([, l]) => l.ok)
      .map(([k]) => k)
      .join(", ")}`,
    "| | p50 | p99 |",
    "|---|---|---|",
  ];
  const row = (name: string, f: { p50: number; p99: number }): void => {
    lines.push(`| ${name} | ${f.p50.toFixed(2)} | ${f.p99.toFixed(2)} |`);
  };
  row("anchor: bare fork+exec (node spawn)", await time(n, () => spawnWait("/bin/true", [])));
  if (await which("bwrap")) {
    const common = [
      "--ro-bind",
      "/usr",
      "/usr",
      "--symlink",
      "usr/bin",
      "/bin",
      "--symlink",
      "usr/lib",
      "/lib",
      "--symlink",
      "usr/lib64",
      "/lib64",
      "--proc",
      "/proc",
      "--dev",
      "/dev",
      "--tmpfs",
      "/tmp",
      "--bind",
      ws,
      "/workspace",
      "--unshare-user",
      "--unshare-pid",
      "--unshare-ipc",
      "--unshare-uts",
      "--uid",
      "1100",
      "--gid",
      "1100",
      "--die-with-parent",
      "--new-session",
    ];
    row(
      "anchor: bwrap, no network",
      await time(n, () => spawnWait("bwrap", [...common, "--unshare-net", "/bin/true"])),
    );
    row(
      "anchor: bwrap, host network",
      await time(n, () => spawnWait("bwrap", [...common, "/bin/true"])),
    );
  } else {
    lines.push("# bwrap not installed (apt-get install bubblewrap): anchor not measured");
  }
  const req = { argv: ["/bin/true"], cwd: "/workspace" };
  // Interleaved, so that drift on a busy machine lands on both rows alike.
  const plain: number[] = [];
  const relay: number[] = [];
  const once = async (xs: number[], network: boolean): Promise<void> => {
    const t = performance.now();
    await launcher.run({ ...req, network }, who);
    xs.push(performance.now() - t);
  };
  for (let i = 0; i < 10; i++) await launcher.run(req, who);
  for (let i = 0; i < n; i++) {
    await once(plain, false);
    await once(relay, true);
  }
  row("kruxos sandbox, no network", { p50: pct(plain, 50), p99: pct(plain, 99) });
  row("kruxos sandbox, proxy relay", { p50: pct(relay, 50), p99: pct(relay, 99) });
  server.close();
  rmSync(ws, { recursive: true, force: true });
  return lines.join("\n");
}
