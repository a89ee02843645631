// audit: the hash-chained audit log. It owns where records live and whether they can be written;
// it never decides outcomes and never drops a record silently.
export { auditDir, auditHealth, ensureAuditDir } from "./health.js";
