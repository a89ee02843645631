// Bearer tokens at rest. A token is 32 random bytes as 64 lowercase hex (after an optional
// prefix), shown once when made, stored only as its SHA-256 and compared in constant time.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** A new token: `prefix` followed by 256 random bits as 64 lowercase hex. */
export function mintToken(prefix = ""): string {
  return prefix + randomBytes(32).toString("hex");
}

/** What is stored of a token: its SHA-256. */
export function hashToken(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

/** Whether two secrets (hashes, MACs) are equal, in time that does not depend on where they differ. */
export function constantTimeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Whether a stored hash is the presented token's hash, compared in constant time. The lookup by
 * hash that found `stored` is not constant-time; this final comparison is.
 */
export function tokenHashMatches(stored: Buffer | undefined, presented: Buffer): boolean {
  return stored !== undefined && constantTimeEqual(stored, presented);
}
