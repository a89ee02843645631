// compose.yaml and run.sh: the hardened run of SPEC §16 from one description of it, so the two
// can never disagree about the baseline.
import { stringify as toYaml } from "yaml";
import { appLayout } from "../paths.js";
import { activeExceptions } from "../rules.js";
import type { Manifest } from "../types.js";

interface HardenedRun {
  image: string;
  user: string;
  uid: string;
  gid: string;
  capAdd: string[];
  devices: string[];
  securityOpt: string[];
  tmp: { path: string; opts: string };
  run: { path: string; opts: string };
  volumes: { name: string; target: string }[];
  ports: number[];
  memoryMb: number;
  pidsLimit: number;
  nofile: number;
  nproc: number;
  health: string[];
}

function hardenedRun(m: Manifest): HardenedRun {
  const [uid = "1000", gid = "1000"] = m.image.user.split(":");
  const active = activeExceptions(m);
  const uniq = (xs: string[]): string[] => [...new Set(xs)].sort();
  const securityOpt = ["no-new-privileges:true"];
  if (m.security.seccomp !== "default") securityOpt.push(`seccomp=${m.security.seccomp}`);
  return {
    image: `${m.image.name}:${m.image.tag}`,
    user: m.image.user,
    uid,
    gid,
    capAdd: uniq(active.flatMap(([, e]) => [...e.cap_add])),
    devices: uniq(active.flatMap(([, e]) => [...e.devices])),
    securityOpt: [...securityOpt, ...uniq(active.flatMap(([, e]) => [...e.security_opt]))],
    tmp: { path: m.paths.tmp, opts: `rw,nosuid,nodev,size=${m.security.tmp_size_mb}m,mode=1777` },
    run: {
      path: m.paths.run,
      opts: `rw,nosuid,nodev,noexec,size=${m.security.run_size_mb}m,mode=0755`,
    },
    volumes: [
      { name: "kruxos-data", target: m.paths.data },
      { name: "kruxos-workspace", target: m.paths.workspace },
    ],
    ports: [m.gateway.port, m.dashboard.port, m.observability.metrics_port],
    memoryMb: m.security.memory_mb,
    pidsLimit: m.security.pids_limit,
    nofile: m.security.nofile,
    nproc: m.security.nproc,
    health: [appLayout(m.paths.app).command, "health", "--ready", "--quiet"],
  };
}

function header(kind: string, sha: string, comment: string): string {
  return `${comment} ${kind} rendered from kruxos.toml (sha256 ${sha}) by \`kruxos config render\`. Do not edit.\n`;
}

export function renderCompose(m: Manifest, manifestSha256: string): string {
  const r = hardenedRun(m);
  const service: Record<string, unknown> = {
    image: r.image,
    user: r.user,
    read_only: true,
    cap_drop: ["ALL"],
    ...(r.capAdd.length ? { cap_add: r.capAdd } : {}),
    ...(r.devices.length ? { devices: r.devices } : {}),
    security_opt: r.securityOpt,
    tmpfs: [`${r.tmp.path}:${r.tmp.opts}`, `${r.run.path}:${r.run.opts},uid=${r.uid},gid=${r.gid}`],
    volumes: r.volumes.map((v) => `${v.name}:${v.target}`),
    ports: r.ports.map((p) => `${p}:${p}`),
    mem_limit: `${r.memoryMb}m`,
    pids_limit: r.pidsLimit,
    ulimits: {
      nofile: { soft: r.nofile, hard: r.nofile },
      nproc: { soft: r.nproc, hard: r.nproc },
    },
    healthcheck: {
      test: ["CMD", ...r.health],
      interval: "10s",
      timeout: "5s",
      retries: 3,
      start_period: "60s",
    },
    stop_grace_period: "30s",
  };
  const doc = {
    name: m.appliance.name,
    services: { kruxos: service },
    volumes: Object.fromEntries(r.volumes.map((v) => [v.name, {}])),
  };
  return header("compose.yaml", manifestSha256, "#") + toYaml(doc, { lineWidth: 0 });
}

/** POSIX sh single-quoting. */
function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function renderRunSh(m: Manifest, manifestSha256: string): string {
  const r = hardenedRun(m);
  const args: string[] = [
    `--user ${q(r.user)}`,
    "--read-only",
    "--cap-drop ALL",
    ...r.capAdd.map((c) => `--cap-add ${q(c)}`),
    ...r.devices.map((d) => `--device ${q(d)}`),
    ...r.securityOpt.map((o) => `--security-opt ${q(o)}`),
    `--tmpfs ${q(`${r.tmp.path}:${r.tmp.opts}`)}`,
    `--tmpfs "${r.run.path}:${r.run.opts}\${RUN_TMPFS_OWNER}"`,
    ...r.volumes.map(
      (v) =>
        `--volume "\${KRUXOS_${v.name === "kruxos-data" ? "DATA" : "WORKSPACE"}_VOLUME:-${v.name}}:${v.target}"`,
    ),
    ...(r.ports.length ? ["${PUBLISH}"] : []),
    `--memory ${r.memoryMb}m`,
    `--pids-limit ${r.pidsLimit}`,
    `--ulimit nofile=${r.nofile}:${r.nofile}`,
    `--ulimit nproc=${r.nproc}:${r.nproc}`,
    `--health-cmd ${q(JSON.stringify(r.health))}`,
    "--health-interval 10s",
    "--health-timeout 5s",
    "--health-retries 3",
    "--health-start-period 60s",
  ];
  return [
    "#!/bin/sh",
    header("run.sh", manifestSha256, "#").trimEnd(),
    "# The hardened run of the appliance with podman (default) or docker:",
    "#   KRUXOS_ENGINE=docker ./run.sh          use docker",
    '#   KRUXOS_ENGINE_ARGS="--runtime runc"    global engine options (before `run`)',
    "#   KRUXOS_IMAGE=ref                       another image reference",
    "#   KRUXOS_NO_PUBLISH=1                    publish no ports (e.g. with --network none)",
    "#   ./run.sh -d --name kruxos              extra `run` options go before the image",
    "set -eu",
    'ENGINE="${KRUXOS_ENGINE:-podman}"',
    `IMAGE="\${KRUXOS_IMAGE:-${r.image}}"`,
    "# podman chowns a tmpfs to the container user with U; docker takes uid=/gid=.",
    `if [ "$(basename "$ENGINE")" = podman ]; then RUN_TMPFS_OWNER=",U"; else RUN_TMPFS_OWNER=",uid=${r.uid},gid=${r.gid}"; fi`,
    `PUBLISH="${r.ports.map((p) => `--publish ${p}:${p}`).join(" ")}"`,
    'if [ -n "${KRUXOS_NO_PUBLISH:-}" ]; then PUBLISH=""; fi',
    "# shellcheck disable=SC2086 # KRUXOS_ENGINE_ARGS and PUBLISH are word lists by design",
    'exec "$ENGINE" ${KRUXOS_ENGINE_ARGS:-} run --rm \\',
    ...args.map((a) => `  ${a} \\`),
    '  "$@" \\',
    '  "$IMAGE"',
    "",
  ].join("\n");
}
