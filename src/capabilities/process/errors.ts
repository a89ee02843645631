// Structured failures of the sandboxed capabilities (process.* and git.*): one KruxError code,
// CapabilityError, whose data.type names what happened (the types the YAML definitions list) and
// whose data.recovery says what the agent can do. Inputs that pass the schema but are still unusable
// (an option-looking path, a NUL byte) are InvalidParams with data.errors, exactly as the gateway
// reports schema failures, so an agent sees one shape for "fix your inputs".
import { KruxError, capabilityError as build, type Recovery } from "../../core/index.js";
import type { RecoveryAction } from "../types.js";

type RecoveryStep = Recovery<RecoveryAction>;

export type SandboxedErrorType =
  // process.*
  | "Timeout"
  | "ResourceLimit"
  | "NotFound"
  | "PathOutOfScope"
  | "QuotaExceeded"
  | "SecretDenied"
  | "NotRunning"
  // git.*
  | "NotARepository"
  | "InvalidRef"
  | "NothingToCommit"
  | "Conflict"
  | "AlreadyExists"
  | "NotMerged"
  | "EgressDenied"
  | "AuthenticationFailed"
  /** git failed for a reason none of the documented types describes; data.stderr says what. */
  | "GitFailed";

const RECOVERY: Record<SandboxedErrorType, RecoveryStep[]> = {
  Timeout: [
    {
      action: "increase_timeout",
      description: "Raise timeout_s (at most 1800) if the work is expected to take that long.",
    },
    {
      action: "fix_inputs",
      description:
        "Set background true and poll with process.wait, or split the work into smaller steps.",
    },
  ],
  ResourceLimit: [
    {
      action: "reduce_scope",
      description:
        "Use less memory, output or fewer parallel jobs (for example make -j1), or process the data in smaller pieces.",
    },
  ],
  NotFound: [
    {
      action: "check_path",
      description:
        'Check the path with filesystem.stat; check a program with process.run {command: "command -v NAME"}.',
    },
  ],
  PathOutOfScope: [
    {
      action: "fix_inputs",
      description: "Use a path relative to the workspace or absolute under /workspace.",
    },
  ],
  QuotaExceeded: [
    {
      action: "check_state",
      description:
        "List your processes with process.list; wait for one with process.wait or stop one with process.kill.",
    },
  ],
  SecretDenied: [
    { action: "use_other_capability", description: "Check the available names with secrets.list." },
    {
      action: "ask_operator",
      description: "Ask an operator to add the secret or widen its scope.",
    },
  ],
  NotRunning: [
    {
      action: "use_other_capability",
      description: "Read its exit code and output with process.info; nothing needs stopping.",
    },
  ],
  NotARepository: [
    {
      action: "check_path",
      description:
        "Check the directory with filesystem.list, or clone the repository with git.clone.",
    },
  ],
  InvalidRef: [
    {
      action: "check_state",
      description: "List branches with git.branch; use a SHA from an earlier git.log.",
    },
  ],
  NothingToCommit: [
    {
      action: "check_state",
      description:
        "Look at git.status; pass paths to stage new files, or all true for tracked changes.",
    },
  ],
  Conflict: [
    {
      action: "check_state",
      description:
        "Look at git.status: commit or discard the changes in the way, or switch branches first.",
    },
  ],
  AlreadyExists: [{ action: "fix_inputs", description: "Pick another name or destination." }],
  NotMerged: [
    {
      action: "check_state",
      description:
        'Inspect the unmerged commits with git.log {ref: "HEAD..BRANCH"} before deciding.',
    },
    { action: "fix_inputs", description: "Set force true only if those commits may be lost." },
  ],
  EgressDenied: [
    {
      action: "request_approval",
      description: "Ask an operator to add an egress allow rule for host:443.",
    },
  ],
  AuthenticationFailed: [
    {
      action: "use_other_capability",
      description:
        "Check the secret's name and hosts with secrets.list and pass it in credentials.",
    },
    {
      action: "ask_operator",
      description: "Ask an operator for a token with read access to the repository.",
    },
  ],
  GitFailed: [
    {
      action: "check_state",
      description: "Read data.stderr; check the repository with git.status.",
    },
  ],
};

/** A CapabilityError for `capability`; `extra` lands in data (recovery overrides the default). */
export function capabilityError(
  type: SandboxedErrorType,
  capability: string,
  message: string,
  extra: { recovery?: RecoveryStep[]; [key: string]: unknown } = {},
): KruxError {
  return build(type, capability, message, RECOVERY[type], extra);
}

/** Inputs that passed the schema but cannot be used: InvalidParams naming the input field. */
export function invalidInput(pointer: string, message: string): KruxError {
  return new KruxError("InvalidParams", message, {
    errors: [{ path: `/inputs${pointer}`, message }],
  });
}
