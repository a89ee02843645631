// Structured failures of the filesystem capabilities: one KruxError code (CapabilityError) whose
// data.type says what happened and data.recovery says what the agent can do about it.
import { capabilityError, type KruxError, type Recovery } from "../../core/index.js";
import type { RecoveryAction } from "../types.js";

export type FsErrorType =
  | "PathOutOfScope"
  | "MandatoryDeny"
  | "NotFound"
  | "AlreadyExists"
  | "NotADirectory"
  | "IsADirectory"
  | "DirectoryNotEmpty"
  | "IsASymlink"
  | "NotAFile"
  | "TooLarge"
  | "InvalidEncoding"
  | "InvalidPattern"
  | "Timeout"
  | "InvalidTarget"
  | "PermissionDenied"
  | "NoSpace"
  | "NameTooLong";

type Step = Recovery<RecoveryAction>;

const DEFAULT_RECOVERY: Record<FsErrorType, Step[]> = {
  PathOutOfScope: [
    {
      action: "fix_inputs",
      description:
        "Use a path inside the workspace: relative, or absolute under /workspace. Symlinks and hard links that lead outside are refused.",
    },
  ],
  MandatoryDeny: [
    {
      action: "ask_operator",
      description:
        "This file can run code or hold credentials, so it is protected even inside the workspace. Ask an operator to name it in policy if the change is intended.",
    },
  ],
  NotFound: [
    {
      action: "check_path",
      description: "List the parent directory with filesystem.list to find the right name.",
    },
  ],
  AlreadyExists: [
    {
      action: "fix_inputs",
      description: "Choose another destination, or set overwrite: true to replace a file.",
    },
  ],
  NotADirectory: [
    {
      action: "check_path",
      description:
        "A component of the path is a file, not a directory; check it with filesystem.stat.",
    },
  ],
  IsADirectory: [
    {
      action: "use_other_capability",
      description: "The path is a directory: use filesystem.list to see its entries.",
    },
  ],
  DirectoryNotEmpty: [
    {
      action: "fix_inputs",
      description: "Set recursive: true to delete the directory and its contents.",
    },
  ],
  IsASymlink: [
    {
      action: "fix_inputs",
      description:
        "The path is a symlink and is never written through; address the file it points to.",
    },
  ],
  NotAFile: [
    {
      action: "use_other_capability",
      description: "The path is a device, FIFO or socket; only regular files can be read.",
    },
  ],
  TooLarge: [
    { action: "reduce_scope", description: "Work on a smaller file or split the content." },
  ],
  InvalidEncoding: [
    {
      action: "fix_inputs",
      description: 'Send base64 (A-Z a-z 0-9 + / with = padding) or use encoding: "utf8".',
    },
  ],
  InvalidPattern: [
    {
      action: "fix_inputs",
      description:
        "Use a literal pattern (regex: false), or a simpler regular expression without nested quantifiers or backreferences.",
    },
  ],
  Timeout: [
    { action: "reduce_scope", description: "Narrow the path or glob and call again." },
    { action: "retry", description: "Retry if the workspace was busy." },
  ],
  InvalidTarget: [
    { action: "fix_inputs", description: "Choose a destination outside the source directory." },
  ],
  PermissionDenied: [
    {
      action: "ask_operator",
      description:
        "The appliance's own file permissions forbid this; an operator must change them.",
    },
  ],
  NoSpace: [
    { action: "retry_later", description: "The workspace filesystem is full; free space first." },
  ],
  NameTooLong: [{ action: "fix_inputs", description: "Use a shorter file or directory name." }],
};

const ERRNO_TYPES: Record<string, FsErrorType> = {
  ENOENT: "NotFound",
  EEXIST: "AlreadyExists",
  ENOTDIR: "NotADirectory",
  EISDIR: "IsADirectory",
  ENOTEMPTY: "DirectoryNotEmpty",
  EACCES: "PermissionDenied",
  EPERM: "PermissionDenied",
  EROFS: "PermissionDenied",
  ENOSPC: "NoSpace",
  EDQUOT: "NoSpace",
  ENAMETOOLONG: "NameTooLong",
  EFBIG: "TooLarge",
};

/** A failed system call as a CapabilityError when its errno has a meaning for the agent. */
export function fromErrno(err: unknown, capability: string, path: string): unknown {
  const type = ERRNO_TYPES[errnoOf(err) ?? ""];
  if (type === undefined) return err;
  return fsError(type, capability, path, `${path}: ${errnoOf(err)}`, {});
}

/** A CapabilityError for `capability` about `path` (as the agent should see it). */
export function fsError(
  type: FsErrorType,
  capability: string,
  path: string,
  message: string,
  extra: { recovery?: Step[]; [key: string]: unknown } = {},
): KruxError {
  return capabilityError(type, capability, message, DEFAULT_RECOVERY[type], { path, ...extra });
}

/** The errno code of a failed system call, if it is one. */
export function errnoOf(err: unknown): string | undefined {
  if (err && typeof err === "object" && "code" in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === "string" ? code : undefined;
  }
  return undefined;
}
