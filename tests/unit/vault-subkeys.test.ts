// Subkeys are bound to their purpose: the purposes are fixed strings, since changing one would
// change every key derived for it (old checkpoint MACs, live proxy credentials).
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";
import {
  SUBKEY_AUDIT_CHECKPOINTS,
  SUBKEY_EGRESS_CREDENTIALS,
  deriveSubkey,
} from "../../src/vault/index.js";

const KEK = "11".repeat(32);
const env = { KRUXOS_VAULT_KEY: KEK };

test("each purpose derives HMAC-SHA256(vault key, its fixed name)", () => {
  for (const [purpose, name] of [
    [SUBKEY_AUDIT_CHECKPOINTS, "kruxos/audit-checkpoints/v1"],
    [SUBKEY_EGRESS_CREDENTIALS, "kruxos/egress-credentials/v1"],
  ] as const) {
    const want = createHmac("sha256", Buffer.from(KEK, "hex")).update(name, "utf8").digest();
    assert.deepEqual(deriveSubkey("/nonexistent", "env", purpose, env), want, name);
  }
});

test("two purposes never share a key", () => {
  assert.notDeepEqual(
    deriveSubkey("/nonexistent", "env", SUBKEY_AUDIT_CHECKPOINTS, env),
    deriveSubkey("/nonexistent", "env", SUBKEY_EGRESS_CREDENTIALS, env),
  );
});
