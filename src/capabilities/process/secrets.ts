// Secret placeholders (`${secret:NAME}`) in inputs marked x-kruxos-secret. The vault that resolves
// them at the call site is not wired yet, so every placeholder is refused here: none may reach a
// sandbox unresolved, where it would be a literal string that looks like a working credential
// reference (and ends up in logs, argv or a remote's URL).
import { capabilityError } from "./errors.js";

// Lenient on purpose (spaces, case): anything the vault might one day read as a placeholder counts.
const PLACEHOLDER = /\$\{\s*secret\s*:/i;

export function hasSecretPlaceholder(value: string): boolean {
  return PLACEHOLDER.test(value);
}

/** Throw SecretDenied naming `field` when `value` carries a placeholder. */
export function refuseSecretPlaceholder(capability: string, field: string, value: string): void {
  if (!hasSecretPlaceholder(value)) return;
  throw capabilityError(
    "SecretDenied",
    capability,
    `${field} carries a \${secret:…} placeholder, but secrets cannot be resolved yet: the vault ` +
      "is not available to capabilities in this version. Nothing was run.",
    { field, reason: "vault_unavailable" },
  );
}
