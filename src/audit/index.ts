// audit: the hash-chained audit log — record format, daily files and their torn-tail repair, keyed
// checkpoints, the derived query index, queries and tailing, verification, and the writer's fail
// modes (halt or degrade) with its health. It owns the files inside the audit folder (where that
// folder is, config says); it never decides outcomes and never drops a record silently.
/** Where the log lives is config's (RuntimePaths.auditDir); kept here for existing callers. */
export { auditDir } from "../config/index.js";
export {
  AUDIT_KINDS,
  AUDIT_OUTCOME_STATUSES,
  AUDIT_RECORD_VERSION,
  GENESIS_HASH,
  MAX_DETAIL_BYTES,
  canonicalize,
  chainHash,
  decodeRecord,
  encodeCanonical,
} from "./record.js";
export type {
  AuditDecision,
  AuditEntry,
  AuditKind,
  AuditOutcome,
  AuditOutcomeStatus,
  AuditRecord,
  AuditValue,
} from "./record.js";
export { AuditLog, repairTornTail } from "./log.js";
export type {
  AppendOptions,
  AppendResult,
  AuditFailMode,
  AuditHead,
  AuditLogOptions,
  TornTailRepair,
} from "./log.js";
export { dailyFileName } from "./frames.js";
export { CHECKPOINT_FILE, checkpointMac } from "./checkpoints.js";
export type { Checkpoint } from "./checkpoints.js";
export { INDEX_FILE } from "./index-db.js";
export { queryAudit, tailAudit } from "./query.js";
export type { AuditQuery, TailOptions } from "./query.js";
export { TAMPER_CLASSES, verifyAudit } from "./verify.js";
export type { TamperClass, VerifyResult } from "./verify.js";
