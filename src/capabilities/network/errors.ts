// Structured failures of the network capabilities. Every documented failure is a CapabilityError
// whose data.type and data.recovery are exactly what config/capabilities/network/<verb>.yaml tells
// the model (the unit test keeps the two equal); what the egress client throws is translated here,
// in one place, so the four handlers agree on what a proxy refusal or a network failure means.
import { KruxError, capabilityError, type Recovery } from "../../core/index.js";
import type { RecoveryAction } from "../types.js";

type RecoveryStep = Recovery<RecoveryAction>;

export type NetworkCapability =
  "network.http_request" | "network.download" | "network.dns_lookup" | "network.port_check";

export type NetErrorType =
  | "EgressDenied"
  | "ConnectionFailed"
  | "Timeout"
  | "SecretDenied"
  | "HttpError"
  | "AlreadyExists"
  | "PathOutOfScope"
  | "MandatoryDeny"
  | "ResourceLimit"
  | "ChecksumMismatch"
  | "NotFound";

type RecoveryTable = Partial<Record<NetErrorType, readonly RecoveryStep[]>>;

const ALLOW_RULE_HOST_PORT: RecoveryStep = {
  action: "request_approval",
  description: "Ask an operator to add an egress allow rule for host:port.",
};

/** Copied from the YAML definitions; tests/unit/network-capabilities.test.ts keeps them equal. */
const DOCUMENTED: Record<NetworkCapability, RecoveryTable> = {
  "network.http_request": {
    EgressDenied: [
      {
        action: "use_other_capability",
        description:
          "Use a host the policy allows; network.port_check tells you quickly whether a host:port is reachable.",
      },
      ALLOW_RULE_HOST_PORT,
    ],
    ConnectionFailed: [
      { action: "fix_inputs", description: "Check the host name and scheme (http vs https)." },
      { action: "retry_later", description: "The remote side may be down; try again in a minute." },
    ],
    Timeout: [
      { action: "increase_timeout", description: "Raise timeout_s (at most 300)." },
      {
        action: "use_other_capability",
        description: "For large files use network.download, which has a longer limit.",
      },
    ],
    SecretDenied: [
      {
        action: "use_other_capability",
        description: "Check the available names and their hosts with secrets.list.",
      },
      {
        action: "ask_operator",
        description: "Ask an operator to add the secret or widen its scope.",
      },
    ],
  },
  "network.download": {
    EgressDenied: [ALLOW_RULE_HOST_PORT],
    HttpError: [
      {
        action: "fix_inputs",
        description:
          "Check the URL; a 401 or 403 usually needs an Authorization header with a ${secret:NAME} placeholder.",
      },
    ],
    AlreadyExists: [
      { action: "fix_inputs", description: "Choose another path, or set overwrite true." },
    ],
    PathOutOfScope: [
      {
        action: "fix_inputs",
        description: "Use a path relative to the workspace or absolute under /workspace.",
      },
    ],
    MandatoryDeny: [
      {
        action: "fix_inputs",
        description: "Download to an ordinary path and review the file before anything uses it.",
      },
      {
        action: "ask_operator",
        description: "Ask an operator to name the file in policy if the change is intended.",
      },
    ],
    ResourceLimit: [
      {
        action: "fix_inputs",
        description: "Raise max_bytes (at most 1 GiB) if the size is expected.",
      },
      { action: "ask_operator", description: "If the workspace is full, report it." },
    ],
    ChecksumMismatch: [
      {
        action: "fix_inputs",
        description: "Check the expected digest and the URL (a mirror may serve another version).",
      },
    ],
    Timeout: [{ action: "increase_timeout", description: "Raise timeout_s (at most 1800)." }],
    SecretDenied: [
      {
        action: "use_other_capability",
        description: "Check the available names and their hosts with secrets.list.",
      },
    ],
  },
  "network.dns_lookup": {
    EgressDenied: [
      {
        action: "request_approval",
        description: "Ask an operator to add an egress allow rule for the host.",
      },
    ],
    NotFound: [
      {
        action: "fix_inputs",
        description: "Check the spelling, or try another record_type (AAAA, CNAME).",
      },
    ],
    Timeout: [{ action: "retry_later", description: "Try again in a few seconds." }],
  },
  "network.port_check": {
    EgressDenied: [ALLOW_RULE_HOST_PORT],
    NotFound: [
      {
        action: "fix_inputs",
        description: "Check the host name; network.dns_lookup shows what it resolves to.",
      },
    ],
  },
};

/**
 * Failures a definition does not (yet) document still need a recovery an agent can act on.
 * network.download's YAML has no ConnectionFailed, so it borrows http_request's wording.
 */
const FALLBACK: RecoveryTable = {
  ConnectionFailed: DOCUMENTED["network.http_request"].ConnectionFailed ?? [],
  Timeout: [{ action: "retry_later", description: "Try again in a few seconds." }],
};

/** The documented recovery of `type` for `capability`, if the definition lists that type. */
export function documentedRecovery(
  capability: NetworkCapability,
  type: string,
): readonly RecoveryStep[] | undefined {
  return DOCUMENTED[capability][type as NetErrorType];
}

/** The tables, for the test that keeps them equal to the YAML definitions. */
export const DOCUMENTED_RECOVERY = DOCUMENTED;

/** A CapabilityError of `type` for `capability`, with the recovery the definition documents. */
export function netError(
  type: NetErrorType,
  capability: NetworkCapability,
  message: string,
  extra: Record<string, unknown> = {},
): KruxError {
  const recovery = documentedRecovery(capability, type) ?? FALLBACK[type] ?? [];
  return capabilityError(type, capability, message, recovery, extra);
}

/** Re-issue a CapabilityError from a helper (filesystem confinement) with this capability's recovery. */
export function withDocumentedRecovery(err: unknown, capability: NetworkCapability): unknown {
  if (!(err instanceof KruxError) || err.code !== "CapabilityError") return err;
  const type = String(err.data.type);
  const recovery = documentedRecovery(capability, type);
  if (recovery === undefined) return err;
  const { type: _type, capability: _capability, recovery: _recovery, ...facts } = err.data;
  return capabilityError(type, capability, err.message, recovery, facts, { cause: err });
}

/** Inputs a handler refuses although they passed the schema (defence in depth, or cross-field). */
export function invalidInput(path: string, message: string): KruxError {
  return new KruxError("InvalidParams", message, { errors: [{ path, message }] });
}

/** Is `err` the egress client's CapabilityError of one of `types`? */
export function isClientFailure(err: unknown, ...types: string[]): err is KruxError {
  return (
    err instanceof KruxError &&
    err.code === "CapabilityError" &&
    types.includes(String(err.data.type))
  );
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === "AbortError" || err.name === "TimeoutError");
}

/** Keep a short, string-only detail from a client error (never its whole data). */
function detailOf(err: KruxError): string | undefined {
  const d = err.data.detail;
  return typeof d === "string" ? d.slice(0, 500) : undefined;
}

/**
 * Translate what EgressClient threw for an HTTP exchange (http_request, download):
 * PolicyDenied → EgressDenied {policy, rule, detail}; NetworkError / TlsError / DnsError / NotFound
 * (the name did not resolve) → ConnectionFailed; Timeout or an aborted signal → Timeout;
 * InvalidTarget (the proxy could not parse the target) → InvalidParams on /url. Anything else is
 * not ours to reinterpret and passes through (an Unavailable proxy stays Unavailable). With
 * `streaming`, a bare Error is the body stream breaking off (the client hands the response
 * stream over as it is), so it too is ConnectionFailed.
 */
export function fromEgressError(
  err: unknown,
  capability: NetworkCapability,
  signal: AbortSignal,
  timeoutMessage: string,
  streaming = false,
): unknown {
  if (err instanceof KruxError && err.code === "PolicyDenied") return egressDenied(err, capability);
  // A client that honours the signal may reject with a bare AbortError rather than its Timeout.
  const aborted = isAbort(err) || (signal.aborted && !(err instanceof KruxError));
  if (isClientFailure(err, "Timeout") || aborted)
    return netError("Timeout", capability, timeoutMessage);
  if (isClientFailure(err, "NetworkError", "TlsError", "DnsError", "NotFound")) {
    const detail = detailOf(err);
    return netError("ConnectionFailed", capability, err.message, {
      reason: err.data.type,
      ...(detail !== undefined ? { detail } : {}),
    });
  }
  if (isClientFailure(err, "InvalidTarget")) return invalidInput("/url", err.message);
  if (streaming && !(err instanceof KruxError) && err instanceof Error)
    return netError("ConnectionFailed", capability, `The transfer broke off: ${err.message}`, {
      reason: "NetworkError",
    });
  if (err instanceof KruxError && err.code === "CapabilityError")
    return withDocumentedRecovery(err, capability);
  return err;
}

/** The proxy refused: say which policy and rule, as the proxy said it. */
export function egressDenied(err: KruxError, capability: NetworkCapability): KruxError {
  const pick = (k: string): Record<string, unknown> => {
    const v = err.data[k];
    return typeof v === "string" || typeof v === "number" ? { [k]: v } : {};
  };
  return netError("EgressDenied", capability, err.message, {
    ...pick("policy"),
    ...pick("rule"),
    ...pick("detail"),
  });
}
