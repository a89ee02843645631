// The secret store, `vault.db`. Each version of a secret is encrypted once with AES-256-GCM under a
// data key (DEK) of its own; the DEK is wrapped (AES-256-GCM again) by the key-encryption key
// (KEK) the operator holds — the key file, KRUXOS_VAULT_KEY or a passphrase (key.ts). Every
// encryption has a fresh random 96-bit nonce and AAD binding the format, what is encrypted (a
// value, a DEK, the canary), the secret's name and version, so no ciphertext can be moved to
// another row and still open. A canary encrypted under the KEK tells a wrong key from a damaged
// store at open. Values leave only through `reveal`, as Buffers, for the resolver to use at the
// call site; nothing here logs or returns them otherwise.
//
// Nonce budget: a DEK encrypts exactly one value, so its count is one by construction. The KEK
// wraps one DEK per version; its encryptions are counted in the store, the health turns degraded
// at KEK_WRAP_WARN and new wraps are refused at KEK_WRAP_LIMIT (2^30, far below GCM's 2^32 bound
// for random nonces) until `rekey` moves the store to a new KEK, which starts a new count.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import {
  KruxError,
  openDatabase,
  parseHostPattern,
  type ComponentHealth,
  type Db,
  type DbStatement,
} from "../core/index.js";

const FORMAT = "kruxos-vault/v1";
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const CANARY = Buffer.from("kruxos vault canary v1");

export const KEK_WRAP_LIMIT = 2 ** 30;
export const KEK_WRAP_WARN = 2 ** 29;
const LAST_USED_GRANULARITY_MS = 60_000;

/** The prefix of the appliance's own secrets (the interception CA's key): no agent scope names them. */
export const APPLIANCE_PREFIX = "kruxos.";

/** A secret's name: what `${secret:NAME}` names. */
export const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/** Who may use a secret, with which capabilities, toward which `host:port` patterns, until when. */
export interface SecretScope {
  readonly agents: readonly string[];
  readonly capabilities: readonly string[];
  readonly hosts: readonly string[];
  /** ISO 8601; absent: no expiry. */
  readonly expires_at?: string;
}

/** What operators and agents may see of a secret: never its value. */
export interface SecretMeta {
  readonly name: string;
  readonly version: number;
  readonly scope: SecretScope;
  /** What it is for, in the operator's words; agents see it in secrets.list. */
  readonly description: string | null;
  /** Agents may rotate it (secrets.rotate): the appliance generates its values. */
  readonly rotatable: boolean;
  readonly created_at: string;
  readonly rotated_at: string | null;
  readonly revoked_at: string | null;
  readonly last_used_at: string | null;
}

type Purpose = "value" | "dek" | "canary" | "subkey-root";

function aad(purpose: Purpose, name: string, version: number): Buffer {
  return Buffer.from(`${FORMAT}\0${purpose}\0${name}\0${version}`, "utf8");
}

/** nonce ‖ ciphertext ‖ tag */
function seal(key: Buffer, plain: Buffer, ad: Buffer): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const c = createCipheriv("aes-256-gcm", key, nonce);
  c.setAAD(ad);
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([nonce, body, c.getAuthTag()]);
}

/** The plaintext, or undefined when the blob does not open under `key` with `ad`. */
function open(key: Buffer, blob: Buffer, ad: Buffer): Buffer | undefined {
  if (blob.length < NONCE_BYTES + TAG_BYTES) return undefined;
  try {
    const d = createDecipheriv("aes-256-gcm", key, blob.subarray(0, NONCE_BYTES));
    d.setAAD(ad);
    d.setAuthTag(blob.subarray(blob.length - TAG_BYTES));
    return Buffer.concat([
      d.update(blob.subarray(NONCE_BYTES, blob.length - TAG_BYTES)),
      d.final(),
    ]);
  } catch {
    return undefined;
  }
}

function unavailable(reason: "wrong_key" | "corrupt" | "exhausted", message: string): KruxError {
  return new KruxError("Unavailable", message, { component: "vault", reason });
}

function notFound(name: string): KruxError {
  return new KruxError("InvalidParams", `no secret named "${name}" in the vault`, {
    errors: [{ path: "/name", message: "no such secret (or it was revoked)" }],
    missing: true,
  });
}

/** Whether a secret's scope has expired at `nowMs`. */
export function isExpired(scope: SecretScope, nowMs: number): boolean {
  return scope.expires_at !== undefined && Date.parse(scope.expires_at) <= nowMs;
}

function checkName(name: string): void {
  if (!SECRET_NAME.test(name))
    throw new KruxError("InvalidParams", `invalid secret name "${name.slice(0, 80)}"`, {
      errors: [
        {
          path: "/name",
          message: "must start with a letter or _ and hold at most 64 of A-Z a-z 0-9 _ . -",
        },
      ],
    });
}

function checkValue(value: Buffer): void {
  if (value.length === 0)
    throw new KruxError("InvalidParams", "a secret's value cannot be empty", {
      errors: [{ path: "/value", message: "is empty" }],
    });
}

function checkScope(scope: SecretScope): SecretScope {
  const list = (k: "agents" | "capabilities" | "hosts"): string[] => {
    const v = scope[k] as unknown;
    if (
      !Array.isArray(v) ||
      v.some((x) => typeof x !== "string" || x.length === 0 || x.length > 255)
    )
      throw new KruxError("InvalidParams", `scope.${k} must be a list of names`, {
        errors: [{ path: `/scope/${k}`, message: "must be a list of non-empty strings" }],
      });
    return [...new Set(v as string[])].sort();
  };
  for (const [i, h] of list("hosts").entries()) {
    const p = parseHostPattern(h);
    if (typeof p === "string")
      throw new KruxError("InvalidParams", `scope.hosts: ${p}`, {
        errors: [{ path: `/scope/hosts/${i}`, message: "must be host:port or *.domain:port" }],
      });
  }
  for (const [i, c] of list("capabilities").entries())
    if (!/^(\*|[a-z][a-z0-9_]*\.(\*|[a-z][a-z0-9_]*))$/.test(c))
      throw new KruxError(
        "InvalidParams",
        `scope.capabilities: "${c.slice(0, 80)}" is not a capability`,
        {
          errors: [
            {
              path: `/scope/capabilities/${i}`,
              message: "must be a capability name (network.http_request), category.* or *",
            },
          ],
        },
      );
  const out: SecretScope = {
    agents: list("agents"),
    capabilities: list("capabilities"),
    hosts: list("hosts"),
  };
  if (scope.expires_at === undefined) return out;
  if (Number.isNaN(Date.parse(scope.expires_at)))
    throw new KruxError("InvalidParams", "scope.expires_at is not a date", {
      errors: [{ path: "/scope/expires_at", message: "must be an ISO 8601 date and time" }],
    });
  return { ...out, expires_at: new Date(scope.expires_at).toISOString() };
}

function checkKek(kek: Buffer): void {
  if (kek.length !== KEY_BYTES)
    throw new KruxError("InternalError", "the vault key is not 256 bits");
}

/** A short public fingerprint of a KEK (never the key): which key the store is under. */
export function keyFingerprint(kek: Buffer): string {
  return createHash("sha256")
    .update("kruxos-vault/kek-id\0")
    .update(kek)
    .digest("hex")
    .slice(0, 16);
}

interface SecretRow {
  name: string;
  version: number;
  scope: string;
  description: string | null;
  rotatable: number;
  created_at: string;
  rotated_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

export interface VaultStoreOptions {
  readonly now?: () => Date;
  /** Tests only: called inside rekey's transaction after `n` data keys are rewrapped. */
  readonly onRekeyProgress?: (n: number) => void;
}

export class VaultStore {
  /** When each secret's last_used_at was last written, by name (ms). */
  private readonly touched = new Map<string, number>();
  private writes = 0;
  private dataVersion: DbStatement | undefined;

  private constructor(
    private readonly db: Db,
    private kek: Buffer,
    private readonly opts: VaultStoreOptions,
  ) {}

  /**
   * Open (creating when absent) the store at `file` under `kek`. A key that does not open the
   * canary is `Unavailable` with reason `wrong_key`; a store whose rows do not open is `corrupt`.
   */
  static open(file: string, kek: Buffer, opts: VaultStoreOptions = {}): VaultStore {
    checkKek(kek);
    let db: Db;
    try {
      db = openDatabase(file);
      db.exec(`
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
        CREATE TABLE IF NOT EXISTS secrets (
          name TEXT PRIMARY KEY, version INTEGER NOT NULL, scope TEXT NOT NULL,
          description TEXT, rotatable INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL,
          rotated_at TEXT, revoked_at TEXT, last_used_at TEXT);
        CREATE TABLE IF NOT EXISTS versions (
          name TEXT NOT NULL, version INTEGER NOT NULL, dek BLOB NOT NULL, value BLOB NOT NULL,
          created_at TEXT NOT NULL, PRIMARY KEY (name, version));
      `);
    } catch (err) {
      throw unavailable("corrupt", `vault.db cannot be opened: ${(err as Error).message}`);
    }
    // The store keeps its own copy, zeroed at close.
    const store = new VaultStore(db, Buffer.from(kek), opts);
    try {
      store.init();
    } catch (err) {
      db.close();
      throw err;
    }
    return store;
  }

  private init(): void {
    const canary = this.meta("canary");
    if (canary === undefined) {
      this.db.transaction(() => {
        this.setMeta("canary", seal(this.kek, CANARY, aad("canary", "", 0)));
        this.setMeta("kek_wraps", Buffer.from("1"));
        this.setMeta("kek_id", Buffer.from(keyFingerprint(this.kek)));
      })();
    } else if (!this.canaryOpens())
      throw unavailable(
        "wrong_key",
        "the vault key does not open vault.db (wrong key, passphrase or KRUXOS_VAULT_KEY)",
      );
    // The subkey root outlives rekeys: it starts as the first KEK's bytes (so subkeys derived
    // before it existed stay the same) and is rewrapped, never changed, when the KEK changes.
    if (this.meta("subkey_root") === undefined)
      this.db.transaction(() => {
        this.setMeta("subkey_root", seal(this.kek, this.kek, aad("subkey-root", "", 0)));
        this.setMeta("kek_wraps", Buffer.from(String(this.kekWraps() + 1)));
      })();
  }

  /**
   * The root of the purpose-bound subkeys (audit checkpoints, egress credentials), from a store
   * file under `kek`; undefined when the file or its root does not exist or does not open.
   */
  static subkeyRoot(file: string, kek: Buffer): Buffer | undefined {
    let db: Db | undefined;
    try {
      db = openDatabase(file, { readonly: true });
      const row = db.prepare("SELECT value FROM meta WHERE key = 'subkey_root'").get() as
        { value: Buffer } | undefined;
      return row ? open(kek, row.value, aad("subkey-root", "", 0)) : undefined;
    } catch {
      return undefined;
    } finally {
      db?.close();
    }
  }

  /** Whether `kek` opens the canary of the store file (read-only look; false when it cannot). */
  static opensWith(file: string, kek: Buffer): boolean {
    let db: Db | undefined;
    try {
      db = openDatabase(file, { readonly: true });
      const row = db.prepare("SELECT value FROM meta WHERE key = 'canary'").get() as
        { value: Buffer } | undefined;
      return (
        row !== undefined && open(kek, row.value, aad("canary", "", 0))?.equals(CANARY) === true
      );
    } catch {
      return false;
    } finally {
      db?.close();
    }
  }

  /** Record how the KEK is derived from a passphrase (scrypt parameters and salt), for operators. */
  recordKdf(params: Readonly<Record<string, string | number>>): void {
    const text = JSON.stringify(params);
    if (this.meta("kdf")?.toString() !== text) this.setMeta("kdf", Buffer.from(text));
  }

  /** The recorded KDF parameters, when the KEK comes from a passphrase. */
  kdf(): Record<string, string | number> | undefined {
    const raw = this.meta("kdf");
    return raw ? (JSON.parse(raw.toString()) as Record<string, string | number>) : undefined;
  }

  /** Whether the store was rekeyed under another KEK since this handle opened it. */
  rekeyedElsewhere(): boolean {
    return this.meta("kek_id")?.toString() !== keyFingerprint(this.kek);
  }

  /** Whether the canary decrypts to itself under the key in use. */
  private canaryOpens(): boolean {
    const canary = this.meta("canary");
    return (
      canary !== undefined && open(this.kek, canary, aad("canary", "", 0))?.equals(CANARY) === true
    );
  }

  private meta(key: string): Buffer | undefined {
    const row = this.db.prepare("SELECT value FROM meta WHERE key = ?").get(key) as
      { value: Buffer } | undefined;
    return row?.value;
  }

  private setMeta(key: string, value: Buffer): void {
    this.db
      .prepare(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      )
      .run(key, value);
  }

  /**
   * Changes whenever the store's contents may have changed, through this connection or another
   * process's: caches of values or scopes compare it before they are used.
   */
  changeMark(): string {
    // Asked on every call (caches check it), so the statement is prepared once.
    this.dataVersion ??= this.db.prepare("PRAGMA data_version").pluck();
    return `${String(this.dataVersion.get())}.${this.writes}`;
  }

  /** Encryptions made under the current KEK (the canary, the subkey root, one wrap per version). */
  kekWraps(): number {
    return Number(this.meta("kek_wraps")?.toString() ?? "0");
  }

  private now(): string {
    return (this.opts.now?.() ?? new Date()).toISOString();
  }

  /** Encrypt `value` as `name`'s `version`: a fresh DEK, wrapped by the KEK. In a transaction. */
  private writeVersion(name: string, version: number, value: Buffer): void {
    const wraps = this.kekWraps();
    if (wraps >= KEK_WRAP_LIMIT)
      throw unavailable(
        "exhausted",
        `the vault key has made ${wraps} encryptions; the store must be rekeyed before it takes more`,
      );
    const dek = randomBytes(KEY_BYTES);
    try {
      const sealedValue = seal(dek, value, aad("value", name, version));
      const wrapped = seal(this.kek, dek, aad("dek", name, version));
      this.db
        .prepare(
          "INSERT INTO versions (name, version, dek, value, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .run(name, version, wrapped, sealedValue, this.now());
      this.setMeta("kek_wraps", Buffer.from(String(wraps + 1)));
    } finally {
      dek.fill(0);
    }
  }

  /** A new secret. Its name must be free (a revoked name is free again). */
  add(
    name: string,
    value: Buffer,
    scope: SecretScope,
    about: {
      readonly description?: string;
      readonly rotatable?: boolean;
      /** The appliance's own secret (a `kruxos.` name); operators cannot take such names. */
      readonly appliance?: boolean;
    } = {},
  ): SecretMeta {
    checkName(name);
    if (name.startsWith(APPLIANCE_PREFIX) !== (about.appliance === true))
      throw new KruxError(
        "InvalidParams",
        `secret names starting with "${APPLIANCE_PREFIX}" are the appliance's own`,
        { errors: [{ path: "/name", message: `must not start with ${APPLIANCE_PREFIX}` }] },
      );
    const s = checkScope(scope);
    if (about.description !== undefined && about.description.length > 500)
      throw new KruxError("InvalidParams", "a secret's description is at most 500 characters", {
        errors: [{ path: "/description", message: "is longer than 500 characters" }],
      });
    checkValue(value);
    this.db.transaction(() => {
      const existing = this.row(name);
      if (existing && existing.revoked_at === null)
        throw new KruxError(
          "InvalidParams",
          `a secret named "${name}" already exists; rotate it instead`,
          {
            errors: [{ path: "/name", message: "already exists" }],
          },
        );
      const version = existing ? existing.version + 1 : 1;
      this.writeVersion(name, version, value);
      this.db
        .prepare(
          `INSERT INTO secrets (name, version, scope, description, rotatable, created_at,
             rotated_at, revoked_at, last_used_at)
           VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, NULL)
           ON CONFLICT(name) DO UPDATE SET version = excluded.version, scope = excluded.scope,
             description = excluded.description, rotatable = excluded.rotatable,
             created_at = excluded.created_at, rotated_at = NULL, revoked_at = NULL,
             last_used_at = NULL`,
        )
        .run(
          name,
          version,
          JSON.stringify(s),
          about.description ?? null,
          about.rotatable === true ? 1 : 0,
          this.now(),
        );
    })();
    this.writes += 1;
    return this.get(name);
  }

  /** A new version of `name` with `value`; earlier versions stay readable by version number. */
  rotate(name: string, value: Buffer): SecretMeta {
    checkName(name);
    checkValue(value);
    this.db.transaction(() => {
      const row = this.live(name);
      const version = row.version + 1;
      this.writeVersion(name, version, value);
      this.db
        .prepare("UPDATE secrets SET version = ?, rotated_at = ? WHERE name = ?")
        .run(version, this.now(), name);
    })();
    this.writes += 1;
    return this.get(name);
  }

  /**
   * Revoke `name`: every version's data key and ciphertext are deleted (nothing is left to
   * decrypt, whatever key an attacker later holds); the name stays listed as revoked.
   */
  revoke(name: string): SecretMeta {
    checkName(name);
    this.db.transaction(() => {
      this.live(name);
      this.db.prepare("DELETE FROM versions WHERE name = ?").run(name);
      this.db.prepare("UPDATE secrets SET revoked_at = ? WHERE name = ?").run(this.now(), name);
    })();
    this.writes += 1;
    return this.get(name);
  }

  /** Every secret's metadata, by name; the appliance's own (`kruxos.` names) only when asked. */
  list(opts: { readonly appliance?: boolean } = {}): SecretMeta[] {
    const rows = this.db.prepare("SELECT * FROM secrets ORDER BY name").all() as SecretRow[];
    return rows
      .filter((r) => opts.appliance === true || !r.name.startsWith(APPLIANCE_PREFIX))
      .map(toMeta);
  }

  get(name: string): SecretMeta {
    const row = this.row(name);
    if (!row) throw notFound(name);
    return toMeta(row);
  }

  /**
   * The current value of `name` (or `version`), for the resolver to place where the bytes leave.
   * Revoked and expired secrets give nothing. The caller zeroes the Buffer when done.
   */
  reveal(
    name: string,
    version?: number,
    opts: { readonly touch?: boolean } = {},
  ): { value: Buffer; version: number; meta: SecretMeta } {
    checkName(name);
    const row = this.live(name);
    const meta = toMeta(row);
    if (isExpired(meta.scope, Date.parse(this.now())))
      throw new KruxError("InvalidParams", `secret "${name}" expired at ${meta.scope.expires_at}`, {
        errors: [{ path: "/name", message: "expired" }],
      });
    const v = version ?? row.version;
    const stored = this.db
      .prepare("SELECT dek, value FROM versions WHERE name = ? AND version = ?")
      .get(name, v) as { dek: Buffer; value: Buffer } | undefined;
    if (!stored) throw notFound(`${name}@${v}`);
    const dek = this.unwrap(name, v, stored.dek);
    try {
      const value = open(dek, stored.value, aad("value", name, v));
      if (!value) throw unavailable("corrupt", `vault.db: "${name}" version ${v} does not open`);
      const now = this.now();
      // "Last used" is for operators, to the minute: a secret used on every request is not a
      // write per request (each write would also make every other process's caches stale).
      const nowMs = Date.parse(now);
      if (
        opts.touch !== false &&
        nowMs - (this.touched.get(name) ?? 0) >= LAST_USED_GRANULARITY_MS
      ) {
        this.touched.set(name, nowMs);
        this.db.prepare("UPDATE secrets SET last_used_at = ? WHERE name = ?").run(now, name);
      }
      return { value, version: v, meta: { ...meta, last_used_at: now } };
    } finally {
      dek.fill(0);
    }
  }

  /**
   * Rewrap every data key and the canary under `newKek`, in one transaction: a crash or an error
   * halfway leaves the store wholly under the old key. The caller then switches its key source.
   */
  rekey(newKek: Buffer): { rewrapped: number } {
    checkKek(newKek);
    const rows = this.db.prepare("SELECT name, version, dek FROM versions").all() as {
      name: string;
      version: number;
      dek: Buffer;
    }[];
    let n = 0;
    this.db.transaction(() => {
      const update = this.db.prepare("UPDATE versions SET dek = ? WHERE name = ? AND version = ?");
      for (const r of rows) {
        const dek = this.unwrap(r.name, r.version, r.dek);
        try {
          update.run(seal(newKek, dek, aad("dek", r.name, r.version)), r.name, r.version);
        } finally {
          dek.fill(0);
        }
        n += 1;
        this.opts.onRekeyProgress?.(n);
      }
      this.setMeta("canary", seal(newKek, CANARY, aad("canary", "", 0)));
      const root = this.meta("subkey_root");
      const opened = root && open(this.kek, root, aad("subkey-root", "", 0));
      if (opened) {
        this.setMeta("subkey_root", seal(newKek, opened, aad("subkey-root", "", 0)));
        opened.fill(0);
      }
      this.setMeta("kek_wraps", Buffer.from(String(rows.length + 2)));
      this.setMeta("kek_id", Buffer.from(keyFingerprint(newKek)));
    })();
    this.kek.fill(0);
    this.kek = Buffer.from(newKek);
    this.writes += 1;
    return { rewrapped: n };
  }

  /**
   * The vault component of /ready and /health: the canary opens under the key in use, and the
   * key's encryption count is below the warning mark.
   */
  health(): ComponentHealth {
    try {
      if (!this.canaryOpens())
        return {
          name: "vault",
          status: "failing",
          detail: "the vault key no longer opens vault.db",
        };
      const wraps = this.kekWraps();
      const secrets = (
        this.db
          .prepare(
            "SELECT count(*) AS n FROM secrets WHERE revoked_at IS NULL AND substr(name, 1, ?) <> ?",
          )
          .get(APPLIANCE_PREFIX.length, APPLIANCE_PREFIX) as {
          n: number;
        }
      ).n;
      const facts = {
        secrets,
        kek_encryptions: wraps,
        kek_id: this.meta("kek_id")?.toString() ?? "",
      };
      return wraps >= KEK_WRAP_WARN
        ? {
            name: "vault",
            status: "degraded",
            detail:
              "the vault key nears its encryption limit: the store must be rekeyed under a new key",
            facts,
          }
        : { name: "vault", status: "ok", facts };
    } catch (err) {
      return { name: "vault", status: "failing", detail: `vault.db: ${(err as Error).message}` };
    }
  }

  close(): void {
    this.kek.fill(0);
    this.db.close();
  }

  /** A version's data key, opened with the KEK; the caller zeroes it. */
  private unwrap(name: string, version: number, wrapped: Buffer): Buffer {
    const dek = open(this.kek, wrapped, aad("dek", name, version));
    if (!dek)
      throw unavailable(
        "corrupt",
        `vault.db: the data key of "${name}" version ${version} does not open`,
      );
    return dek;
  }

  private row(name: string): SecretRow | undefined {
    return this.db.prepare("SELECT * FROM secrets WHERE name = ?").get(name) as
      SecretRow | undefined;
  }

  private live(name: string): SecretRow {
    const row = this.row(name);
    if (!row || row.revoked_at !== null) throw notFound(name);
    return row;
  }
}

function toMeta(r: SecretRow): SecretMeta {
  return {
    name: r.name,
    version: r.version,
    scope: JSON.parse(r.scope) as SecretScope,
    description: r.description,
    rotatable: r.rotatable === 1,
    created_at: r.created_at,
    rotated_at: r.rotated_at,
    revoked_at: r.revoked_at,
    last_used_at: r.last_used_at,
  };
}
