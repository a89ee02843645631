// `kruxos vault …`: secrets through the running appliance's user API (admin token), so every change
// is audited by the log's one writer. Values come from stdin only — never argv, where shell
// history, `ps` and process accounting would keep them.
import { randomBytes } from "node:crypto";
import { type Command, UsageError, out, str } from "./command.js";
import {
  api,
  common,
  context as contextOf,
  fail,
  one,
  table,
  type Values,
} from "./operator-commands.js";

const NOT_ON_ARGV =
  "secret values are never taken from the command line, where shell history and ps would keep " +
  'them; pipe the value on stdin, for example: printf %s "$TOKEN" | kruxos vault add NAME …';

/** The whole of stdin, one trailing newline removed (what `echo` adds). */
async function valueFromStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write("value (end with Ctrl-D): ");
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
  if (text.length === 0) throw new UsageError("no value on stdin");
  return text;
}

/** NAME only: a second positional would be a value on argv. */
function nameOnly(p: string[]): string {
  if (p.length > 1) throw new UsageError(NOT_ON_ARGV);
  return one(p, "NAME");
}

const list = (v: string | boolean | undefined): string[] =>
  (str(v) ?? "")
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x.length > 0);

const valueOpt = { value: { type: "string" as const } };
function refuseArgvValue(v: Values): void {
  if (v.value !== undefined) throw new UsageError(NOT_ON_ARGV);
}

function metaLine(m: Record<string, unknown>): string {
  return `${String(m.name)} version ${String(m.version)}`;
}

export const VAULT_COMMANDS: readonly Command[] = [
  {
    verb: "vault add",
    summary:
      "Add a secret (value on stdin) with the agents, capabilities and hosts it may be used with.",
    usage:
      "kruxos vault add NAME --agents A,B --capabilities C,D --hosts HOST:PORT,… [--description TEXT] [--rotatable] [--expires ISO] [--json] < value",
    options: {
      ...common,
      ...valueOpt,
      agents: { type: "string" },
      capabilities: { type: "string" },
      hosts: { type: "string" },
      expires: { type: "string" },
      description: { type: "string" },
      rotatable: { type: "boolean" },
    },
    positionals: 2,
    run: async (v, p) => {
      refuseArgvValue(v);
      const name = nameOnly(p);
      const scope = {
        agents: list(v.agents),
        capabilities: list(v.capabilities),
        hosts: list(v.hosts),
      };
      for (const [k, l] of Object.entries(scope))
        if (l.length === 0) throw new UsageError(`--${k} is required (a comma-separated list)`);
      const value = await valueFromStdin();
      const a = await api(v, "POST", "/api/v1/vault/secrets", {
        name,
        value,
        ...scope,
        ...(str(v.expires) ? { expires_at: str(v.expires) } : {}),
        ...(str(v.description) ? { description: str(v.description) } : {}),
        ...(v.rotatable === true ? { rotatable: true } : {}),
      });
      if (a.status !== 201) return fail(a);
      out(v.json ? JSON.stringify(a.body) : `added ${metaLine(a.body)}`);
      return 0;
    },
  },
  {
    verb: "vault list",
    summary:
      "List secrets: names, versions, scope, created, rotated, revoked, last used. Never values.",
    usage: "kruxos vault list [--json] [--home DIR]",
    options: common,
    run: async (v) => {
      const a = await api(v, "GET", "/api/v1/vault/secrets");
      if (a.status !== 200) return fail(a);
      const secrets = a.body.secrets as Record<string, unknown>[];
      if (v.json) {
        out(JSON.stringify(a.body));
        return 0;
      }
      const s = (x: unknown): string => (x === null || x === undefined ? "-" : String(x));
      out(
        table([
          [
            "NAME",
            "VERSION",
            "AGENTS",
            "CAPABILITIES",
            "HOSTS",
            "CREATED",
            "ROTATED",
            "LAST USED",
            "REVOKED",
          ],
          ...secrets.map((m) => {
            const sc = m.scope as Record<string, string[]>;
            return [
              s(m.name),
              s(m.version),
              (sc.agents ?? []).join(","),
              (sc.capabilities ?? []).join(","),
              (sc.hosts ?? []).join(","),
              s(m.created_at),
              s(m.rotated_at),
              s(m.last_used_at),
              s(m.revoked_at),
            ];
          }),
        ]),
      );
      return 0;
    },
  },
  {
    verb: "vault rotate",
    summary:
      "Make a new version of a secret: its value on stdin, or --generate N random characters.",
    usage: "kruxos vault rotate NAME [--generate N] [--json] < value",
    options: { ...common, ...valueOpt, generate: { type: "string" } },
    positionals: 2,
    run: async (v, p) => {
      refuseArgvValue(v);
      const name = nameOnly(p);
      let value: string;
      if (v.generate !== undefined) {
        const n = Number(v.generate);
        if (!Number.isInteger(n) || n < 16 || n > 4096)
          throw new UsageError("--generate takes a length from 16 to 4096");
        // base64url of enough random bytes, cut to n characters: 6 bits of entropy each.
        value = randomBytes(Math.ceil((n * 3) / 4))
          .toString("base64url")
          .slice(0, n);
      } else value = await valueFromStdin();
      const a = await api(v, "POST", `/api/v1/vault/secrets/${encodeURIComponent(name)}/rotate`, {
        value,
      });
      if (a.status !== 200) return fail(a);
      out(v.json ? JSON.stringify(a.body) : `rotated ${metaLine(a.body)}`);
      return 0;
    },
  },
  {
    verb: "vault revoke",
    summary: "Revoke a secret: every version's key and ciphertext are deleted at once.",
    usage: "kruxos vault revoke NAME [--json] [--home DIR]",
    options: common,
    positionals: 1,
    run: async (v, p) => {
      const name = one(p, "NAME");
      const a = await api(v, "POST", `/api/v1/vault/secrets/${encodeURIComponent(name)}/revoke`);
      if (a.status !== 200) return fail(a);
      out(v.json ? JSON.stringify(a.body) : `revoked ${String(a.body.name)}`);
      return 0;
    },
  },
  {
    verb: "vault rekey",
    summary:
      "Move every secret to a new vault key at once (a crash leaves the old key or the new, never a mix).",
    usage:
      "kruxos vault rekey [--json] [--home DIR]   (key_source env or passphrase: the new key or passphrase on stdin)",
    options: common,
    run: async (v) => {
      const ctx = await contextOf(v);
      const source = ctx.loaded.manifest.vault.key_source;
      const body =
        source === "file"
          ? {}
          : source === "env"
            ? { new_key: (await valueFromStdin()).trim().toLowerCase() }
            : { new_passphrase: await valueFromStdin() };
      const a = await api(v, "POST", "/api/v1/vault/rekey", body);
      if (a.status !== 200) return fail(a);
      if (v.json) out(JSON.stringify(a.body));
      else
        out(
          `rekeyed: ${String(a.body.rewrapped)} data keys rewrapped, key ${String(a.body.kek_id)}` +
            (source === "file"
              ? ""
              : `; restart the appliance with the new ${source === "env" ? "KRUXOS_VAULT_KEY" : "KRUXOS_VAULT_PASSPHRASE"}`),
        );
      return 0;
    },
  },
];
