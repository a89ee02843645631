// The gateway program: the data plane (agent port) and the control plane (user API, event stream),
// composed in order — the stores, then policy, then the capability handlers, readiness, the call
// pipeline, and last the listeners. Each step's resources go on one stack, so a start that fails
// halfway (a port in use) closes what it had opened, and close() unwinds it in reverse.
import type { FastifyInstance } from "fastify";
import { Counter, Gauge, Histogram, type Registry } from "../core/index.js";
import { formatProblem, openPolicyEngine } from "../policy/index.js";
import { CapabilityRegistry, loadCapabilityDefinitions } from "../capabilities/index.js";
import { AuditLog, type AuditEntry } from "../audit/index.js";
import { ApprovalQueue } from "../approvals/index.js";
import { SUBKEY_AUDIT_CHECKPOINTS, deriveSubkey } from "../vault/index.js";
import { openProgramVault } from "./secrets-wiring.js";
import {
  authenticateAgent,
  integrityCheck,
  migrateAgents,
  openDatabase,
  stateHealth,
} from "../state/index.js";
import { helperPath, probeSandbox, sandboxHealth } from "../sandbox/index.js";
import { proxyHealth } from "../egress/index.js";
import {
  GatewayPipeline,
  Readiness,
  SessionRegistry,
  attachMcpWebSocket,
  createAgentAuthenticator,
  createAgentServer,
  registerMcpHttp,
} from "../gateway/index.js";
import {
  createEventStream,
  createUserApi,
  createUserAuthenticator,
  migrateUsers,
} from "../supervision/index.js";
import { serveAuditIntake } from "./audit-intake.js";
import { registerCapabilityHandlers } from "./capability-handlers.js";
import { httpObserver } from "./metrics.js";
import { close, listen } from "./net.js";
import { guardOf, starting, type ProgramRuntime, type RunningProgram } from "./program-support.js";
import { createRefusals } from "./refusals.js";

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

/**
 * Fastify closes only a server it bound itself; these are bound through net.listen (for PortInUse),
 * so the server is closed here after the app's own close hooks have run.
 */
async function closeApp(app: FastifyInstance): Promise<void> {
  await app.close();
  await close(app.server);
}

export function startGateway({ ctx, log, registry }: ProgramRuntime): Promise<RunningProgram> {
  const m = ctx.loaded.manifest;
  const p = ctx.paths;
  return starting(log, async (opened) => {
    // 1. Stores. Audit first: nothing below may act without being able to record it.
    const agentsDb = p.agentsDb;
    const db = opened.add("agents.db", openDatabase(agentsDb), (x) => x.close());
    migrateUsers(db);
    migrateAgents(db);
    const integrity = integrityCheck(db);
    const metrics = gatewayMetrics(registry);
    // The log opens before /ready exists; its health changes reach /ready through this.
    let refreshReadiness = (): void => undefined;
    const audit = opened.add(
      "audit log",
      await AuditLog.open(p.auditDir, {
        failMode: m.audit.fail_mode,
        checkpointKey: deriveSubkey(
          p.secretsDir,
          m.vault.key_source,
          SUBKEY_AUDIT_CHECKPOINTS,
          process.env,
          p.vaultDb,
        ),
        checkpointEvery: m.audit.checkpoint_every,
        checkpointIntervalMs: m.audit.checkpoint_interval_s * 1000,
        registry,
        logger: log,
        // /ready follows the log at once: a halted log that recovers by itself brings /ready
        // back without waiting for a call or the next check.
        onHealthChange: () => refreshReadiness(),
      }),
      // Unwritten records (degrade mode) are reported, not allowed to abort the shutdown.
      (a) =>
        a
          .close()
          .catch((err: Error) =>
            log.error(
              { event: "AuditCloseFailed", error: err.message },
              "audit log closed with unwritten records",
            ),
          ),
    );
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
    const refusals = opened.add(
      "refusals",
      createRefusals({ log, registry, audit: m.audit, record }),
      (r) => r.close(),
    );
    const guard = guardOf(ctx, registry, refusals);
    // The proxy's way into the log; it closes after the sandboxes (whose connections it records)
    // and before the log itself.
    opened.add("audit intake", await serveAuditIntake(p.auditSocket, audit, guard), (i) =>
      i.close(),
    );
    const approvalsDb = opened.add("approval_queue.db", openDatabase(p.approvalsDb), (x) =>
      x.close(),
    );
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

    // The secret store. A key that does not open it is the vault's failing health, not a failed
    // start: /ready says why.
    // Sandboxes and the network capabilities trust the interception CA.
    const { vault, resolver: secrets, ca } = openProgramVault(ctx, log, opened);
    if (!vault.store)
      log.error(
        { event: "VaultUnavailable", detail: vault.health().detail },
        "the vault cannot be opened; calls that need a secret are refused",
      );

    // 2. Policy: compiled once, reloaded atomically; every reload and rejection is a record.
    const policy = opened.add("policy", openPolicyEngine(m, p, { registry }), (e) => e.close());
    policy.on("reload", (r) => {
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
    if (m.policy.reload) opened.add("policy watcher", policy.watch(), (stop) => stop());

    // 3. Capabilities and their handlers.
    const sandbox = await probeSandbox(helperPath(p.app));
    const capabilities = new CapabilityRegistry(
      loadCapabilityDefinitions(p.capabilitiesDir),
      {},
      { enabledCategories: m.capabilities.enabled },
    );
    const sessions = new SessionRegistry();
    const readiness = opened.add(
      "readiness checks",
      new Readiness({
        sentinel: p.sentinel,
        requires: [...m.gateway.ready_requires],
        check: async () => [
          policy.health(),
          audit.health(),
          vault.health(),
          stateHealth(db, agentsDb, integrity),
          sandboxHealth(sandbox, m.sandbox.require),
          await proxyHealth(p.egressSocket),
        ],
      }),
      (r) => r.stop(),
    );
    const meta = (): Record<string, unknown> => ({
      name: m.appliance.name,
      version: ctx.version,
      meta_version: 1,
      manifest_sha256: ctx.loaded.sha256,
      mode: ctx.mode,
      ports: {
        agent: m.gateway.port,
        supervision_ws: m.supervision.ws_port,
        user_api: m.supervision.api_port,
        dashboard: m.dashboard.port,
        proxy: m.proxy.port,
        metrics: m.observability.metrics_port,
      },
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
    registerCapabilityHandlers({
      ctx,
      vault,
      secrets,
      interceptionCa: ca,
      log,
      registry,
      capabilities,
      policy,
      sandbox,
      record,
      meta,
      health: () => readiness.health(),
      sessionInfo: (id) => {
        const s = sessions.get(id);
        return {
          transport: s?.transport ?? "rpc",
          connected_at: s?.connectedAt ?? new Date().toISOString(),
          call_count: s?.calls ?? 0,
          client: s?.client ?? null,
        };
      },
      opened,
    });

    // 4. Readiness.
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

    // 5. The call pipeline, and the operators' event stream it publishes to.
    const events = opened.add(
      "event stream",
      createEventStream({
        authenticate: createUserAuthenticator(db, {
          onFailure: (f) => refusals.auth("supervision_ws", f),
        }),
        version: ctx.version,
        guard,
      }),
      (e) => e.close(),
    );
    const pipeline = opened.add(
      "call pipeline",
      new GatewayPipeline({
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
        secrets,
        events: { publish: (e) => events.publish(e) },
        metrics: {
          observeCall: (capability, outcome, seconds) => {
            metrics.calls.inc({ capability, outcome });
            metrics.duration.observe({ capability }, seconds);
          },
        },
      }),
      (x) => x.close(),
    );
    await pipeline.resumeAccepted();

    // 6. The listeners: agent port, user API, event stream.
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
    const agent = opened.add(
      "agent port",
      await createAgentServer({
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
      }),
      closeApp,
    );
    const api = opened.add(
      "user API",
      await createUserApi(
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
          vault: { vault, record: (e) => audit.append(e, { durable: true }) },
        },
        ctx.version,
      ),
      closeApp,
    );
    // Bound through net.listen, so an address in use is a PortInUse that names it.
    await agent.ready();
    await listen(agent.server, { host: m.gateway.host, port: m.gateway.port });
    await api.ready();
    await listen(api.server, { host: m.supervision.host, port: m.supervision.api_port });
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
  });
}
