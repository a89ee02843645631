// In-process handlers for agent.whoami, agent.session and agent.capabilities. Identity comes from
// the call context; session facts and the agent's effective tiers come from functions the gateway
// passes in, so these handlers hold no state of their own.
import type { CapabilityRegistry } from "../registry.js";
import {
  AGENT_WORKSPACE,
  type CallContext,
  type CapabilityHandler,
  type PermissionTier,
} from "../types.js";

/** What the gateway knows about the calling session. */
export interface SessionInfo {
  readonly transport: "rpc" | "mcp";
  /** RFC 3339 time the session started. */
  readonly connected_at: string;
  /** Calls made in this session so far, the current one included. */
  readonly call_count: number;
  /** Keys held in session state, when known. */
  readonly state_keys?: number;
  /** The client's announced name and version (MCP initialize), or null. */
  readonly client: { readonly name: string; readonly version?: string } | null;
}

export interface AgentHandlerDeps {
  readonly registry: CapabilityRegistry;
  readonly sessionInfo: (ctx: CallContext) => SessionInfo;
  /**
   * The agent's tier for a capability when no input-specific rule applies (policy). Without it the
   * definition's default tier is shown. Capabilities answering "blocked" are left out.
   */
  readonly effectiveTier?: (ctx: CallContext, capability: string) => PermissionTier;
}

interface CapabilitiesInputs {
  readonly category?: string;
  readonly tag?: string;
  readonly detail?: "summary" | "full";
}

export function createAgentHandlers(
  deps: AgentHandlerDeps,
): Readonly<Record<"agent.whoami" | "agent.session" | "agent.capabilities", CapabilityHandler>> {
  return Object.freeze({
    "agent.whoami": async (_inputs: unknown, ctx: CallContext) => ({
      agent: ctx.agent,
      session: ctx.session,
      workspace: AGENT_WORKSPACE,
    }),
    "agent.session": async (_inputs: unknown, ctx: CallContext) => {
      const s = deps.sessionInfo(ctx);
      return {
        agent: ctx.agent,
        session: ctx.session,
        transport: s.transport,
        connected_at: s.connected_at,
        call_count: s.call_count,
        ...(s.state_keys === undefined ? {} : { state_keys: s.state_keys }),
        client: s.client
          ? { name: s.client.name, ...(s.client.version ? { version: s.client.version } : {}) }
          : null,
      };
    },
    "agent.capabilities": async (inputs: unknown, ctx: CallContext) => {
      const q = (inputs ?? {}) as CapabilitiesInputs;
      const full = q.detail === "full";
      const capabilities: Record<string, unknown>[] = [];
      for (const d of deps.registry.list({
        ...(q.category ? { category: q.category } : {}),
        ...(q.tag ? { tag: q.tag } : {}),
      })) {
        const tier = deps.effectiveTier?.(ctx, d.name) ?? d.permission_tier;
        if (tier === "blocked") continue;
        capabilities.push({
          name: d.name,
          category: d.category,
          purpose: d.purpose,
          tier,
          tags: [...d.tags],
          ...(full
            ? {
                when_to_use: d.when_to_use,
                side_effects: { ...d.side_effects },
                inputs: deps.registry.mcpTool(d.name)?.inputSchema ?? d.inputs,
              }
            : {}),
        });
      }
      return { capabilities, count: capabilities.length };
    },
  });
}
