// Where the audit log lives. Its health is the log's own (AuditLog.health()): whether records are
// being written, not whether a probe file could be.
import path from "node:path";
import { ensureDir } from "../core/index.js";

export function auditDir(dataDir: string): string {
  return path.join(dataDir, "audit");
}

export function ensureAuditDir(dataDir: string): void {
  ensureDir(auditDir(dataDir), 0o750);
}
