// What every user API route shares: the error body's schema and the order of roles.
import type { Role } from "../state/index.js";

/** `{error, message}`: every refusal of the user API. */
export const errorSchema = {
  type: "object",
  properties: { error: { type: "string" }, message: { type: "string" } },
  required: ["error", "message"],
} as const;

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** Whether `role` may do what `needed` may: viewer reads, operator decides, admin manages. */
export function allows(role: Role, needed: Role): boolean {
  return RANK[role] >= RANK[needed];
}

export const FORBIDDEN = { error: "forbidden", message: "your role does not allow this" } as const;
