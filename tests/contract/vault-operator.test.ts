// Operators manage secrets with `kruxos vault add|list|rotate|revoke` against a running appliance:
// values from stdin only, metadata out, every change audited by name and version — and the value
// never appears anywhere on disk, in the CLI's output, the API's answers, the logs or the audit.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { filesUnder } from "../helpers/repo.js";
import { RpcClient } from "../helpers/rpc-client.js";
import { portOf, readyHostForFile } from "./harness.js";

const host = readyHostForFile("vaultuser");
const CANARY = "krx-vault-canary-51c0ffee9d7e4a2b";
const ROTATED = "krx-vault-canary-rotated-8e1f2a3b";

function forms(v: string): string[] {
  const b = Buffer.from(v);
  return [
    v,
    b.toString("base64"),
    b.toString("base64url"),
    b.toString("hex"),
    encodeURIComponent(v),
  ];
}

const SCOPE_ARGS = [
  "--agents",
  "vaultuser",
  "--capabilities",
  "network.http_request",
  "--hosts",
  "api.example.com:443",
];

test("a value on the command line is refused, saying why, and nothing is added", async () => {
  for (const args of [
    ["vault", "add", "gh", "--value", CANARY, ...SCOPE_ARGS],
    ["vault", "add", "gh", CANARY, ...SCOPE_ARGS],
    ["vault", "rotate", "gh", CANARY],
  ]) {
    const r = await host.cli(args);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /never taken from the command line/);
    assert.match(r.stderr, /stdin/);
  }
  const l = await host.cli(["vault", "list", "--json"]);
  assert.equal(l.code, 0, l.stderr);
  assert.deepEqual((JSON.parse(l.stdout) as { secrets: unknown[] }).secrets, []);
});

test("add, list, rotate and revoke through the CLI: metadata out, values never, every change audited", async () => {
  const add = await host.cli(
    [
      "vault",
      "add",
      "gh",
      "--agents",
      "vaultuser",
      "--capabilities",
      "network.http_request,git.clone",
      "--hosts",
      "api.example.com:443",
      "--description",
      "CI token",
      "--json",
    ],
    `${CANARY}\n`,
  );
  assert.equal(add.code, 0, add.stderr);
  const added = JSON.parse(add.stdout) as {
    name: string;
    version: number;
    scope: Record<string, string[]>;
  };
  assert.equal(added.name, "gh");
  assert.equal(added.version, 1);
  assert.deepEqual(added.scope.capabilities, ["git.clone", "network.http_request"]);

  const dup = await host.cli(
    [
      "vault",
      "add",
      "gh",
      "--agents",
      "a",
      "--capabilities",
      "network.http_request",
      "--hosts",
      "h:1",
    ],
    "x",
  );
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /already exists; rotate it instead/);
  const bad = await host.cli(
    [
      "vault",
      "add",
      "no such",
      "--agents",
      "a",
      "--capabilities",
      "network.http_request",
      "--hosts",
      "h:1",
    ],
    "x",
  );
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /invalid secret name/);
  const missing = await host.cli(["vault", "rotate", "nope"], "x");
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no secret named "nope"/);

  const rot = await host.cli(["vault", "rotate", "gh", "--json"], ROTATED);
  assert.equal(rot.code, 0, rot.stderr);
  assert.equal((JSON.parse(rot.stdout) as { version: number }).version, 2);
  const gen = await host.cli(["vault", "rotate", "gh", "--generate", "40", "--json"]);
  assert.equal(gen.code, 0, gen.stderr);
  assert.equal((JSON.parse(gen.stdout) as { version: number }).version, 3);

  const list = await host.cli(["vault", "list"]);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^NAME\s+VERSION/);
  assert.match(list.stdout, /gh\s+3\s+vaultuser/);

  // The API's own answer to a viewer-level read, for the value check below.
  const api = await fetch(
    `http://127.0.0.1:${portOf(host.m, "supervision", "api_port")}/api/v1/vault/secrets`,
    {
      headers: { authorization: `Bearer ${host.adminToken}` },
    },
  );
  const apiText = await api.text();
  assert.equal(api.status, 200, apiText);

  // The agent sees what it may use — names and metadata, no value — and nothing of the rest.
  const other = await host.cli(
    [
      "vault",
      "add",
      "db_password",
      "--agents",
      "someone-else",
      "--capabilities",
      "process.run",
      "--hosts",
      "db:5432",
    ],
    "hunter2-not-for-you",
  );
  assert.equal(other.code, 0, other.stderr);
  const listed = async (): Promise<{ name: string; [k: string]: unknown }[]> => {
    const c = await RpcClient.connect(portOf(host.m, "gateway"), host.token);
    try {
      const r = await c.call("capabilities.invoke", { name: "secrets.list", inputs: {} });
      assert.equal(r.result?.success, true, JSON.stringify(r));
      const text = JSON.stringify(r);
      for (const v of [CANARY, ROTATED, "hunter2-not-for-you"]) assert.ok(!text.includes(v));
      return (r.result?.data as { secrets: { name: string }[] }).secrets;
    } finally {
      c.close();
    }
  };
  const visible = await listed();
  assert.deepEqual(
    visible.map((x) => x.name),
    ["gh"],
  );
  assert.equal(visible[0]?.version, 3);
  assert.equal(visible[0]?.description, "CI token");
  assert.deepEqual(visible[0]?.hosts, ["api.example.com:443"]);

  const rev = await host.cli(["vault", "revoke", "gh", "--json"]);
  assert.equal(rev.code, 0, rev.stderr);
  assert.notEqual((JSON.parse(rev.stdout) as { revoked_at: unknown }).revoked_at, null);
  const again = await host.cli(["vault", "revoke", "gh"]);
  assert.equal(again.code, 1);
  assert.deepEqual(await listed(), [], "a revoked secret is gone from the agent's list");

  const q = await host.cli(["audit", "query", "--kind", "operator.action", "--json"]);
  const actions = (
    JSON.parse(q.stdout) as {
      actor?: string;
      detail?: { action?: string; secret?: string; version?: number };
    }[]
  )
    .filter((r) => r.detail?.secret === "gh")
    .map((r) => `${r.actor}:${r.detail?.action}:${r.detail?.version}`)
    .reverse(); // newest first
  assert.deepEqual(actions, [
    "admin:vault.add:1",
    "admin:vault.rotate:2",
    "admin:vault.rotate:3",
    "admin:vault.revoke:3",
  ]);
  const verify = await host.cli(["audit", "verify"]);
  assert.equal(verify.code, 0, verify.stdout);

  // Nowhere: not in any file of the home (vault.db and its WAL, the audit log, the index, the
  // databases), not in the appliance's output, not in what the CLI or the API answered.
  const outputs = [add, dup, rot, gen, list, rev, q].map((r) => r.stdout + r.stderr).join("\n");
  const logs = await host.a.logText();
  for (const v of [CANARY, ROTATED])
    for (const form of forms(v)) {
      for (const f of filesUnder(host.a.home ?? "")) {
        assert.equal(readFileSync(f).indexOf(form), -1, `${form} found in ${f}`);
      }
      assert.ok(!outputs.includes(form), `${form} in the CLI's output`);
      assert.ok(!apiText.includes(form), `${form} in the API's answer`);
      assert.ok(!logs.includes(form), `${form} in the appliance's log`);
    }
});
