// Authentication on the agent port, before any upgrade or call: a Bearer agent token in the
// Authorization header. Missing, malformed, unknown or revoked tokens get 401 and an audit record;
// user tokens are refused here; repeated failures from one source get 429 for a while.
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { AgentAuth } from "../state/index.js";
import { AuthLimiter } from "./auth-limiter.js";
import type { AgentIdentity } from "./pipeline-types.js";

export interface AuthFailure {
  readonly source: string;
  readonly reason: string;
  readonly path: string;
}

export type AuthOutcome =
  | { readonly ok: true; readonly agent: AgentIdentity }
  | {
      readonly ok: false;
      readonly status: 401 | 429;
      readonly body: Record<string, unknown>;
      readonly headers: Record<string, string>;
    };

export interface AgentAuthenticatorDeps {
  readonly authenticate: (token: string | undefined) => AgentAuth;
  readonly onFailure: (f: AuthFailure) => void;
  readonly maxFailures?: number;
  readonly windowMs?: number;
}

export function sourceOf(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? "unknown";
}

export function createAgentAuthenticator(
  deps: AgentAuthenticatorDeps,
): (req: IncomingMessage) => AuthOutcome {
  const limiter = new AuthLimiter({
    maxFailures: deps.maxFailures ?? 10,
    windowMs: deps.windowMs ?? 60_000,
  });
  return (req) => {
    const source = sourceOf(req);
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const retry = limiter.retryAfter(source);
    if (retry > 0) {
      deps.onFailure({ source, reason: "rate_limited", path });
      return {
        ok: false,
        status: 429,
        body: { error: "too_many_auth_failures", retry_after_s: retry },
        headers: { "retry-after": String(retry) },
      };
    }
    const header = req.headers.authorization;
    const m = /^Bearer (\S+)$/.exec(header ?? "");
    const token = m?.[1];
    let reason: string;
    if (token?.startsWith("krx_user_")) reason = "user_token_refused";
    else {
      const auth = deps.authenticate(token);
      if (auth.ok)
        return {
          ok: true,
          agent: { name: auth.name, session: `ses_${randomUUID().replace(/-/g, "")}`, source },
        };
      reason = header && !m ? "malformed" : auth.reason;
    }
    limiter.fail(source);
    deps.onFailure({ source, reason, path });
    return {
      ok: false,
      status: 401,
      body: {
        error: "unauthorized",
        reason,
        message: "send an agent token as Authorization: Bearer <64 hex>",
      },
      headers: { "www-authenticate": 'Bearer realm="kruxos"' },
    };
  };
}
