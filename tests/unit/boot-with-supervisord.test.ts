// `kruxos boot --home` on the host: stage A, then the real supervisord running each program as its
// own process, the seal over supervisord's XML-RPC, and a clean stop on SIGTERM.
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { CLI, httpGet, run, spawnLogged, tempDir, waitUntil } from "../helpers/repo.js";
import { defaultManifest, manifestText, portOf, withFreePorts } from "../contract/harness.js";

test("kruxos boot runs the programs under supervisord, seals, and stops cleanly", async (t) => {
  if ((await run("sh", ["-c", "command -v supervisord"])).code !== 0)
    return t.skip("supervisord is not installed (CI installs it with apt-get install supervisor)");
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const m = await withFreePorts(defaultManifest());
  const file = path.join(tmp.dir, "kruxos.toml");
  writeFileSync(file, manifestText(m));
  const home = path.join(tmp.dir, "home");
  const p = spawnLogged(process.execPath, [CLI, "boot", "--home", home, "--manifest", file], {
    logFile: path.join(tmp.dir, "boot.log"),
  });
  t.after(() => {
    if (p.child.exitCode === null) p.child.kill("SIGKILL");
  });
  const sealed = await p.waitFor((l) => l.event === "BootstrapCompleted", 60_000);
  assert.equal(sealed.program, "bootstrap-seal");
  await waitUntil(
    async () =>
      p.lines.filter((l) => l.event === "ProgramListening").length >= 3 ? true : undefined,
    30_000,
  );
  assert.equal(
    new Set(p.lines.filter((l) => l.event === "ProgramListening").map((l) => l.pid)).size,
    3,
    "one process per program",
  );
  const ready = await waitUntil(async () => {
    const r = await httpGet(`http://127.0.0.1:${portOf(m, "gateway")}/ready`);
    return r.status === 200 ? r : undefined;
  }, 30_000);
  assert.equal((JSON.parse(ready.body) as { ready: boolean }).ready, true);
  assert.ok(existsSync(path.join(home, "run", "bootstrap.done")));
  const metrics = await httpGet(
    `http://127.0.0.1:${portOf(m, "observability", "metrics_port")}/metrics`,
  );
  for (const program of ["proxy", "gateway", "dashboard"])
    assert.match(metrics.body, new RegExp(`^kruxos_program_up\\{program="${program}"\\} 1$`, "m"));
  p.child.kill("SIGTERM");
  const exit = await p.exited;
  assert.equal(exit.code, 0, p.text().slice(-2000));
});
