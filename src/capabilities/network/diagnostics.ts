// network.dns_lookup and network.port_check: the two diagnostics. Both ask the egress client (so the
// proxy's policy and address checks apply); neither sends application data.
import { KruxError } from "../../core/index.js";
import type { EgressClient } from "../ports/index.js";
import type { CallContext, CapabilityHandler } from "../types.js";
import {
  egressDenied,
  invalidInput,
  isClientFailure,
  netError,
  withDocumentedRecovery,
} from "./errors.js";
import { identityOf } from "../ports/index.js";
import { ms, untilAborted } from "./request.js";

const RECORD_TYPES = ["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SRV", "CAA"] as const;
type RecordType = (typeof RECORD_TYPES)[number];
const MAX_RECORDS = 256;

const LABEL = /^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$/;

/** A DNS name: dot-separated labels (one trailing dot allowed), at most 253 characters. */
function isHostname(name: string): boolean {
  const n = name.endsWith(".") ? name.slice(0, -1) : name;
  return n.length >= 1 && n.length <= 253 && n.split(".").every((l) => LABEL.test(l));
}

/** An IPv4 dotted quad or an IPv6 literal (brackets allowed); the proxy parses it properly. */
function isIpLiteral(host: string): boolean {
  if (/^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/.test(host)) return true;
  const h = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  return h.includes(":") && /^[0-9A-Fa-f:.]+$/.test(h) && h.length <= 45;
}

interface DnsInputs {
  hostname: string;
  record_type?: string;
}

export function createDnsLookup(egress: EgressClient): CapabilityHandler {
  const capability = "network.dns_lookup";
  return async (raw: unknown, ctx: CallContext) => {
    const inputs = raw as DnsInputs;
    if (typeof inputs.hostname !== "string" || !isHostname(inputs.hostname))
      throw invalidInput("/hostname", "hostname must be a DNS name such as api.github.com.");
    const recordType = (inputs.record_type ?? "A") as RecordType;
    if (!RECORD_TYPES.includes(recordType))
      throw invalidInput("/record_type", `record_type must be one of ${RECORD_TYPES.join(", ")}.`);
    const timedOut = (): KruxError =>
      netError("Timeout", capability, `The resolver did not answer for ${inputs.hostname}.`);
    let answer;
    try {
      answer = await untilAborted(
        egress.lookup(inputs.hostname, recordType, identityOf(ctx)),
        ctx.signal,
        timedOut,
      );
    } catch (err) {
      if (err instanceof KruxError && err.code === "PolicyDenied")
        throw egressDenied(err, capability);
      if (isClientFailure(err, "Timeout")) throw timedOut();
      if (isClientFailure(err, "InvalidTarget")) throw invalidInput("/hostname", err.message);
      // NotFound: NXDOMAIN or no data; DnsError: the resolver failed otherwise (SERVFAIL, refused).
      if (isClientFailure(err, "NotFound", "DnsError"))
        throw netError(
          "NotFound",
          capability,
          `${inputs.hostname} has no ${recordType} records (or does not exist).`,
          { hostname: inputs.hostname, record_type: recordType },
        );
      throw withDocumentedRecovery(err, capability);
    }
    // The answer is the name's true answer, refused addresses included: the agent learns why a
    // later request is refused, and a public name's records are no secret. Refused ones may or may
    // not also be listed in `records`, so the two are merged without duplicates.
    const records = [...new Set([...answer.records, ...answer.refused])].slice(0, MAX_RECORDS);
    if (records.length === 0)
      throw netError("NotFound", capability, `${inputs.hostname} has no ${recordType} records.`, {
        hostname: inputs.hostname,
        record_type: recordType,
      });
    return { hostname: inputs.hostname, record_type: recordType, records };
  };
}

interface PortInputs {
  host: string;
  port: number;
  timeout_s?: number;
}

/** A short, fixed-vocabulary reason for a port that is not open (the output allows 200 chars). */
function closedDetail(err: KruxError): string {
  const said = [err.data.detail, err.data.code, err.message]
    .filter((x): x is string => typeof x === "string")
    .join(" ");
  if (/refused|ECONNREFUSED/i.test(said)) return "refused";
  if (/unreachable|EHOSTUNREACH|ENETUNREACH/i.test(said)) return "unreachable";
  if (/reset|ECONNRESET/i.test(said)) return "reset";
  if (/timed? ?out|ETIMEDOUT/i.test(said)) return "timed out";
  return `not open: ${said}`.slice(0, 200);
}

export function createPortCheck(egress: EgressClient): CapabilityHandler {
  const capability = "network.port_check";
  return async (raw: unknown, ctx: CallContext) => {
    const inputs = raw as PortInputs;
    const host = inputs.host;
    if (typeof host !== "string" || !(isHostname(host) || isIpLiteral(host)))
      throw invalidInput("/host", "host must be a host name or an IP address.");
    if (!Number.isInteger(inputs.port) || inputs.port < 1 || inputs.port > 65535)
      throw invalidInput("/port", "port must be an integer from 1 to 65535.");
    const timeoutMs = (inputs.timeout_s ?? 5) * 1000;
    const base = { host, port: inputs.port };
    const started = performance.now();
    const latency = (): number => ms(performance.now() - started);
    // connect() takes no signal; its own timeout applies, and this bounds a client that ignores it.
    const deadline = AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs + 1000)]);
    const gaveUp = new KruxError("CapabilityError", "timed out", { type: "Timeout" });
    try {
      const r = await untilAborted(
        egress.connect(host, inputs.port, timeoutMs, identityOf(ctx)),
        deadline,
        () => gaveUp,
      );
      return {
        ...base,
        open: true,
        // The proxy names the address it pinned; an older proxy may not.
        ...(r.address !== "" ? { address: r.address } : {}),
        latency_ms: ms(r.duration_ms),
        detail: "accepted",
      };
    } catch (err) {
      if (err instanceof KruxError && err.code === "PolicyDenied")
        throw egressDenied(err, capability);
      if (isClientFailure(err, "NotFound", "DnsError"))
        throw netError("NotFound", capability, `${host} does not resolve.`, { host });
      if (isClientFailure(err, "InvalidTarget")) throw invalidInput("/host", err.message);
      if (isClientFailure(err, "NetworkError", "TlsError", "Timeout")) {
        const address = err.data.address;
        return {
          ...base,
          open: false,
          ...(typeof address === "string" ? { address } : {}),
          latency_ms: latency(),
          detail: err.data.type === "Timeout" ? "timed out" : closedDetail(err),
        };
      }
      throw withDocumentedRecovery(err, capability);
    }
  };
}
