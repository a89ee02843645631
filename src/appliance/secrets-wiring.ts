// How the vault meets the programs that place secrets: the interception CA (created at first boot,
// its key a vault secret of the appliance's own), the proxy's view of the resolver, and the CA
// bundle sandboxes trust. Composition only: the decisions live in vault (scope) and egress
// (placement).
import { capabilityError, redactLogValues, type Logger } from "../core/index.js";
import type { AuditEntry } from "../audit/index.js";
import type { SecretInfo, SecretsPort } from "../capabilities/index.js";
import {
  createInterceptionCa,
  trustBundle,
  type CaMaterial,
  type ProxySecrets,
} from "../egress/index.js";
import { SecretResolver, Vault, type SecretMeta, type VaultStore } from "../vault/index.js";
import type { ApplianceContext } from "./context.js";
import type { Opened } from "./program-support.js";

/** The vault secret holding the interception CA (certificate and key, JSON). */
export const INTERCEPTION_CA_SECRET = "kruxos.egress-ca";

/** Create the interception CA when the store has none; true when it was created. */
export async function ensureInterceptionCa(
  store: VaultStore,
  applianceName: string,
): Promise<boolean> {
  if (
    store
      .list({ appliance: true })
      .some((m) => m.name === INTERCEPTION_CA_SECRET && m.revoked_at === null)
  )
    return false;
  const ca = await createInterceptionCa(`KruxOS egress interception CA (${applianceName})`);
  store.add(
    INTERCEPTION_CA_SECRET,
    Buffer.from(JSON.stringify(ca), "utf8"),
    { agents: [], capabilities: [], hosts: [] },
    {
      appliance: true,
      description: "the appliance's TLS interception CA (certificate and private key)",
    },
  );
  return true;
}

/**
 * What a program holding the vault (the gateway, the proxy) opens: the store under the key source,
 * its resolver, log lines redacted by content from then on, and the interception CA. A vault that
 * cannot be opened is its failing health, not a failed start.
 */
export function openProgramVault(
  ctx: ApplianceContext,
  log: Logger,
  opened: Opened,
): { vault: Vault; resolver: SecretResolver; ca: CaMaterial | undefined } {
  const p = ctx.paths;
  const vault = opened.add(
    "vault",
    Vault.open({
      file: p.vaultDb,
      secretsDir: p.secretsDir,
      keySource: ctx.loaded.manifest.vault.key_source,
    }),
    (v) => v.close(),
  );
  const resolver = new SecretResolver(vault);
  redactLogValues(() => resolver.all());
  return { vault, resolver, ca: interceptionCa(vault, log) };
}

/** The interception CA, or undefined while the vault is closed or holds none (logged). */
export function interceptionCa(vault: Vault, log: Logger): CaMaterial | undefined {
  const store = vault.store;
  if (!store) return undefined;
  try {
    const { value } = store.reveal(INTERCEPTION_CA_SECRET, undefined, { touch: false });
    try {
      const ca = JSON.parse(value.toString("utf8")) as CaMaterial;
      return { certPem: ca.certPem, keyPem: ca.keyPem };
    } finally {
      value.fill(0);
    }
  } catch (err) {
    log.warn(
      { event: "InterceptionCaUnavailable", err: (err as Error).message },
      "no interception CA: HTTPS requests with secret placeholders cannot be served",
    );
    return undefined;
  }
}

/** The resolver as the egress proxy asks it: always for one call and one destination. */
export function proxySecrets(resolver: SecretResolver): ProxySecrets {
  const use = (who: { agent: string; capability: string }, host: string, port: number) => ({
    agent: who.agent,
    capability: who.capability,
    host: host.replace(/^\[|\]$/g, ""),
    port,
  });
  return {
    covers: (who, host, port) => resolver.covers(use(who, host, port)),
    resolve: (who, host, port, names) => resolver.resolve(names, use(who, host, port)),
    redactor: (who, host, port) => resolver.redactor(use(who, host, port)),
  };
}

/** The bundle sandboxes trust: the system roots and the interception CA. */
export function sandboxCaBundle(ca: CaMaterial): string {
  return `${trustBundle([ca.certPem]).join("\n")}\n`;
}

function infoOf(m: SecretMeta): SecretInfo {
  return {
    name: m.name,
    ...(m.description !== null ? { description: m.description } : {}),
    version: m.version,
    created_at: m.created_at,
    rotated_at: m.rotated_at,
    capabilities: m.scope.capabilities,
    hosts: m.scope.hosts,
    rotatable: m.rotatable,
  };
}

/**
 * The secrets port of the capability handlers: metadata, scope checks and rotation, each use and
 * rotation an audit record. Never a value.
 */
export function secretsPort(
  vault: Vault,
  resolver: SecretResolver,
  record: (entry: AuditEntry) => void,
): SecretsPort {
  const visible = (agent: string, name: string, capability: string): SecretMeta => {
    const m = vault.visibleTo(agent).find((x) => x.name === name);
    if (!m)
      throw capabilityError("NotFound", capability, `secret "${name}" is not available to you`, [
        { action: "use_other_capability", description: "Check the names with secrets.list." },
      ]);
    return m;
  };
  return {
    visibleTo: (agent) => vault.visibleTo(agent).map(infoOf),
    use(who, name, purpose, target) {
      const m = visible(who.agent, name, "secrets.use");
      if (target.capability !== undefined) {
        const r = resolver.check(name, {
          agent: who.agent,
          capability: target.capability,
          ...(target.host !== undefined && target.port !== undefined
            ? { host: target.host, port: target.port }
            : {}),
        });
        if ("reason" in r)
          throw capabilityError(
            "SecretDenied",
            "secrets.use",
            r.message,
            [
              {
                action: "fix_inputs",
                description:
                  "Use a capability and host listed in the secret's scope (secrets.list).",
              },
              { action: "ask_operator", description: "Ask an operator to widen the scope." },
            ],
            { secret: name, reason: r.reason },
          );
      }
      record({
        kind: "vault.use",
        agent: who.agent,
        session: who.session,
        capability: "secrets.use",
        outcome: { status: "ok" },
        detail: {
          call: who.callId,
          secret: name,
          version: m.version,
          purpose,
          for_capability: target.capability ?? null,
          destination: target.host !== undefined ? `${target.host}:${target.port ?? 443}` : null,
        },
      });
      return infoOf(m);
    },
    rotate(who, name, value, reason) {
      const m = visible(who.agent, name, "secrets.rotate");
      if (!m.rotatable)
        throw capabilityError(
          "NotRotatable",
          "secrets.rotate",
          `secret "${name}" is not rotatable by agents; an operator rotates it (kruxos vault rotate)`,
          [
            {
              action: "ask_operator",
              description: "Ask an operator to rotate it with kruxos vault rotate.",
            },
          ],
        );
      const store = vault.store;
      if (!store)
        throw capabilityError("Unavailable", "secrets.rotate", "the vault is unavailable", []);
      const after = store.rotate(name, value);
      record({
        kind: "vault.rotate",
        agent: who.agent,
        session: who.session,
        capability: "secrets.rotate",
        outcome: { status: "ok" },
        detail: { call: who.callId, secret: name, version: after.version, reason },
      });
      return {
        version: after.version,
        previous_version: m.version,
        rotated_at: after.rotated_at ?? new Date().toISOString(),
      };
    },
  };
}
