// The vault's key-encryption key. Created once at first boot (key_source = "file") as 32 random
// bytes in <data>/secrets/vault.key, mode 0600, never logged. The encrypted store arrives with the
// vault capability; its key material starts here so it exists before anything needs it.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { ensureDir, writeFileAtomic, type ComponentHealth } from "../core/index.js";

export function vaultKeyFile(secretsDir: string): string {
  return path.join(secretsDir, "vault.key");
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
