// Policy files are parsed once into YAML documents; the evaluation engine arrives with the gateway.
// Until then the health of the policy layer is whether every configured file parses.
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import type { ComponentHealth } from "../core/index.js";

export function policyHealth(files: readonly string[]): ComponentHealth {
  const problems: string[] = [];
  for (const f of files) {
    try {
      const doc = parseYaml(readFileSync(f, "utf8")) as { version?: unknown } | null;
      if (!doc || doc.version !== 1) problems.push(`${f}: missing "version: 1"`);
    } catch (err) {
      problems.push(`${f}: ${(err as Error).message.split("\n")[0]}`);
    }
  }
  return problems.length === 0
    ? { name: "policy", status: "ok", facts: { files: files.length } }
    : { name: "policy", status: "failing", detail: problems.join("; ") };
}
