// The resolver: whether a secret may be used by this agent, with this capability, toward this
// destination, and its value when it may. It is the only reader of values outside the store, and
// it hands them only to the code that places them where the bytes leave (the egress proxy) and to
// the redactors that take them back out of everything that returns. A secret whose scope does not
// name the agent is, to that agent, indistinguishable from one that does not exist.
import {
  KruxError,
  Redactor,
  matchesHostPattern,
  normalHost,
  parseHostPattern,
  type HostPattern,
} from "../core/index.js";
import { APPLIANCE_PREFIX, isExpired, type SecretMeta, type SecretScope } from "./store.js";
import type { Vault } from "./vault.js";

/** Who uses a secret, with what, toward where (host and port only once a destination is known). */
export interface SecretUse {
  readonly agent: string;
  readonly capability: string;
  readonly host?: string;
  readonly port?: number;
}

/** Why a secret was refused: the part of its scope that failed, or that it is not the agent's. */
export type SecretRefusalReason = "not_available" | "capability" | "host" | "expired";

export interface SecretRefusal {
  readonly name: string;
  readonly reason: SecretRefusalReason;
  /** Safe to show the agent: never says more than the agent may know. */
  readonly message: string;
}

export interface ResolvedSecret {
  readonly name: string;
  readonly version: number;
  readonly value: string;
}

/** A capability scope entry: an exact name, `category.*`, or `*`. */
function capabilityMatches(pattern: string, capability: string): boolean {
  if (pattern === "*" || pattern === capability) return true;
  return pattern.endsWith(".*") && capability.startsWith(pattern.slice(0, -1));
}

function agentMatches(scope: SecretScope, agent: string): boolean {
  return scope.agents.includes(agent) || scope.agents.includes("*");
}

const patternCache = new Map<string, HostPattern | undefined>();
function hostPatterns(scope: SecretScope): HostPattern[] {
  const out: HostPattern[] = [];
  for (const text of scope.hosts) {
    let p = patternCache.get(text);
    if (p === undefined && !patternCache.has(text)) {
      const parsed = parseHostPattern(text);
      p = typeof parsed === "string" ? undefined : parsed;
      if (patternCache.size > 4096) patternCache.clear();
      patternCache.set(text, p);
    }
    if (p) out.push(p);
  }
  return out;
}

function hostMatches(scope: SecretScope, host: string, port: number): boolean {
  const h = normalHost(host);
  return hostPatterns(scope).some((p) => matchesHostPattern(p, h, port));
}

/** The SecretDenied error of a refusal, for a capability's caller. */
export function secretDenied(capability: string, r: SecretRefusal): KruxError {
  return new KruxError("CapabilityError", r.message, {
    type: "SecretDenied",
    capability,
    secret: r.name,
    reason: r.reason,
    recovery: [
      {
        action: "use_other_capability",
        description:
          "secrets.list shows the secrets this agent may use, their capabilities and hosts.",
      },
      {
        action: "ask_operator",
        description: "Ask an operator to add the secret or widen its scope.",
      },
    ],
  });
}

export class SecretResolver {
  private redactors = new Map<string, Redactor>();
  private mark = "";

  constructor(
    private readonly vault: Vault,
    private readonly now: () => Date = () => new Date(),
  ) {}

  private live(): SecretMeta[] {
    const store = this.vault.store;
    if (!store)
      throw new KruxError("Unavailable", "the vault is unavailable; no secret can be used", {
        component: "vault",
      });
    const at = this.now().getTime();
    return store
      .list()
      .filter(
        (m) =>
          m.revoked_at === null && !m.name.startsWith(APPLIANCE_PREFIX) && !isExpired(m.scope, at),
      );
  }

  /** The secret `name` may be used as `use` says, or the refusal saying which part failed. */
  check(name: string, use: SecretUse): SecretMeta | SecretRefusal {
    const store = this.vault.store;
    if (!store)
      throw new KruxError("Unavailable", "the vault is unavailable; no secret can be used", {
        component: "vault",
      });
    let meta: SecretMeta | undefined;
    try {
      meta = name.startsWith(APPLIANCE_PREFIX) ? undefined : store.get(name);
    } catch {
      meta = undefined;
    }
    if (!meta || meta.revoked_at !== null || !agentMatches(meta.scope, use.agent))
      return {
        name,
        reason: "not_available",
        message: `secret "${name}" is not available to you`,
      };
    if (isExpired(meta.scope, this.now().getTime()))
      return { name, reason: "expired", message: `secret "${name}" has expired` };
    if (!meta.scope.capabilities.some((c) => capabilityMatches(c, use.capability)))
      return {
        name,
        reason: "capability",
        message: `secret "${name}" may not be used with ${use.capability} (its scope names ${meta.scope.capabilities.join(", ") || "no capability"})`,
      };
    if (
      use.host !== undefined &&
      use.port !== undefined &&
      !hostMatches(meta.scope, use.host, use.port)
    )
      return {
        name,
        reason: "host",
        message: `secret "${name}" may not be sent to ${use.host}:${use.port} (its scope names ${meta.scope.hosts.join(", ") || "no host"})`,
      };
    return meta;
  }

  /** The first refusal among `names` for `use`, or undefined when every one may be used. */
  refusal(names: readonly string[], use: SecretUse): SecretRefusal | undefined {
    for (const name of names) {
      const r = this.check(name, use);
      if ("reason" in r) return r;
    }
    return undefined;
  }

  /**
   * The values of `names` for `use` (with a destination), all or none: the first refusal otherwise.
   * Values are strings because they go into HTTP text; the caller forgets them after the request.
   */
  resolve(names: readonly string[], use: SecretUse): ResolvedSecret[] | SecretRefusal {
    const r = this.refusal(names, use);
    if (r) return r;
    const store = this.vault.store;
    if (!store)
      throw new KruxError("Unavailable", "the vault is unavailable", { component: "vault" });
    return names.map((name) => {
      const { value, version } = store.reveal(name);
      try {
        return { name, version, value: value.toString("utf8") };
      } finally {
        value.fill(0);
      }
    });
  }

  /** Whether some secret may be used as `use` says (with a destination): such a tunnel is opened up. */
  covers(use: SecretUse & { readonly host: string; readonly port: number }): boolean {
    return this.live().some(
      (m) =>
        agentMatches(m.scope, use.agent) &&
        m.scope.capabilities.some((c) => capabilityMatches(c, use.capability)) &&
        hostMatches(m.scope, use.host, use.port),
    );
  }

  /** A redactor for every live secret's value, whoever may use it (for logs). Cached like below. */
  all(): Redactor {
    return this.redactor({ agent: "*", capability: "*" });
  }

  /**
   * A redactor for every value that could have been placed for `use` (agent and capability; and
   * destination when given). Cached until the store changes.
   */
  redactor(use: SecretUse): Redactor {
    const store = this.vault.store;
    if (!store) return Redactor.EMPTY;
    const mark = store.changeMark();
    if (mark !== this.mark) {
      this.redactors = new Map();
      this.mark = mark;
    }
    const key = `${use.agent}\0${use.capability}\0${use.host ?? ""}\0${use.port ?? ""}`;
    const cached = this.redactors.get(key);
    if (cached) return cached;
    const everyone = use.agent === "*" && use.capability === "*";
    const covered = this.live().filter(
      (m) =>
        everyone ||
        (agentMatches(m.scope, use.agent) &&
          m.scope.capabilities.some((c) => capabilityMatches(c, use.capability)) &&
          (use.host === undefined ||
            use.port === undefined ||
            hostMatches(m.scope, use.host, use.port))),
    );
    const redactor =
      covered.length === 0
        ? Redactor.EMPTY
        : new Redactor(
            covered.map((m) => ({
              name: m.name,
              value: store.reveal(m.name, undefined, { touch: false }).value,
            })),
          );
    if (this.redactors.size > 1024) this.redactors.clear();
    this.redactors.set(key, redactor);
    return redactor;
  }
}
