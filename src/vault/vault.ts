// The appliance's vault as a program holds it: the key source checked, the store opened under the
// key. Opening never throws — a missing or wrong key, or a damaged vault.db, is the vault's health
// (failing, with the reason), so /ready says 503 and no call gets a value, while the rest of the
// appliance still starts and reports.
import { randomBytes } from "node:crypto";
import { renameSync } from "node:fs";
import { KruxError, asKruxError, writeFileAtomic, type ComponentHealth } from "../core/index.js";
import {
  SCRYPT_PARAMS,
  kekFromPassphrase,
  loadKek,
  passphraseSalt,
  pendingKeyFile,
  vaultHealth,
  vaultKeyFile,
} from "./key.js";
import { VaultStore, isExpired, type SecretMeta } from "./store.js";

export interface VaultOptions {
  readonly file: string;
  readonly secretsDir: string;
  readonly keySource: "file" | "env" | "passphrase";
  readonly env?: NodeJS.ProcessEnv;
}

export class Vault {
  private mark = "";

  private constructor(
    private readonly opts: VaultOptions,
    /** The store, when the key opened it. */
    private current: VaultStore | undefined,
    private problem: string | undefined,
  ) {}

  static open(opts: VaultOptions): Vault {
    const v = new Vault(opts, undefined, undefined);
    v.reopen();
    return v;
  }

  get keySource(): VaultOptions["keySource"] {
    return this.opts.keySource;
  }

  private env(): NodeJS.ProcessEnv {
    return this.opts.env ?? process.env;
  }

  /** (Re)open the store under the key the key source gives now. */
  private reopen(): void {
    this.current?.close();
    this.current = undefined;
    const env = this.env();
    const key = vaultHealth(this.opts.secretsDir, this.opts.keySource, env);
    if (key.status === "failing") {
      this.problem = key.detail;
      return;
    }
    let kek: Buffer | undefined;
    try {
      kek = loadKek(this.opts.secretsDir, this.opts.keySource, env);
      this.current = VaultStore.open(this.opts.file, kek);
      this.problem = undefined;
      if (this.opts.keySource === "passphrase")
        this.current.recordKdf({
          kdf: "scrypt",
          ...SCRYPT_PARAMS,
          salt: passphraseSalt(this.opts.secretsDir) ?? "",
        });
    } catch (err) {
      this.problem = asKruxError(err).message;
    } finally {
      kek?.fill(0);
    }
  }

  /**
   * The store, when the key opened it. A store another program rekeyed since (its key id changed)
   * is opened again under the key source's new key first.
   */
  get store(): VaultStore | undefined {
    const s = this.current;
    if (!s) return undefined;
    const mark = s.changeMark();
    if (mark !== this.mark) {
      this.mark = mark;
      if (s.rekeyedElsewhere()) this.reopen();
    }
    return this.current;
  }

  /**
   * Move the store to a new KEK: generated for the file key source (written beside the old key
   * as `vault.key.next` first, renamed over it once the store's transaction committed — stage A
   * settles a crash in between by which key opens the store), or the given one for `env` and
   * `passphrase` (the operator then restarts with the new key). Never a mix of old and new.
   */
  rekey(next?: { readonly key?: Buffer; readonly passphrase?: string }): { rewrapped: number } {
    const store = this.store;
    if (!store)
      throw new KruxError(
        "Unavailable",
        `the vault is unavailable: ${this.problem ?? "not open"}`,
        {
          component: "vault",
        },
      );
    const src = this.opts.keySource;
    let kek: Buffer;
    if (src === "file") kek = randomBytes(32);
    else if (src === "passphrase") {
      if (!next?.passphrase)
        throw new KruxError("InvalidParams", "a new passphrase is needed", {
          errors: [{ path: "/new_passphrase", message: "required for key_source passphrase" }],
        });
      kek = kekFromPassphrase(this.opts.secretsDir, next.passphrase);
    } else {
      if (next?.key?.length !== 32)
        throw new KruxError("InvalidParams", "a new 256-bit key is needed", {
          errors: [{ path: "/new_key", message: "64 hex characters, required for key_source env" }],
        });
      kek = Buffer.from(next.key);
    }
    try {
      if (src === "file") {
        const pending = pendingKeyFile(this.opts.secretsDir);
        writeFileAtomic(pending, kek.toString("hex") + "\n", 0o600);
        const r = store.rekey(kek);
        renameSync(pending, vaultKeyFile(this.opts.secretsDir));
        return r;
      }
      return store.rekey(kek);
    } finally {
      kek.fill(0);
    }
  }

  /** The vault component of /ready and /health: the key source, then the store's canary. */
  health(): ComponentHealth {
    const store = this.store;
    if (!store)
      return {
        name: "vault",
        status: "failing",
        detail: `${this.problem ?? "not open"}; no secret can be used`,
      };
    const key = vaultHealth(this.opts.secretsDir, this.opts.keySource, this.env());
    if (key.status !== "ok") return key;
    const h = store.health();
    return { ...h, facts: { key_source: this.opts.keySource, ...h.facts } };
  }

  /**
   * What `agent` may see of the secrets it may use: named in the scope (or `*`), not revoked, not
   * expired. Metadata only. Unavailable while the store is not open.
   */
  visibleTo(agent: string, now: Date = new Date()): SecretMeta[] {
    const store = this.store;
    if (!store)
      throw new KruxError("Unavailable", "the vault is unavailable", { component: "vault" });
    return store
      .list()
      .filter(
        (m) =>
          m.revoked_at === null &&
          (m.scope.agents.includes(agent) || m.scope.agents.includes("*")) &&
          !isExpired(m.scope, now.getTime()),
      );
  }

  close(): void {
    this.current?.close();
    this.current = undefined;
  }
}
