// The secrets port: what capabilities may know of the vault. Metadata only — a value is never
// handed to a handler through this port (values are placed where the bytes leave, by the vault's
// resolver, not by agent-facing code).

/** What an agent may see of a secret it is allowed to use. */
export interface SecretInfo {
  readonly name: string;
  readonly description?: string;
  readonly version: number;
  readonly created_at: string;
  readonly rotated_at: string | null;
  /** Capabilities that may resolve it. */
  readonly capabilities: readonly string[];
  /** `host:port` patterns it may be sent to. */
  readonly hosts: readonly string[];
  readonly rotatable: boolean;
}

export interface SecretsPort {
  /**
   * The secrets `agent` may use (its scope names the agent; not revoked, not expired), by name.
   * Throws Unavailable (component vault) while the vault cannot be opened.
   */
  visibleTo(agent: string): readonly SecretInfo[];
}
