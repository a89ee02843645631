// The typed, frozen shape of a validated manifest. It mirrors schema/kruxos.toml.schema.json, whose
// defaults have been applied, so every field is present.

export interface ProgramSpec {
  readonly command: string;
  readonly priority: number;
  readonly required_for_readiness: boolean;
  readonly autorestart: boolean;
  readonly startsecs: number;
  readonly startretries: number;
}

export interface ExceptionSpec {
  readonly cap_add: readonly string[];
  readonly devices: readonly string[];
  readonly security_opt: readonly string[];
}

export interface Manifest {
  readonly manifest_version: 1;
  readonly appliance: {
    readonly name: string;
    readonly strict: boolean;
    readonly seal_timeout_s: number;
    readonly seal_poll_ms: number;
  };
  readonly image: {
    readonly name: string;
    readonly tag: string;
    readonly user: string;
    readonly debian_suite: string;
    readonly packages: readonly string[];
  };
  readonly gateway: {
    readonly host: string;
    readonly port: number;
    readonly max_message_bytes: number;
    readonly max_batch: number;
    readonly max_depth: number;
    readonly max_concurrent_calls: number;
    readonly calls_per_second: number;
    readonly max_connections_per_agent: number;
    readonly max_inflight_per_connection: number;
    readonly max_pending_approvals: number;
    readonly header_timeout_s: number;
    readonly body_timeout_s: number;
    readonly ready_requires: readonly string[];
  };
  readonly supervision: {
    readonly host: string;
    readonly ws_port: number;
    readonly api_port: number;
  };
  readonly dashboard: { readonly host: string; readonly port: number };
  readonly proxy: {
    readonly host: string;
    readonly port: number;
    readonly socket: string;
    readonly upstream_ca_files: readonly string[];
  };
  readonly observability: {
    readonly metrics_host: string;
    readonly metrics_port: number;
    readonly log_level: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
    readonly otlp_endpoint: string;
  };
  readonly paths: PathsSpec;
  readonly capabilities: { readonly enabled: readonly string[] };
  readonly policy: { readonly files: readonly string[]; readonly reload: boolean };
  readonly sandbox: {
    readonly require: readonly string[];
    readonly uid: number;
    readonly host_uid: number;
    readonly tmp_mb: number;
    readonly max_background: number;
    readonly limits: {
      readonly wall_s: number;
      readonly cpu_s: number;
      readonly memory_mb: number;
      readonly pids: number;
      readonly open_files: number;
      readonly file_size_mb: number;
      readonly output_bytes: number;
    };
  };
  readonly audit: {
    readonly fail_mode: "halt" | "degrade";
    readonly retention_days: number;
    readonly checkpoint_every: number;
    readonly checkpoint_interval_s: number;
    readonly refusal_records_per_source: number;
    readonly refusal_records_per_window: number;
    readonly refusal_window_s: number;
  };
  readonly vault: {
    readonly key_source: "file" | "env" | "passphrase";
    readonly kdf: "scrypt" | "argon2id";
  };
  readonly programs: Readonly<Record<string, ProgramSpec>>;
  readonly security: {
    readonly cap_drop: readonly string[];
    readonly read_only_root: boolean;
    readonly no_new_privileges: boolean;
    readonly seccomp: string;
    readonly tmp_size_mb: number;
    readonly run_size_mb: number;
    readonly memory_mb: number;
    readonly pids_limit: number;
    readonly nofile: number;
    readonly nproc: number;
    readonly exceptions: Readonly<Record<string, ExceptionSpec>>;
  };
  readonly features: Readonly<Record<string, boolean>>;
}

export interface PathsSpec {
  readonly app: string;
  readonly etc: string;
  readonly data: string;
  readonly workspace: string;
  readonly run: string;
  readonly tmp: string;
}

export type Severity = "error" | "warning";

/** One validation finding, printed as `CODE path: message`. */
export interface Finding {
  readonly code: string;
  readonly severity: Severity;
  /** Dotted manifest path, e.g. `gateway.port`. */
  readonly path: string;
  readonly message: string;
  /** 1-based TOML line where the path is written, when it is written. */
  readonly line?: number;
}

/** A manifest that passed validation (possibly with warnings), plus what identifies it. */
export interface LoadedManifest {
  readonly manifest: Manifest;
  /** SHA-256 (hex) of the manifest file's bytes. */
  readonly sha256: string;
  readonly source: string;
  readonly file: string;
  readonly findings: readonly Finding[];
}
