// Audit writability. The chained log arrives with the gateway; fail_mode = "halt" needs to know
// now whether records could be written, so the check probes the real directory.
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, openSync, rmSync, writeSync } from "node:fs";
import path from "node:path";
import { ensureDir, type ComponentHealth } from "../core/index.js";

export function auditDir(dataDir: string): string {
  return path.join(dataDir, "audit");
}

export function ensureAuditDir(dataDir: string): void {
  ensureDir(auditDir(dataDir), 0o750);
}

export function auditHealth(dataDir: string, failMode: "halt" | "degrade"): ComponentHealth {
  const probe = path.join(auditDir(dataDir), `.probe-${randomBytes(4).toString("hex")}`);
  try {
    const fd = openSync(probe, "wx", 0o600);
    try {
      writeSync(fd, "probe");
      fsyncSync(fd);
    } finally {
      closeSync(fd);
      rmSync(probe, { force: true });
    }
    return { name: "audit", status: "ok", facts: { writable: true, fail_mode: failMode } };
  } catch (err) {
    return {
      name: "audit",
      status: failMode === "halt" ? "failing" : "degraded",
      detail: `audit directory not writable: ${(err as Error).message}`,
      facts: { writable: false, fail_mode: failMode },
    };
  }
}
