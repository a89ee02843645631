// The native sandbox helper as a process: its version line, its probe report on this host (as root
// and as an unprivileged uid), its usage failures, how it was built, and how the TypeScript side
// reads it — including when the helper is missing or misbehaves.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  LAYER_NAMES,
  formatDiagnosis,
  helperPath,
  missingRequired,
  probeSandbox,
  type SandboxDiagnosis,
} from "../../src/sandbox/index.js";
import { SANDBOX_LAYERS } from "../../src/config/index.js";

/** dist/tests/unit → repository root. */
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const HELPER = helperPath(REPO);

const LAYERS = [
  "user",
  "mount",
  "pid",
  "net",
  "uts",
  "ipc",
  "rlimits",
  "cgroup",
  "no_new_privs",
  "landlock",
  "seccomp",
];

interface Proc {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  spawnError?: string;
}

function run(cmd: string, args: readonly string[], timeoutMs = 30_000): Promise<Proc> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: "utf8" }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string; signal?: string | null }) | null;
      if (e && typeof e.code === "string") {
        resolve({ code: null, signal: null, stdout, stderr, spawnError: e.code });
        return;
      }
      resolve({
        code: e ? (typeof e.code === "number" ? e.code : null) : 0,
        signal: e?.signal ?? null,
        stdout,
        stderr,
      });
    });
  });
}

interface ProbeReport {
  probe_version: number;
  uid: number;
  layers: Record<string, { ok: boolean; detail?: string; abi?: number }>;
}

async function probeAs(cmd: string, args: readonly string[]): Promise<ProbeReport> {
  const r = await run(cmd, args);
  assert.equal(r.code, 0, `probe failed: ${r.stderr}`);
  assert.equal(r.stderr, "");
  assert.ok(r.stdout.endsWith("\n"));
  assert.equal(r.stdout.trimEnd().split("\n").length, 1, "the probe prints exactly one line");
  return JSON.parse(r.stdout) as ProbeReport;
}

function okMap(report: ProbeReport): Record<string, boolean> {
  return Object.fromEntries(Object.entries(report.layers).map(([k, v]) => [k, v.ok]));
}

const isRoot = process.getuid?.() === 0;
let userNamespaces: { ok: boolean; reason: string };

before(async () => {
  if (!existsSync(HELPER)) {
    const make = await run("make", ["-s", "-C", path.join(REPO, "native")], 120_000);
    assert.equal(make.code, 0, `make -s -C native failed: ${make.stderr}`);
  }
  const u = await run("unshare", ["--user", "true"]);
  userNamespaces =
    u.code === 0
      ? { ok: true, reason: "" }
      : {
          ok: false,
          reason: `unshare --user true fails here (${u.spawnError ?? u.stderr.trim()})`,
        };
});

test("--version names the helper, its version and the spec versions it accepts", async () => {
  const r = await run(HELPER, ["--version"]);
  assert.equal(r.code, 0);
  assert.equal(r.stderr, "");
  assert.equal(r.stdout, '{"name":"kruxos-sandbox","version":1,"spec_versions":[1]}\n');
});

test("--probe prints one JSON line reporting every layer, with a reason for each missing one", async () => {
  const report = await probeAs(HELPER, ["--probe"]);
  assert.equal(report.probe_version, 1);
  assert.equal(report.uid, process.getuid?.());
  assert.deepEqual(Object.keys(report.layers), LAYERS);
  for (const [name, layer] of Object.entries(report.layers)) {
    assert.equal(typeof layer.ok, "boolean", name);
    if (layer.ok) assert.equal(layer.detail, undefined, `${name} works, so it has no detail`);
    else assert.match(layer.detail ?? "", /\S/, `${name} fails, so it says why`);
  }
  const cgroup = report.layers.cgroup;
  if (cgroup && !cgroup.ok) assert.match(cgroup.detail ?? "", /rlimits used instead$/);
});

test("on a host with user namespaces, namespaces, no_new_privs, Landlock and seccomp all work", async (t) => {
  if (!userNamespaces.ok) return t.skip(userNamespaces.reason);
  const report = await probeAs(HELPER, ["--probe"]);
  for (const name of [
    "user",
    "mount",
    "pid",
    "net",
    "uts",
    "ipc",
    "rlimits",
    "no_new_privs",
    "seccomp",
  ]) {
    assert.deepEqual(report.layers[name], { ok: true }, name);
  }
  const landlock = report.layers.landlock;
  assert.equal(landlock?.ok, true, landlock?.detail ?? "landlock failed");
  assert.ok(
    Number.isInteger(landlock?.abi) && (landlock?.abi ?? 0) >= 1,
    "Landlock reports its ABI",
  );
});

test("an unprivileged uid gets the same layers as root", async (t) => {
  if (!isRoot) return t.skip("needs root to switch to uid 1000 with setpriv");
  if ((await run("setpriv", ["--version"])).code !== 0) return t.skip("setpriv is not installed");
  const asUser = ["--reuid=1000", "--regid=1000", "--clear-groups"];
  const unpriv = await run("setpriv", [...asUser, "unshare", "--user", "true"]);
  if (unpriv.code !== 0) {
    return t.skip(`unprivileged user namespaces are off here: ${unpriv.stderr.trim()}`);
  }
  // A copy in a world-readable directory, so the test does not depend on the checkout's modes.
  const dir = mkdtempSync(path.join(os.tmpdir(), "krx-probe-"));
  try {
    chmodSync(dir, 0o755);
    const copy = path.join(dir, "kruxos-sandbox");
    copyFileSync(HELPER, copy);
    chmodSync(copy, 0o755);
    const root = await probeAs(HELPER, ["--probe"]);
    const user = await probeAs("setpriv", [...asUser, copy, "--probe"]);
    assert.equal(root.uid, 0);
    assert.equal(user.uid, 1000);
    assert.deepEqual(Object.keys(user.layers), LAYERS);
    assert.deepEqual(okMap(user), okMap(root));
    assert.equal(user.layers.landlock?.abi, root.layers.landlock?.abi);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an unknown or missing argument exits with a reserved code and one JSON line on stderr", async () => {
  for (const args of [["--bogus"], [], ["--probe", "--version"]]) {
    const r = await run(HELPER, args);
    assert.ok(
      r.code !== null && r.code >= 120 && r.code <= 127,
      `exit ${r.code} for ${args.join(" ")}`,
    );
    assert.equal(r.stdout, "");
    const lines = r.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1);
    const err = JSON.parse(lines[0] ?? "") as { error: unknown; detail: unknown };
    assert.equal(err.error, "usage");
    assert.equal(typeof err.detail, "string");
  }
});

test("the helper is built hardened: PIE, full RELRO (BIND_NOW), stack protector", async (t) => {
  if ((await run("readelf", ["--version"])).code !== 0) return t.skip("readelf is not installed");
  const header = await run("readelf", ["-h", HELPER]);
  assert.match(header.stdout, /Type:\s+DYN/);
  const dynamic = await run("readelf", ["-d", HELPER]);
  assert.match(dynamic.stdout, /\(FLAGS\)\s+BIND_NOW/);
  assert.match(dynamic.stdout, /\(FLAGS_1\)\s+Flags:.*\bNOW\b/);
  assert.match(dynamic.stdout, /\(FLAGS_1\)\s+Flags:.*\bPIE\b/);
  const segments = await run("readelf", ["-lW", HELPER]);
  assert.match(segments.stdout, /GNU_RELRO/);
  const symbols = await run("readelf", ["--dyn-syms", "-W", HELPER]);
  assert.match(symbols.stdout, /__stack_chk_fail/);
  assert.match(symbols.stdout, /__\w+_chk@/, "FORTIFY_SOURCE checked variants are linked");
});

test("probeSandbox on the real helper agrees with the helper's own report", async () => {
  const report = await probeAs(HELPER, ["--probe"]);
  const d = await probeSandbox(HELPER);
  assert.equal(d.helper_error, undefined);
  assert.equal(d.helper, HELPER);
  assert.equal(d.probe_version, 1);
  assert.equal(d.uid, report.uid);
  assert.deepEqual(d.layers, report.layers);
  const landlock = report.layers.landlock;
  assert.equal(d.landlock_abi, landlock?.ok ? landlock.abi : null);
  assert.equal(d.cgroup_mode, report.layers.cgroup?.ok ? "delegated-v2" : "rlimits");
  assert.ok(Object.isFrozen(d) && Object.isFrozen(d.layers));

  const table = formatDiagnosis(d);
  for (const name of LAYERS) assert.match(table, new RegExp(`^${name}\\s+(ok|missing)`, "m"));
  assert.match(table, /Landlock ABI:\s+(\d+|unavailable)/);
});

test("probeSandbox never throws: a missing helper means every layer is unavailable, with the reason", async () => {
  const missing = path.join(os.tmpdir(), "no-such-dir", "kruxos-sandbox");
  const d = await probeSandbox(missing);
  assert.equal(d.helper, missing);
  assert.match(d.helper_error ?? "", /ENOENT/);
  assert.deepEqual(Object.keys(d.layers), LAYERS);
  for (const name of LAYERS) assert.equal(d.layers[name as keyof typeof d.layers].ok, false, name);
  assert.equal(d.landlock_abi, null);
  assert.equal(d.cgroup_mode, "rlimits");
  assert.deepEqual(missingRequired(d, ["user", "seccomp"]), ["user", "seccomp"]);
  assert.match(formatDiagnosis(d), /Helper error:\s+.*ENOENT/);
});

test("probeSandbox refuses a helper that fails, lies about its format or hangs", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "krx-fake-helper-"));
  const fake = (name: string, body: string): string => {
    const file = path.join(dir, name);
    writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return file;
  };
  const okLayers = Object.fromEntries(LAYERS.map((n) => [n, { ok: true }]));
  try {
    const failing = await probeSandbox(
      fake("failing", `echo '{"error":"internal","detail":"fork: boom"}' >&2; exit 125`),
    );
    assert.match(failing.helper_error ?? "", /status 125: internal: fork: boom/);

    const future = JSON.stringify({ probe_version: 2, uid: 0, layers: okLayers });
    const newer = await probeSandbox(fake("newer", `echo '${future}'`));
    assert.match(newer.helper_error ?? "", /unsupported probe_version 2/);

    const partial = JSON.stringify({ probe_version: 1, uid: 0, layers: { user: { ok: true } } });
    const short = await probeSandbox(fake("partial", `echo '${partial}'`));
    assert.match(short.helper_error ?? "", /layer "mount" is missing/);

    const silent = await probeSandbox(fake("silent", `: no output`));
    assert.match(silent.helper_error ?? "", /expected one JSON line, got 0/);

    const hang = await probeSandbox(fake("hang", "exec sleep 30"), 300);
    assert.match(hang.helper_error ?? "", /timed out after 300 ms/);

    for (const d of [failing, newer, short, silent, hang]) {
      assert.ok(LAYERS.every((n) => !d.layers[n as keyof typeof d.layers].ok));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("missingRequired lists unavailable and unknown required layers once, in the order asked", () => {
  const layers = Object.fromEntries(
    LAYERS.map((n) => [
      n,
      n === "cgroup" ? { ok: false, detail: "no delegated cgroup" } : { ok: true },
    ]),
  ) as SandboxDiagnosis["layers"];
  const d: SandboxDiagnosis = {
    probe_version: 1,
    uid: 1000,
    layers,
    landlock_abi: 7,
    cgroup_mode: "rlimits",
    helper: "/opt/kruxos/native/build/kruxos-sandbox",
  };
  assert.deepEqual(missingRequired(d, []), []);
  assert.deepEqual(missingRequired(d, ["user", "landlock", "seccomp"]), []);
  assert.deepEqual(missingRequired(d, ["seccomp", "cgroup", "selinux", "cgroup"]), [
    "cgroup",
    "selinux",
  ]);
});

test("the probe's layer names are exactly the manifest's sandbox layers", () => {
  assert.deepEqual([...LAYER_NAMES], LAYERS);
  assert.deepEqual([...SANDBOX_LAYERS], LAYERS);
});
