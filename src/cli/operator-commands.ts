// Operator verbs: agents and approvals through the running appliance's user API (with the admin
// token found in the home), audit and policy directly on the files (they work while it is down).
import { existsSync, readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { KruxError } from "../core/index.js";
import { type Command, UsageError, homeOpt, jsonOpt, manifestOpt, out, str } from "./command.js";

const appliance = (): Promise<typeof import("../appliance/index.js")> =>
  import("../appliance/index.js");

export type Values = Record<string, string | boolean | undefined>;

/** --home, then KRUXOS_HOME, then ./.kruxos when it exists; otherwise the image's paths. */
function homeOf(v: Values): string | undefined {
  return str(v.home) ?? process.env.KRUXOS_HOME ?? (existsSync(".kruxos") ? ".kruxos" : undefined);
}

export async function context(v: Values) {
  return (await appliance()).loadContext({ manifest: str(v.manifest), home: homeOf(v) });
}

interface ApiAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

export async function api(
  v: Values,
  method: "GET" | "POST",
  urlPath: string,
  body?: unknown,
): Promise<ApiAnswer> {
  const ctx = await context(v);
  const tokenFile = ctx.paths.adminTokenFile;
  const token =
    process.env.KRUXOS_USER_TOKEN ??
    (existsSync(tokenFile) ? readFileSync(tokenFile, "utf8").trim() : undefined);
  if (!token)
    throw new KruxError(
      "ApplianceNotRunning",
      `no user token: set KRUXOS_USER_TOKEN or run where ${tokenFile} is readable`,
    );
  const m = ctx.loaded.manifest;
  const host = m.supervision.host === "0.0.0.0" ? "127.0.0.1" : m.supervision.host;
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host,
        port: m.supervision.api_port,
        method,
        path: urlPath,
        timeout: 10_000,
        headers: {
          authorization: `Bearer ${token}`,
          ...(data
            ? { "content-type": "application/json", "content-length": Buffer.byteLength(data) }
            : {}),
        },
      },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString("utf8")));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
          }),
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", (err) =>
      reject(
        new KruxError(
          "ApplianceNotRunning",
          `the appliance's user API at ${host}:${m.supervision.api_port} is not answering (${err.message}); start it with kruxos up`,
        ),
      ),
    );
    if (data) req.write(data);
    req.end();
  });
}

export function fail(a: ApiAnswer): number {
  process.stderr.write(`kruxos: ${String(a.body.message ?? a.body.error ?? `HTTP ${a.status}`)}\n`);
  return 1;
}

export const table = (rows: string[][]): string => {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
};

export const one = (positionals: string[], what: string): string => {
  const [x] = positionals;
  if (!x) throw new UsageError(`${what} is required`);
  return x;
};

export const common = { ...homeOpt, ...manifestOpt, ...jsonOpt };

export const OPERATOR_COMMANDS: readonly Command[] = [
  {
    verb: "mcp stdio",
    summary:
      "Bridge an MCP client that speaks stdio to the appliance (KRUXOS_HOST, KRUXOS_API_KEY).",
    usage:
      "kruxos mcp stdio\n  KRUXOS_HOST     the appliance's agent endpoint, e.g. http://127.0.0.1:7700\n  KRUXOS_API_KEY  the agent token\n  KRUXOS_MCP_TOOL_NAMES=underscore  list filesystem_read instead of filesystem.read",
    options: {},
    run: async () => {
      const { runMcpStdioBridge } = await import("./mcp-stdio.js");
      return runMcpStdioBridge({
        host: process.env.KRUXOS_HOST ?? "",
        apiKey: process.env.KRUXOS_API_KEY ?? "",
        stdin: process.stdin,
        stdout: process.stdout,
        stderr: process.stderr,
        toolNames: process.env.KRUXOS_MCP_TOOL_NAMES === "underscore" ? "underscore" : "dotted",
      });
    },
  },
  {
    verb: "agent create",
    summary: "Create an agent and print its token (shown once).",
    usage: "kruxos agent create NAME [--json] [--home DIR]",
    options: common,
    positionals: 1,
    run: async (v, p) => {
      const a = await api(v, "POST", "/api/v1/agents", { name: one(p, "NAME") });
      if (a.status !== 201) return fail(a);
      if (v.json) out(JSON.stringify({ name: a.body.name, token: a.body.token }));
      else
        out(
          `agent ${String(a.body.name)} created\ntoken: ${String(a.body.token)}\nThe token is shown only now; only its hash is stored.`,
        );
      return 0;
    },
  },
  {
    verb: "agent list",
    summary: "List agents.",
    usage: "kruxos agent list [--json] [--home DIR]",
    options: common,
    run: async (v) => {
      const a = await api(v, "GET", "/api/v1/agents");
      if (a.status !== 200) return fail(a);
      const agents = a.body.agents as {
        name: string;
        created_at: string;
        revoked_at: string | null;
        last_seen_at: string | null;
      }[];
      if (v.json) out(JSON.stringify(agents));
      else
        out(
          table([
            ["NAME", "STATUS", "CREATED", "LAST SEEN"],
            ...agents.map((x) => [
              x.name,
              x.revoked_at ? "revoked" : "active",
              x.created_at,
              x.last_seen_at ?? "-",
            ]),
          ]),
        );
      return 0;
    },
  },
  {
    verb: "agent show",
    summary: "Show one agent.",
    usage: "kruxos agent show NAME [--json] [--home DIR]",
    options: common,
    positionals: 1,
    run: async (v, p) => {
      const a = await api(v, "GET", `/api/v1/agents/${encodeURIComponent(one(p, "NAME"))}`);
      if (a.status !== 200) return fail(a);
      out(
        v.json
          ? JSON.stringify(a.body)
          : Object.entries(a.body)
              .map(([k, x]) => `${k}: ${String(x ?? "-")}`)
              .join("\n"),
      );
      return 0;
    },
  },
  {
    verb: "agent revoke",
    summary: "Revoke an agent's token at once.",
    usage: "kruxos agent revoke NAME [--json] [--home DIR]",
    options: common,
    positionals: 1,
    run: async (v, p) => {
      const a = await api(v, "POST", `/api/v1/agents/${encodeURIComponent(one(p, "NAME"))}/revoke`);
      if (a.status !== 200) return fail(a);
      out(v.json ? JSON.stringify(a.body) : `agent ${String(a.body.name)} revoked`);
      return 0;
    },
  },
  {
    verb: "approve list",
    summary: "List approvals (pending by default).",
    usage:
      "kruxos approve list [--status pending|accepted|rejected|expired|completed|failed|all] [--json]",
    options: { ...common, status: { type: "string" } },
    run: async (v) => {
      const status = str(v.status) ?? "pending";
      const a = await api(
        v,
        "GET",
        `/api/v1/approvals${status === "all" ? "" : `?status=${encodeURIComponent(status)}`}`,
      );
      if (a.status !== 200) return fail(a);
      const list = a.body.approvals as {
        id: string;
        agent: string;
        capability: string;
        status: string;
        expires_at: string;
        inputs: unknown;
      }[];
      if (v.json) out(JSON.stringify(list));
      else
        out(
          table([
            ["ID", "AGENT", "CAPABILITY", "STATUS", "EXPIRES", "INPUTS"],
            ...list.map((x) => [
              x.id,
              x.agent,
              x.capability,
              x.status,
              x.expires_at,
              JSON.stringify(x.inputs).slice(0, 60),
            ]),
          ]),
        );
      return 0;
    },
  },
  ...(["accept", "reject"] as const).map((verb): Command => ({
    verb: `approve ${verb}`,
    summary:
      verb === "accept" ? "Accept an approval: the stored call runs once." : "Reject an approval.",
    usage: `kruxos approve ${verb} ID [--reason TEXT] [--json]`,
    options: { ...common, reason: { type: "string" } },
    positionals: 1,
    run: async (v, p) => {
      const reason = str(v.reason);
      const a = await api(
        v,
        "POST",
        `/api/v1/approvals/${encodeURIComponent(one(p, "ID"))}/${verb}`,
        reason ? { reason } : {},
      );
      if (a.status !== 200) return fail(a);
      out(v.json ? JSON.stringify(a.body) : `${String(a.body.id)} ${String(a.body.status)}`);
      return 0;
    },
  })),
  {
    verb: "approve watch",
    summary: "Print approvals as they arrive, until interrupted.",
    usage: "kruxos approve watch [--json] [--home DIR]",
    options: common,
    run: async (v) => {
      const seen = new Set<string>();
      let stop = false;
      process.once("SIGINT", () => (stop = true));
      process.once("SIGTERM", () => (stop = true));
      while (!stop) {
        const a = await api(v, "GET", "/api/v1/approvals?status=pending");
        if (a.status !== 200) return fail(a);
        for (const x of a.body.approvals as {
          id: string;
          agent: string;
          capability: string;
          inputs: unknown;
          expires_at: string;
        }[]) {
          if (seen.has(x.id)) continue;
          seen.add(x.id);
          out(
            v.json
              ? JSON.stringify(x)
              : `${x.id}  ${x.agent}  ${x.capability}  ${JSON.stringify(x.inputs).slice(0, 80)}  (expires ${x.expires_at})`,
          );
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
      return 0;
    },
  },
  {
    verb: "audit verify",
    summary:
      "Verify the audit chain and its keyed checkpoints: intact, or the first bad seq and its class.",
    usage: "kruxos audit verify [--json] [--home DIR]",
    options: common,
    run: async (v) => {
      const ctx = await context(v);
      const { verifyAudit } = await import("../audit/index.js");
      const { deriveSubkey, SUBKEY_AUDIT_CHECKPOINTS } = await import("../vault/index.js");
      let key: Buffer | undefined;
      try {
        key = deriveSubkey(
          ctx.paths.secretsDir,
          ctx.loaded.manifest.vault.key_source,
          SUBKEY_AUDIT_CHECKPOINTS,
          process.env,
          ctx.paths.vaultDb,
        );
      } catch {
        key = undefined;
      }
      const r = await verifyAudit(ctx.paths.auditDir, key);
      if (v.json) out(JSON.stringify({ version: 1, keyed: key !== undefined, ...r }));
      else if (r.ok)
        out(
          `intact: ${r.count} records, head seq ${r.head.seq} ${r.head.hash}${key ? "" : " (checkpoint MACs not checked: no key)"}`,
        );
      else out(`broken at seq ${r.first_bad_seq}: ${r.class} — ${r.detail}`);
      return r.ok ? 0 : 1;
    },
  },
  {
    verb: "audit query",
    summary: "Query audit records.",
    usage:
      "kruxos audit query [--kind K] [--agent A] [--capability C] [--outcome ok|error|denied|pending] [--since ISO] [--until ISO] [--limit N] [--json]",
    options: {
      ...common,
      kind: { type: "string" },
      agent: { type: "string" },
      capability: { type: "string" },
      outcome: { type: "string" },
      since: { type: "string" },
      until: { type: "string" },
      limit: { type: "string" },
    },
    run: async (v) => {
      const ctx = await context(v);
      const { queryAudit } = await import("../audit/index.js");
      const limit = str(v.limit) ? Number(str(v.limit)) : 100;
      if (!Number.isInteger(limit) || limit < 1)
        throw new UsageError("--limit must be a positive integer");
      const q = {
        limit,
        order: "desc" as const,
        ...(str(v.kind) ? { kind: str(v.kind) as never } : {}),
        ...(str(v.agent) ? { agent: str(v.agent) as string } : {}),
        ...(str(v.capability) ? { capability: str(v.capability) as string } : {}),
        ...(str(v.outcome) ? { outcome: str(v.outcome) as never } : {}),
        ...(str(v.since) ? { since: str(v.since) as string } : {}),
        ...(str(v.until) ? { until: str(v.until) as string } : {}),
      };
      const records = await queryAudit(ctx.paths.auditDir, q);
      if (v.json) out(JSON.stringify(records));
      else
        for (const r of records)
          out(
            `${r.seq}  ${r.ts}  ${r.kind}  ${r.agent ?? "-"}  ${r.capability ?? "-"}  ${r.outcome?.status ?? ""}${r.actor ? `  by ${r.actor}` : ""}`,
          );
      return 0;
    },
  },
  {
    verb: "audit tail",
    summary: "Print the newest audit records; -f keeps following.",
    usage: "kruxos audit tail [-f|--follow] [--from SEQ] [--json]",
    options: { ...common, follow: { type: "boolean", short: "f" }, from: { type: "string" } },
    run: async (v) => {
      const ctx = await context(v);
      const { tailAudit } = await import("../audit/index.js");
      const abort = new AbortController();
      process.once("SIGINT", () => abort.abort());
      process.once("SIGTERM", () => abort.abort());
      for await (const r of tailAudit(ctx.paths.auditDir, {
        follow: v.follow === true,
        fromSeq: Number(str(v.from) ?? 1),
        signal: abort.signal,
      }))
        out(
          v.json
            ? JSON.stringify(r)
            : `${r.seq}  ${r.ts}  ${r.kind}  ${r.agent ?? "-"}  ${r.capability ?? "-"}  ${r.outcome?.status ?? ""}`,
        );
      return 0;
    },
  },
  {
    verb: "policy check",
    summary: "Decide one call against the policy files and print the trace per layer.",
    usage: "kruxos policy check --agent A --capability C [--inputs JSON] [--json] [--home DIR]",
    options: {
      ...common,
      agent: { type: "string" },
      capability: { type: "string" },
      inputs: { type: "string" },
    },
    run: async (v) => {
      const agent = str(v.agent);
      const capability = str(v.capability);
      if (!agent || !capability) throw new UsageError("--agent and --capability are required");
      let inputs: unknown;
      try {
        inputs = str(v.inputs) ? JSON.parse(str(v.inputs) as string) : {};
      } catch {
        throw new UsageError("--inputs must be JSON");
      }
      const ctx = await context(v);
      const { openPolicyEngine, formatTrace, formatProblem } = await import("../policy/index.js");
      const engine = openPolicyEngine(ctx.loaded.manifest, ctx.paths);
      const r = engine.reload();
      if (!r.ok) {
        for (const pr of r.problems) process.stderr.write(formatProblem(pr) + "\n");
        return 1;
      }
      const trace = engine.explain({ agent, capability, inputs });
      out(v.json ? JSON.stringify({ version: 1, ...trace }) : formatTrace(trace));
      return 0;
    },
  },
  {
    verb: "policy diff",
    summary: "List every agent × capability whose effective tier changes between two policy files.",
    usage: "kruxos policy diff OLD NEW [--json]",
    options: jsonOpt,
    positionals: 2,
    run: async (v, p) => {
      const [oldFile, newFile] = p;
      if (!oldFile || !newFile) throw new UsageError("OLD and NEW policy files are required");
      const { PolicyEngine, diffPolicies, formatProblem } = await import("../policy/index.js");
      const { loadCapabilityDefinitions } = await import("../capabilities/index.js");
      const load = (f: string) => {
        const e = new PolicyEngine({ files: [path.resolve(f)] });
        const r = e.reload();
        if (!r.ok) throw new UsageError(`${f}: ${r.problems.map(formatProblem).join("; ")}`);
        return e;
      };
      const before = load(oldFile);
      const after = load(newFile);
      const agents = [...new Set([...before.agents(), ...after.agents(), "*"])];
      const caps = [
        ...new Set([
          ...loadCapabilityDefinitions().map((d) => d.name),
          ...before.capabilities(),
          ...after.capabilities(),
        ]),
      ].filter((c) => !c.includes("*"));
      const changes = diffPolicies(before, after, agents, caps);
      if (v.json) out(JSON.stringify({ version: 1, changes }));
      else if (changes.length === 0) out("no effective tier changes");
      else
        out(
          table([
            ["AGENT", "CAPABILITY", "FROM", "TO"],
            ...changes.map((c) => [c.agent, c.capability, String(c.from), String(c.to)]),
          ]),
        );
      return 0;
    },
  },
];
