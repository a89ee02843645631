// Who a call's effects act as: the identity a sandbox or an egress connection is made as, for
// per-call proxy credentials and audit records.

/** Identity of the call a sandbox or an egress connection serves, for credentials and audit. */
export interface CallIdentity {
  readonly agent: string;
  readonly session: string;
  /** The audit id of the call (its intent record). */
  readonly callId: string;
  readonly capability: string;
}

/** The identity a call's sandbox or egress connection is made as: this call of this agent. */
export function identityOf(ctx: {
  readonly agent: string;
  readonly session: string;
  readonly callId: string;
  readonly capability: string;
}): CallIdentity {
  return { agent: ctx.agent, session: ctx.session, callId: ctx.callId, capability: ctx.capability };
}
