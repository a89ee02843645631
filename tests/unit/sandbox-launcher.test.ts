// The launcher in front of the native helper: it refuses (never weakens) when a required layer is
// missing, pins the environment, keeps cwd inside the workspace, resolves programs in the sandbox
// PATH, and turns the helper's reports into results and errors. The helper is the real one.
import assert from "node:assert/strict";
import { chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { KruxError, appRoot, createLogger } from "../../src/core/index.js";
import {
  createLauncher,
  helperPath,
  probeSandbox,
  type LauncherOptions,
  type SandboxDiagnosis,
} from "../../src/sandbox/index.js";

const HELPER = helperPath(appRoot());
const WHO = { agent: "ada", session: "s1", callId: "call-7", capability: "process.run" };
let diagnosis: SandboxDiagnosis;
let ws: string;
let skip: string | undefined;

before(async () => {
  ws = mkdtempSync(path.join(tmpdir(), "kruxos-launcher-"));
  if (process.geteuid?.() === 0) chownSync(ws, 1100, 1100);
  mkdirSync(path.join(ws, "sub"));
  if (process.geteuid?.() === 0) chownSync(path.join(ws, "sub"), 1100, 1100);
  symlinkSync("/etc", path.join(ws, "etc-link"));
  if (!existsSync(HELPER)) skip = `${HELPER} is not built`;
  else {
    diagnosis = await probeSandbox(HELPER);
    if (!diagnosis.layers.user.ok)
      skip = `user namespaces unavailable: ${diagnosis.layers.user.detail ?? ""}`;
  }
});
after(() => rmSync(ws, { recursive: true, force: true }));

function launcher(over: Partial<LauncherOptions> = {}) {
  return createLauncher({
    helper: HELPER,
    diagnosis,
    require: ["user", "mount", "pid", "net", "no_new_privs", "seccomp"],
    workspaceRoot: ws,
    uid: 1100,
    rootHostUid: 1100,
    limits: {
      wall_ms: 10_000,
      cpu_s: 5,
      memory_bytes: 512 * 1024 * 1024,
      pids: 64,
      open_files: 128,
      file_size_bytes: 1 << 20,
      output_bytes: 4096,
    },
    tmpMb: 8,
    proxySocket: path.join(ws, "..", "no-proxy.sock"),
    mintCredential: () => "test-credential",
    log: createLogger({ program: "test", level: "silent" }),
    ...over,
  });
}

test("a required layer that is missing on this host refuses with Unavailable and runs nothing", async (t) => {
  if (skip) return t.skip(skip);
  const l = launcher({ require: ["user", "cgroup"], cgroup: null });
  assert.deepEqual(l.missing, ["cgroup"]);
  await assert.rejects(
    l.run({ argv: ["/bin/sh", "-c", "touch /workspace/ran"], cwd: "/workspace" }, WHO),
    (e: unknown) => e instanceof KruxError && e.code === "Unavailable" && /cgroup/.test(e.message),
  );
  assert.ok(!existsSync(path.join(ws, "ran")));
});

test("a layer the probe says is broken is refused when required, even though others work", async (t) => {
  if (skip) return t.skip(skip);
  const broken: SandboxDiagnosis = {
    ...diagnosis,
    layers: { ...diagnosis.layers, seccomp: { ok: false, detail: "test: no seccomp" } },
  };
  const l = launcher({ diagnosis: broken });
  assert.deepEqual(l.missing, ["seccomp"]);
  await assert.rejects(
    l.run({ argv: ["/bin/true"], cwd: "/workspace" }, WHO),
    (e: unknown) => e instanceof KruxError && e.code === "Unavailable",
  );
});

test("the environment is the pinned safelist plus the agent's own, and never the gateway's", async (t) => {
  if (skip) return t.skip(skip);
  process.env.KRUXOS_LAUNCHER_CANARY = "leak";
  const r = await launcher().run(
    { argv: ["env"], cwd: "/workspace/sub", env: { MY_VAR: "mine" } },
    WHO,
  );
  delete process.env.KRUXOS_LAUNCHER_CANARY;
  const env = r.stdout.toString().trim().split("\n").sort();
  assert.deepEqual(env, [
    "HOME=/tmp",
    "KRUXOS_AGENT=ada",
    "KRUXOS_CALL=call-7",
    "LANG=C.UTF-8",
    "LOGNAME=agent",
    "MY_VAR=mine",
    "PATH=/usr/local/bin:/usr/bin:/bin",
    "PWD=/workspace/sub",
    "SHELL=/bin/sh",
    "TERM=dumb",
    "TMPDIR=/tmp",
    "USER=agent",
  ]);
});

test("a network grant adds exactly the proxy route with the call's credential", async (t) => {
  if (skip) return t.skip(skip);
  const r = await launcher().run({ argv: ["env"], cwd: "/workspace", network: true }, WHO);
  const env = r.stdout.toString();
  const url = "http://kruxos:test-credential@127.0.0.1:3128";
  for (const name of ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"])
    assert.match(env, new RegExp(`^${name}=${url.replace(/[.]/g, "\\.")}$`, "m"));
  assert.match(env, /^NO_PROXY=$/m);
});

test("cwd outside the workspace, through .. or a symlink, is PathOutOfScope; a missing one NotFound", async (t) => {
  if (skip) return t.skip(skip);
  const l = launcher();
  const type = async (cwd: string): Promise<unknown> => {
    try {
      await l.run({ argv: ["/bin/true"], cwd }, WHO);
      return "ran";
    } catch (e) {
      return (e as KruxError).data?.type;
    }
  };
  assert.equal(await type("/workspace/../etc"), "PathOutOfScope");
  assert.equal(await type("../.."), "PathOutOfScope");
  assert.equal(await type("etc-link"), "PathOutOfScope");
  assert.equal(await type("/workspace/nope"), "NotFound");
  assert.equal(await type("sub"), "ran");
});

test("a program that is not in the sandbox PATH is NotFound before anything runs", async (t) => {
  if (skip) return t.skip(skip);
  await assert.rejects(
    launcher().run({ argv: ["no-such-program-krx"], cwd: "/workspace" }, WHO),
    (e: unknown) => e instanceof KruxError && e.data?.type === "NotFound",
  );
});

test("output beyond the limit keeps its last bytes, is flagged, and the run still reports its exit", async (t) => {
  if (skip) return t.skip(skip);
  const r = await launcher().run(
    { argv: ["/bin/sh", "-c", "seq 1 100000; exit 3"], cwd: "/workspace" },
    WHO,
  );
  assert.equal(r.exit_code, 3);
  assert.equal(r.stdout.length, 4096);
  assert.ok(r.stdout.toString().endsWith("99999\n100000\n"), "the end of the output is kept");
  assert.equal(r.truncated, true);
  assert.equal(r.limit, null);
});

test("a background run reports its output so far and how much was written in all", async (t) => {
  if (skip) return t.skip(skip);
  const p = await launcher().start(
    { argv: ["/bin/sh", "-c", "seq 1 20000; sleep 0.3"], cwd: "/workspace" },
    WHO,
  );
  const r = await p.done;
  const out = p.output();
  assert.equal(r.exit_code, 0);
  assert.equal(out.stdout_bytes, 108894, "seq 1 20000 writes 108,894 bytes");
  assert.equal(out.stdout.length, 4096);
  assert.equal(out.truncated, true);
});

test("a request can lower a manifest limit but not raise it", async (t) => {
  if (skip) return t.skip(skip);
  const r = await launcher().run(
    {
      argv: ["/bin/sh", "-c", "ulimit -n; ulimit -f"],
      cwd: "/workspace",
      limits: { open_files: 64, file_size_bytes: 1 << 30 },
    },
    WHO,
  );
  const [files, fsize] = r.stdout.toString().trim().split("\n");
  assert.equal(files, "64");
  assert.equal(Number(fsize) * 512, 1 << 20, "file size stayed at the manifest's 1 MiB");
});

test("an agent's env cannot replace the proxy route or KRUXOS_ variables", async (t) => {
  if (skip) return t.skip(skip);
  for (const name of ["HTTPS_PROXY", "no_proxy", "KRUXOS_CALL"]) {
    await assert.rejects(
      launcher().run({ argv: ["/bin/true"], cwd: "/workspace", env: { [name]: "x" } }, WHO),
      (e: unknown) => e instanceof KruxError && e.code === "InvalidParams",
    );
  }
});

test("aborting a run kills the sandbox and still answers", async (t) => {
  if (skip) return t.skip(skip);
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 300).unref();
  const r = await launcher().run({ argv: ["sleep", "30"], cwd: "/workspace" }, WHO, ac.signal);
  assert.notEqual(r.exit_code, 0);
  assert.ok(r.duration_ms < 10_000);
});
