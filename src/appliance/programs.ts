// The built-in programs: proxy, gateway, dashboard. Each starter composes subsystems into one
// listening program and returns how to stop it. The same starters run as separate processes
// under supervisord (`kruxos serve X`) and side by side in one process (`kruxos up`).
import path from "node:path";
import {
  Counter,
  Gauge,
  Histogram,
  type ComponentHealth,
  type Logger,
  type Registry,
  unixRequest,
} from "../core/index.js";
import { mapManifestPath } from "../config/index.js";
import { PolicyEngine, formatProblem, type ReloadResult } from "../policy/index.js";
import {
  CapabilityRegistry,
  createAgentHandlers,
  createFilesystemHandlers,
  createGitHandlers,
  createNetworkHandlers,
  createProcessHandlers,
  stateOf,
  createSystemHandlers,
  loadCapabilityDefinitions,
} from "../capabilities/index.js";
import { AuditLog, auditDir, type AuditEntry } from "../audit/index.js";
import { ApprovalQueue } from "../approvals/index.js";
import { deriveSubkey, vaultHealth } from "../vault/index.js";
import {
  authenticateAgent,
  integrityCheck,
  migrateAgents,
  openDatabase,
  stateHealth,
} from "../state/index.js";
import {
  createLauncher,
  delegatedCgroup,
  helperPath,
  missingRequired,
  probeSandbox,
  type SandboxDiagnosis,
} from "../sandbox/index.js";
import { createEgressClient, createProxy, mintCredential } from "../egress/index.js";
import { auditThroughGateway, serveAuditIntake } from "./audit-intake.js";
import {
  SessionRegistry,
  attachMcpWebSocket,
  registerMcpHttp,
  GatewayPipeline,
  createAgentAuthenticator,
  createAgentServer,
  Readiness,
} from "../gateway/index.js";
import {
  createDashboardServer,
  createEventStream,
  createUserApi,
  createUserAuthenticator,
  migrateUsers,
} from "../supervision/index.js";
import type { ApplianceContext } from "./context.js";
import { httpObserver, buildInfo } from "./metrics.js";
import { close, listen } from "./net.js";
import { createRefusals, type Refusals } from "./refusals.js";
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

/**
 * Timeouts and peer-fault reporting shared by a program's listeners ([gateway] header_timeout_s and
 * body_timeout_s apply to every HTTP listener of the appliance except the egress proxy).
 */
function guardOf(ctx: ApplianceContext, registry: Registry, refusals: Refusals) {
  const g = ctx.loaded.manifest.gateway;
  return {
    registry,
    onFault: (f: Parameters<Refusals["fault"]>[0]) => refusals.fault(f),
    headersTimeoutMs: g.header_timeout_s * 1000,
    requestTimeoutMs: Math.max(g.body_timeout_s, g.header_timeout_s) * 1000,
  };
}

/**
 * Refusals of a program that is not the gateway: its records reach the log through the gateway's
 * audit intake (the log's single writer); while the gateway is away they are logged only.
 */
function intakeRefusals(ctx: ApplianceContext, log: Logger, registry: Registry): Refusals {
  const append = auditThroughGateway(ctx.paths.auditSocket);
  return createRefusals({
    log,
    registry,
    audit: ctx.loaded.manifest.audit,
    record: (entry) => {
      append(entry, false).catch((err: Error) =>
        log.warn(
          { event: "AuditWriteFailed", kind: entry.kind, error: err.message },
          "refusal record not appended",
        ),
      );
    },
  });
}

/** The per-call proxy credentials' key: derived from the vault key, the same in every program. */
function egressKey(ctx: ApplianceContext): Buffer {
  return deriveSubkey(
    ctx.paths.secretsDir,
    ctx.loaded.manifest.vault.key_source,
    "kruxos/egress-credentials/v1",
  );
}

async function startProxy({ ctx, log, registry }: ProgramRuntime): Promise<RunningProgram> {
  const m = ctx.loaded.manifest;
  const p = ctx.paths;
  // The proxy reads the same policy files as the gateway and follows their reloads itself; its
  // audit records go through the gateway, the log's single writer.
  const policy = new PolicyEngine({
    files: m.policy.files.map((f) => mapManifestPath(m, p, f)),
    agentDir: path.join(p.data, "policy", "agents"),
  });
  policy.on("reload", (r) => {
    if (!r.ok) {
      log.error(
        { event: "PolicyRejected", generation: r.generation },
        "policy rejected; the proxy keeps the previous generation",
      );
    }
  });
  policy.reload();
  const stopWatching = m.policy.reload ? policy.watch() : () => undefined;
  const refusals = intakeRefusals(ctx, log, registry);
  const proxy = createProxy({
    log,
    registry,
    policy,
    credentialKey: egressKey(ctx),
    audit: auditThroughGateway(p.auditSocket),
    onFault: (f) => refusals.fault(f),
  });
  const tcp = proxy.server();
  const unix = proxy.server();
  await listen(tcp, { host: m.proxy.host, port: m.proxy.port });
  await listen(unix, { path: p.egressSocket });
  log.info(
    {
      event: "ProgramListening",
      address: `${m.proxy.host}:${m.proxy.port}`,
      socket: p.egressSocket,
    },
    "proxy listening",
  );
  return {
    close: async () => {
      stopWatching();
      await Promise.all([close(tcp), close(unix)]);
      refusals.close();
    },
  };
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

/** The appliance's own metrics of the call pipeline (SPEC §15). */
function gatewayMetrics(registry: Registry) {
  return {
    calls: new Counter({
      name: "kruxos_calls_total",
      help: "Capability calls by capability and outcome.",
      labelNames: ["capability", "outcome"],
      registers: [registry],
    }),
    duration: new Histogram({
      name: "kruxos_capability_duration_seconds",
      help: "Capability execution time.",
      labelNames: ["capability"],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: [registry],
    }),
    connections: new Gauge({
      name: "kruxos_connections",
      help: "Open agent connections by transport.",
      labelNames: ["transport"],
      registers: [registry],
    }),
  };
}

async function startGateway({ ctx, log, registry }: ProgramRuntime): Promise<RunningProgram> {
  const m = ctx.loaded.manifest;
  const p = ctx.paths;
  const agentsDb = agentsDbPath(ctx);
  const db = openDatabase(agentsDb);
  migrateUsers(db);
  migrateAgents(db);
  const integrity = integrityCheck(db);
  const sandbox = await probeSandbox(helperPath(p.app));
  const metrics = gatewayMetrics(registry);

  // The log opens before /ready exists; its health changes reach /ready through this.
  let refreshReadiness = (): void => undefined;
  // Audit first: nothing below may act without being able to record it.
  const audit = await AuditLog.open(auditDir(p.data), {
    failMode: m.audit.fail_mode,
    checkpointKey: deriveSubkey(p.secretsDir, m.vault.key_source, "kruxos/audit-checkpoints/v1"),
    checkpointEvery: m.audit.checkpoint_every,
    checkpointIntervalMs: m.audit.checkpoint_interval_s * 1000,
    registry,
    logger: log,
    // /ready follows the log at once (it re-checks every second otherwise): a halted log that
    // recovers by itself brings /ready back without waiting for a call or the next check.
    onHealthChange: () => refreshReadiness(),
  });
  const record = (entry: AuditEntry): void => {
    audit
      .append(entry)
      .catch((err: Error) =>
        log.error(
          { event: "AuditWriteFailed", kind: entry.kind, error: err.message },
          "audit write failed",
        ),
      );
  };
  const refusals = createRefusals({ log, registry, audit: m.audit, record });
  const guard = guardOf(ctx, registry, refusals);

  // Policy: compiled once, reloaded atomically; every reload and rejection is an audit record.
  const policy = new PolicyEngine({
    files: m.policy.files.map((f) => mapManifestPath(m, p, f)),
    agentDir: path.join(p.data, "policy", "agents"),
    registry,
  });
  let lastReload: ReloadResult | undefined;
  policy.on("reload", (r) => {
    lastReload = r;
    if (r.ok) {
      log.info({ event: "PolicyReloaded", generation: r.generation }, "policy loaded");
      record({
        kind: "policy.reload",
        detail: { generation: r.generation, files: r.files.length },
      });
    } else {
      const problems = r.problems.map(formatProblem);
      log.error(
        { event: "PolicyRejected", generation: r.generation, problems },
        "policy rejected; the previous generation stays in force",
      );
      record({
        kind: "config.rejected",
        detail: {
          generation: r.generation,
          problems: problems.slice(0, 5).join("; ").slice(0, 900),
        },
      });
    }
  });
  policy.reload();
  const stopWatching = m.policy.reload ? policy.watch() : () => undefined;

  const capabilities = new CapabilityRegistry(
    loadCapabilityDefinitions(path.join(p.app, "config", "capabilities")),
    {},
    {
      enabledCategories: m.capabilities.enabled,
    },
  );
  const approvalsDb = openDatabase(path.join(p.data, "approval_queue.db"));
  const approvals = new ApprovalQueue(approvalsDb, {
    maxPendingPerAgent: m.gateway.max_pending_approvals,
  });
  new Gauge({
    name: "kruxos_approvals_pending",
    help: "Approvals waiting for an operator.",
    registers: [registry],
    collect() {
      this.set(approvals.countPending());
    },
  });

  const policyFiles = m.policy.files.map((f) => mapManifestPath(m, p, f));
  const requires = [...m.gateway.ready_requires];
  const policyComponent = (): ComponentHealth => {
    if (policy.generation === 0)
      return {
        name: "policy",
        status: "failing",
        detail:
          lastReload && !lastReload.ok
            ? lastReload.problems.map(formatProblem).join("; ")
            : "no policy loaded",
      };
    const rejected = lastReload && !lastReload.ok;
    return {
      name: "policy",
      status: rejected ? "degraded" : "ok",
      ...(rejected
        ? { detail: `last reload rejected; generation ${policy.generation} stays in force` }
        : {}),
      facts: {
        generation: policy.generation,
        files: policyFiles.length,
        entries: policy.capabilities().length,
      },
    };
  };
  const readiness = new Readiness({
    sentinel: p.sentinel,
    requires,
    check: async () => [
      policyComponent(),
      audit.health(),
      vaultHealth(p.secretsDir, m.vault.key_source),
      stateHealth(db, agentsDb, integrity),
      sandboxHealth(sandbox, m.sandbox.require),
      await proxyHealth(p.egressSocket),
    ],
  });
  refreshReadiness = () => void readiness.refresh();
  await readiness.start();
  new Gauge({
    name: "kruxos_ready",
    help: "1 when GET /ready answers 200.",
    registers: [registry],
    collect() {
      this.set(readiness.ready().ready ? 1 : 0);
    },
  });
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
    capability_count: capabilities.list().length,
    policy_generation: policy.generation,
    sandbox: {
      layers: Object.entries(sandbox.layers)
        .filter(([, l]) => l.ok)
        .map(([n]) => n),
      landlock_abi: sandbox.landlock_abi,
      cgroup_mode: sandbox.cgroup_mode,
      required: m.sandbox.require,
    },
  });

  // Sessions of every transport: what agent.session reports.
  const sessions = new SessionRegistry();
  capabilities.registerAll(createFilesystemHandlers());

  // Sandboxed and network capabilities: the launcher (native helper) and the egress client are
  // the only ways they reach the kernel and the network. The network grant comes from policy in
  // each call's context (CallContext.egress); the proxy still decides every connection.
  const credentialKey = egressKey(ctx);
  // Only when the probe found a delegated cgroup v2 is one set up (the appliance moves into a
  // leaf of its own); otherwise limits are rlimits, as /health reports.
  const cgroup =
    sandbox.cgroup_mode === "delegated-v2" ? delegatedCgroup() : { dir: null, reason: null };
  if (cgroup.reason) {
    log.warn({ event: "SandboxCgroupUnavailable", reason: cgroup.reason }, "using rlimits only");
  }
  const launcher = createLauncher({
    cgroup: cgroup.dir,
    helper: helperPath(p.app),
    diagnosis: sandbox,
    require: m.sandbox.require,
    workspaceRoot: p.workspace,
    uid: m.sandbox.uid,
    rootHostUid: m.sandbox.host_uid,
    limits: {
      wall_ms: m.sandbox.limits.wall_s * 1000,
      cpu_s: m.sandbox.limits.cpu_s,
      memory_bytes: m.sandbox.limits.memory_mb * 1024 * 1024,
      pids: m.sandbox.limits.pids,
      open_files: m.sandbox.limits.open_files,
      file_size_bytes: m.sandbox.limits.file_size_mb * 1024 * 1024,
      output_bytes: m.sandbox.limits.output_bytes,
    },
    tmpMb: m.sandbox.tmp_mb,
    proxySocket: p.egressSocket,
    mintCredential: (who, ttl) => mintCredential(credentialKey, who, ttl),
    log,
    registry,
    onViolation: (who, removed) =>
      record({
        kind: "sandbox.violation",
        agent: who.agent,
        session: who.session,
        capability: who.capability,
        detail: { call: who.callId, removed: removed.slice(0, 32).join(", ").slice(0, 900) },
      }),
  });
  const weaker = launcher.weakened;
  if (weaker.length > 0) {
    log.warn(
      { event: "SandboxWeakened", layers: weaker, cgroup_mode: sandbox.cgroup_mode },
      "sandbox layers outside [sandbox].require are unavailable on this host and are not applied",
    );
    record({
      kind: "sandbox.weakened",
      detail: { layers: weaker.join(", "), cgroup_mode: sandbox.cgroup_mode },
    });
  }
  const processes = createProcessHandlers({
    launcher,
    maxBackground: m.sandbox.max_background,
    // A background run outlives its call: its end is a record of its own.
    onEnded: (rec) =>
      record({
        kind: "capability.result",
        agent: rec.agent,
        capability: "process.run",
        outcome: { status: rec.result?.exit_code === 0 ? "ok" : "error" },
        duration_ms: rec.result?.duration_ms ?? 0,
        detail: {
          process_id: rec.id,
          background: true,
          state: stateOf(rec),
          exit_code: rec.result?.exit_code ?? null,
          limit: rec.result?.limit ?? null,
        },
      }),
  });
  capabilities.registerAll(processes.handlers);
  capabilities.registerAll(createGitHandlers({ launcher }));
  capabilities.registerAll(
    createNetworkHandlers({
      egress: createEgressClient({
        proxySocket: p.egressSocket,
        mint: (who) => mintCredential(credentialKey, who, 10 * 60_000),
      }),
    }),
  );
  const intake = await serveAuditIntake(p.auditSocket, audit, guard);
  capabilities.registerAll(
    createSystemHandlers({
      meta,
      health: () => readiness.health(),
      metricsText: () => registry.metrics(),
    }),
  );
  capabilities.registerAll(
    createAgentHandlers({
      registry: capabilities,
      sessionInfo: (c) => {
        const s = sessions.get(c.session);
        return {
          transport: s?.transport ?? "rpc",
          connected_at: s?.connectedAt ?? new Date().toISOString(),
          call_count: s?.calls ?? 0,
          client: s?.client ?? null,
        };
      },
      effectiveTier: (c, name) =>
        policy.preview({ agent: c.agent, capability: name, inputs: {} }).tier,
    }),
  );

  const events = createEventStream({
    authenticate: createUserAuthenticator(db, {
      onFailure: (f) => refusals.auth("supervision_ws", f),
    }),
    version: ctx.version,
    guard,
  });
  const pipeline = new GatewayPipeline({
    registry: capabilities,
    policy,
    approvals,
    audit,
    workspaceRoot: p.workspace,
    limits: {
      maxConcurrent: m.gateway.max_concurrent_calls,
      ratePerS: m.gateway.calls_per_second,
    },
    sessions,
    log,
    events: { publish: (e) => events.publish(e) },
    metrics: {
      observeCall: (capability, outcome, seconds) => {
        metrics.calls.inc({ capability, outcome });
        metrics.duration.observe({ capability }, seconds);
      },
    },
  });
  await pipeline.resumeAccepted();
  const authenticate = createAgentAuthenticator({
    authenticate: (token) => authenticateAgent(db, token),
    onFailure: (f) => refusals.auth("agent", f),
  });
  // A -32603 reply names a reference; this is where it is logged.
  const onInternalError = (err: unknown, ref: string, method: string | undefined): void => {
    log.error(
      { event: "InternalError", ref, method: method?.slice(0, 128), err },
      "a call failed inside the appliance",
    );
  };
  const rpcLimits = {
    maxMessageBytes: m.gateway.max_message_bytes,
    maxBatch: m.gateway.max_batch,
    maxDepth: m.gateway.max_depth,
  };
  const agent = await createAgentServer({
    readiness,
    meta,
    maxMessageBytes: m.gateway.max_message_bytes,
    guard,
    onRequest: httpObserver(registry, "agent"),
    protocol: {
      authenticate,
      pipeline,
      limits: rpcLimits,
      sessions,
      maxConnectionsPerAgent: m.gateway.max_connections_per_agent,
      maxInflightPerConnection: m.gateway.max_inflight_per_connection,
      onInternalError,
      onConnectionRefused: (a) =>
        refusals.fault({
          server: "agent",
          kind: "limit",
          code: "max_connections_per_agent",
          source: a.source,
          who: a.name,
        }),
      attachMcp: (ws, a, req) => {
        attachMcpWebSocket(ws, a, pipeline, {
          version: ctx.version,
          limits: rpcLimits,
          sessions,
          maxInflight: m.gateway.max_inflight_per_connection,
          onInternalError,
          ...(req.url ? { requestUrl: req.url } : {}),
        });
      },
      routes: (app) =>
        registerMcpHttp(app, {
          authenticate: (req) => authenticate(req.raw),
          pipeline,
          limits: rpcLimits,
          version: ctx.version,
          sessions,
          onInternalError,
        }),
      onConnection: (_a, transport, open) => {
        metrics.connections.inc({ transport }, open ? 1 : -1);
      },
    },
  });
  const api = await createUserApi(
    {
      db,
      guard,
      authenticate: createUserAuthenticator(db, {
        onFailure: (f) => refusals.auth("user_api", f),
      }),
      health: () => readiness.health(),
      meta,
      onRequest: httpObserver(registry, "user_api"),
      operator: {
        db,
        approvals,
        record: (e) => audit.append(e, { durable: true }),
        publish: (e) => events.publish(e),
      },
    },
    ctx.version,
  );
  await agent.listen({ host: m.gateway.host, port: m.gateway.port });
  await api.listen({ host: m.supervision.host, port: m.supervision.api_port });
  await listen(events.server, { host: m.supervision.host, port: m.supervision.ws_port });
  log.info(
    {
      event: "ProgramListening",
      agent: `${m.gateway.host}:${m.gateway.port}`,
      user_api: m.supervision.api_port,
      supervision_ws: m.supervision.ws_port,
      capabilities: capabilities.list().length,
      policy_generation: policy.generation,
    },
    "gateway listening",
  );
  return {
    close: async () => {
      readiness.stop();
      stopWatching();
      pipeline.close();
      await Promise.all([agent.close(), api.close(), events.close()]);
      // Sandboxes end with the gateway; their results are still audited, so the intake (the
      // proxy's way into the log) closes after them and before the log itself.
      await processes.table.closeAll();
      launcher.closeAll();
      await intake.close();
      refusals.close();
      // Unwritten records (degrade mode) are reported, not allowed to abort the shutdown.
      await audit
        .close()
        .catch((err: Error) =>
          log.error(
            { event: "AuditCloseFailed", error: err.message },
            "audit log closed with unwritten records",
          ),
        );
      policy.close();
      approvalsDb.close();
      db.close();
    },
  };
}

async function startDashboard({ ctx, log, registry }: ProgramRuntime): Promise<RunningProgram> {
  const m = ctx.loaded.manifest;
  const refusals = intakeRefusals(ctx, log, registry);
  const server = createDashboardServer({
    guard: guardOf(ctx, registry, refusals),
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
  return {
    close: async () => {
      await close(server);
      refusals.close();
    },
  };
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
