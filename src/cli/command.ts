// What every CLI verb is made of, and the few helpers they share.
import type { ParseArgsConfig } from "node:util";

export class UsageError extends Error {}

export type Options = NonNullable<ParseArgsConfig["options"]>;

export interface Command {
  readonly verb: string;
  readonly summary: string;
  readonly usage: string;
  readonly options: Options;
  readonly positionals?: number;
  run(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<number>;
}

export const manifestOpt: Options = { manifest: { type: "string" } };
export const homeOpt: Options = { home: { type: "string" } };
export const jsonOpt: Options = { json: { type: "boolean" } };

export const str = (v: string | boolean | undefined): string | undefined =>
  typeof v === "string" ? v : undefined;
export const out = (s: string): void => void process.stdout.write(s.endsWith("\n") ? s : s + "\n");
