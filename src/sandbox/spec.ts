// The run spec handed to the native helper (docs/sandbox.md, schema/sandbox-spec.schema.json):
// its TypeScript shape, the pinned environment safelist and file-system layout, and validation
// against the schema before anything is spawned. The helper validates again; neither trusts the
// other.
import { KruxError, schemaValidator } from "../core/index.js";
import type { SandboxLimits } from "../capabilities/index.js";
import type { LayerName } from "./probe.js";

export const SPEC_VERSION = 1;

/** The limits the helper enforces; output is bounded by the launcher, not the helper. */
export type SpecLimits = Omit<SandboxLimits, "output_bytes">;

export interface SandboxSpec {
  readonly version: 1;
  readonly argv: readonly string[];
  readonly env: readonly string[];
  readonly cwd: string;
  readonly uid: number;
  readonly gid: number;
  readonly host_uid: number;
  readonly host_gid: number;
  readonly hostname: string;
  readonly layers: readonly LayerName[];
  readonly mounts: {
    readonly workspace: string;
    readonly ro_binds: readonly string[];
    readonly ro_overlays: readonly string[];
    readonly files: readonly { readonly path: string; readonly content: string }[];
    readonly tmp_mb: number;
  };
  readonly network: null | { readonly relay_port: number; readonly proxy_socket: string };
  readonly limits: SpecLimits;
  readonly cgroup: string | null;
}

/** The sandbox's PATH: every program an agent runs by name is looked up here. */
export const SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin";

/** Where agent code reaches the egress proxy from inside its network namespace. */
export const RELAY_PORT = 3128;

/**
 * The pinned environment every sandboxed program starts from. Nothing of the gateway's own
 * environment (vault key, tokens, paths) is ever passed through; agents add their own variables on
 * top, but cannot replace these proxy or KRUXOS_ names.
 */
export function baseEnvironment(cwd: string, who: { agent: string; callId: string }): string[] {
  return [
    `PATH=${SANDBOX_PATH}`,
    "HOME=/tmp",
    "TMPDIR=/tmp",
    "LANG=C.UTF-8",
    "TERM=dumb",
    "USER=agent",
    "LOGNAME=agent",
    "SHELL=/bin/sh",
    `PWD=${cwd}`,
    `KRUXOS_AGENT=${who.agent}`,
    `KRUXOS_CALL=${who.callId}`,
  ];
}

/** The variables that point TLS clients at a CA bundle (OpenSSL, curl, git, Python, Node). */
export const CA_BUNDLE_VARIABLES = [
  "SSL_CERT_FILE",
  "CURL_CA_BUNDLE",
  "GIT_SSL_CAINFO",
  "REQUESTS_CA_BUNDLE",
  "NODE_EXTRA_CA_CERTS",
] as const;

/** Where a granted sandbox finds the CA bundle it trusts. */
export const SANDBOX_CA_BUNDLE = "/etc/kruxos-ca-bundle.pem";

/** The sandbox trusts `bundle` (the system roots and the appliance's interception CA). */
export function caBundleEnvironment(bundle: string): string[] {
  return CA_BUNDLE_VARIABLES.map((v) => `${v}=${bundle}`);
}

/** Variables an agent's env may not set: the proxy route, the CA bundle, the appliance's names. */
export function reservedEnvName(name: string): boolean {
  const n = name.toUpperCase();
  return (
    n.startsWith("KRUXOS_") ||
    (CA_BUNDLE_VARIABLES as readonly string[]).includes(n) ||
    n === "HTTP_PROXY" ||
    n === "HTTPS_PROXY" ||
    n === "ALL_PROXY" ||
    n === "NO_PROXY"
  );
}

/** The proxy route when the call has a network grant: lower- and upper-case, as tools differ. */
export function proxyEnvironment(credential: string): string[] {
  const url = `http://kruxos:${credential}@127.0.0.1:${RELAY_PORT}`;
  return [
    `HTTP_PROXY=${url}`,
    `HTTPS_PROXY=${url}`,
    `ALL_PROXY=${url}`,
    `http_proxy=${url}`,
    `https_proxy=${url}`,
    `all_proxy=${url}`,
    "NO_PROXY=",
    "no_proxy=",
  ];
}

/** System trees bound read-only (missing ones are skipped by the helper). */
export const RO_BINDS: readonly string[] = Object.freeze([
  "/usr",
  "/bin",
  "/sbin",
  "/lib",
  "/lib32",
  "/lib64",
  "/libx32",
  "/etc/alternatives",
  "/etc/ssl",
  "/etc/ca-certificates",
  "/etc/ld.so.cache",
  "/etc/ld.so.conf",
  "/etc/ld.so.conf.d",
  "/etc/localtime",
  "/etc/nsswitch.conf",
]);

/** /etc files the sandbox sees instead of the host's: one user, one group, no host names. */
export function etcFiles(
  uid: number,
  gid: number,
  hostname: string,
): SandboxSpec["mounts"]["files"] {
  return [
    {
      path: "/etc/passwd",
      content: `root:x:0:0:root:/root:/usr/sbin/nologin\nagent:x:${uid}:${gid}:agent:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`,
    },
    { path: "/etc/group", content: `root:x:0:\nagent:x:${gid}:\nnogroup:x:65534:\n` },
    { path: "/etc/hostname", content: `${hostname}\n` },
    { path: "/etc/hosts", content: `127.0.0.1 localhost ${hostname}\n::1 localhost\n` },
  ];
}

/** Check a spec against schema/sandbox-spec.schema.json; a failure is our bug, not the agent's. */
export function validateSpec(spec: SandboxSpec): void {
  const validator = schemaValidator("sandbox-spec.schema.json");
  if (!validator(spec)) {
    const why = (validator.errors ?? [])
      .slice(0, 5)
      .map((e) => `${e.instancePath || "/"} ${e.message ?? "invalid"}`)
      .join("; ");
    throw new KruxError("InternalError", `the sandbox spec failed its schema: ${why}`, {
      errors: why,
    });
  }
}
