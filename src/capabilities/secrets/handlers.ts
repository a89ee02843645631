// In-process handlers of the secrets category, over the secrets port. secrets.list shows an agent
// the names and metadata of the secrets it may use, never values; an agent outside a secret's
// scope does not learn that it exists.
import type { SecretsPort } from "../ports/index.js";
import type { CallContext, CapabilityHandler } from "../types.js";

export interface SecretsHandlerDeps {
  readonly secrets: SecretsPort;
}

export function createSecretsHandlers(
  deps: SecretsHandlerDeps,
): Readonly<Record<"secrets.list", CapabilityHandler>> {
  return Object.freeze({
    "secrets.list": async (inputs: unknown, ctx: CallContext) => {
      const { prefix } = inputs as { readonly prefix?: string };
      return {
        secrets: deps.secrets
          .visibleTo(ctx.agent)
          .filter((s) => prefix === undefined || s.name.startsWith(prefix)),
      };
    },
  });
}
