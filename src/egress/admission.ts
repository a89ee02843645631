// Admission: whether one agent may open one connection to one target, and to which addresses. The
// order is the argument: policy on the host as written (layered, default deny), then names that
// mean this machine, then DNS — resolved exactly once, every answer classified — and the answer is
// the list of addresses the connection is pinned to. A hostname rule never unlocks a non-public
// address; only an allow rule that names the literal address does.
import type { EgressDecision } from "../policy/index.js";
import {
  classify,
  isLocalhostName,
  parseIp,
  unmap,
  type AddressClass,
  type Classification,
  type IpAddress,
} from "./addresses.js";
import type { Target } from "./targets.js";

/** What egress needs from the policy engine (PolicyEngine implements it). */
export interface EgressPolicy {
  egressDecision(agent: string, host: string, port: number): EgressDecision;
  /** Whether the agent may reach `host` on at least one port (PolicyEngine has it). */
  egressHostAllowed?(agent: string, host: string): boolean;
}

export type Resolve = (host: string) => Promise<readonly { address: string; family: number }[]>;

/** The structured 403 body of SPEC §8. */
export interface Denial {
  readonly error: "policy_denied";
  readonly policy: string;
  readonly rule: string;
  readonly detail: string;
}

export type Admission =
  | {
      readonly ok: true;
      readonly decision: EgressDecision;
      /** Pinned: the connection goes to these, in this order, and nowhere else. */
      readonly addresses: readonly IpAddress[];
      /** The allow rule names the literal address (an IP target). */
      readonly explicit: boolean;
    }
  | {
      readonly ok: false;
      readonly status: 403;
      readonly denial: Denial;
      readonly decision: EgressDecision | undefined;
      /** The address class that refused it, or "policy". */
      readonly reason: string;
      readonly address?: string;
    }
  | {
      readonly ok: false;
      readonly status: 502 | 504;
      readonly error: "dns_error" | "dns_timeout" | "dns_not_found";
      readonly detail: string;
      readonly decision: EgressDecision;
      readonly reason: string;
    };

/** Classes no rule can unlock: there is nothing sensible to connect to there. */
const NEVER: ReadonlySet<AddressClass> = new Set(["unspecified", "multicast", "broadcast"]);

/** The policy name in a denial: the layer that decided, "default" for default deny. */
function policyName(d: EgressDecision): string {
  return d.rule === "default-deny" ? "default" : d.layer;
}

function where(d: EgressDecision): string {
  return d.file ? ` (${d.file}:${d.line})` : "";
}

export function policyDenial(d: EgressDecision, what: string): Denial {
  return {
    error: "policy_denied",
    policy: policyName(d),
    rule: d.rule,
    detail:
      d.rule === "default-deny"
        ? `egress to ${what} is not allowed by any policy layer`
        : `egress to ${what} is denied by rule ${d.rule} in the ${d.layer} layer${where(d)}`,
  };
}

function addressDenial(c: Classification, shown: string, why: string): Denial {
  const via = c.via ? ` (${c.via} form of ${c.embedded ?? "?"})` : "";
  return {
    error: "policy_denied",
    policy: "addresses",
    rule: `${c.cls}-address`,
    detail: `${why} ${shown}${via}: ${c.cls} addresses are refused unless an allow rule names the address itself`,
  };
}

/** Does the rule text ("127.0.0.1:8080", "[::1]:80") name exactly this address? */
export function ruleNamesAddress(rule: string, ip: IpAddress): boolean {
  const colon = rule.lastIndexOf(":");
  if (colon <= 0) return false;
  const named = parseIp(rule.slice(0, colon));
  return named !== undefined && unmap(named).text === unmap(ip).text;
}

/** Ports tried to name the allowing rule in records (and as the answer without egressHostAllowed). */
const COMMON_PORTS = [443, 80, 22, 21, 25, 53, 465, 587, 993, 995, 8080, 8443, 9418] as const;

/**
 * Whether policy allows `host` on some port, as a decision for the records; used before DNS-only
 * questions (/v1/resolve). Without egressHostAllowed only the common ports are tried.
 */
export function hostDecision(policy: EgressPolicy, agent: string, host: string): EgressDecision {
  let first: EgressDecision | undefined;
  for (const port of COMMON_PORTS) {
    const d = policy.egressDecision(agent, host, port);
    if (d.allowed) return d;
    first ??= d;
  }
  const denied = first as EgressDecision;
  if (policy.egressHostAllowed?.(agent, host))
    return { ...denied, allowed: true, rule: "some-port", layer: "policy", file: "", line: 0 };
  return denied;
}

function timeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            Object.assign(new Error(`DNS lookup took longer than ${ms} ms`), { code: "ETIMEOUT" }),
          ),
        ms,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

export async function admit(
  policy: EgressPolicy,
  resolve: Resolve,
  agent: string,
  target: Target,
  dnsTimeoutMs: number,
): Promise<Admission> {
  const decision = policy.egressDecision(agent, target.policyHost, target.port);
  if (!decision.allowed)
    return {
      ok: false,
      status: 403,
      denial: policyDenial(decision, target.text),
      decision,
      reason: "policy",
    };
  const h = target.host;
  if (h.kind === "ip") {
    const c = classify(h.ip);
    // An IP target needs a rule naming it: a "*.1:80" wildcard is no grant for 127.0.0.1.
    const explicit = ruleNamesAddress(decision.rule, h.ip);
    if (!explicit || NEVER.has(c.cls)) {
      const denial: Denial =
        c.cls !== "public"
          ? addressDenial(c, h.ip.text, "the target is")
          : {
              error: "policy_denied",
              policy: "addresses",
              rule: "address-not-named",
              detail: `an IP address target needs an allow rule naming ${target.text}; ${decision.rule} does not`,
            };
      return { ok: false, status: 403, denial, decision, reason: c.cls, address: h.ip.text };
    }
    return { ok: true, decision, addresses: [unmap(h.ip)], explicit: true };
  }
  if (isLocalhostName(h.name))
    return {
      ok: false,
      status: 403,
      denial: addressDenial({ cls: "loopback" }, h.name, "this machine is named"),
      decision,
      reason: "loopback",
    };
  let answers: readonly { address: string; family: number }[];
  try {
    answers = await timeout(resolve(h.name), dnsTimeoutMs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "";
    const timedOut = code === "ETIMEOUT" || code === "ETIMEDOUT" || code === "EAI_AGAIN";
    const notFound = code === "ENOTFOUND" || code === "ENODATA";
    return {
      ok: false,
      status: timedOut ? 504 : 502,
      error: timedOut ? "dns_timeout" : notFound ? "dns_not_found" : "dns_error",
      detail: `cannot resolve ${h.name}: ${code || (err as Error).message}`,
      decision,
      reason: timedOut ? "dns_timeout" : `dns:${code || "error"}`,
    };
  }
  if (answers.length === 0)
    return {
      ok: false,
      status: 502,
      error: "dns_not_found",
      detail: `${h.name} has no addresses`,
      decision,
      reason: "dns:ENODATA",
    };
  const addresses: IpAddress[] = [];
  for (const a of answers) {
    const ip = parseIp(a.address);
    if (!ip)
      return {
        ok: false,
        status: 502,
        error: "dns_error",
        detail: `the resolver returned a malformed address for ${h.name}`,
        decision,
        reason: "dns:malformed",
      };
    const c = classify(ip);
    // Any refused answer refuses the whole name: an answer set mixing public and private
    // addresses is how rebinding attacks look, and trying "the good one" invites races.
    if (c.cls !== "public")
      return {
        ok: false,
        status: 403,
        denial: addressDenial(c, ip.text, `${h.name} resolves to`),
        decision,
        reason: c.cls,
        address: ip.text,
      };
    addresses.push(unmap(ip));
  }
  return { ok: true, decision, addresses, explicit: false };
}
