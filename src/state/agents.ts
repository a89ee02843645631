// Agents and their tokens, in agents.db. A token is 32 random bytes as 64 lowercase hex, shown
// once at creation, stored only as SHA-256, compared in constant time. Revocation is immediate.
import { hashToken, mintToken, tokenHashMatches } from "../core/index.js";
import { isAgentName } from "../config/index.js";
import type { Db } from "../core/index.js";

const AGENT_TOKEN_RE = /^[0-9a-f]{64}$/;

/** Whether a presented token has an agent token's shape (user tokens carry a prefix). */
export function looksLikeAgentToken(token: string): boolean {
  return AGENT_TOKEN_RE.test(token);
}

export interface AgentRecord {
  readonly name: string;
  readonly created_at: string;
  readonly revoked_at: string | null;
  readonly last_seen_at: string | null;
}

export function migrateAgents(db: Db): void {
  db.exec(`CREATE TABLE IF NOT EXISTS agents (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_sha256 BLOB NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    last_seen_at TEXT
  )`);
}

export type CreateAgentResult =
  { ok: true; name: string; token: string } | { ok: false; reason: "invalid_name" | "exists" };

export function createAgent(db: Db, name: string, now = new Date()): CreateAgentResult {
  if (!isAgentName(name)) return { ok: false, reason: "invalid_name" };
  const token = mintToken();
  try {
    db.prepare("INSERT INTO agents (name, token_sha256, created_at) VALUES (?, ?, ?)").run(
      name,
      hashToken(token),
      now.toISOString(),
    );
  } catch (err) {
    if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_UNIQUE")
      return { ok: false, reason: "exists" };
    throw err;
  }
  return { ok: true, name, token };
}

export function listAgents(db: Db): AgentRecord[] {
  return db
    .prepare("SELECT name, created_at, revoked_at, last_seen_at FROM agents ORDER BY name")
    .all() as AgentRecord[];
}

export function getAgent(db: Db, name: string): AgentRecord | undefined {
  return db
    .prepare("SELECT name, created_at, revoked_at, last_seen_at FROM agents WHERE name = ?")
    .get(name) as AgentRecord | undefined;
}

/** Revoke; true when an active agent was revoked now. */
export function revokeAgent(db: Db, name: string, now = new Date()): boolean {
  return (
    db
      .prepare("UPDATE agents SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL")
      .run(now.toISOString(), name).changes === 1
  );
}

export type AgentAuth =
  | { ok: true; name: string }
  | { ok: false; reason: "missing" | "malformed" | "unknown" | "revoked" };

/** The agent a presented token belongs to. Lookup by hash; the final comparison is constant-time. */
export function authenticateAgent(db: Db, token: string | undefined, now = new Date()): AgentAuth {
  if (!token) return { ok: false, reason: "missing" };
  if (!looksLikeAgentToken(token)) return { ok: false, reason: "malformed" };
  const h = hashToken(token);
  const row = db
    .prepare("SELECT name, token_sha256, revoked_at FROM agents WHERE token_sha256 = ?")
    .get(h) as { name: string; token_sha256: Buffer; revoked_at: string | null } | undefined;
  if (!row || !tokenHashMatches(row.token_sha256, h)) return { ok: false, reason: "unknown" };
  if (row.revoked_at) return { ok: false, reason: "revoked" };
  db.prepare("UPDATE agents SET last_seen_at = ? WHERE name = ?").run(now.toISOString(), row.name);
  return { ok: true, name: row.name };
}
