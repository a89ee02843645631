// Each subsystem answers for its own health component: the sandbox from its probe, the egress
// proxy from its socket. (The policy engine's is in policy-engine.test.ts.)
import assert from "node:assert/strict";
import http from "node:http";
import path from "node:path";
import { test } from "node:test";
import { proxyHealth } from "../../src/egress/index.js";
import { LAYER_NAMES, sandboxHealth, type SandboxDiagnosis } from "../../src/sandbox/index.js";
import { tempDir } from "../helpers/repo.js";

function diagnosis(broken: readonly string[]): SandboxDiagnosis {
  return {
    probe_version: 1,
    uid: 1000,
    layers: Object.fromEntries(
      LAYER_NAMES.map((n) => [
        n,
        broken.includes(n) ? { ok: false, detail: "not here" } : { ok: true },
      ]),
    ) as SandboxDiagnosis["layers"],
    landlock_abi: broken.includes("landlock") ? null : 4,
    cgroup_mode: "rlimits",
    helper: "/opt/kruxos/native/build/kruxos-sandbox",
  };
}

test("the sandbox is ok when every required layer works, and lists the working layers", () => {
  assert.deepEqual(sandboxHealth(diagnosis(["cgroup"]), ["user", "seccomp"]), {
    name: "sandbox",
    status: "ok",
    facts: {
      layers: LAYER_NAMES.filter((n) => n !== "cgroup"),
      landlock_abi: 4,
      cgroup_mode: "rlimits",
    },
  });
});

test("the sandbox is degraded, naming what is missing, when a required layer does not work", () => {
  const h = sandboxHealth(diagnosis(["landlock", "seccomp"]), ["seccomp", "landlock", "user"]);
  assert.equal(h.status, "degraded");
  assert.equal(
    h.detail,
    "required layers unavailable: seccomp, landlock; sandboxed capabilities refuse",
  );
  assert.equal(h.facts?.landlock_abi, null);
});

test("the proxy is ok while it answers /livez on its socket, failing otherwise", async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const socket = path.join(dir, "egress.sock");
  let status = 200;
  const server = http.createServer((req, res) => {
    res.statusCode = req.url === "/livez" ? status : 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  try {
    assert.deepEqual(await proxyHealth(socket), { name: "proxy", status: "ok" });
    status = 503;
    assert.deepEqual(await proxyHealth(socket), {
      name: "proxy",
      status: "failing",
      detail: "HTTP 503",
    });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  const gone = await proxyHealth(socket);
  assert.equal(gone.status, "failing");
  assert.ok((gone.detail ?? "").length > 0, "says why");
});
