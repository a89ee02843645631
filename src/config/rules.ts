// Semantic rules: what JSON Schema cannot say. Each rule has a stable code (E0xx error, W0xx
// warning), a one-line title and its own check; docs/manifest.md documents every code and
// tests/unit/manifest-rules.test.ts holds a valid and an invalid fixture for each.
import path from "node:path";
import type { Finding, Manifest, Severity } from "./types.js";

export const CAPABILITY_CATEGORIES = Object.freeze([
  "filesystem",
  "process",
  "network",
  "git",
  "scheduler",
  "alerts",
  "system",
  "agent",
  "secrets",
  "comms",
]);

/** The sandbox layers, in the helper's report order (the native probe reports exactly these). */
export const SANDBOX_LAYERS = Object.freeze([
  "user",
  "mount",
  "pid",
  "net",
  "uts",
  "ipc",
  "rlimits",
  "cgroup",
  "no_new_privs",
  "landlock",
  "seccomp",
] as const);

export const BUILTIN_SERVE_PROGRAMS = Object.freeze(["proxy", "gateway", "dashboard"]);

/** Capabilities no exception may ever grant: each one is a known container escape. */
const NEVER_GRANTED_CAPS = new Set([
  "ALL",
  "SYS_ADMIN",
  "SYS_MODULE",
  "SYS_PTRACE",
  "SYS_RAWIO",
  "SYS_BOOT",
  "SYS_TIME",
  "MAC_ADMIN",
  "MAC_OVERRIDE",
  "DAC_READ_SEARCH",
  "BPF",
  "PERFMON",
  "NET_ADMIN",
  "SETFCAP",
]);

const WEAKENING_SECURITY_OPTS = [
  /^no-new-privileges(?:[:=]false)$/,
  /^seccomp[:=]unconfined$/,
  /^apparmor[:=]unconfined$/,
  /^label[:=]disable$/,
  /^systempaths[:=]unconfined$/,
  /^unmask[:=]/,
];

const RAW_DEVICES =
  /^\/dev\/(mem|kmem|port|sd[a-z]|nvme|vd[a-z]|xvd|hd[a-z]|loop|dm-|mapper|disk|kvm|cpu|bus|kmsg)/;

export interface RuleContext {
  readonly manifest: Manifest;
}

export interface Rule {
  readonly code: string;
  readonly severity: Severity;
  readonly title: string;
  readonly check: (m: Manifest) => Iterable<Omit<Finding, "code" | "severity">>;
}

interface Listener {
  readonly path: string;
  readonly port: number;
  readonly published: boolean;
}

export function listeners(m: Manifest): Listener[] {
  return [
    { path: "gateway.port", port: m.gateway.port, published: true },
    { path: "supervision.ws_port", port: m.supervision.ws_port, published: false },
    { path: "supervision.api_port", port: m.supervision.api_port, published: false },
    { path: "dashboard.port", port: m.dashboard.port, published: true },
    { path: "proxy.port", port: m.proxy.port, published: false },
    { path: "observability.metrics_port", port: m.observability.metrics_port, published: true },
  ];
}

/** Which `kruxos` verb a program command runs, if it is one of ours. */
export function kruxosVerb(command: string): { verb: string; arg: string | undefined } | undefined {
  const argv = command.trim().split(/\s+/);
  if (argv[0] === undefined || path.basename(argv[0]) !== "kruxos") return undefined;
  return { verb: argv[1] ?? "", arg: argv[2] };
}

/** Exceptions whose feature flag is on: the privilege actually granted. */
export function activeExceptions(
  m: Manifest,
): [string, Manifest["security"]["exceptions"][string]][] {
  return Object.entries(m.security.exceptions).filter(([feature]) => m.features[feature] === true);
}

function isUnder(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

export const RULES: readonly Rule[] = Object.freeze([
  {
    code: "E001",
    severity: "error",
    title: "Two listeners share a port",
    *check(m) {
      const seen = new Map<number, string>();
      for (const l of listeners(m)) {
        const first = seen.get(l.port);
        if (first) yield { path: l.path, message: `port ${l.port} is already used by ${first}` };
        else seen.set(l.port, l.path);
      }
    },
  },
  {
    code: "E002",
    severity: "error",
    title: "Paths must be absolute and normalised",
    *check(m) {
      const entries: [string, string][] = [
        ...Object.entries(m.paths).map(([k, v]): [string, string] => [`paths.${k}`, v]),
        ...m.policy.files.map((f, i): [string, string] => [`policy.files.${i}`, f]),
      ];
      for (const [p, v] of entries) {
        if (!path.isAbsolute(v)) yield { path: p, message: `"${v}" is not an absolute path` };
        else if (path.normalize(v) !== v.replace(/\/+$/, "") && path.normalize(v) !== v)
          yield { path: p, message: `"${v}" is not normalised (write "${path.normalize(v)}")` };
      }
    },
  },
  {
    code: "E003",
    severity: "error",
    title: "The image user must not be root",
    *check(m) {
      const [uid, gid] = m.image.user.split(":");
      if (uid === "0")
        yield {
          path: "image.user",
          message: "uid 0 is root; use an unprivileged uid such as 1000",
        };
      else if (gid === "0")
        yield {
          path: "image.user",
          message: "gid 0 is the root group; use an unprivileged gid such as 1000",
        };
    },
  },
  {
    code: "E004",
    severity: "error",
    title: "The hardened baseline cannot be removed",
    *check(m) {
      const s = m.security;
      if (!s.cap_drop.includes("ALL"))
        yield {
          path: "security.cap_drop",
          message: 'must contain "ALL"; add privilege with an exception instead',
        };
      if (!s.read_only_root) yield { path: "security.read_only_root", message: "must be true" };
      if (!s.no_new_privileges)
        yield { path: "security.no_new_privileges", message: "must be true" };
      if (s.seccomp === "unconfined")
        yield {
          path: "security.seccomp",
          message: 'must be "default" or a profile path, never "unconfined"',
        };
    },
  },
  {
    code: "E005",
    severity: "error",
    title: "An exception block needs its feature flag on",
    *check(m) {
      for (const feature of Object.keys(m.security.exceptions)) {
        if (m.features[feature] !== true)
          yield {
            path: `security.exceptions.${feature}`,
            message: `feature "${feature}" is not enabled; set [features] ${feature} = true or remove the block`,
          };
      }
    },
  },
  {
    code: "E006",
    severity: "error",
    title: "An exception may only add narrow privilege, never weaken the baseline",
    *check(m) {
      for (const [feature, ex] of Object.entries(m.security.exceptions)) {
        const at = `security.exceptions.${feature}`;
        for (const cap of ex.cap_add)
          if (NEVER_GRANTED_CAPS.has(cap.replace(/^CAP_/, "")))
            yield {
              path: `${at}.cap_add`,
              message: `${cap} is never granted: it allows escaping the container`,
            };
        for (const opt of ex.security_opt)
          if (WEAKENING_SECURITY_OPTS.some((re) => re.test(opt)))
            yield { path: `${at}.security_opt`, message: `"${opt}" removes part of the baseline` };
        for (const dev of ex.devices)
          if (RAW_DEVICES.test(dev))
            yield {
              path: `${at}.devices`,
              message: `"${dev}" exposes raw host memory, disks or hardware`,
            };
      }
    },
  },
  {
    code: "E007",
    severity: "error",
    title: "Readiness needs exactly one seal program",
    *check(m) {
      const seals = Object.entries(m.programs).filter(
        ([, p]) => kruxosVerb(p.command)?.verb === "seal",
      );
      const required = Object.entries(m.programs).filter(([, p]) => p.required_for_readiness);
      if (seals.length === 0 && required.length > 0)
        yield {
          path: "programs",
          message: `programs ${required.map(([n]) => n).join(", ")} are required for readiness but no program runs "kruxos seal"`,
        };
      if (seals.length > 1)
        yield {
          path: `programs.${seals[1]?.[0]}`,
          message: `more than one program runs "kruxos seal"`,
        };
    },
  },
  {
    code: "E008",
    severity: "error",
    title: "The seal program cannot be required for readiness",
    *check(m) {
      for (const [name, p] of Object.entries(m.programs))
        if (kruxosVerb(p.command)?.verb === "seal" && p.required_for_readiness)
          yield {
            path: `programs.${name}.required_for_readiness`,
            message: "the seal would wait for itself; set it to false",
          };
    },
  },
  {
    code: "E009",
    severity: "error",
    title: "Unknown capability category",
    *check(m) {
      for (const [i, c] of m.capabilities.enabled.entries())
        if (!CAPABILITY_CATEGORIES.includes(c))
          yield {
            path: `capabilities.enabled.${i}`,
            message: `"${c}" is not a capability category (known: ${CAPABILITY_CATEGORIES.join(", ")})`,
          };
    },
  },
  {
    code: "E010",
    severity: "error",
    title: "Unknown sandbox layer",
    *check(m) {
      for (const [i, l] of m.sandbox.require.entries())
        if (!(SANDBOX_LAYERS as readonly string[]).includes(l))
          yield {
            path: `sandbox.require.${i}`,
            message: `"${l}" is not a sandbox layer (known: ${SANDBOX_LAYERS.join(", ")})`,
          };
    },
  },
  {
    code: "E011",
    severity: "error",
    title: "A port below 1024 needs the NET_BIND_SERVICE exception",
    *check(m) {
      const granted = activeExceptions(m).some(([, ex]) => ex.cap_add.includes("NET_BIND_SERVICE"));
      if (granted) return;
      for (const l of listeners(m))
        if (l.port < 1024)
          yield {
            path: l.path,
            message: `port ${l.port} is privileged and the appliance runs as a non-root user; use a port >= 1024 or an enabled exception with cap_add = ["NET_BIND_SERVICE"]`,
          };
    },
  },
  {
    code: "E012",
    severity: "error",
    title: "The gateway program is missing",
    *check(m) {
      const hasGateway = Object.values(m.programs).some((p) => {
        const v = kruxosVerb(p.command);
        return v?.verb === "serve" && v.arg === "gateway";
      });
      if (!hasGateway)
        yield { path: "programs", message: 'no program runs "kruxos serve gateway"' };
    },
  },
  {
    code: "E013",
    severity: "error",
    title: "Writable roots must not nest in read-only roots or each other",
    *check(m) {
      const p = m.paths;
      const writable: [string, string][] = [
        ["data", p.data],
        ["workspace", p.workspace],
        ["run", p.run],
        ["tmp", p.tmp],
      ];
      for (const [name, dir] of writable) {
        for (const [roName, roDir] of [
          ["app", p.app],
          ["etc", p.etc],
        ] as const)
          if (isUnder(dir, roDir) || isUnder(roDir, dir))
            yield {
              path: `paths.${name}`,
              message: `${dir} overlaps the read-only ${roName} root ${roDir}`,
            };
      }
      if (isUnder(p.data, p.workspace) || isUnder(p.workspace, p.data))
        yield {
          path: "paths.workspace",
          message: `the agents' workspace ${p.workspace} overlaps the data dir ${p.data}; agents would reach tokens, vault and audit`,
        };
    },
  },
  {
    code: "E014",
    severity: "error",
    title: "A program runs an unknown kruxos verb",
    *check(m) {
      for (const [name, p] of Object.entries(m.programs)) {
        const v = kruxosVerb(p.command);
        if (!v) continue;
        if (
          v.verb === "seal" ||
          (v.verb === "serve" && v.arg && BUILTIN_SERVE_PROGRAMS.includes(v.arg))
        )
          continue;
        yield {
          path: `programs.${name}.command`,
          message: `"${p.command}" is not a program (use "kruxos serve ${BUILTIN_SERVE_PROGRAMS.join("|")}" or "kruxos seal")`,
        };
      }
    },
  },
  {
    code: "E015",
    severity: "error",
    title: "The OTLP endpoint must be an http(s) URL",
    *check(m) {
      const e = m.observability.otlp_endpoint;
      if (e === "") return;
      let ok: boolean;
      try {
        const u = new URL(e);
        ok =
          (u.protocol === "http:" || u.protocol === "https:") &&
          u.username === "" &&
          u.password === "";
      } catch {
        ok = false;
      }
      if (!ok)
        yield {
          path: "observability.otlp_endpoint",
          message: `"${e}" is not an http(s) URL without credentials`,
        };
    },
  },
  {
    code: "W001",
    severity: "warning",
    title: "The image tag `latest` is not reproducible",
    *check(m) {
      if (m.image.tag === "latest")
        yield {
          path: "image.tag",
          message: 'tag "latest" moves; pin a version so deployments are reproducible',
        };
    },
  },
  {
    code: "W002",
    severity: "warning",
    title: "Audit in degrade mode can lose records",
    *check(m) {
      if (m.audit.fail_mode === "degrade")
        yield {
          path: "audit.fail_mode",
          message: "calls continue while audit cannot be written; only a bounded ring is kept",
        };
    },
  },
  {
    code: "W003",
    severity: "warning",
    title: "Supervision surfaces listen beyond loopback",
    *check(m) {
      if (!["127.0.0.1", "::1", "localhost"].includes(m.supervision.host))
        yield {
          path: "supervision.host",
          message: `${m.supervision.host} exposes the user API and event stream; the dashboard already proxies them`,
        };
    },
  },
  {
    code: "W004",
    severity: "warning",
    title: "The sandbox does not require its core layers",
    *check(m) {
      const missing = ["user", "mount", "pid", "net", "no_new_privs", "seccomp"].filter(
        (l) => !m.sandbox.require.includes(l),
      );
      if (missing.length > 0)
        yield {
          path: "sandbox.require",
          message: `without ${missing.join(", ")} sandboxed capabilities may run with weaker isolation on hosts lacking them`,
        };
    },
  },
  {
    code: "W005",
    severity: "warning",
    title: "Verbose logging",
    *check(m) {
      if (m.observability.log_level === "debug" || m.observability.log_level === "trace")
        yield {
          path: "observability.log_level",
          message: `"${m.observability.log_level}" logs call details; use "info" in production`,
        };
    },
  },
]);

export function runRules(m: Manifest): Finding[] {
  const out: Finding[] = [];
  for (const rule of RULES)
    for (const f of rule.check(m)) out.push({ code: rule.code, severity: rule.severity, ...f });
  return out;
}
