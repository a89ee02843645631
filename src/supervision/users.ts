// Authentication on every supervision surface (user API, event stream): user tokens, checked by
// core's auth gate against the users stored in state. Agent tokens are refused by their shape.
import type { IncomingMessage } from "node:http";
import { createAuthGate, type AuthRefusalReport, type GateOutcome } from "../core/index.js";
import {
  authenticateUser,
  looksLikeAgentToken,
  type AuthenticatedUser,
  type Db,
} from "../state/index.js";

export interface UserAuthenticatorOptions {
  readonly onFailure?: (f: AuthRefusalReport) => void;
  readonly maxFailures?: number;
  readonly windowMs?: number;
}

/**
 * A user token through core's auth gate, so failures are reported and limited per source the same
 * way as on the agent port, and a valid token always gets in. Agent tokens are refused.
 */
export function createUserAuthenticator(
  db: Db,
  opts: UserAuthenticatorOptions = {},
): (req: IncomingMessage) => GateOutcome<AuthenticatedUser> {
  return createAuthGate<AuthenticatedUser>({
    verify: (token) => {
      if (!token) return { ok: false, reason: "missing" };
      if (looksLikeAgentToken(token)) return { ok: false, reason: "agent_token_refused" };
      const user = authenticateUser(db, token);
      return user ? { ok: true, who: user } : { ok: false, reason: "unknown" };
    },
    onFailure: opts.onFailure ?? (() => undefined),
    hint: "a valid user token (krx_user_…) is required",
    ...(opts.maxFailures !== undefined ? { maxFailures: opts.maxFailures } : {}),
    ...(opts.windowMs !== undefined ? { windowMs: opts.windowMs } : {}),
  });
}
