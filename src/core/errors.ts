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

/** Any thrown value as a KruxError; unknown failures are server-internal, never client faults. */
export function asKruxError(err: unknown): KruxError {
  if (err instanceof KruxError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new KruxError("InternalError", message, {}, { cause: err });
}
