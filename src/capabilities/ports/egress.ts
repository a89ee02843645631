// The egress port: the appliance's only outbound network, always through the egress proxy as the
// calling agent. Implemented by src/egress (the proxy client) and handed in by whoever wires the
// network handlers.
import type { CallIdentity } from "./identity.js";

/** One HTTP exchange through the egress proxy. */
export interface EgressHttpRequest {
  readonly method: string;
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
  readonly timeout_ms: number;
  /** Response bodies larger than this are cut (`truncated`). */
  readonly max_body_bytes: number;
  /** Follow redirects (each hop is a new proxy decision). */
  readonly follow_redirects: boolean;
  readonly max_redirects: number;
}

export interface EgressHttpResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  readonly truncated: boolean;
  /** The URL of the final hop. */
  readonly url: string;
  readonly redirects: number;
  readonly duration_ms: number;
}

/** A streamed response body, for downloads written straight to disk. */
export interface EgressStream {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly url: string;
  readonly body: AsyncIterable<Buffer>;
  /** Abort the transfer (e.g. when a size limit is reached). */
  destroy(): void;
}

/**
 * The appliance's outbound network, always through the egress proxy as the calling agent. A proxy
 * refusal throws KruxError PolicyDenied carrying the proxy's {policy, rule, detail}; a network failure
 * throws CapabilityError {type: "NetworkError" | "Timeout" | "DnsError"}.
 */
export interface EgressClient {
  http(
    req: EgressHttpRequest,
    who: CallIdentity,
    signal?: AbortSignal,
  ): Promise<EgressHttpResponse>;
  stream(
    req: Omit<EgressHttpRequest, "max_body_bytes">,
    who: CallIdentity,
    signal?: AbortSignal,
  ): Promise<EgressStream>;
  /** Open and close a tunnel to host:port; the proxy's policy and address checks apply. */
  connect(
    host: string,
    port: number,
    timeout_ms: number,
    who: CallIdentity,
  ): Promise<{ address: string; duration_ms: number }>;
  /**
   * Resolve a name through the proxy's resolver. The name must be allowed by egress policy on some
   * port (a DNS query is itself an exfiltration channel). A/AAAA answers are the addresses the
   * proxy would accept or refuse; refused (private, loopback, …) ones are marked.
   */
  lookup(
    host: string,
    recordType: "A" | "AAAA" | "CNAME" | "MX" | "TXT" | "NS" | "SRV" | "CAA",
    who: CallIdentity,
  ): Promise<{ records: readonly string[]; refused: readonly string[] }>;
}
