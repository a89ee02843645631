// Command table: every verb, its options and its help text, in one place. Exit codes: 0 ok,
// 1 failure, 2 usage.
import http from "node:http";
import path from "node:path";
import { mkdirSync } from "node:fs";
import { type Command, UsageError, homeOpt, jsonOpt, manifestOpt, out, str } from "./command.js";
import { OPERATOR_COMMANDS } from "./operator-commands.js";
import { VAULT_COMMANDS } from "./vault-commands.js";
import { appRoot, appVersion, writeFileAtomic } from "../core/index.js";
import {
  formatFinding,
  hasErrors,
  renderAll,
  resolveManifestPath,
  validateManifestText,
  type Finding,
} from "../config/index.js";
import { readFileSync } from "node:fs";
import type { BuiltinProgram } from "../appliance/index.js";

// Verbs load what they need when they run: `kruxos seal`, the image healthcheck (`kruxos health`)
// and `config validate` then start without loading the servers, SQLite and the rest.
const appliance = (): Promise<typeof import("../appliance/index.js")> =>
  import("../appliance/index.js");
const sandbox = (): Promise<typeof import("../sandbox/index.js")> => import("../sandbox/index.js");

function readManifestText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read manifest ${file}: ${(err as Error).message}`);
  }
}

function get(url: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
      );
    });
    req.on("timeout", () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on("error", reject);
  });
}

export { UsageError };

export const COMMANDS: readonly Command[] = [
  ...OPERATOR_COMMANDS,
  ...VAULT_COMMANDS,
  {
    verb: "up",
    summary: "Run the whole appliance in host mode (all programs in this process).",
    usage:
      "kruxos up [--home DIR] [--manifest FILE]\n  --home DIR  data, workspace and run folders (default ./.kruxos, or KRUXOS_HOME)",
    options: { ...homeOpt, ...manifestOpt },
    run: async (v) =>
      (await appliance()).up({
        home: str(v.home) ?? process.env.KRUXOS_HOME ?? ".kruxos",
        manifest: str(v.manifest),
      }),
  },
  {
    verb: "boot",
    summary: "Image entrypoint: stage A of the boot, then supervisord.",
    usage:
      "kruxos boot [--home DIR] [--manifest FILE]\n  --home DIR  boot a host laid out under DIR instead of the image paths",
    options: { ...homeOpt, ...manifestOpt },
    run: async (v) => (await appliance()).boot({ home: str(v.home), manifest: str(v.manifest) }),
  },
  {
    verb: "serve",
    summary: "Run one program: proxy, gateway or dashboard (as supervisord does).",
    usage: "kruxos serve proxy|gateway|dashboard [--manifest FILE]",
    options: manifestOpt,
    positionals: 1,
    run: async (v, [program]) => {
      if (program !== "proxy" && program !== "gateway" && program !== "dashboard")
        throw new UsageError(
          `unknown program "${program ?? ""}"; expected proxy, gateway or dashboard`,
        );
      return (await appliance()).serveProgram(
        program as BuiltinProgram,
        str(v.manifest) ? { manifest: str(v.manifest) as string } : {},
      );
    },
  },
  {
    verb: "seal",
    summary: "Wait for required programs to be RUNNING, then write the bootstrap sentinel.",
    usage: "kruxos seal [--manifest FILE]",
    options: manifestOpt,
    run: async (v) =>
      (await appliance()).sealProgram(
        str(v.manifest) ? { manifest: str(v.manifest) as string } : {},
      ),
  },
  {
    verb: "config validate",
    summary: "Validate a manifest: every finding as `CODE path: message`; exit 1 on any error.",
    usage: "kruxos config validate [--manifest FILE] [--json]",
    options: { ...manifestOpt, ...jsonOpt },
    run: async (v) => {
      const file = resolveManifestPath(str(v.manifest), ".");
      const result = validateManifestText(readManifestText(file));
      const failed = !result.manifest || hasErrors(result.findings);
      if (v.json) {
        out(
          JSON.stringify({
            version: 1,
            manifest: file,
            sha256: result.sha256,
            valid: !failed,
            findings: result.findings,
          }),
        );
      } else {
        for (const f of result.findings) out(formatFinding(f));
        const errors = result.findings.filter((f: Finding) => f.severity === "error").length;
        const warnings = result.findings.length - errors;
        out(
          `${file}: ${failed ? "invalid" : "valid"} (${errors} error(s), ${warnings} warning(s))`,
        );
      }
      return failed ? 1 : 0;
    },
  },
  {
    verb: "config render",
    summary: "Write supervisord.conf, compose.yaml, run.sh and oci-config.json from the manifest.",
    usage: "kruxos config render --out DIR [--manifest FILE] [--json]",
    options: { ...manifestOpt, ...jsonOpt, out: { type: "string" } },
    run: async (v) => {
      const outDir = str(v.out);
      if (!outDir) throw new UsageError("--out DIR is required");
      const file = resolveManifestPath(str(v.manifest), ".");
      const result = validateManifestText(readManifestText(file));
      if (!result.manifest || hasErrors(result.findings)) {
        for (const f of result.findings) process.stderr.write(formatFinding(f) + "\n");
        process.stderr.write(`${file}: invalid; nothing rendered\n`);
        return 1;
      }
      mkdirSync(outDir, { recursive: true });
      const files = renderAll(result.manifest, result.sha256);
      for (const f of files) writeFileAtomic(path.join(outDir, f.name), f.content, f.mode);
      if (v.json)
        out(
          JSON.stringify({
            version: 1,
            manifest_sha256: result.sha256,
            files: files.map((f) => path.join(outDir, f.name)),
          }),
        );
      else for (const f of files) out(path.join(outDir, f.name));
      return 0;
    },
  },
  {
    verb: "health",
    summary: "Ask the running appliance for its health (or readiness with --ready).",
    usage:
      "kruxos health [--ready] [--quiet] [--json] [--url URL] [--home DIR] [--manifest FILE]\n  exit 0 when healthy/ready, 1 otherwise",
    options: {
      ...manifestOpt,
      ...homeOpt,
      ...jsonOpt,
      ready: { type: "boolean" },
      quiet: { type: "boolean" },
      url: { type: "string" },
    },
    run: async (v) => {
      let base = str(v.url);
      if (!base) {
        const ctx = (await appliance()).loadContext({
          manifest: str(v.manifest),
          home: str(v.home),
        });
        base = `http://127.0.0.1:${ctx.loaded.manifest.gateway.port}`;
      }
      const endpoint = v.ready ? "/ready" : "/health";
      let res;
      try {
        res = await get(base.replace(/\/$/, "") + endpoint);
      } catch (err) {
        if (!v.quiet)
          process.stderr.write(
            `kruxos: the appliance at ${base} is not answering: ${(err as Error).message}\n`,
          );
        return 1;
      }
      if (!v.quiet) {
        if (v.json) out(res.body);
        else {
          const body = JSON.parse(res.body) as {
            status?: string;
            ready?: boolean;
            components?: { name: string; status: string; detail?: string }[];
            missing?: string[];
          };
          if (v.ready)
            out(body.ready ? "ready" : `not ready: missing ${(body.missing ?? []).join(", ")}`);
          else {
            out(`status: ${body.status ?? "unknown"}`);
            for (const c of body.components ?? [])
              out(`  ${c.name.padEnd(10)} ${c.status.padEnd(9)} ${c.detail ?? ""}`.trimEnd());
          }
        }
      }
      return res.status === 200 ? 0 : 1;
    },
  },
  {
    verb: "sandbox diagnose",
    summary: "Report which sandbox layers work on this host and the Landlock ABI.",
    usage: "kruxos sandbox diagnose [--json]",
    options: jsonOpt,
    run: async (v) => {
      const sb = await sandbox();
      const d = await sb.probeSandbox(sb.helperPath(appRoot()));
      out(v.json ? JSON.stringify(d) : sb.formatDiagnosis(d));
      return d.helper_error ? 1 : 0;
    },
  },
  {
    verb: "version",
    summary: "Print the version.",
    usage: "kruxos version [--json]",
    options: jsonOpt,
    run: async (v) => {
      out(
        v.json
          ? JSON.stringify({ name: "kruxos", version: appVersion() })
          : `kruxos ${appVersion()}`,
      );
      return 0;
    },
  },
];

export function helpText(): string {
  const width = Math.max(...COMMANDS.map((c) => c.verb.length));
  return [
    "kruxos — run untrusted AI agents safely",
    "",
    "Usage: kruxos <command> [options]   (kruxos <command> --help for details)",
    "",
    ...COMMANDS.map((c) => `  ${c.verb.padEnd(width)}  ${c.summary}`),
    "",
    "Exit codes: 0 ok, 1 failure, 2 usage.",
  ].join("\n");
}
