// The proxy program: the egress proxy on its TCP port and its unix socket. It reads the same policy
// files as the gateway and follows their reloads itself; its audit records (connections, refusals)
// go through the gateway's intake, the log's single writer.
import { readFileSync } from "node:fs";
import { LeafIssuer, createProxy, type InterceptionOptions } from "../egress/index.js";
import { openProgramVault, proxySecrets } from "./secrets-wiring.js";
import { openPolicyEngine } from "../policy/index.js";
import { auditThroughGateway } from "./audit-intake.js";
import { close, listen } from "./net.js";
import {
  egressKey,
  intakeRefusals,
  starting,
  type ProgramRuntime,
  type RunningProgram,
} from "./program-support.js";

export function startProxy({ ctx, log, registry }: ProgramRuntime): Promise<RunningProgram> {
  const m = ctx.loaded.manifest;
  const p = ctx.paths;
  return starting(log, async (opened) => {
    const policy = opened.add("policy", openPolicyEngine(m, p), (e) => e.close());
    policy.on("reload", (r) => {
      if (!r.ok)
        log.error(
          { event: "PolicyRejected", generation: r.generation },
          "policy rejected; the proxy keeps the previous generation",
        );
    });
    policy.reload();
    if (m.policy.reload) opened.add("policy watcher", policy.watch(), (stop) => stop());
    const refusals = opened.add("refusals", intakeRefusals(ctx, log, registry), (r) => r.close());
    // Secret placement: the proxy reads the vault itself (values never cross a socket), and
    // opens up only tunnels toward hosts a secret's scope names for the call.
    const { vault, resolver, ca } = openProgramVault(ctx, log, opened);
    const leaves = ca ? await LeafIssuer.create(ca) : undefined;
    const interception: InterceptionOptions | undefined = vault.store
      ? {
          secrets: proxySecrets(resolver),
          leaf: async (host) => {
            if (!leaves) throw new Error("no interception CA");
            return leaves.leaf(host);
          },
          upstreamCa: m.proxy.upstream_ca_files.map((f) => readFileSync(f, "utf8")),
        }
      : undefined;
    const proxy = createProxy({
      log,
      registry,
      policy,
      credentialKey: egressKey(ctx),
      audit: auditThroughGateway(p.auditSocket),
      onFault: (f) => refusals.fault(f),
      ...(interception ? { interception } : {}),
    });
    const tcp = opened.add("proxy TCP listener", proxy.server(), close);
    const unix = opened.add("proxy socket", proxy.server(), close);
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
  });
}
