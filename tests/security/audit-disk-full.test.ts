// The audit log's disk fills up under a running appliance (fail_mode = "halt"): calls answer
// Unavailable and nothing runs unrecorded, /ready turns 503 — and once space comes back, /ready
// returns to 200 by itself, with no call needed to wake it, and the outage is one audited
// halted/resumed record pair in an intact chain. A real full filesystem: a small tmpfs mounted on
// the audit folder, which needs root.
import assert from "node:assert/strict";
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { RpcClient } from "../helpers/rpc-client.js";
import { CLI, httpGet, run, runCli, spawnLogged, tempDir, type Spawned } from "../helpers/repo.js";
import {
  defaultManifest,
  manifestText,
  portOf,
  waitFor,
  withFreePorts,
  type ManifestObject,
} from "../contract/harness.js";

let skip: string | undefined;
let tmp: ReturnType<typeof tempDir> | undefined;
let home = "";
let auditDir = "";
let mounted = false;
let proc: Spawned | undefined;
let m: ManifestObject;
let token = "";
let manifestFile = "";

const cli = (args: readonly string[]) =>
  runCli([...args, "--home", home], { env: { KRUXOS_HOME: "", KRUXOS_MANIFEST: manifestFile } });

before(async () => {
  if (process.getuid?.() !== 0) {
    skip = "needs root to mount a small tmpfs as a full disk (CI runs as root)";
    return;
  }
  tmp = tempDir("kruxos-diskfull-");
  home = path.join(tmp.dir, "home");
  auditDir = path.join(home, "data", "audit");
  mkdirSync(auditDir, { recursive: true });
  const mount = await run("mount", ["-t", "tmpfs", "-o", "size=2m,mode=0750", "tmpfs", auditDir]);
  if (mount.code !== 0) {
    skip = `cannot mount a tmpfs here (${mount.stderr.trim()})`;
    return;
  }
  mounted = true;
  m = await withFreePorts(defaultManifest());
  manifestFile = path.join(tmp.dir, "kruxos.toml");
  writeFileSync(manifestFile, manifestText({ ...m, audit: { ...m.audit, fail_mode: "halt" } }));
  proc = spawnLogged(process.execPath, [CLI, "up", "--home", home, "--manifest", manifestFile], {
    env: { KRUXOS_HOME: "", KRUXOS_MANIFEST: "" },
  });
  await waitFor(async () => {
    const r = await httpGet(`http://127.0.0.1:${portOf(m, "gateway")}/ready`);
    return r.status === 200 ? r : undefined;
  }, 60_000);
  const made = await cli(["agent", "create", "filler", "--json"]);
  assert.equal(made.code, 0, made.stderr);
  token = (JSON.parse(made.stdout) as { token: string }).token;
});

after(async () => {
  if (proc && proc.child.exitCode === null) {
    proc.child.kill("SIGKILL");
    await proc.exited;
  }
  if (mounted) await run("umount", ["-l", auditDir]);
  tmp?.cleanup();
});

const ready = async (): Promise<number> =>
  (await httpGet(`http://127.0.0.1:${portOf(m, "gateway")}/ready`)).status;

/** Fill the filesystem under `dir` to the last byte; returns the filler's path. */
function fill(dir: string): string {
  const filler = path.join(dir, "filler");
  const fd = openSync(filler, "w");
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
  }
  try {
    for (;;) writeSync(fd, chunk.subarray(0, 512));
  } catch {
    // full to the last block
  }
  closeSync(fd);
  return filler;
}

test("a full audit disk halts calls, and /ready recovers by itself once space returns", async (t) => {
  if (skip) {
    t.skip(skip);
    return;
  }
  const c = await RpcClient.connect(portOf(m, "gateway"), token);
  try {
    assert.equal((await c.invoke("agent.whoami")).result?.success, true);
    const filler = fill(auditDir);
    // The last page of the log may still take a record or two; then the writer halts.
    let refused: Awaited<ReturnType<RpcClient["invoke"]>> | undefined;
    for (let i = 0; i < 200 && !refused; i++) {
      const r = await c.invoke("agent.whoami");
      if (r.error) refused = r;
    }
    assert.ok(refused, "calls kept succeeding on a full disk");
    assert.equal(refused.error?.code, -32007);
    assert.equal(refused.error?.data.type, "Unavailable");
    assert.equal(refused.error?.data.component, "audit");
    await waitFor(async () => ((await ready()) === 503 ? true : undefined), 10_000, 100);
    // While halted every call is refused: nothing runs without its record.
    assert.equal((await c.invoke("agent.whoami")).error?.code, -32007);

    rmSync(filler);
    const freed = Date.now();
    // No call is made from here on: the log must find out by itself.
    await waitFor(async () => ((await ready()) === 200 ? true : undefined), 30_000, 50);
    const recoveredMs = Date.now() - freed;
    const after = await c.invoke("agent.whoami");
    assert.equal(after.result?.success, true, JSON.stringify(after));
    t.diagnostic(`/ready back to 200 ${recoveredMs} ms after space returned, with no call made`);
  } finally {
    c.close();
  }
  proc?.child.kill("SIGTERM");
  assert.equal((await proc?.exited)?.code, 0);
  const verify = await cli(["audit", "verify"]);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  const q = await cli(["audit", "query", "--json", "--limit", "100000"]);
  const kinds = (JSON.parse(q.stdout) as { kind: string; seq: number }[])
    .sort((x, y) => x.seq - y.seq)
    .map((r) => r.kind);
  const halted = kinds.indexOf("audit.halted");
  assert.ok(halted >= 0, "the outage is recorded");
  assert.equal(kinds[halted + 1], "audit.resumed", "halted and resumed are one adjacent pair");
  assert.equal(kinds.filter((k) => k === "audit.halted").length, 1);
  assert.equal(kinds.filter((k) => k === "audit.resumed").length, 1);
});
