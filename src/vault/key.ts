// The vault's key-encryption key. Created once at first boot (key_source = "file") as 32 random
// bytes in the secrets folder, mode 0600, never logged; or taken from KRUXOS_VAULT_KEY, or derived
// from a passphrase. Other subsystems get purpose-bound subkeys of it, never the key.
import { createHmac, randomBytes, scryptSync } from "node:crypto";
import { existsSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { ensureDir, writeFileAtomic, type ComponentHealth } from "../core/index.js";
import { secretsLayout } from "../config/index.js";
import { VaultStore } from "./store.js";

export function vaultKeyFile(secretsDir: string): string {
  return secretsLayout(secretsDir).vaultKeyFile;
}

/** Create the key file if absent. Returns true when it was created now (first boot). */
export function ensureVaultKey(secretsDir: string): boolean {
  ensureDir(secretsDir, 0o700);
  const file = vaultKeyFile(secretsDir);
  if (existsSync(file)) return false;
  writeFileAtomic(file, randomBytes(32).toString("hex") + "\n", 0o600);
  return true;
}

export function vaultHealth(
  secretsDir: string,
  keySource: "file" | "env" | "passphrase",
  env: NodeJS.ProcessEnv = process.env,
): ComponentHealth {
  if (keySource === "env") {
    const ok = /^[0-9a-f]{64}$/.test(env.KRUXOS_VAULT_KEY ?? "");
    return ok
      ? { name: "vault", status: "ok", facts: { key_source: keySource } }
      : { name: "vault", status: "failing", detail: "KRUXOS_VAULT_KEY is not 64 hex characters" };
  }
  if (keySource === "passphrase")
    return env.KRUXOS_VAULT_PASSPHRASE
      ? { name: "vault", status: "ok", facts: { key_source: keySource } }
      : { name: "vault", status: "failing", detail: "KRUXOS_VAULT_PASSPHRASE is not set" };
  const file = vaultKeyFile(secretsDir);
  try {
    const st = statSync(file);
    if ((st.mode & 0o077) !== 0)
      return {
        name: "vault",
        status: "failing",
        detail: `${file} is readable by others (mode ${(st.mode & 0o777).toString(8)})`,
      };
    if (!/^[0-9a-f]{64}\n?$/.test(readFileSync(file, "utf8")))
      return {
        name: "vault",
        status: "failing",
        detail: `${file} does not hold a 256-bit hex key`,
      };
    return { name: "vault", status: "ok", facts: { key_source: keySource } };
  } catch (err) {
    return { name: "vault", status: "failing", detail: (err as Error).message };
  }
}

/**
 * What each subkey is for. The purpose is the HMAC message, so renaming one silently changes every
 * key derived for it (checkpoint MACs stop verifying, live proxy credentials stop working): bump the
 * version suffix on purpose, never by accident.
 */
export const SUBKEY_AUDIT_CHECKPOINTS = "kruxos/audit-checkpoints/v1";
export const SUBKEY_EGRESS_CREDENTIALS = "kruxos/egress-credentials/v1";
export type SubkeyPurpose = typeof SUBKEY_AUDIT_CHECKPOINTS | typeof SUBKEY_EGRESS_CREDENTIALS;

/**
 * A purpose-bound subkey of the key-encryption key (HMAC-SHA256(KEK, purpose)), so other
 * subsystems (audit checkpoints) get key material without ever holding the vault key itself.
 * Passphrase mode derives the KEK with scrypt at OWASP's minimum cost (N=2^17, r=8, p=1) over a
 * per-appliance random salt kept in the secrets folder.
 */
export function deriveSubkey(
  secretsDir: string,
  keySource: "file" | "env" | "passphrase",
  purpose: SubkeyPurpose,
  env: NodeJS.ProcessEnv = process.env,
  vaultDb?: string,
): Buffer {
  const kek = loadKek(secretsDir, keySource, env);
  // The store's subkey root survives rekeys; before a store exists the root is the KEK itself
  // (which is also what a new store's root starts as), so subkeys never change under a rekey.
  const root = (vaultDb !== undefined ? VaultStore.subkeyRoot(vaultDb, kek) : undefined) ?? kek;
  try {
    return createHmac("sha256", root).update(purpose, "utf8").digest();
  } finally {
    kek.fill(0);
    root.fill(0);
  }
}

/** The file holding a new key while a rekey is under way (file key source). */
export function pendingKeyFile(secretsDir: string): string {
  return `${vaultKeyFile(secretsDir)}.next`;
}

/**
 * Finish or undo an interrupted rekey (file key source): the key that opens vault.db's canary is
 * the key. Called before anything reads the key. Returns what it did.
 */
export function settlePendingRekey(
  secretsDir: string,
  vaultDb: string,
): "none" | "finished" | "undone" {
  const next = pendingKeyFile(secretsDir);
  if (!existsSync(next)) return "none";
  const nextKek = Buffer.from(readFileSync(next, "utf8").trim(), "hex");
  try {
    if (nextKek.length === 32 && VaultStore.opensWith(vaultDb, nextKek)) {
      renameSync(next, vaultKeyFile(secretsDir));
      return "finished";
    }
    rmSync(next, { force: true });
    return "undone";
  } finally {
    nextKek.fill(0);
  }
}

/** scrypt's cost in passphrase mode: OWASP's minimum (N=2^17, r=8, p=1; 128 MiB), 256-bit output. */
export const SCRYPT_PARAMS = { N: 2 ** 17, r: 8, p: 1 } as const;

/** The KEK a passphrase gives with this appliance's salt (created at first use). */
export function kekFromPassphrase(secretsDir: string, passphrase: string): Buffer {
  const saltFile = secretsLayout(secretsDir).vaultSaltFile;
  ensureDir(secretsDir, 0o700);
  if (!existsSync(saltFile))
    writeFileAtomic(saltFile, randomBytes(16).toString("hex") + "\n", 0o600);
  const salt = Buffer.from(readFileSync(saltFile, "utf8").trim(), "hex");
  return scryptSync(passphrase, salt, 32, { ...SCRYPT_PARAMS, maxmem: 256 * 1024 * 1024 });
}

/** The salt of passphrase mode, hex, when there is one. */
export function passphraseSalt(secretsDir: string): string | undefined {
  const saltFile = secretsLayout(secretsDir).vaultSaltFile;
  return existsSync(saltFile) ? readFileSync(saltFile, "utf8").trim() : undefined;
}

/**
 * The key-encryption key itself, for the secret store only (the caller zeroes it). Throws when
 * the key source gives no 256-bit key.
 */
export function loadKek(
  secretsDir: string,
  keySource: "file" | "env" | "passphrase",
  env: NodeJS.ProcessEnv = process.env,
): Buffer {
  let kek: Buffer;
  if (keySource === "env") kek = Buffer.from(env.KRUXOS_VAULT_KEY ?? "", "hex");
  else if (keySource === "passphrase")
    kek = kekFromPassphrase(secretsDir, env.KRUXOS_VAULT_PASSPHRASE ?? "");
  else kek = Buffer.from(readFileSync(vaultKeyFile(secretsDir), "utf8").trim(), "hex");
  if (kek.length !== 32) throw new Error("the vault key-encryption key is not 256 bits");
  return kek;
}
