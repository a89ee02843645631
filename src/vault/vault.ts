// The appliance's vault as a program holds it: the key source checked, the store opened under the
// key. Opening never throws — a missing or wrong key, or a damaged vault.db, is the vault's health
// (failing, with the reason), so /ready says 503 and no call gets a value, while the rest of the
// appliance still starts and reports.
import { KruxError, asKruxError, type ComponentHealth } from "../core/index.js";
import { loadKek, vaultHealth } from "./key.js";
import { VaultStore, isExpired, type SecretMeta } from "./store.js";

export interface VaultOptions {
  readonly file: string;
  readonly secretsDir: string;
  readonly keySource: "file" | "env" | "passphrase";
  readonly env?: NodeJS.ProcessEnv;
}

export class Vault {
  private constructor(
    private readonly opts: VaultOptions,
    /** The store, when the key opened it. */
    readonly store: VaultStore | undefined,
    private readonly problem: string | undefined,
  ) {}

  static open(opts: VaultOptions): Vault {
    const env = opts.env ?? process.env;
    const key = vaultHealth(opts.secretsDir, opts.keySource, env);
    if (key.status === "failing") return new Vault(opts, undefined, key.detail);
    let kek: Buffer | undefined;
    try {
      kek = loadKek(opts.secretsDir, opts.keySource, env);
      return new Vault(opts, VaultStore.open(opts.file, kek), undefined);
    } catch (err) {
      return new Vault(opts, undefined, asKruxError(err).message);
    } finally {
      kek?.fill(0);
    }
  }

  /** The vault component of /ready and /health: the key source, then the store's canary. */
  health(): ComponentHealth {
    if (!this.store)
      return {
        name: "vault",
        status: "failing",
        detail: `${this.problem ?? "not open"}; no secret can be used`,
      };
    const key = vaultHealth(
      this.opts.secretsDir,
      this.opts.keySource,
      this.opts.env ?? process.env,
    );
    if (key.status !== "ok") return key;
    const h = this.store.health();
    return { ...h, facts: { key_source: this.opts.keySource, ...h.facts } };
  }

  /**
   * What `agent` may see of the secrets it may use: named in the scope (or `*`), not revoked, not
   * expired. Metadata only. Unavailable while the store is not open.
   */
  visibleTo(agent: string, now: Date = new Date()): SecretMeta[] {
    if (!this.store)
      throw new KruxError("Unavailable", "the vault is unavailable", { component: "vault" });
    return this.store
      .list()
      .filter(
        (m) =>
          m.revoked_at === null &&
          (m.scope.agents.includes(agent) || m.scope.agents.includes("*")) &&
          !isExpired(m.scope, now.getTime()),
      );
  }

  close(): void {
    this.store?.close();
  }
}
