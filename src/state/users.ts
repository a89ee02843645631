// Operators and their tokens, in agents.db beside the agents. A user token is `krx_user_` + 64 hex,
// shown once, stored only as SHA-256 and compared in constant time. The first admin token is made
// at first boot and written to the secrets folder (0600) for the operator to pick up; it is never
// logged.
import {
  ensureDir,
  hashToken,
  mintToken,
  tokenHashMatches,
  writeFileAtomic,
} from "../core/index.js";
import { secretsLayout } from "../config/index.js";
import type { Db } from "../core/index.js";

export type Role = "admin" | "operator" | "viewer";

export const USER_TOKEN_PREFIX = "krx_user_";
const TOKEN_RE = /^krx_user_[0-9a-f]{64}$/;

export interface AuthenticatedUser {
  readonly name: string;
  readonly role: Role;
}

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

export function adminTokenFile(secretsDir: string): string {
  return secretsLayout(secretsDir).adminTokenFile;
}

/** First boot: create the admin user and its token file. Returns the file when created now. */
export function ensureFirstAdmin(db: Db, secretsDir: string, now = new Date()): string | undefined {
  migrateUsers(db);
  const existing = db.prepare("SELECT count(*) AS n FROM users").get() as { n: number };
  // Once there is a user, nothing is made again — also when the operator removed the token file
  // after reading it.
  if (existing.n > 0) return undefined;
  const file = adminTokenFile(secretsDir);
  ensureDir(secretsDir, 0o700);
  const token = mintToken(USER_TOKEN_PREFIX);
  db.prepare(
    "INSERT INTO users (name, role, token_sha256, created_at) VALUES (?, 'admin', ?, ?)",
  ).run("admin", hashToken(token), now.toISOString());
  writeFileAtomic(file, token + "\n", 0o600);
  return file;
}

/** The active user a presented token belongs to. Lookup by hash; the final comparison is constant-time. */
export function authenticateUser(db: Db, token: string | undefined): AuthenticatedUser | undefined {
  if (!token || !TOKEN_RE.test(token)) return undefined;
  const h = hashToken(token);
  const row = db
    .prepare(
      "SELECT name, role, token_sha256 FROM users WHERE token_sha256 = ? AND revoked_at IS NULL",
    )
    .get(h) as { name: string; role: Role; token_sha256: Buffer } | undefined;
  if (!row || !tokenHashMatches(row.token_sha256, h)) return undefined;
  return { name: row.name, role: row.role };
}
