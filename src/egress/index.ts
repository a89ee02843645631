// egress: the only way out to the network. It owns the proxy (HTTP CONNECT and http:// forwarding on
// TCP and a unix socket) and its health component, per-call proxy credentials, host:port admission
// against the policy engine's egress decisions, DNS resolved once per connection and pinned,
// refusal of loopback, private, link-local, metadata and other non-public address classes, the
// egress audit records and metrics, the client capability handlers use to go out through the proxy,
// and secret placement: placeholders replaced for in-scope destinations only (plain http:// as it is
// forwarded; https:// by TLS interception with a per-appliance CA and the leaves it signs), and the
// values redacted from what flows back.
// It does not decide policy (policy does), write the audit log (the wiring hands in an append
// function), hold or read keys at rest (the credential key and the CA key are handed in), or run
// agent code.
export { createProxy } from "./proxy.js";
export { proxyHealth } from "./health.js";
export type { EgressProxy, ProxyDeps } from "./proxy.js";
export type { EgressAuditEntry } from "./records.js";
export type { Denial, EgressPolicy, Resolve } from "./admission.js";
export { recordsWith, resolveWith, systemResolve, RECORD_TYPES } from "./resolvers.js";
export type { RecordType, ResolveRecords } from "./resolvers.js";
export {
  mintCredential,
  proxyAuthorization,
  tokenFromProxyAuthorization,
  verifyCredential,
  MAX_CREDENTIAL_TTL_MS,
} from "./credentials.js";
export { classify, isLocalhostName, parseHost, parseIp } from "./addresses.js";
export type {
  AddressClass,
  Classification,
  Embedding,
  IpAddress,
  ParsedHost,
} from "./addresses.js";
export { createEgressClient } from "./client.js";
export type { EgressClientOptions } from "./client.js";
export { createInterceptionCa, LeafIssuer } from "./interception-ca.js";
export { trustBundle, MAX_PLACED_BODY } from "./intercept.js";
export type { InterceptionOptions, ProxySecrets, VaultAuditEntry } from "./intercept.js";
export type { CaMaterial, LeafIssuerOptions, LeafMaterial } from "./interception-ca.js";
