// Operator identities. User tokens are `krx_user_` + 64 hex (32 random bytes), shown once, stored
// only as SHA-256 and compared in constant time. The first admin token is created at first boot
// and written to <data>/secrets/admin.token (0600) for the operator to pick up; it is never logged.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync } from "node:fs";
import path from "node:path";
import type { IncomingMessage } from "node:http";
import {
  createAuthGate,
  ensureDir,
  writeFileAtomic,
  type AuthRefusalReport,
  type GateOutcome,
} from "../core/index.js";
import type { Db } from "../state/index.js";

export type Role = "admin" | "operator" | "viewer";

const TOKEN_RE = /^krx_user_[0-9a-f]{64}$/;

export function migrateUsers(db: Db): void {
  db.exec(`CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('admin','operator','viewer')),
    token_sha256 BLOB NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
  )`);
}

function hashToken(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

export function adminTokenFile(secretsDir: string): string {
  return path.join(secretsDir, "admin.token");
}

/** First boot: create the admin user and its token file. Returns the file when created now. */
export function ensureFirstAdmin(db: Db, secretsDir: string, now = new Date()): string | undefined {
  migrateUsers(db);
  const existing = db.prepare("SELECT count(*) AS n FROM users").get() as { n: number };
  const file = adminTokenFile(secretsDir);
  if (existing.n > 0 && existsSync(file)) return undefined;
  if (existing.n > 0) return undefined; // the operator removed the file after reading it: fine.
  ensureDir(secretsDir, 0o700);
  const token = `krx_user_${randomBytes(32).toString("hex")}`;
  db.prepare(
    "INSERT INTO users (name, role, token_sha256, created_at) VALUES (?, 'admin', ?, ?)",
  ).run("admin", hashToken(token), now.toISOString());
  writeFileAtomic(file, token + "\n", 0o600);
  return file;
}

export interface AuthenticatedUser {
  readonly name: string;
  readonly role: Role;
}

/** Look a presented token up by hash; the final comparison is constant-time. */
export function authenticateUser(db: Db, token: string | undefined): AuthenticatedUser | undefined {
  if (!token || !TOKEN_RE.test(token)) return undefined;
  const h = hashToken(token);
  const row = db
    .prepare(
      "SELECT name, role, token_sha256 FROM users WHERE token_sha256 = ? AND revoked_at IS NULL",
    )
    .get(h) as { name: string; role: Role; token_sha256: Buffer } | undefined;
  if (!row || !timingSafeEqual(row.token_sha256, h)) return undefined;
  return { name: row.name, role: row.role };
}

export interface UserAuthenticatorOptions {
  readonly onFailure?: (f: AuthRefusalReport) => void;
  readonly maxFailures?: number;
  readonly windowMs?: number;
}

/**
 * Authentication on every supervision surface (user API, event stream): a user token through
 * core's auth gate, so failures are reported and limited per source the same way as on the
 * agent port, and a valid token always gets in. Agent tokens are refused.
 */
export function createUserAuthenticator(
  db: Db,
  opts: UserAuthenticatorOptions = {},
): (req: IncomingMessage) => GateOutcome<AuthenticatedUser> {
  return createAuthGate<AuthenticatedUser>({
    verify: (token) => {
      if (!token) return { ok: false, reason: "missing" };
      if (/^[0-9a-f]{64}$/.test(token)) return { ok: false, reason: "agent_token_refused" };
      const user = authenticateUser(db, token);
      return user ? { ok: true, who: user } : { ok: false, reason: "unknown" };
    },
    onFailure: opts.onFailure ?? (() => undefined),
    hint: "a valid user token (krx_user_…) is required",
    ...(opts.maxFailures !== undefined ? { maxFailures: opts.maxFailures } : {}),
    ...(opts.windowMs !== undefined ? { windowMs: opts.windowMs } : {}),
  });
}
