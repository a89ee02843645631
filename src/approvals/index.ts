// approvals: the queue of calls waiting for an operator — digest-bound, deduplicated, expiring,
// durable across restarts, executed exactly once after acceptance. It records decisions; it never
// executes a call itself (the gateway claims and runs accepted calls).
export { ApprovalQueue, inputsDigest } from "./queue.js";
export type { Approval, ApprovalStatus, ApprovalQueueOptions, DecideResult } from "./queue.js";
