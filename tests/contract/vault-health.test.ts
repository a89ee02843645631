// The vault in /ready: the store is created at first boot and its canary opens under the key; a
// key that does not open vault.db, or a damaged vault.db, makes /ready 503 naming the vault, while
// the appliance still starts and says why.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { tempDir } from "../helpers/repo.js";
import {
  defaultManifest,
  portOf,
  startHost,
  waitFor,
  waitReady,
  withFreePorts,
  type ManifestObject,
} from "./harness.js";

type Health = {
  components: { name: string; status: string; detail?: string; facts?: Record<string, unknown> }[];
};

async function vaultOf(a: Awaited<ReturnType<typeof startHost>>, m: ManifestObject) {
  const r = await a.get(portOf(m, "gateway"), "/health");
  return (JSON.parse(r.body) as Health).components.find((c) => c.name === "vault");
}

/** Start on `home`, wait until the gateway answers /health, and return the vault component and /ready. */
async function boot(m: ManifestObject, home: string) {
  const a = await startHost(m, { home });
  const port = portOf(m, "gateway");
  const vault = await waitFor(async () => {
    const r = await a.get(port, "/health").catch(() => undefined);
    return r && r.status !== 0 ? await vaultOf(a, m) : undefined;
  }, 60_000);
  return { a, vault, port };
}

test("vault.db is created at first boot and its canary opens: the vault is ok in /health", async (t) => {
  const { dir, cleanup } = tempDir("kruxos-vault-home-");
  t.after(cleanup);
  const m = await withFreePorts(defaultManifest());
  const a = await startHost(m, { home: dir });
  t.after(a.cleanup);
  await waitReady(a, 60_000);
  const vault = await vaultOf(a, m);
  assert.equal(vault?.status, "ok", JSON.stringify(vault));
  assert.equal(vault?.facts?.secrets, 0);
  assert.match(String(vault?.facts?.kek_id), /^[0-9a-f]{16}$/);
  assert.ok(existsSync(path.join(dir, "data", "vault.db")));
});

test("a key that does not open vault.db, or a damaged vault.db, makes /ready 503 naming the vault", async (t) => {
  const { dir, cleanup } = tempDir("kruxos-vault-home-");
  t.after(cleanup);
  const m = await withFreePorts(defaultManifest());
  const first = await startHost(m, { home: dir });
  await waitReady(first, 60_000);
  assert.equal(await first.stop(), 0);
  await first.cleanup();

  // Another key in the key file: the store was made under the first one.
  writeFileSync(
    path.join(dir, "data", "secrets", "vault.key"),
    `${randomBytes(32).toString("hex")}\n`,
    {
      mode: 0o600,
    },
  );
  const wrongKey = await boot(m, dir);
  try {
    assert.equal(wrongKey.vault?.status, "failing");
    assert.match(String(wrongKey.vault?.detail), /does not open vault\.db/);
    const ready = await wrongKey.a.get(wrongKey.port, "/ready");
    assert.equal(ready.status, 503);
    assert.ok(
      (JSON.parse(ready.body) as { missing: string[] }).missing.includes("vault"),
      ready.body,
    );
    assert.ok((await wrongKey.a.logLines()).some((l) => l.event === "VaultUnavailable"));
  } finally {
    await wrongKey.a.stop();
    await wrongKey.a.cleanup();
  }

  // Not a database at all.
  writeFileSync(path.join(dir, "data", "vault.db"), randomBytes(8192));
  const damaged = await boot(m, dir);
  try {
    assert.equal(damaged.vault?.status, "failing");
    assert.match(String(damaged.vault?.detail), /vault\.db/);
    assert.equal((await damaged.a.get(damaged.port, "/ready")).status, 503);
  } finally {
    await damaged.a.stop();
    await damaged.a.cleanup();
  }
});
