// vault: secrets at rest. It owns the key-encryption key and (later) the encrypted store; agents
// never read from it, and nothing here logs key material.
export { ensureVaultKey, vaultHealth, vaultKeyFile, deriveSubkey } from "./key.js";
