// Health of the policy layer for /ready: every configured file compiles (YAML, schema, semantic
// checks, conditions) with the same compiler the engine uses.
import { readFileSync } from "node:fs";
import type { ComponentHealth } from "../core/index.js";
import { compilePolicy } from "./compile.js";
import { formatProblem, type PolicyProblem, type PolicySource } from "./types.js";

export function policyHealth(files: readonly string[]): ComponentHealth {
  const problems: PolicyProblem[] = [];
  const sources: PolicySource[] = [];
  files.forEach((file, i) => {
    try {
      sources.push({ kind: i === 0 ? "system" : "org", file, text: readFileSync(file, "utf8") });
    } catch (err) {
      problems.push({ file, message: `cannot read: ${(err as Error).message.split("\n")[0]}` });
    }
  });
  if (problems.length === 0) {
    const result = compilePolicy(sources);
    if (!result.ok) problems.push(...result.problems);
  }
  return problems.length === 0
    ? { name: "policy", status: "ok", facts: { files: files.length } }
    : { name: "policy", status: "failing", detail: problems.map(formatProblem).join("; ") };
}
