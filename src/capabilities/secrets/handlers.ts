// In-process handlers of the secrets category, over the secrets port. None of them ever returns a
// value: secrets.list shows names and metadata, secrets.use checks a secret against the scope the
// agent means to use it in and hands back its placeholder (the purpose goes to the audit log),
// secrets.rotate generates a new value inside the appliance and returns only its version. An agent
// outside a secret's scope does not learn that it exists.
import { randomBytes } from "node:crypto";
import type { SecretsPort } from "../ports/index.js";
import type { CallContext, CapabilityHandler } from "../types.js";

export interface SecretsHandlerDeps {
  readonly secrets: SecretsPort;
}

const ALPHABETS = {
  base64url: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
  hex: "0123456789abcdef",
  alphanumeric: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
} as const;

/** `length` characters drawn uniformly from `alphabet` (rejection sampling: no modulo bias). */
export function generateValue(length: number, alphabet: string): Buffer {
  const out: string[] = [];
  const limit = 256 - (256 % alphabet.length);
  while (out.length < length)
    for (const b of randomBytes(length * 2)) {
      if (b >= limit) continue;
      out.push(alphabet[b % alphabet.length] as string);
      if (out.length === length) break;
    }
  return Buffer.from(out.join(""), "utf8");
}

/** host or host:port as the agent wrote it. */
function target(host: string | undefined, capability: string | undefined) {
  if (host === undefined) return capability === undefined ? {} : { capability };
  const m = /^(.*?)(?::([0-9]{1,5}))?$/.exec(host.trim()) as RegExpExecArray;
  const port = m[2] === undefined ? 443 : Number(m[2]);
  return { ...(capability === undefined ? {} : { capability }), host: m[1] as string, port };
}

export function createSecretsHandlers(
  deps: SecretsHandlerDeps,
): Readonly<Record<"secrets.list" | "secrets.use" | "secrets.rotate", CapabilityHandler>> {
  return Object.freeze({
    "secrets.list": async (inputs: unknown, ctx: CallContext) => {
      const { prefix } = inputs as { readonly prefix?: string };
      return {
        secrets: deps.secrets
          .visibleTo(ctx.agent)
          .filter((s) => prefix === undefined || s.name.startsWith(prefix)),
      };
    },
    "secrets.use": async (inputs: unknown, ctx: CallContext) => {
      const i = inputs as {
        readonly name: string;
        readonly purpose: string;
        readonly capability?: string;
        readonly host?: string;
      };
      const info = deps.secrets.use(ctx, i.name, i.purpose, target(i.host, i.capability));
      return {
        placeholder: `\${secret:${info.name}}`,
        name: info.name,
        version: info.version,
        capabilities: info.capabilities,
        hosts: info.hosts,
      };
    },
    "secrets.rotate": async (inputs: unknown, ctx: CallContext) => {
      const i = inputs as {
        readonly name: string;
        readonly reason: string;
        readonly length: number;
        readonly alphabet: keyof typeof ALPHABETS;
      };
      const value = generateValue(i.length, ALPHABETS[i.alphabet]);
      try {
        return { name: i.name, ...deps.secrets.rotate(ctx, i.name, value, i.reason) };
      } finally {
        value.fill(0);
      }
    },
  });
}
