// Names an operator chooses that other subsystems key data by. One rule each, so a name that one
// place accepts is never refused by another.

/**
 * An agent's name: as agents.db stores it, as policy's `agents.<name>` sections and
 * `<data>/policy/agents/<name>.yaml` files address it. A lower-case letter first, then up to 62
 * lower-case letters, digits, `_` or `-`.
 */
export const AGENT_NAME = /^[a-z][a-z0-9_-]{0,62}$/;

export function isAgentName(name: string): boolean {
  return AGENT_NAME.test(name);
}
