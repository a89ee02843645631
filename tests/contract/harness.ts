// One way to start the appliance for a contract test, in host mode (`kruxos up` as a process) or
// as the real image under podman (the generated run.sh). Each guarantee is written once against
// the Appliance interface and runs in both modes; image mode is skipped with its reason when
// podman or the image is missing.
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { after, before } from "node:test";
import { parse as parseToml, stringify as toToml } from "smol-toml";
import { renderAll, validateManifestText } from "../../src/config/index.js";
import {
  CLI,
  REPO,
  freePorts,
  httpGet,
  run,
  runCli,
  spawnLogged,
  tempDir,
  type Spawned,
} from "../helpers/repo.js";

export type Mode = "host" | "image";
export const MODES: readonly Mode[] = ["host", "image"];

export type ManifestObject = Record<string, Record<string, unknown>>;

/** The default manifest as an object, to edit per test. */
export function defaultManifest(): ManifestObject {
  return parseToml(
    readFileSync(path.join(REPO, "kruxos.toml"), "utf8"),
  ) as unknown as ManifestObject;
}

/** Give every listener a free port so tests never collide with each other or a running appliance. */
/** The manifest plus a program `never` required for readiness, and the seal's timeout. */
function withRequiredProgram(
  m: ManifestObject,
  sealTimeoutS: number,
  never: { command: string; startsecs: number; startretries: number },
): ManifestObject {
  return {
    ...m,
    programs: {
      ...m.programs,
      never: { ...never, priority: 50, required_for_readiness: true, autorestart: false },
    },
    appliance: { ...m.appliance, seal_timeout_s: sealTimeoutS },
  };
}

/**
 * A required program that never runs (`/bin/false`): it goes FATAL. In the image the seal waits
 * for it until `sealTimeoutS` passes; host mode ends with exit 1 (host-mode-fails-loudly.test.ts).
 */
export function withProgramThatNeverRuns(
  m: ManifestObject,
  sealTimeoutS: number,
  startretries: number,
): ManifestObject {
  return withRequiredProgram(m, sealTimeoutS, {
    command: "/bin/false",
    startsecs: 1,
    startretries,
  });
}

/**
 * A required program that stays STARTING (it lives, but not for `startsecs`) for the whole test:
 * it holds the seal back in both modes.
 */
export function withProgramThatStaysStarting(
  m: ManifestObject,
  sealTimeoutS: number,
): ManifestObject {
  return withRequiredProgram(m, sealTimeoutS, {
    command: "/bin/sleep 3600",
    startsecs: 3600,
    startretries: 0,
  });
}

export async function withFreePorts(m: ManifestObject): Promise<ManifestObject> {
  const [gw, ws, api, dash, proxy, metrics] = await freePorts(6);
  return {
    ...m,
    gateway: { ...m.gateway, port: gw },
    supervision: { ...m.supervision, ws_port: ws, api_port: api },
    dashboard: { ...m.dashboard, port: dash },
    proxy: { ...m.proxy, port: proxy },
    observability: { ...m.observability, metrics_port: metrics },
  };
}

export function manifestText(m: ManifestObject): string {
  const text = toToml(m);
  const r = validateManifestText(text);
  if (!r.manifest) throw new Error(`test manifest invalid: ${JSON.stringify(r.findings)}`);
  return text;
}

export interface Fetched {
  readonly status: number;
  readonly body: string;
  readonly ms: number;
}

export interface Appliance {
  readonly mode: Mode;
  /** The podman container name (image mode). */
  readonly container?: string;
  /** Host mode: the home folder and the manifest file the appliance runs with. */
  readonly home?: string;
  /** Host mode: the appliance's pid. */
  readonly pid?: number;
  readonly manifestFile?: string;
  readonly manifest: ManifestObject;
  /** GET a path on one of the appliance's ports, from where the appliance runs. */
  get(port: number, urlPath: string): Promise<Fetched>;
  /** Parsed JSON log lines so far. */
  logLines(): Promise<Record<string, unknown>[]>;
  logText(): Promise<string>;
  sentinelExists(): Promise<boolean>;
  /** Resolves with the exit code when the appliance exits by itself (or null on timeout). */
  waitExit(timeoutMs: number): Promise<number | null>;
  /** Stop (SIGTERM) and return the exit code. */
  stop(): Promise<number | null>;
  readonly cleanup: () => Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// host mode

export interface HostOptions {
  /** Run a copy of the app (for tests that remove an artifact). */
  readonly appDir?: string;
  /** Extra environment for the appliance process (canaries, overrides). */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Run on this home folder instead of a fresh one, so a test can restart the appliance on the
   * same data (audit log, state, agents). The caller owns it: `cleanup` leaves it in place.
   */
  readonly home?: string;
}

export async function startHost(m: ManifestObject, opts: HostOptions = {}): Promise<Appliance> {
  const tmp = tempDir("kruxos-contract-");
  const home = opts.home ?? path.join(tmp.dir, "home");
  const file = path.join(tmp.dir, "kruxos.toml");
  writeFileSync(file, manifestText(m));
  const cli = opts.appDir ? path.join(opts.appDir, "bin", "kruxos") : CLI;
  const proc: Spawned = spawnLogged(
    process.execPath,
    [cli, "up", "--home", home, "--manifest", file],
    {
      env: { KRUXOS_HOME: "", KRUXOS_MANIFEST: "", ...opts.env },
    },
  );
  let exitCode: number | null | undefined;
  void proc.exited.then((e) => (exitCode = e.code));
  return {
    mode: "host",
    home,
    ...(proc.child.pid !== undefined ? { pid: proc.child.pid } : {}),
    manifestFile: file,
    manifest: m,
    get: (port, p) => httpGet(`http://127.0.0.1:${port}${p}`),
    logLines: async () => proc.lines,
    logText: async () => proc.text(),
    sentinelExists: async () => existsSync(path.join(home, "run", "bootstrap.done")),
    waitExit: async (ms) => {
      const t = new Promise<null>((r) => setTimeout(() => r(null), ms).unref());
      const e = await Promise.race([proc.exited.then((x) => x.code), t]);
      return e;
    },
    stop: async () => {
      if (exitCode !== undefined) return exitCode;
      proc.child.kill("SIGTERM");
      return (await proc.exited).code;
    },
    cleanup: async () => {
      if (exitCode === undefined) {
        // SIGTERM, as an operator would, so child programs are stopped too (a SIGKILL would
        // orphan them, holding this test's pipes open); SIGKILL only past host mode's 10 s bound.
        proc.child.kill("SIGTERM");
        const t = setTimeout(() => proc.child.kill("SIGKILL"), 10_000);
        await proc.exited;
        clearTimeout(t);
      }
      tmp.cleanup();
    },
  };
}

/** A copy of the built app without some of its files: the "missing artifact" scenario. */
export function copyAppWithout(dir: string, omit: readonly string[]): string {
  const app = path.join(dir, "app");
  const cp = (rel: string): void => {
    const src = path.join(REPO, rel);
    const dst = path.join(app, rel);
    mkdirSync(path.dirname(dst), { recursive: true });
    cpSync(src, dst, {
      recursive: true,
      filter: (s: string) => !omit.some((o) => path.join(REPO, o) === s),
      verbatimSymlinks: true,
    });
  };
  for (const rel of [
    "package.json",
    "bin",
    "dist/src",
    "schema",
    "config",
    "native/build",
    "kruxos.toml",
  ])
    cp(rel);
  symlinkSync(path.join(REPO, "node_modules"), path.join(app, "node_modules"));
  return app;
}

// ---------------------------------------------------------------------------------------------
// image mode

export const ENGINE_ARGS = ["--runtime", "runc"];

export async function imageUnavailable(): Promise<string | undefined> {
  const ref = imageRef();
  const which = await run("sh", ["-c", "command -v podman"]);
  if (which.code !== 0)
    return "podman is not installed (CI installs it with apt-get install podman runc)";
  const exists = await run("podman", [...ENGINE_ARGS, "image", "exists", ref]);
  if (exists.code !== 0)
    return `image ${ref} is not loaded (scripts/run-tests.mjs builds it with npm run image)`;
  return undefined;
}

export function imageRef(): string {
  return process.env.KRUXOS_TEST_IMAGE ?? "localhost/kruxos:0.1.0";
}

export interface ImageOptions {
  /** Extra `run` options (before the image). */
  readonly extraArgs?: readonly string[];
  /** Publish the manifest's ports on the host (default: run with --network none, nothing published). */
  readonly publish?: boolean;
  /** Data and workspace dirs are owned by the image user unless this says otherwise. */
  readonly volumeOwner?: { uid: number; gid: number };
  /** Extra files beside the manifest, seen in the container under /etc/kruxos-test. */
  readonly manifestFiles?: Readonly<Record<string, string>>;
}

async function podman(
  args: readonly string[],
  timeoutMs = 120_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return run("podman", [...ENGINE_ARGS, ...args], { timeoutMs });
}

export async function startImage(m: ManifestObject, opts: ImageOptions = {}): Promise<Appliance> {
  const tmp = tempDir("kruxos-image-");
  const name = `kruxos-test-${randomBytes(4).toString("hex")}`;
  const text = manifestText(m);
  const r = validateManifestText(text);
  if (!r.manifest) throw new Error("invalid manifest");
  const files = renderAll(r.manifest, r.sha256);
  for (const f of files) writeFileSync(path.join(tmp.dir, f.name), f.content, { mode: f.mode });
  const manifestDir = path.join(tmp.dir, "manifest");
  mkdirSync(manifestDir);
  writeFileSync(path.join(manifestDir, "kruxos.toml"), text);
  for (const [n, content] of Object.entries(opts.manifestFiles ?? {}))
    writeFileSync(path.join(manifestDir, n), content, { mode: 0o644 });
  chmodSync(tmp.dir, 0o755);
  const owner = opts.volumeOwner ?? { uid: 1000, gid: 1000 };
  const data = path.join(tmp.dir, "data");
  const workspace = path.join(tmp.dir, "workspace");
  for (const d of [data, workspace]) {
    mkdirSync(d);
    chownSync(d, owner.uid, owner.gid);
  }
  const args = [
    path.join(tmp.dir, "run.sh"),
    "-d",
    // Keep the container after it exits so its logs and exit code can be read; cleanup removes it.
    "--rm=false",
    "--name",
    name,
    ...(opts.publish ? [] : ["--network", "none"]),
    "--volume",
    `${manifestDir}:/etc/kruxos-test:ro`,
    "--env",
    "KRUXOS_MANIFEST=/etc/kruxos-test/kruxos.toml",
    ...(opts.extraArgs ?? []),
  ];
  const started = await run("sh", args, {
    env: {
      KRUXOS_ENGINE: "podman",
      KRUXOS_ENGINE_ARGS: ENGINE_ARGS.join(" "),
      KRUXOS_IMAGE: imageRef(),
      KRUXOS_DATA_VOLUME: data,
      KRUXOS_WORKSPACE_VOLUME: workspace,
      ...(opts.publish ? {} : { KRUXOS_NO_PUBLISH: "1" }),
    },
  });
  if (started.code !== 0) {
    tmp.cleanup();
    throw new Error(`run.sh failed (${started.code}): ${started.stderr}`);
  }
  const logs = async (): Promise<string> => {
    const l = await podman(["logs", name]);
    return l.stdout + l.stderr;
  };
  const state = async (): Promise<{ running: boolean; exitCode: number }> => {
    const i = await podman(["inspect", "--format", "{{.State.Running}} {{.State.ExitCode}}", name]);
    const [running, code] = i.stdout.trim().split(" ");
    return { running: running === "true", exitCode: Number(code) };
  };
  return {
    mode: "image",
    container: name,
    manifest: m,
    get: async (port, p) => {
      const script = `const s=performance.now();require("http").get("http://127.0.0.1:${port}${p}",r=>{let b="";r.on("data",c=>b+=c);r.on("end",()=>console.log(JSON.stringify({status:r.statusCode,body:b,ms:performance.now()-s})))}).on("error",e=>{console.log(JSON.stringify({status:0,body:e.message,ms:0}))})`;
      const res = await podman(["exec", name, "/usr/local/bin/node", "-e", script], 30_000);
      if (res.code !== 0) return { status: 0, body: res.stderr, ms: 0 };
      return JSON.parse(res.stdout) as Fetched;
    },
    logText: logs,
    logLines: async () =>
      (await logs()).split("\n").flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      }),
    sentinelExists: async () =>
      (await podman(["exec", name, "/usr/bin/test", "-e", "/run/kruxos/bootstrap.done"])).code ===
      0,
    waitExit: async (ms) => {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        const s = await state();
        if (!s.running) return s.exitCode;
        await new Promise((r) => setTimeout(r, 250));
      }
      return null;
    },
    stop: async () => {
      await podman(["stop", "--time", "20", name]);
      return (await state()).exitCode;
    },
    cleanup: async () => {
      await podman(["rm", "--force", "--time", "5", name]);
      tmp.cleanup();
    },
  };
}

export async function inspect(name: string): Promise<Record<string, unknown>> {
  const r = await podman(["inspect", name]);
  return (JSON.parse(r.stdout) as Record<string, unknown>[])[0] ?? {};
}

export async function start(
  mode: Mode,
  m: ManifestObject,
  opts: ImageOptions & HostOptions = {},
): Promise<Appliance> {
  return mode === "host" ? startHost(m, opts) : startImage(m, opts);
}

export function portOf(m: ManifestObject, section: string, key = "port"): number {
  return Number(m[section]?.[key]);
}

export async function waitFor<T>(
  fn: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Poll /ready until 200; returns the body and the elapsed time. */
export async function waitReady(
  a: Appliance,
  timeoutMs: number,
): Promise<{ body: Record<string, unknown>; ms: number }> {
  const start = Date.now();
  const port = portOf(a.manifest, "gateway");
  const res = await waitFor(async () => {
    const r = await a.get(port, "/ready");
    return r.status === 200 ? r : undefined;
  }, timeoutMs);
  return { body: JSON.parse(res.body) as Record<string, unknown>, ms: Date.now() - start };
}

/** The operator CLI pointed at a host-mode appliance's home and manifest. */
export function operatorCli(
  a: Appliance,
): (args: readonly string[], input?: string) => ReturnType<typeof runCli> {
  return (args, input) =>
    runCli([...args, "--home", a.home ?? ""], {
      env: { KRUXOS_HOME: "", KRUXOS_MANIFEST: a.manifestFile ?? "" },
      ...(input !== undefined ? { input } : {}),
    });
}

/** A ready host-mode appliance and one agent with its token. */
export interface ReadyHost {
  readonly a: Appliance;
  readonly m: ManifestObject;
  readonly token: string;
  /** The first admin's user token (for the operator surfaces). */
  readonly adminToken: string;
  readonly cli: ReturnType<typeof operatorCli>;
}

/** A ready host-mode appliance on free ports, with one agent created through the operator CLI. */
export async function readyHostWithAgent(
  agent: string,
  edit: (m: ManifestObject) => ManifestObject = (m) => m,
  hostOpts: HostOptions = {},
): Promise<ReadyHost> {
  const m = edit(await withFreePorts(defaultManifest()));
  const a = await startHost(m, hostOpts);
  await waitReady(a, 60_000);
  const cli = operatorCli(a);
  const made = await cli(["agent", "create", agent, "--json"]);
  if (made.code !== 0) throw new Error(`agent create failed: ${made.stderr}`);
  const adminToken = readFileSync(
    path.join(a.home ?? "", "data", "secrets", "admin.token"),
    "utf8",
  ).trim();
  return { a, m, token: (JSON.parse(made.stdout) as { token: string }).token, adminToken, cli };
}

/**
 * The appliance of a whole test file: started (ready, with one agent) in `before`, removed in
 * `after`. Its fields are there once `before` has run, i.e. inside every test.
 */
export function readyHostForFile(
  agent: string,
  edit?: (m: ManifestObject) => ManifestObject,
): ReadyHost {
  const host = {} as { -readonly [K in keyof ReadyHost]: ReadyHost[K] };
  before(async () => {
    Object.assign(host, await readyHostWithAgent(agent, edit));
  });
  after(async () => {
    await host.a?.cleanup();
  });
  return host;
}
