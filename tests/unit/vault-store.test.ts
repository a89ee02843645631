// The secret store, vault.db, as an attacker with the file (but not the key) and as a crash would
// meet it: values never in the file's bytes, wrong keys and moved or flipped ciphertexts refused,
// revocation deleting what could be decrypted, rekey all-or-nothing, the key's encryptions counted.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { KruxError } from "../../src/core/index.js";
import {
  KEK_WRAP_LIMIT,
  SUBKEY_AUDIT_CHECKPOINTS,
  Vault,
  VaultStore,
  deriveSubkey,
  ensureVaultKey,
  loadKek,
  pendingKeyFile,
  settlePendingRekey,
  type SecretScope,
} from "../../src/vault/index.js";
import { tempDir } from "../helpers/repo.js";

const SCOPE: SecretScope = {
  agents: ["builder"],
  capabilities: ["network.http_request"],
  hosts: ["api.example.com:443"],
};
const CANARY = "krx-canary-7f3a9c1e5b2d4f60";

function fresh(t: { after(fn: () => void): void }): { file: string; kek: Buffer } {
  const { dir, cleanup } = tempDir("kruxos-vault-");
  t.after(cleanup);
  return { file: path.join(dir, "vault.db"), kek: randomBytes(32) };
}

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof KruxError, String(err));
    return `${err.code}:${String(err.data.reason ?? (err.data.errors as { path: string }[])?.[0]?.path)}`;
  }
  assert.fail("did not throw");
}

/** Raw access to the file, as someone holding vault.db without the key. */
function raw(file: string, fn: (db: Database.Database) => void): void {
  const db = new Database(file);
  try {
    fn(db);
  } finally {
    db.close();
  }
}

function flip(blob: Buffer, at: number): Buffer {
  const b = Buffer.from(blob);
  b[at] = (b[at] ?? 0) ^ 0x01;
  return b;
}

test("a value goes in and comes out; the list and metadata never carry it, nor do the file's bytes", (t) => {
  const { file, kek } = fresh(t);
  const s = VaultStore.open(file, kek);
  const meta = s.add("gh_token", Buffer.from(CANARY), SCOPE);
  assert.equal(meta.version, 1);
  assert.deepEqual(meta.scope, { ...SCOPE, agents: ["builder"] });
  const r = s.reveal("gh_token");
  assert.equal(r.value.toString(), CANARY);
  assert.equal(r.version, 1);
  assert.notEqual(s.get("gh_token").last_used_at, null);
  assert.ok(!JSON.stringify(s.list()).includes(CANARY));
  s.close();
  for (const f of [file, `${file}-wal`].filter(existsSync)) {
    const bytes = readFileSync(f);
    for (const form of [
      CANARY,
      Buffer.from(CANARY).toString("base64"),
      Buffer.from(CANARY).toString("hex"),
    ])
      assert.equal(bytes.indexOf(form), -1, `${form} found in ${path.basename(f)}`);
  }
});

test("the same value twice gives different ciphertexts (fresh data key and nonce each time)", (t) => {
  const { file, kek } = fresh(t);
  const s = VaultStore.open(file, kek);
  s.add("a", Buffer.from(CANARY), SCOPE);
  s.add("b", Buffer.from(CANARY), SCOPE);
  s.close();
  raw(file, (db) => {
    const rows = db.prepare("SELECT dek, value FROM versions ORDER BY name").all() as {
      dek: Buffer;
      value: Buffer;
    }[];
    assert.equal(rows.length, 2);
    assert.ok(!rows[0]?.value.equals(rows[1]?.value ?? Buffer.alloc(0)));
    assert.ok(
      !rows[0]?.dek.subarray(0, 12).equals(rows[1]?.dek.subarray(0, 12) ?? Buffer.alloc(0)),
    );
  });
});

test("a wrong key opens nothing (Unavailable wrong_key), and neither does the right key on a flipped canary", (t) => {
  const { file, kek } = fresh(t);
  VaultStore.open(file, kek).add("x", Buffer.from(CANARY), SCOPE);
  assert.equal(
    reason(() => VaultStore.open(file, randomBytes(32))),
    "Unavailable:wrong_key",
  );
  raw(file, (db) => {
    const c = (db.prepare("SELECT value FROM meta WHERE key = 'canary'").get() as { value: Buffer })
      .value;
    db.prepare("UPDATE meta SET value = ? WHERE key = 'canary'").run(flip(c, 20));
  });
  assert.equal(
    reason(() => VaultStore.open(file, kek)),
    "Unavailable:wrong_key",
  );
});

test("a flipped byte in a value or its data key, or a ciphertext moved to another secret's row, is refused as corrupt", (t) => {
  const { file, kek } = fresh(t);
  const s = VaultStore.open(file, kek);
  s.add("one", Buffer.from(CANARY), SCOPE);
  s.add("two", Buffer.from("other value"), SCOPE);
  s.close();
  const rows = new Map<string, { dek: Buffer; value: Buffer }>();
  raw(file, (db) => {
    for (const r of db.prepare("SELECT name, dek, value FROM versions").all() as {
      name: string;
      dek: Buffer;
      value: Buffer;
    }[])
      rows.set(r.name, r);
  });
  const one = rows.get("one");
  const two = rows.get("two");
  assert.ok(one && two);
  const cases: [string, (db: Database.Database) => void][] = [
    [
      "value",
      (db) =>
        db.prepare("UPDATE versions SET value = ? WHERE name = 'one'").run(flip(one.value, 14)),
    ],
    [
      "tag",
      (db) =>
        db
          .prepare("UPDATE versions SET value = ? WHERE name = 'one'")
          .run(flip(one.value, one.value.length - 1)),
    ],
    [
      "dek",
      (db) => db.prepare("UPDATE versions SET dek = ? WHERE name = 'one'").run(flip(one.dek, 13)),
    ],
    // The other secret's data key and value, whole and valid, under this name: the AAD says no.
    [
      "moved",
      (db) =>
        db
          .prepare("UPDATE versions SET dek = ?, value = ? WHERE name = 'one'")
          .run(two.dek, two.value),
    ],
  ];
  for (const [what, tamper] of cases) {
    raw(file, (db) =>
      db
        .prepare("UPDATE versions SET dek = ?, value = ? WHERE name = 'one'")
        .run(one.dek, one.value),
    );
    raw(file, tamper);
    const st = VaultStore.open(file, kek);
    try {
      assert.equal(
        reason(() => st.reveal("one")),
        "Unavailable:corrupt",
        what,
      );
      assert.equal(
        st.reveal("two").value.toString(),
        "other value",
        `${what}: the other secret is intact`,
      );
    } finally {
      st.close();
    }
  }
});

test("rotate adds a version, revoke deletes every version's key and value, and the name can be added again", (t) => {
  const { file, kek } = fresh(t);
  const s = VaultStore.open(file, kek);
  s.add("api", Buffer.from("v1-value"), SCOPE);
  const m = s.rotate("api", Buffer.from("v2-value"));
  assert.equal(m.version, 2);
  assert.notEqual(m.rotated_at, null);
  assert.equal(s.reveal("api").value.toString(), "v2-value");
  assert.equal(s.reveal("api", 1).value.toString(), "v1-value");
  const revoked = s.revoke("api");
  assert.notEqual(revoked.revoked_at, null);
  assert.equal(
    reason(() => s.reveal("api")),
    "InvalidParams:/name",
  );
  assert.equal(
    reason(() => s.rotate("api", Buffer.from("x"))),
    "InvalidParams:/name",
  );
  assert.equal(s.list().length, 1, "a revoked name stays listed");
  raw(file, (db) => {
    assert.equal((db.prepare("SELECT count(*) AS n FROM versions").get() as { n: number }).n, 0);
  });
  const again = s.add("api", Buffer.from("v3-value"), SCOPE);
  assert.equal(again.version, 3);
  assert.equal(again.revoked_at, null);
  assert.equal(s.reveal("api").value.toString(), "v3-value");
  s.close();
});

test("bad input is a structured error and writes nothing", (t) => {
  const { file, kek } = fresh(t);
  const s = VaultStore.open(file, kek);
  for (const name of ["", "1abc", "a b", "x".repeat(65), "${secret:x}", "a/b"])
    assert.equal(
      reason(() => s.add(name, Buffer.from("v"), SCOPE)),
      "InvalidParams:/name",
      name,
    );
  assert.equal(
    reason(() => s.add("ok", Buffer.alloc(0), SCOPE)),
    "InvalidParams:/value",
  );
  assert.equal(
    reason(() =>
      s.add("ok", Buffer.from("v"), {
        ...SCOPE,
        hosts: "api.example.com",
      } as unknown as SecretScope),
    ),
    "InvalidParams:/scope/hosts",
  );
  assert.equal(
    reason(() => s.add("ok", Buffer.from("v"), { ...SCOPE, expires_at: "soon" })),
    "InvalidParams:/scope/expires_at",
  );
  s.add("dup", Buffer.from("v"), SCOPE);
  assert.equal(
    reason(() => s.add("dup", Buffer.from("w"), SCOPE)),
    "InvalidParams:/name",
  );
  assert.equal(s.reveal("dup").value.toString(), "v", "a refused add changes nothing");
  assert.deepEqual(
    s.list().map((x) => x.name),
    ["dup"],
  );
  assert.equal(
    s.kekWraps(),
    3,
    "the canary, the subkey root and one data key: refused adds encrypted nothing",
  );
  s.close();
});

test("an expired secret gives no value", (t) => {
  const { file, kek } = fresh(t);
  let now = new Date("2026-12-01T00:00:00Z");
  const s = VaultStore.open(file, kek, { now: () => now });
  s.add("short", Buffer.from("v"), { ...SCOPE, expires_at: "2026-12-02T00:00:00Z" });
  assert.equal(s.reveal("short").value.toString(), "v");
  now = new Date("2026-12-02T00:00:00Z");
  assert.equal(
    reason(() => s.reveal("short")),
    "InvalidParams:/name",
  );
  s.close();
});

test("rekey moves every data key to the new key; the old key then opens nothing", (t) => {
  const { file, kek } = fresh(t);
  const s = VaultStore.open(file, kek);
  for (let i = 0; i < 5; i++) s.add(`s${i}`, Buffer.from(`value-${i}`), SCOPE);
  s.rotate("s0", Buffer.from("value-0b"));
  const next = randomBytes(32);
  assert.deepEqual(s.rekey(next), { rewrapped: 6 });
  assert.equal(s.reveal("s3").value.toString(), "value-3");
  s.close();
  assert.equal(
    reason(() => VaultStore.open(file, kek)),
    "Unavailable:wrong_key",
  );
  const again = VaultStore.open(file, next);
  assert.equal(again.reveal("s0", 1).value.toString(), "value-0");
  assert.equal(again.reveal("s0").value.toString(), "value-0b");
  // Six data keys, the canary and the subkey root.
  assert.equal(again.kekWraps(), 8);
  again.close();
});

test("a rekey that fails halfway leaves the store wholly under the old key", (t) => {
  const { file, kek } = fresh(t);
  let s = VaultStore.open(file, kek, {
    onRekeyProgress: (n) => {
      if (n === 2) throw new Error("power cut");
    },
  });
  for (let i = 0; i < 4; i++) s.add(`s${i}`, Buffer.from(`value-${i}`), SCOPE);
  const next = randomBytes(32);
  assert.throws(() => s.rekey(next), /power cut/);
  for (let i = 0; i < 4; i++) assert.equal(s.reveal(`s${i}`).value.toString(), `value-${i}`);
  s.close();
  assert.equal(
    reason(() => VaultStore.open(file, next)),
    "Unavailable:wrong_key",
  );
  s = VaultStore.open(file, kek);
  for (let i = 0; i < 4; i++) assert.equal(s.reveal(`s${i}`).value.toString(), `value-${i}`);
  s.close();
});

test("a process killed in the middle of a rekey leaves the old key in force, never a mix", (t) => {
  const { file, kek } = fresh(t);
  const s = VaultStore.open(file, kek);
  for (let i = 0; i < 6; i++) s.add(`s${i}`, Buffer.from(`value-${i}`), SCOPE);
  s.close();
  const next = randomBytes(32);
  const store = path.resolve(
    path.dirname(fileURLToPath(import.meta.url)),
    "../../src/vault/index.js",
  );
  // A real process, killed by SIGKILL after three data keys were rewritten inside the transaction.
  const r = spawnSync(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `const { VaultStore } = await import(${JSON.stringify(store)});
       const s = VaultStore.open(process.argv[1], Buffer.from(process.argv[2], "hex"), {
         onRekeyProgress: (n) => { if (n === 3) process.kill(process.pid, "SIGKILL"); },
       });
       s.rekey(Buffer.from(process.argv[3], "hex"));`,
      file,
      kek.toString("hex"),
      next.toString("hex"),
    ],
    { encoding: "utf8" },
  );
  assert.equal(r.signal, "SIGKILL", r.stderr);
  assert.equal(
    reason(() => VaultStore.open(file, next)),
    "Unavailable:wrong_key",
  );
  const after = VaultStore.open(file, kek);
  for (let i = 0; i < 6; i++) assert.equal(after.reveal(`s${i}`).value.toString(), `value-${i}`);
  after.close();
});

test("the key's encryptions are counted; at the limit new values are refused until a rekey", (t) => {
  const { file, kek } = fresh(t);
  const s = VaultStore.open(file, kek);
  s.add("a", Buffer.from("v"), SCOPE);
  // The canary, the subkey root and one data key.
  assert.equal(s.kekWraps(), 3);
  assert.equal(s.health().status, "ok");
  s.close();
  raw(file, (db) =>
    db
      .prepare("UPDATE meta SET value = ? WHERE key = 'kek_wraps'")
      .run(Buffer.from(String(KEK_WRAP_LIMIT))),
  );
  const full = VaultStore.open(file, kek);
  assert.equal(full.health().status, "degraded");
  assert.match(String(full.health().detail), /rekey/);
  assert.equal(
    reason(() => full.add("b", Buffer.from("v"), SCOPE)),
    "Unavailable:exhausted",
  );
  assert.equal(
    reason(() => full.rotate("a", Buffer.from("w"))),
    "Unavailable:exhausted",
  );
  assert.equal(full.reveal("a").value.toString(), "v", "what is stored stays readable");
  full.rekey(randomBytes(32));
  assert.equal(full.kekWraps(), 3);
  assert.equal(full.health().status, "ok");
  full.add("b", Buffer.from("v"), SCOPE);
  full.close();
});

test("subkeys survive a rekey: derived from a root the store rewraps, equal to the first key's", (t) => {
  const { dir, cleanup } = tempDir("kruxos-vault-rekey-");
  t.after(cleanup);
  const secrets = path.join(dir, "secrets");
  const file = path.join(dir, "vault.db");
  ensureVaultKey(secrets);
  const before = deriveSubkey(secrets, "file", SUBKEY_AUDIT_CHECKPOINTS, {}, file);
  // Before any store exists, and right after one is made, the subkey is HMAC(KEK, purpose).
  assert.deepEqual(deriveSubkey(secrets, "file", SUBKEY_AUDIT_CHECKPOINTS, {}), before);
  const vault = Vault.open({ file, secretsDir: secrets, keySource: "file", env: {} });
  vault.store?.add("gh", Buffer.from(CANARY), SCOPE);
  assert.deepEqual(deriveSubkey(secrets, "file", SUBKEY_AUDIT_CHECKPOINTS, {}, file), before);
  const oldKey = readFileSync(path.join(secrets, "vault.key"), "utf8");
  assert.equal(vault.rekey().rewrapped, 1);
  assert.notEqual(readFileSync(path.join(secrets, "vault.key"), "utf8"), oldKey);
  assert.equal(existsSync(pendingKeyFile(secrets)), false);
  assert.deepEqual(deriveSubkey(secrets, "file", SUBKEY_AUDIT_CHECKPOINTS, {}, file), before);
  assert.equal(vault.store?.reveal("gh").value.toString(), CANARY);
  // Another handle (another program) notices the rekey and reopens under the new key file.
  const other = Vault.open({ file, secretsDir: secrets, keySource: "file", env: {} });
  assert.equal(vault.rekey().rewrapped, 1);
  assert.equal(other.store?.reveal("gh").value.toString(), CANARY);
  vault.close();
  other.close();
});

test("a rekey interrupted between the new key file and the store's commit is settled by which key opens the store", (t) => {
  const { dir, cleanup } = tempDir("kruxos-vault-settle-");
  t.after(cleanup);
  const secrets = path.join(dir, "secrets");
  const file = path.join(dir, "vault.db");
  ensureVaultKey(secrets);
  const kek = loadKek(secrets, "file", {});
  const store = VaultStore.open(file, kek);
  store.add("gh", Buffer.from(CANARY), SCOPE);
  // Crash after writing vault.key.next, before the transaction: the old key stays.
  const next = randomBytes(32);
  writeFileSync(pendingKeyFile(secrets), next.toString("hex") + "\n", { mode: 0o600 });
  assert.equal(settlePendingRekey(secrets, file), "undone");
  assert.deepEqual(loadKek(secrets, "file", {}), kek);
  // Crash after the transaction, before the rename: the new key is put in place.
  writeFileSync(pendingKeyFile(secrets), next.toString("hex") + "\n", { mode: 0o600 });
  store.rekey(next);
  store.close();
  assert.equal(settlePendingRekey(secrets, file), "finished");
  assert.deepEqual(loadKek(secrets, "file", {}), next);
  assert.equal(existsSync(pendingKeyFile(secrets)), false);
  const reopened = VaultStore.open(file, next);
  assert.equal(reopened.reveal("gh").value.toString(), CANARY);
  reopened.close();
});

test("passphrase mode records its KDF parameters in the store; a wrong passphrase opens nothing", (t) => {
  const { dir, cleanup } = tempDir("kruxos-vault-kdf-");
  t.after(cleanup);
  const secrets = path.join(dir, "secrets");
  const file = path.join(dir, "vault.db");
  const env = { KRUXOS_VAULT_PASSPHRASE: "correct horse battery staple" };
  const v = Vault.open({ file, secretsDir: secrets, keySource: "passphrase", env });
  assert.deepEqual(
    { ...v.store?.kdf(), salt: "…" },
    { kdf: "scrypt", N: 131072, r: 8, p: 1, salt: "…" },
  );
  v.close();
  const wrong = Vault.open({
    file,
    secretsDir: secrets,
    keySource: "passphrase",
    env: { KRUXOS_VAULT_PASSPHRASE: "wrong horse battery staple" },
  });
  assert.equal(wrong.store, undefined);
  assert.match(String(wrong.health().detail), /does not open vault\.db/);
  wrong.close();
});
