// vault: the key-encryption key at rest — its creation at first boot, its health, and subkeys
// derived from it for named purposes (audit checkpoints, egress credentials), so other subsystems
// get key material without holding the key — and the secret store (vault.db: values encrypted
// under per-version data keys wrapped by that key, scope and metadata, rekey). It never returns the
// key itself, returns values only through VaultStore.reveal and the resolver (which checks a use
// against the secret's scope: agent, capability, destination), and nothing here logs either. It
// also owns the placeholder syntax `${secret:NAME}`.
export {
  ensureVaultKey,
  vaultHealth,
  vaultKeyFile,
  deriveSubkey,
  loadKek,
  pendingKeyFile,
  settlePendingRekey,
  SUBKEY_AUDIT_CHECKPOINTS,
  SUBKEY_EGRESS_CREDENTIALS,
} from "./key.js";
export type { SubkeyPurpose } from "./key.js";
export {
  APPLIANCE_PREFIX,
  KEK_WRAP_LIMIT,
  KEK_WRAP_WARN,
  SECRET_NAME,
  VaultStore,
  keyFingerprint,
} from "./store.js";
export {
  malformedPlaceholder,
  mentionsPlaceholder,
  placeholderNames,
  substitutePlaceholders,
} from "./placeholders.js";
export { SecretResolver, secretDenied } from "./resolver.js";
export type { ResolvedSecret, SecretRefusal, SecretRefusalReason, SecretUse } from "./resolver.js";
export type { SecretMeta, SecretScope, VaultStoreOptions } from "./store.js";
export { Vault } from "./vault.js";
export type { VaultOptions } from "./vault.js";
