// Authentication on the agent port: a Bearer agent token, through core's auth gate (a token that
// verifies always gets in; failures are reported and, past a per-source limit, answered 429).
// User (operator) tokens are refused here. Each accepted connection or request gets a session id.
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { createAuthGate, type AuthRefusalReport, type GateRefusal } from "../core/index.js";
import type { AgentAuth } from "../state/index.js";
import type { AgentIdentity } from "./pipeline-types.js";

export type AuthFailure = AuthRefusalReport;

export type AuthOutcome = { readonly ok: true; readonly agent: AgentIdentity } | GateRefusal;

export interface AgentAuthenticatorDeps {
  readonly authenticate: (token: string | undefined) => AgentAuth;
  readonly onFailure: (f: AuthFailure) => void;
  readonly maxFailures?: number;
  readonly windowMs?: number;
}

export function createAgentAuthenticator(
  deps: AgentAuthenticatorDeps,
): (req: IncomingMessage) => AuthOutcome {
  const gate = createAuthGate<string>({
    verify: (token, header) => {
      if (token?.startsWith("krx_user_")) return { ok: false, reason: "user_token_refused" };
      const auth = deps.authenticate(token);
      if (auth.ok) return { ok: true, who: auth.name };
      return { ok: false, reason: header !== undefined && !token ? "malformed" : auth.reason };
    },
    onFailure: deps.onFailure,
    hint: "send an agent token as Authorization: Bearer <64 hex>",
    ...(deps.maxFailures !== undefined ? { maxFailures: deps.maxFailures } : {}),
    ...(deps.windowMs !== undefined ? { windowMs: deps.windowMs } : {}),
  });
  return (req) => {
    const g = gate(req);
    if (!g.ok) return g;
    return {
      ok: true,
      agent: { name: g.who, session: `ses_${randomUUID().replace(/-/g, "")}`, source: g.source },
    };
  };
}
