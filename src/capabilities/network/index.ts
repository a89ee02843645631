// capabilities/network: the four network.* handlers. Every byte goes through the injected
// EgressClient (the egress proxy and its policy); this folder never opens a socket. It owns input
// checks a schema cannot express (URL user info, reserved and CR/LF-carrying headers, secret
// placeholders), the translation of the client's failures into the documented error types, and
// downloads written into the workspace through filesystem's confinement. It does not decide egress
// policy (the proxy does), resolve secrets (a placeholder is refused), or load the YAML
// definitions.
import type { EgressClient } from "../ports/index.js";
import type { CapabilityHandler } from "../types.js";
import { createDownload } from "./download.js";
import { createDnsLookup, createPortCheck } from "./diagnostics.js";
import { createHttpRequest } from "./http-request.js";

export interface NetworkHandlerDeps {
  /** The appliance's only way out: the egress proxy client, acting as the calling agent. */
  readonly egress: EgressClient;
}

/** The handlers, keyed by capability name. */
export function createNetworkHandlers(deps: NetworkHandlerDeps): Record<string, CapabilityHandler> {
  return {
    "network.http_request": createHttpRequest(deps.egress),
    "network.download": createDownload(deps.egress),
    "network.dns_lookup": createDnsLookup(deps.egress),
    "network.port_check": createPortCheck(deps.egress),
  };
}
