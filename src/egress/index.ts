// egress: the only way out to the network. It owns the proxy server and (later) host:port policy,
// DNS pinning and private-address refusal. It decides and relays connections; it never runs
// agent code and nothing else in src/ opens outbound connections.
export { createProxy, denialFor } from "./proxy.js";
export type { ProxyDeps, Denial, EgressProxy } from "./proxy.js";
