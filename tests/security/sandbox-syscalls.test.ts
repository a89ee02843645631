// What a program inside the real sandbox tries against the kernel: ptrace, new namespaces, mounts,
// kernel interfaces, raw sockets, terminal injection, other processes, direct network. Each test
// runs native/build/kruxos-sandbox --run with a literal spec (fd 3, status on fd 4) and the probe
// program native/probes/syscall-probe.c as the sandboxed program, which attempts the operation
// for real and reports whether the kernel let it through. Refusals are checked by errno too, so a
// probe that failed for an unrelated reason (a bad argument) cannot pass for a refusal.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
} from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { REPO } from "../helpers/repo.js";

const HELPER = path.join(REPO, "native", "build", "kruxos-sandbox");
const BUILT_PROBE = path.join(REPO, "native", "build", "probes", "syscall-probe");
const INSIDE_PROBE = "/workspace/syscall-probe";

/** The identity inside, and the unprivileged host uid a root caller maps it to (SPEC §8). */
const SANDBOX_UID = 1100;
const LAYERS = [
  "user",
  "mount",
  "pid",
  "net",
  "uts",
  "ipc",
  "rlimits",
  "no_new_privs",
  "landlock",
  "seccomp",
] as const;

let skipReason: string | undefined;
/** The probe copied into the workspace, once before() got that far. */
let probeCopy: string | undefined;
let scratch = "";
let workspace = "";
let tcpServer: net.Server | undefined;
let tcpPort = 0;
let unixServer: net.Server | undefined;
let unixPath = "";
let abstractServer: net.Server | undefined;
const abstractName = `@kruxos-syscalls-${process.pid}`;

interface ProbeLine {
  readonly probe: string;
  readonly ok: boolean;
  readonly errno: string | null;
  readonly detail: string;
  readonly elapsed_ms?: number;
  readonly fds?: readonly { fd: number; target: string }[];
}

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly status: readonly Record<string, unknown>[];
}

const hostIds = (): { uid: number; gid: number } => {
  const uid = process.getuid?.() ?? SANDBOX_UID;
  const gid = process.getgid?.() ?? SANDBOX_UID;
  return uid === 0 ? { uid: SANDBOX_UID, gid: SANDBOX_UID } : { uid, gid };
};

function spec(
  argv: readonly string[],
  network: null | { relay_port: number; proxy_socket: string } = null,
): object {
  const ids = hostIds();
  return {
    version: 1,
    argv,
    env: ["PATH=/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8"],
    cwd: "/workspace",
    uid: SANDBOX_UID,
    gid: SANDBOX_UID,
    host_uid: ids.uid,
    host_gid: ids.gid,
    hostname: "kruxos-sandbox",
    layers: LAYERS,
    mounts: {
      workspace,
      ro_binds: [
        "/usr",
        "/bin",
        "/sbin",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/etc/ld.so.cache",
      ],
      ro_overlays: [],
      files: [
        {
          path: "/etc/passwd",
          content: "root:x:0:0::/:/usr/sbin/nologin\nagent:x:1100:1100::/tmp:/bin/sh\n",
        },
      ],
      tmp_mb: 16,
    },
    network,
    limits: {
      wall_ms: 20_000,
      cpu_s: 10,
      memory_bytes: 1_073_741_824,
      pids: 64,
      open_files: 256,
      file_size_bytes: 67_108_864,
    },
    cgroup: null,
  };
}

/** Run the helper with a spec on fd 3; collect stdout, stderr and the fd 4 status lines. */
function runHelper(theSpec: object, timeoutMs = 30_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(HELPER, ["--run"], { stdio: ["pipe", "pipe", "pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let statusText = "";
    const specStream = child.stdio[3] as NodeJS.WritableStream;
    const statusStream = child.stdio[4] as NodeJS.ReadableStream;
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    statusStream.on("data", (c: Buffer) => (statusText += c.toString()));
    statusStream.on("error", () => undefined);
    specStream.on("error", () => undefined);
    child.stdin.on("error", () => undefined);
    child.stdin.end();
    specStream.end(JSON.stringify(theSpec));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const status = statusText
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            return { unparsed: l };
          }
        });
      resolve({ code, signal, stdout, stderr, status });
    });
  });
}

function describeRun(r: Run): string {
  return `exit ${r.code} signal ${r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}\nstatus: ${JSON.stringify(r.status)}`;
}

async function probe(name: string, ...args: string[]): Promise<{ line: ProbeLine; run: Run }> {
  return probeWith(null, name, ...args);
}

async function probeWith(
  network: null | { relay_port: number; proxy_socket: string },
  name: string,
  ...args: string[]
): Promise<{ line: ProbeLine; run: Run }> {
  const run = await runHelper(spec([INSIDE_PROBE, name, ...args], network));
  assert.ok(
    run.status.some((s) => s.event === "started"),
    `the sandbox never started the program\n${describeRun(run)}`,
  );
  const line = run.stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as ProbeLine)
    .find((l) => l.probe === name);
  assert.ok(line, `the probe printed no result\n${describeRun(run)}`);
  return { line, run };
}

/** The operation was refused, with one of the errnos that mean "the sandbox said no". */
async function assertRefused(
  name: string,
  args: readonly string[],
  errnos: readonly (string | null)[],
): Promise<ProbeLine> {
  const { line, run } = await probe(name, ...args);
  assert.equal(line.ok, false, `${name} SUCCEEDED inside the sandbox: ${line.detail}`);
  assert.equal(run.code, 0, `probe exit code\n${describeRun(run)}`);
  assert.ok(
    errnos.includes(line.errno),
    `${name} was refused, but with ${line.errno} (${line.detail}); expected one of ${errnos.join(", ")}`,
  );
  return line;
}

/** A control: an ordinary operation that must keep working under the filter. */
async function assertWorks(name: string): Promise<void> {
  const { line, run } = await probe(name);
  assert.equal(line.ok, true, `${name} failed inside the sandbox: ${line.errno} ${line.detail}`);
  assert.equal(run.code, 1, `probe exit code\n${describeRun(run)}`);
}

function listen(server: net.Server, where: number | string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    if (typeof where === "number") server.listen(where, "127.0.0.1", () => resolve());
    else server.listen(where, () => resolve());
  });
}

before(async () => {
  if (process.platform !== "linux") {
    skipReason = "the sandbox helper is Linux-only";
    return;
  }
  if (!existsSync(HELPER)) {
    skipReason = `${HELPER} is not built (make -C native)`;
    return;
  }
  const probeReport = spawnSync(HELPER, ["--probe"], { encoding: "utf8", timeout: 30_000 });
  try {
    const report = JSON.parse(probeReport.stdout) as {
      layers: Record<string, { ok: boolean; detail?: string }>;
    };
    const missing = LAYERS.filter((l) => report.layers[l]?.ok !== true).map(
      (l) => `${l} (${report.layers[l]?.detail ?? "not reported"})`,
    );
    if (missing.length > 0) {
      skipReason = `sandbox layers unavailable on this host: ${missing.join("; ")}`;
      return;
    }
  } catch {
    skipReason = `kruxos-sandbox --probe gave no report: ${probeReport.stderr || probeReport.error?.message}`;
    return;
  }

  scratch = mkdtempSync(path.join(os.tmpdir(), "kruxos-syscalls-"));
  chmodSync(scratch, 0o755);
  workspace = path.join(scratch, "workspace");
  mkdirSync(workspace, { mode: 0o755 });
  if (!existsSync(BUILT_PROBE)) {
    skipReason = `no probe program: ${BUILT_PROBE} is not built (make -C native)`;
    return;
  }
  probeCopy = path.join(workspace, "syscall-probe");
  copyFileSync(BUILT_PROBE, probeCopy);
  chmodSync(probeCopy, 0o755);
  if (process.getuid?.() === 0) {
    chownSync(workspace, SANDBOX_UID, SANDBOX_UID);
    chownSync(probeCopy, SANDBOX_UID, SANDBOX_UID);
  }

  // Listeners outside the sandbox that nothing inside may reach.
  tcpServer = net.createServer((s) => s.destroy());
  await listen(tcpServer, 0);
  tcpPort = (tcpServer.address() as net.AddressInfo).port;
  unixPath = path.join(scratch, "outside.sock");
  unixServer = net.createServer((s) => s.destroy());
  await listen(unixServer, unixPath);
  abstractServer = net.createServer((s) => s.destroy());
  await listen(abstractServer, `\0${abstractName.slice(1)}`);

  const smoke = await runHelper(spec([INSIDE_PROBE, "noop"]));
  if (smoke.code === 120) {
    skipReason = `kruxos-sandbox has no --run mode yet: ${smoke.stderr.trim()}`;
    return;
  }
  assert.equal(smoke.code, 0, `a sandboxed no-op program failed\n${describeRun(smoke)}`);
});

after(() => {
  tcpServer?.close();
  unixServer?.close();
  abstractServer?.close();
  if (scratch !== "") rmSync(scratch, { recursive: true, force: true });
});

/** One test per behaviour; `body` runs only where the real sandbox can. */
function sandboxTest(name: string, body: () => Promise<unknown>): void {
  test(name, async (t) => {
    if (skipReason !== undefined) {
      t.skip(skipReason);
      return;
    }
    await body();
  });
}

const EPERM = ["EPERM"] as const;

// ---- other processes --------------------------------------------------------------------------

sandboxTest("a sandboxed program cannot ptrace its parent", () =>
  assertRefused("ptrace_attach_parent", [], EPERM),
);
sandboxTest("a sandboxed program cannot offer itself to a tracer (PTRACE_TRACEME)", () =>
  assertRefused("ptrace_traceme", [], EPERM),
);
sandboxTest("a sandboxed program cannot read its parent's memory (process_vm_readv)", () =>
  assertRefused("process_vm_readv", [], EPERM),
);
sandboxTest("a sandboxed program cannot compare kernel objects of other processes (kcmp)", () =>
  assertRefused("kcmp", [], EPERM),
);
sandboxTest("a sandboxed program cannot take a file descriptor from another process", () =>
  assertRefused("pidfd_getfd", [], EPERM),
);
sandboxTest("a sandboxed program cannot ptrace a process outside the sandbox", () =>
  assertRefused("ptrace_pid", [String(process.pid)], ["EPERM", "ESRCH"]),
);
sandboxTest(
  "a sandboxed program cannot read the environment of a process outside the sandbox",
  () =>
    assertRefused(
      "read_environ",
      [String(process.pid)],
      ["ENOENT", "ESRCH", "EACCES", "EPERM", null],
    ),
);
sandboxTest("a sandboxed program cannot signal a process outside the sandbox", () =>
  assertRefused("kill_pid", [String(process.pid)], ["ESRCH", "EPERM"]),
);

// ---- namespaces and process model ----------------------------------------------------------------

sandboxTest("a sandboxed program cannot create a new user namespace", () =>
  assertRefused("unshare_user", [], EPERM),
);
sandboxTest("a sandboxed program cannot create a new network namespace", () =>
  assertRefused("unshare_net", [], EPERM),
);
sandboxTest("a sandboxed program cannot create a new mount namespace", () =>
  assertRefused("unshare_mount", [], EPERM),
);
sandboxTest("a sandboxed program cannot join a namespace (setns)", () =>
  assertRefused("setns", [], EPERM),
);
sandboxTest("a sandboxed program cannot create a user namespace through clone flags", () =>
  assertRefused("clone_newuser", [], EPERM),
);
sandboxTest("clone3, whose flags a filter cannot read, answers ENOSYS so libc falls back", () =>
  assertRefused("clone3", [], ["ENOSYS"]),
);
sandboxTest("a sandboxed program cannot switch off address-space randomisation", () =>
  assertRefused("personality", [], EPERM),
);

// ---- mounts and host-wide state ------------------------------------------------------------------

sandboxTest("a sandboxed program cannot mount a file system", () =>
  assertRefused("mount", [], EPERM),
);
sandboxTest("a sandboxed program cannot unmount anything", () =>
  assertRefused("umount2", [], EPERM),
);
sandboxTest("a sandboxed program cannot pivot_root", () => assertRefused("pivot_root", [], EPERM));
sandboxTest("a sandboxed program cannot open a file system context (fsopen)", () =>
  assertRefused("fsopen", [], EPERM),
);
sandboxTest("a sandboxed program cannot clone a mount tree (open_tree)", () =>
  assertRefused("open_tree", [], EPERM),
);
sandboxTest("a sandboxed program cannot move mounts (move_mount)", () =>
  assertRefused("move_mount", [], EPERM),
);
sandboxTest("a sandboxed program cannot enable swap", () => assertRefused("swapon", [], EPERM));
sandboxTest("a sandboxed program cannot switch on process accounting", () =>
  assertRefused("acct", [], EPERM),
);
sandboxTest("a sandboxed program cannot change disk quotas", () =>
  assertRefused("quotactl", [], EPERM),
);
sandboxTest("a sandboxed program cannot set the system clock", () =>
  assertRefused("settimeofday", [], EPERM),
);
sandboxTest("a sandboxed program cannot reboot the host", () => assertRefused("reboot", [], EPERM));
sandboxTest("a sandboxed program cannot load a new kernel (kexec)", () =>
  assertRefused("kexec_load", [], EPERM),
);
sandboxTest("a sandboxed program cannot load a kernel module", () =>
  assertRefused("init_module", [], EPERM),
);

// ---- files ---------------------------------------------------------------------------------------

sandboxTest("a sandboxed program cannot obtain file handles (name_to_handle_at)", () =>
  assertRefused("name_to_handle_at", [], EPERM),
);
sandboxTest("a sandboxed program cannot open files by handle, around path checks", () =>
  assertRefused("open_by_handle_at", [], EPERM),
);
sandboxTest("a sandboxed program cannot overwrite its own executable through /proc", () =>
  assertRefused("write_self_exe", [], ["ETXTBSY", "EACCES", "EROFS", "EPERM"]),
);
sandboxTest(
  "a sandboxed program inherits no file descriptors beyond stdin, stdout and stderr",
  async () => {
    const line = await assertRefused("fd_scan", [], [null]);
    assert.deepEqual(line.fds, []);
  },
);

// ---- kernel interfaces ---------------------------------------------------------------------------

sandboxTest("a sandboxed program cannot load eBPF", () => assertRefused("bpf", [], EPERM));
sandboxTest("a sandboxed program cannot create a userfaultfd", () =>
  assertRefused("userfaultfd", [], EPERM),
);
sandboxTest("a sandboxed program cannot use the kernel keyring (keyctl)", () =>
  assertRefused("keyctl", [], EPERM),
);
sandboxTest("a sandboxed program cannot add keys to the kernel keyring", () =>
  assertRefused("add_key", [], EPERM),
);
sandboxTest("io_uring answers ENOSYS, so runtimes fall back to threads", () =>
  assertRefused("io_uring_setup", [], ["ENOSYS"]),
);
sandboxTest("a sandboxed program cannot open perf events", () =>
  assertRefused("perf_event_open", [], EPERM),
);
sandboxTest("a sandboxed program cannot watch file systems with fanotify", () =>
  assertRefused("fanotify_init", [], EPERM),
);

// ---- terminals -----------------------------------------------------------------------------------

sandboxTest("a sandboxed program cannot push input into the terminal (TIOCSTI)", () =>
  assertRefused("tiocsti", [], EPERM),
);
sandboxTest("a sandboxed program cannot drive the virtual console (TIOCLINUX)", () =>
  assertRefused("tioclinux", [], EPERM),
);

// ---- sockets -------------------------------------------------------------------------------------

sandboxTest("a sandboxed program cannot open a packet socket", () =>
  assertRefused("socket_packet", [], EPERM),
);
sandboxTest("a sandboxed program cannot open a raw IPv4 socket", () =>
  assertRefused("socket_raw", [], EPERM),
);
sandboxTest("a sandboxed program cannot open a raw IPv6 socket", () =>
  assertRefused("raw_socket", [], EPERM),
);
sandboxTest("a sandboxed program cannot open an audit netlink socket", () =>
  assertRefused("netlink_audit", [], EPERM),
);
sandboxTest("a sandboxed program cannot reach the hypervisor host over vsock", () =>
  assertRefused("socket_vsock", [], ["EAFNOSUPPORT"]),
);
sandboxTest("a sandboxed program cannot use the kernel crypto socket API", () =>
  assertRefused("socket_alg", [], ["EAFNOSUPPORT"]),
);

// ---- direct network ------------------------------------------------------------------------------

sandboxTest("direct TCP to the host's loopback is refused at once", async () => {
  const line = await assertRefused(
    "connect_tcp",
    ["127.0.0.1", String(tcpPort)],
    ["EACCES", "ECONNREFUSED", "ENETUNREACH"],
  );
  assert.ok((line.elapsed_ms ?? Infinity) < 1000, `took ${line.elapsed_ms} ms`);
});
sandboxTest("direct TCP to an outside address is refused at once", async () => {
  const line = await assertRefused(
    "connect_tcp",
    ["192.0.2.1", "443"],
    ["EACCES", "ENETUNREACH", "EHOSTUNREACH"],
  );
  assert.ok((line.elapsed_ms ?? Infinity) < 1000, `took ${line.elapsed_ms} ms`);
});
sandboxTest("UDP to an outside address goes nowhere", () =>
  assertRefused("udp_send", ["192.0.2.1", "53"], ["ENETUNREACH", "EACCES", "EPERM"]),
);
sandboxTest("a sandboxed program cannot reach a unix socket outside its file system", () =>
  assertRefused("connect_unix", [unixPath], ["ENOENT", "EACCES"]),
);
sandboxTest("a sandboxed program cannot reach an abstract unix socket outside the sandbox", () =>
  assertRefused("connect_unix", [abstractName], ["ECONNREFUSED", "EPERM"]),
);
sandboxTest("with network granted, TCP reaches only the relay port", async () => {
  const network = { relay_port: 3128, proxy_socket: unixPath };
  const other = await probeWith(network, "connect_tcp", "127.0.0.1", "3129");
  assert.equal(other.line.ok, false, `port 3129 was reachable: ${other.line.detail}`);
  assert.ok(
    ["EACCES", "ECONNREFUSED"].includes(other.line.errno ?? ""),
    `${other.line.errno} ${other.line.detail}`,
  );
  const relay = await probeWith(network, "connect_tcp", "127.0.0.1", "3128");
  assert.equal(
    relay.line.ok,
    true,
    `the relay was not reachable: ${relay.line.errno} ${relay.line.detail}`,
  );
});

// ---- what must keep working ----------------------------------------------------------------------

sandboxTest("a sandboxed program can still fork", () => assertWorks("fork"));
sandboxTest("a sandboxed program can still spawn programs (libc falls back from clone3)", () =>
  assertWorks("spawn"),
);
sandboxTest("a sandboxed program can still list network interfaces over route netlink", () =>
  assertWorks("netlink_route"),
);

// ---- coverage ------------------------------------------------------------------------------------

/** Every probe the program knows, as named in the tests above. */
const TESTED = [
  "ptrace_attach_parent",
  "ptrace_traceme",
  "process_vm_readv",
  "kcmp",
  "pidfd_getfd",
  "ptrace_pid",
  "read_environ",
  "kill_pid",
  "unshare_user",
  "unshare_net",
  "unshare_mount",
  "setns",
  "clone_newuser",
  "clone3",
  "personality",
  "mount",
  "umount2",
  "pivot_root",
  "fsopen",
  "open_tree",
  "move_mount",
  "swapon",
  "acct",
  "quotactl",
  "settimeofday",
  "reboot",
  "kexec_load",
  "init_module",
  "name_to_handle_at",
  "open_by_handle_at",
  "write_self_exe",
  "fd_scan",
  "bpf",
  "userfaultfd",
  "keyctl",
  "add_key",
  "io_uring_setup",
  "perf_event_open",
  "fanotify_init",
  "tiocsti",
  "tioclinux",
  "socket_packet",
  "socket_raw",
  "raw_socket",
  "netlink_audit",
  "socket_vsock",
  "socket_alg",
  "connect_unix",
  "connect_tcp",
  "udp_send",
  "fork",
  "spawn",
  "netlink_route",
];

test("every operation the probe program knows is exercised here", (t) => {
  if (probeCopy === undefined) {
    t.skip(skipReason ?? "no probe program");
    return;
  }
  const list = spawnSync(probeCopy, ["--list"], { encoding: "utf8" });
  assert.equal(list.status, 0, list.stderr);
  const known = list.stdout
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => l.split(" ")[0]);
  assert.deepEqual([...known].sort(), [...TESTED].sort());
});
