// One error taxonomy for the whole appliance. Subsystems throw KruxError with a stable string code;
// only the gateway maps codes to JSON-RPC numbers, and only the CLI maps them to exit codes.

export interface ErrorSpec {
  /** What went wrong, in one sentence an operator or agent can act on. */
  readonly summary: string;
  /** Whose fault: the caller's input, or the appliance (server-internal / environment). */
  readonly fault: "client" | "server";
}

/** The catalogue. docs/errors.md lists exactly these codes (kept equal by a unit test). */
export const ERROR_CATALOGUE = {
  UsageError: { summary: "The command line was not understood.", fault: "client" },
  ManifestNotFound: {
    summary: "The manifest file does not exist or cannot be read.",
    fault: "client",
  },
  ManifestSyntax: { summary: "The manifest is not valid TOML.", fault: "client" },
  ManifestInvalid: {
    summary: "The manifest failed schema validation or a semantic rule with severity error.",
    fault: "client",
  },
  MissingArtifact: {
    summary:
      "A runtime artifact the appliance needs (node, native helper, git, supervisord, an asset) is missing.",
    fault: "server",
  },
  ImmutableRootWritable: {
    summary: "The application root is writable while strict mode requires it to be read-only.",
    fault: "server",
  },
  ConfigDrift: {
    summary: "A rendered config file on disk differs from what the manifest renders to.",
    fault: "server",
  },
  SupervisorUnavailable: {
    summary: "supervisord could not be reached on its unix socket.",
    fault: "server",
  },
  PortInUse: { summary: "A listener could not bind its address.", fault: "server" },
  ApplianceNotRunning: {
    summary: "No running appliance was found for this home.",
    fault: "client",
  },
  CapabilityError: {
    summary: "A capability failed for a capability-specific reason (data.type says which).",
    fault: "client",
  },
  AuditUnavailable: {
    summary:
      "The audit log cannot be written (or a record read back fails its own hash), so the call cannot be recorded.",
    fault: "server",
  },
  CapabilityDefinitionInvalid: {
    summary:
      "A capability definition file is not valid YAML, fails schema/capability.schema.json or a semantic rule, or a handler has no definition.",
    fault: "server",
  },
  ParseError: { summary: "A message was not valid JSON (JSON-RPC -32700).", fault: "client" },
  InvalidRequest: {
    summary:
      "A message was not a valid JSON-RPC request, or broke a size, batch or depth limit (-32600).",
    fault: "client",
  },
  MethodNotFound: { summary: "The JSON-RPC method does not exist (-32601).", fault: "client" },
  InvalidParams: {
    summary:
      "Parameters or capability inputs do not match their schema; data.errors lists the paths (-32602).",
    fault: "client",
  },
  Unauthorized: {
    summary:
      "No valid agent token was presented: HTTP 401 before any upgrade, body or call (-32000 in MCP bodies).",
    fault: "client",
  },
  PolicyDenied: {
    summary: "Policy blocks this call; data names the rule and file:line (-32001).",
    fault: "client",
  },
  ApprovalRequired: {
    summary: "The call waits for an operator's approval; data.approval_id identifies it (-32002).",
    fault: "client",
  },
  ApprovalRejected: { summary: "An operator rejected the approval (-32003).", fault: "client" },
  ApprovalExpired: {
    summary: "Nobody decided the approval before it expired; expiry is a denial (-32003).",
    fault: "client",
  },
  RateLimited: {
    summary:
      "A rate or concurrency limit was exceeded; data.retry_after_s says when to retry (-32004).",
    fault: "client",
  },
  VersionConflict: {
    summary: "The expected version did not match the current one (-32006).",
    fault: "client",
  },
  Unavailable: {
    summary:
      "A component the call needs (audit, sandbox, vault) is unavailable; data.component says which (-32007).",
    fault: "server",
  },
  InternalError: { summary: "An unexpected internal failure.", fault: "server" },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export class KruxError extends Error {
  readonly code: ErrorCode;
  readonly data: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    data: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "KruxError";
    this.code = code;
    this.data = Object.freeze({ ...data });
  }

  toJSON(): { code: ErrorCode; message: string; data: Readonly<Record<string, unknown>> } {
    return { code: this.code, message: this.message, data: this.data };
  }
}

/**
 * One step an agent (or operator) can take after a failure: the items of `data.recovery`.
 * Capabilities narrow `action` to their fixed vocabulary (schema/capability.schema.json).
 */
export interface Recovery<Action extends string = string> {
  readonly action: Action;
  readonly description: string;
}

/** The facts of a CapabilityError; `recovery`, when given, replaces the type's usual steps. */
export interface CapabilityErrorData {
  readonly recovery?: readonly Recovery[] | undefined;
  readonly [key: string]: unknown;
}

/**
 * A CapabilityError: `data.type` says what happened, `data.recovery` what the agent can do about
 * it (`recovery`, unless `data` brings its own), and the rest of `data` the facts (they must not
 * repeat type or capability). Every capability failure is built here, so the wire shape is one.
 */
export function capabilityError(
  type: string,
  capability: string,
  message: string,
  recovery: readonly Recovery[],
  data: CapabilityErrorData = {},
  options?: ErrorOptions,
): KruxError {
  const { recovery: own, ...facts } = data;
  const steps = own ?? recovery;
  return new KruxError(
    "CapabilityError",
    message,
    { type, capability, ...facts, recovery: steps.map((r) => ({ ...r })) },
    options,
  );
}

/** Any thrown value as a KruxError; unknown failures are server-internal, never client faults. */
export function asKruxError(err: unknown): KruxError {
  if (err instanceof KruxError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new KruxError("InternalError", message, {}, { cause: err });
}
