// approvals: the queue of calls waiting for an operator in approval_queue.db — digest-bound,
// deduplicated, bounded per agent, expiring, durable across restarts, claimed once for execution.
// It records decisions; it never executes a call itself (the gateway claims and runs accepted
// calls).
export { ApprovalQueue, inputsDigest } from "./queue.js";
export type { Approval, ApprovalStatus, ApprovalQueueOptions, DecideResult } from "./queue.js";
