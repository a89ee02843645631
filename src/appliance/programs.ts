// The built-in programs: proxy, gateway, dashboard. Each starter composes subsystems into one
// listening program and returns how to stop it. The same starters run as separate processes
// under supervisord (`kruxos serve X`) and side by side in one process (`kruxos up`).
import path from "node:path";
import {
  Gauge,
  type ComponentHealth,
  type Logger,
  type Registry,
  unixRequest,
} from "../core/index.js";
import { mapManifestPath } from "../config/index.js";
import { policyHealth } from "../policy/index.js";
import { auditHealth } from "../audit/index.js";
import { vaultHealth } from "../vault/index.js";
import { openDatabase, stateHealth } from "../state/index.js";
import {
  helperPath,
  missingRequired,
  probeSandbox,
  type SandboxDiagnosis,
} from "../sandbox/index.js";
import { createProxy } from "../egress/index.js";
import { createAgentServer, Readiness } from "../gateway/index.js";
import {
  createDashboardServer,
  createEventStream,
  createUserApi,
  migrateUsers,
} from "../supervision/index.js";
import type { ApplianceContext } from "./context.js";
import { httpObserver, buildInfo } from "./metrics.js";
import { close, listen } from "./net.js";
import { agentsDbPath } from "./stage-a.js";

export type BuiltinProgram = "proxy" | "gateway" | "dashboard";

export interface ProgramRuntime {
  readonly ctx: ApplianceContext;
  readonly log: Logger;
  readonly registry: Registry;
}

export interface RunningProgram {
  close(): Promise<void>;
}

async function startProxy({ ctx, log, registry }: ProgramRuntime): Promise<RunningProgram> {
  const m = ctx.loaded.manifest;
  const proxy = createProxy({ log, registry });
  const tcp = proxy.server();
  const unix = proxy.server();
  await listen(tcp, { host: m.proxy.host, port: m.proxy.port });
  await listen(unix, { path: ctx.paths.egressSocket });
  log.info(
    {
      event: "ProgramListening",
      address: `${m.proxy.host}:${m.proxy.port}`,
      socket: ctx.paths.egressSocket,
    },
    "proxy listening",
  );
  return { close: async () => void (await Promise.all([close(tcp), close(unix)])) };
}

function sandboxHealth(d: SandboxDiagnosis, required: readonly string[]): ComponentHealth {
  const missing = missingRequired(d, required);
  return {
    name: "sandbox",
    status: missing.length === 0 ? "ok" : "degraded",
    ...(missing.length
      ? {
          detail: `required layers unavailable: ${missing.join(", ")}; sandboxed capabilities refuse`,
        }
      : {}),
    facts: {
      layers: Object.entries(d.layers)
        .filter(([, l]) => l.ok)
        .map(([n]) => n),
      landlock_abi: d.landlock_abi,
      cgroup_mode: d.cgroup_mode,
    },
  };
}

async function proxyHealth(socket: string): Promise<ComponentHealth> {
  try {
    const r = await unixRequest(socket, "GET", "/livez", undefined, {}, 1000);
    return r.status === 200
      ? { name: "proxy", status: "ok" }
      : { name: "proxy", status: "failing", detail: `HTTP ${r.status}` };
  } catch (err) {
    return { name: "proxy", status: "failing", detail: (err as Error).message };
  }
}

async function startGateway({ ctx, log, registry }: ProgramRuntime): Promise<RunningProgram> {
  const m = ctx.loaded.manifest;
  const p = ctx.paths;
  const agentsDb = agentsDbPath(ctx);
  const db = openDatabase(agentsDb);
  migrateUsers(db);
  const sandbox = await probeSandbox(helperPath(p.app));
  const policyFiles = m.policy.files.map((f) => mapManifestPath(m, p, f));
  const requires = [...m.gateway.ready_requires];
  const readiness = new Readiness({
    sentinel: p.sentinel,
    requires,
    check: async () => [
      policyHealth(policyFiles),
      auditHealth(p.data, m.audit.fail_mode),
      vaultHealth(p.secretsDir, m.vault.key_source),
      stateHealth(agentsDb),
      sandboxHealth(sandbox, m.sandbox.require),
      await proxyHealth(p.egressSocket),
    ],
  });
  await readiness.start();
  const readyGauge = new Gauge({
    name: "kruxos_ready",
    help: "1 when GET /ready answers 200.",
    registers: [registry],
    collect() {
      this.set(readiness.ready().ready ? 1 : 0);
    },
  });
  void readyGauge;
  const ports = {
    agent: m.gateway.port,
    supervision_ws: m.supervision.ws_port,
    user_api: m.supervision.api_port,
    dashboard: m.dashboard.port,
    proxy: m.proxy.port,
    metrics: m.observability.metrics_port,
  };
  const meta = (): Record<string, unknown> => ({
    name: m.appliance.name,
    version: ctx.version,
    meta_version: 1,
    manifest_sha256: ctx.loaded.sha256,
    mode: ctx.mode,
    ports,
    metrics: `http://${m.observability.metrics_host === "0.0.0.0" ? "<host>" : m.observability.metrics_host}:${m.observability.metrics_port}/metrics`,
    capability_count: 0,
    policy_generation: 0,
    sandbox: {
      layers: Object.entries(sandbox.layers)
        .filter(([, l]) => l.ok)
        .map(([n]) => n),
      landlock_abi: sandbox.landlock_abi,
      cgroup_mode: sandbox.cgroup_mode,
      required: m.sandbox.require,
    },
  });
  const agent = await createAgentServer({
    readiness,
    meta,
    maxMessageBytes: m.gateway.max_message_bytes,
    onRequest: httpObserver(registry, "agent"),
  });
  const api = await createUserApi(
    { db, health: () => readiness.health(), meta, onRequest: httpObserver(registry, "user_api") },
    ctx.version,
  );
  const events = createEventStream(db, ctx.version);
  await agent.listen({ host: m.gateway.host, port: m.gateway.port });
  await api.listen({ host: m.supervision.host, port: m.supervision.api_port });
  await listen(events.server, { host: m.supervision.host, port: m.supervision.ws_port });
  log.info(
    {
      event: "ProgramListening",
      agent: `${m.gateway.host}:${m.gateway.port}`,
      user_api: m.supervision.api_port,
      supervision_ws: m.supervision.ws_port,
    },
    "gateway listening",
  );
  return {
    close: async () => {
      readiness.stop();
      await Promise.all([agent.close(), api.close(), events.close()]);
      db.close();
    },
  };
}

async function startDashboard({ ctx, log, registry }: ProgramRuntime): Promise<RunningProgram> {
  const m = ctx.loaded.manifest;
  const server = createDashboardServer({
    assetsDir: path.join(ctx.paths.app, "config", "dashboard"),
    apiPort: m.supervision.api_port,
    wsPort: m.supervision.ws_port,
    upstreamHost: m.supervision.host === "0.0.0.0" ? "127.0.0.1" : m.supervision.host,
    onRequest: httpObserver(registry, "dashboard"),
  });
  await listen(server, { host: m.dashboard.host, port: m.dashboard.port });
  log.info(
    { event: "ProgramListening", address: `${m.dashboard.host}:${m.dashboard.port}` },
    "dashboard listening",
  );
  return { close: () => close(server) };
}

type Starter = (rt: ProgramRuntime) => Promise<RunningProgram>;

const STARTERS: Readonly<Record<BuiltinProgram, Starter>> = {
  proxy: startProxy,
  gateway: startGateway,
  dashboard: startDashboard,
};

/** Start a built-in program; once it serves, `kruxos_program_up{program}` is 1 in its registry. */
async function startBuiltin(name: BuiltinProgram, rt: ProgramRuntime): Promise<RunningProgram> {
  const running = await STARTERS[name](rt);
  new Gauge({
    name: "kruxos_program_up",
    help: "1 while the program serves.",
    registers: [rt.registry],
  }).set(1);
  return running;
}

export const BUILTIN_PROGRAMS: Readonly<Record<BuiltinProgram, Starter>> = {
  proxy: (rt) => startBuiltin("proxy", rt),
  gateway: (rt) => startBuiltin("gateway", rt),
  dashboard: (rt) => startBuiltin("dashboard", rt),
};

export { buildInfo };
