// Every file and folder the appliance uses, as an operator finds it on disk: pinned literally for
// the image layout and for a host-mode home.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { hostPaths, imagePaths, loadManifest } from "../../src/config/index.js";
import { REPO } from "../helpers/repo.js";

const loaded = loadManifest(path.join(REPO, "kruxos.toml"));
const NO_ENV = {};

test("the image keeps every file where the documentation says", () => {
  const p = imagePaths(loaded.manifest, "/etc/kruxos/kruxos.toml", NO_ENV);
  assert.deepEqual(
    {
      agentsDb: p.agentsDb,
      approvalsDb: p.approvalsDb,
      auditDir: p.auditDir,
      policyAgentsDir: p.policyAgentsDir,
      secretsDir: p.secretsDir,
      adminTokenFile: p.adminTokenFile,
      vaultKeyFile: p.vaultKeyFile,
      vaultSaltFile: p.vaultSaltFile,
      sentinel: p.sentinel,
      supervisorSocket: p.supervisorSocket,
      supervisordPid: p.supervisordPid,
      renderedSupervisordConf: p.renderedSupervisordConf,
      supervisordConf: p.supervisordConf,
      bakedManifest: p.bakedManifest,
      egressSocket: p.egressSocket,
      auditSocket: p.auditSocket,
      metricsSocketDir: p.metricsSocketDir,
      command: p.command,
      sandboxHelper: p.sandboxHelper,
      capabilitiesDir: p.capabilitiesDir,
      dashboardDir: p.dashboardDir,
    },
    {
      agentsDb: "/data/kruxos/agents.db",
      approvalsDb: "/data/kruxos/approval_queue.db",
      auditDir: "/data/kruxos/audit",
      policyAgentsDir: "/data/kruxos/policy/agents",
      secretsDir: "/data/kruxos/secrets",
      adminTokenFile: "/data/kruxos/secrets/admin.token",
      vaultKeyFile: "/data/kruxos/secrets/vault.key",
      vaultSaltFile: "/data/kruxos/secrets/vault.salt",
      sentinel: "/run/kruxos/bootstrap.done",
      supervisorSocket: "/run/kruxos/supervisor.sock",
      supervisordPid: "/run/kruxos/supervisord.pid",
      renderedSupervisordConf: "/run/kruxos/supervisord.conf",
      supervisordConf: "/etc/kruxos/supervisord.conf",
      bakedManifest: "/etc/kruxos/kruxos.toml",
      egressSocket: "/run/kruxos/egress.sock",
      auditSocket: "/run/kruxos/audit.sock",
      metricsSocketDir: "/run/kruxos/metrics",
      command: "/opt/kruxos/bin/kruxos",
      sandboxHelper: "/opt/kruxos/native/build/kruxos-sandbox",
      capabilitiesDir: "/opt/kruxos/config/capabilities",
      dashboardDir: "/opt/kruxos/config/dashboard",
    },
  );
});

test("host mode keeps every file under its home, and the data root can be moved", () => {
  const p = hostPaths(loaded.manifest, "/home/op/.kruxos", "/x/kruxos.toml", NO_ENV);
  assert.equal(p.agentsDb, "/home/op/.kruxos/data/agents.db");
  assert.equal(p.adminTokenFile, "/home/op/.kruxos/data/secrets/admin.token");
  assert.equal(p.policyAgentsDir, "/home/op/.kruxos/data/policy/agents");
  assert.equal(p.metricsSocketDir, "/home/op/.kruxos/run/metrics");
  const moved = hostPaths(loaded.manifest, "/home/op/.kruxos", "/x/kruxos.toml", {
    KRUXOS_DATA_DIR: "/srv/data",
  });
  assert.equal(moved.auditDir, "/srv/data/audit");
  assert.equal(moved.vaultKeyFile, "/srv/data/secrets/vault.key");
  assert.equal(moved.approvalsDb, "/srv/data/approval_queue.db");
});
