// vault: the key-encryption key at rest — its creation at first boot, its health, and subkeys
// derived from it for named purposes (audit checkpoints, egress credentials), so other subsystems
// get key material without holding the key. It stores no secret values for agents, never returns
// the key itself, and nothing here logs key material.
export {
  ensureVaultKey,
  vaultHealth,
  vaultKeyFile,
  deriveSubkey,
  SUBKEY_AUDIT_CHECKPOINTS,
  SUBKEY_EGRESS_CREDENTIALS,
} from "./key.js";
export type { SubkeyPurpose } from "./key.js";
