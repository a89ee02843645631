// The one place the capability handlers are registered, each with the ports it is written against:
// filesystem, agent and system in process; process and git over the sandbox launcher; network over
// the egress client. What a handler needs from the gateway (sessions, health, effective tiers)
// arrives as plain functions, so no handler reaches a store or a program by a global name.
import type { Logger, Registry } from "../core/index.js";
import {
  createAgentHandlers,
  createSecretsHandlers,
  createFilesystemHandlers,
  createGitHandlers,
  createNetworkHandlers,
  createProcessHandlers,
  createSystemHandlers,
  stateOf,
  type CapabilityRegistry,
  type ProcessCapabilities,
  type SessionInfo,
  type SystemHandlerDeps,
} from "../capabilities/index.js";
import type { AuditEntry } from "../audit/index.js";
import {
  createEgressClient,
  mintCredential,
  trustBundle,
  type CaMaterial,
} from "../egress/index.js";
import type { PolicyEngine } from "../policy/index.js";
import { secretDenied, type SecretResolver, type Vault } from "../vault/index.js";
import {
  createLauncher,
  delegatedCgroup,
  helperPath,
  type SandboxDiagnosis,
} from "../sandbox/index.js";
import type { ApplianceContext } from "./context.js";
import { egressKey, type Opened } from "./program-support.js";
import { sandboxCaBundle, secretsPort } from "./secrets-wiring.js";

export interface HandlerDeps {
  readonly ctx: ApplianceContext;
  readonly log: Logger;
  readonly registry: Registry;
  readonly capabilities: CapabilityRegistry;
  readonly policy: PolicyEngine;
  readonly sandbox: SandboxDiagnosis;
  readonly record: (entry: AuditEntry) => void;
  readonly meta: () => Record<string, unknown>;
  readonly health: SystemHandlerDeps["health"];
  readonly sessionInfo: (session: string) => SessionInfo;
  readonly opened: Opened;
  readonly vault: Vault;
  readonly secrets: SecretResolver;
  /** The interception CA, when the vault holds one. */
  readonly interceptionCa: CaMaterial | undefined;
}

/** Register every handler; returns the process table the gateway shuts down with. */
export function registerCapabilityHandlers(d: HandlerDeps): ProcessCapabilities {
  const m = d.ctx.loaded.manifest;
  const p = d.ctx.paths;
  const { capabilities, record, log } = d;
  capabilities.registerAll(createFilesystemHandlers());

  // The launcher (native helper) and the egress client are the only ways sandboxed and network
  // capabilities reach the kernel and the network. The network grant comes from policy in each
  // call's context (CallContext.egress); the proxy still decides every connection.
  const credentialKey = egressKey(d.ctx);
  // Only when the probe found a delegated cgroup v2 is one set up (the appliance moves into a
  // leaf of its own); otherwise limits are rlimits, as /health reports.
  const cgroup =
    d.sandbox.cgroup_mode === "delegated-v2" ? delegatedCgroup() : { dir: null, reason: null };
  if (cgroup.reason)
    log.warn({ event: "SandboxCgroupUnavailable", reason: cgroup.reason }, "using rlimits only");
  const launcher = d.opened.add(
    "sandbox launcher",
    createLauncher({
      cgroup: cgroup.dir,
      helper: helperPath(p.app),
      diagnosis: d.sandbox,
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
      ...(d.interceptionCa ? { caBundle: sandboxCaBundle(d.interceptionCa) } : {}),
      mintCredential: (who, ttl) => mintCredential(credentialKey, who, ttl),
      log,
      registry: d.registry,
      onViolation: (who, removed) =>
        record({
          kind: "sandbox.violation",
          agent: who.agent,
          session: who.session,
          capability: who.capability,
          detail: { call: who.callId, removed: removed.slice(0, 32).join(", ").slice(0, 900) },
        }),
    }),
    (l) => l.closeAll(),
  );
  const weaker = launcher.weakened;
  if (weaker.length > 0) {
    log.warn(
      { event: "SandboxWeakened", layers: weaker, cgroup_mode: d.sandbox.cgroup_mode },
      "sandbox layers outside [sandbox].require are unavailable on this host and are not applied",
    );
    record({
      kind: "sandbox.weakened",
      detail: { layers: weaker.join(", "), cgroup_mode: d.sandbox.cgroup_mode },
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
  // Background processes end before the launcher that ran them (the stack closes in reverse).
  d.opened.add("background processes", processes.table, (t) => t.closeAll());
  capabilities.registerAll(processes.handlers);
  capabilities.registerAll(createGitHandlers({ launcher }));
  capabilities.registerAll(
    createNetworkHandlers({
      egress: createEgressClient({
        proxySocket: p.egressSocket,
        mint: (who) => mintCredential(credentialKey, who, 10 * 60_000),
        // The proxy opens up TLS toward hosts a secret may go to; its CA is trusted beside the
        // system roots. Placeholders are checked per hop before anything is sent.
        ...(d.interceptionCa ? { ca: trustBundle([d.interceptionCa.certPem]) } : {}),
        placeholders: (who, host, port, names) => {
          const r = d.secrets.refusal(names, {
            agent: who.agent,
            capability: who.capability,
            host,
            port,
          });
          if (!r) return;
          record({
            kind: "vault.denied",
            agent: who.agent,
            session: who.session,
            capability: who.capability,
            outcome: { status: "denied", error_type: "SecretDenied" },
            detail: {
              call: who.callId,
              secret: r.name,
              reason: r.reason,
              destination: `${host}:${port}`,
            },
          });
          throw secretDenied(who.capability, r);
        },
      }),
    }),
  );
  capabilities.registerAll(
    createSystemHandlers({
      meta: d.meta,
      health: d.health,
      metricsText: () => d.registry.metrics(),
    }),
  );
  capabilities.registerAll(
    createSecretsHandlers({ secrets: secretsPort(d.vault, d.secrets, record) }),
  );
  capabilities.registerAll(
    createAgentHandlers({
      registry: capabilities,
      sessionInfo: (c) => d.sessionInfo(c.session),
      effectiveTier: (c, name) =>
        d.policy.preview({ agent: c.agent, capability: name, inputs: {} }).tier,
    }),
  );
  return processes;
}
