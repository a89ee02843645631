// The one call pipeline every transport (JSON-RPC over WS, MCP over WS / Streamable HTTP / stdio)
// drives. Transports parse and frame; the pipeline authenticates nothing (the transport already
// has the agent), applies the agent's limits, decides, executes, audits and answers — or throws a
// KruxError.

export interface AgentIdentity {
  readonly name: string;
  readonly session: string;
  /** Where the request came from (IP), for audit and rate limiting. */
  readonly source: string;
}

/** What a transport knows about one call besides its name and inputs. */
export interface CallOptions {
  /** Aborted when the client goes away or cancels the call. */
  readonly signal?: AbortSignal;
  /** The transaction the call belongs to (`transaction_id`, MCP `_meta`). */
  readonly transactionId?: string;
}

export interface InvokeResult {
  readonly success: true;
  readonly data: unknown;
  readonly duration_ms: number;
  readonly audit_seq: number;
}

export interface CapabilitySummary {
  readonly name: string;
  readonly category: string;
  readonly purpose: string;
  readonly when_to_use: string;
  readonly tier: string;
  readonly tags: readonly string[];
}

/** One MCP tool: the registry's projection of a capability (and the two approval tools). */
export type { McpTool } from "../capabilities/index.js";
import type { McpTool } from "../capabilities/index.js";

export interface Pipeline {
  list(
    agent: AgentIdentity,
    filter: { category?: string; tag?: string },
  ): Promise<CapabilitySummary[]>;
  describe(agent: AgentIdentity, name: string): Promise<Record<string, unknown>>;
  invoke(
    agent: AgentIdentity,
    name: string,
    inputs: unknown,
    opts?: CallOptions,
  ): Promise<InvokeResult>;
  approvalCheck(agent: AgentIdentity, approvalId: string): Promise<Record<string, unknown>>;
  approvalWait(
    agent: AgentIdentity,
    approvalId: string,
    timeoutS: number,
    signal: AbortSignal,
  ): Promise<Record<string, unknown>>;
  /** MCP tools this agent may call (not blocked), plus approvals.check / approvals.wait. */
  tools(agent: AgentIdentity): Promise<McpTool[]>;
}
