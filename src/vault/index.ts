// vault: secrets at rest. It owns the key-encryption key and (later) the encrypted store; agents
// never read from it, and nothing here logs key material.
export {
  ensureVaultKey,
  vaultHealth,
  vaultKeyFile,
  deriveSubkey,
  SUBKEY_AUDIT_CHECKPOINTS,
  SUBKEY_EGRESS_CREDENTIALS,
} from "./key.js";
export type { SubkeyPurpose } from "./key.js";
