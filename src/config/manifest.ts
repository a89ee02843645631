// Load a manifest: bytes → TOML → JSON Schema (defaults applied from the schema itself) → semantic
// rules → deep-frozen typed object. Validation happens here, once, at the edge.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { ErrorObject } from "ajv";
import { parse as parseToml, TomlError } from "smol-toml";
import { KruxError, deepFreeze, readSchema, schemaValidator } from "../core/index.js";
import { runRules } from "./rules.js";
import { lineOf, tomlLineIndex } from "./toml-lines.js";
import type { Finding, LoadedManifest, Manifest } from "./types.js";

const SCHEMA = "kruxos.toml.schema.json";

export function manifestSchema(): Record<string, unknown> {
  return readSchema(SCHEMA);
}

function schemaFinding(e: ErrorObject): Omit<Finding, "line"> {
  const base = e.instancePath.split("/").slice(1).map(decodeURIComponent).join(".");
  const at = (k: string): string => (base ? `${base}.${k}` : k);
  switch (e.keyword) {
    case "additionalProperties": {
      const key = String((e.params as { additionalProperty: string }).additionalProperty);
      return { code: "E000", severity: "error", path: at(key), message: `unknown key "${key}"` };
    }
    case "propertyNames": {
      const key = String((e.params as { propertyName: string }).propertyName);
      return {
        code: "E000",
        severity: "error",
        path: at(key),
        message: `"${key}" is not a valid name`,
      };
    }
    case "required": {
      const key = String((e.params as { missingProperty: string }).missingProperty);
      return {
        code: "E000",
        severity: "error",
        path: at(key),
        message: `missing required key "${key}"`,
      };
    }
    case "enum":
      return {
        code: "E000",
        severity: "error",
        path: base,
        message: `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(", ")}`,
      };
    default:
      return {
        code: "E000",
        severity: "error",
        path: base || "(root)",
        message: e.message ?? e.keyword,
      };
  }
}

export interface ValidationResult {
  readonly manifest: Manifest | undefined;
  readonly findings: readonly Finding[];
  readonly sha256: string;
}

/** Validate manifest text. Never throws for bad input: every problem is a finding. */
export function validateManifestText(source: string): ValidationResult {
  const sha256 = createHash("sha256").update(source, "utf8").digest("hex");
  let parsed: Record<string, unknown>;
  try {
    parsed = parseToml(source) as Record<string, unknown>;
  } catch (err) {
    const line = err instanceof TomlError ? err.line : undefined;
    const message =
      err instanceof Error ? (err.message.split("\n")[0] ?? err.message) : String(err);
    return {
      manifest: undefined,
      sha256,
      findings: [
        { code: "E000", severity: "error", path: "(toml)", message, ...(line ? { line } : {}) },
      ],
    };
  }
  // Plain JSON data from here on (smol-toml yields Date objects only for TOML dates, which no key accepts).
  const data = JSON.parse(JSON.stringify(parsed)) as Record<string, unknown>;
  const index = tomlLineIndex(source);
  const withLine = (f: Omit<Finding, "line">): Finding => {
    const line = lineOf(index, f.path);
    return line === undefined ? f : { ...f, line };
  };
  const validate = schemaValidator(SCHEMA, { useDefaults: true });
  if (!validate(data)) {
    const findings = (validate.errors ?? [])
      .filter((e) => !(e.keyword === "if" || e.keyword === "anyOf"))
      .map(schemaFinding)
      .map(withLine);
    return { manifest: undefined, sha256, findings: dedupe(findings) };
  }
  const manifest = deepFreeze(data as unknown as Manifest);
  return { manifest, sha256, findings: runRules(manifest).map(withLine) };
}

function dedupe(findings: Finding[]): Finding[] {
  const seen = new Set<string>();
  return findings.filter((f) => {
    const k = `${f.code}|${f.path}|${f.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export function hasErrors(findings: readonly Finding[]): boolean {
  return findings.some((f) => f.severity === "error");
}

/** Print form of a finding: `CODE path: message (line N)`. */
export function formatFinding(f: Finding): string {
  return `${f.code} ${f.path}: ${f.message}${f.line !== undefined ? ` (line ${f.line})` : ""}`;
}

/** Load and validate the manifest at `file`; throws KruxError when it cannot be used. */
export function loadManifest(file: string): LoadedManifest {
  let source: string;
  try {
    source = readFileSync(file, "utf8");
  } catch (err) {
    throw new KruxError(
      "ManifestNotFound",
      `cannot read manifest ${file}: ${(err as Error).message}`,
      { file },
    );
  }
  const result = validateManifestText(source);
  if (!result.manifest || hasErrors(result.findings)) {
    const code = result.findings.some((f) => f.path === "(toml)")
      ? "ManifestSyntax"
      : "ManifestInvalid";
    throw new KruxError(
      code,
      `manifest ${file} is invalid:\n${result.findings.map(formatFinding).join("\n")}`,
      {
        file,
        findings: result.findings,
      },
    );
  }
  return {
    manifest: result.manifest,
    sha256: result.sha256,
    source,
    file,
    findings: result.findings,
  };
}
