// A canary secret exercised through every path an agent can send it (SPEC §9): network.http_request
// (header, URL, body; http:// and https://), network.download, process.run running curl through the
// intercepting proxy, git.clone from an HTTPS git server that requires Basic auth, and upstreams that
// echo the value back. The upstreams must see the real value; the agent, the workspace, the data
// dir, the logs and the audit must not hold it, nor its base64, base64url, hex or URL forms. Out of
// scope (host, agent, capability), a redirect to another host, and placeholders smuggled into other
// fields are refused, audited, and the upstream sees nothing. Real appliance (host mode), real
// proxy, real HTTPS upstreams on loopback with their own CA (trusted through [proxy].upstream_ca_files).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { createInterceptionCa, LeafIssuer } from "../../src/egress/index.js";
import { filesUnder } from "../helpers/repo.js";
import { RpcClient, type RpcReply } from "../helpers/rpc-client.js";
import { autonomousPolicyFile, sandboxUnavailable } from "../helpers/sandbox-support.js";
import { portOf, readyHostWithAgent, type ReadyHost } from "../contract/harness.js";

const CANARY = "krx-canary-7f3a9c51e2d04b6aa1";
const OTHER_VALUE = "krx-other-secret-0b9e44d1c7";

function forms(v: string): string[] {
  const b = Buffer.from(v);
  return [
    v,
    b.toString("base64").replace(/=+$/, ""),
    b.toString("base64url"),
    b.toString("hex"),
    encodeURIComponent(v),
    // Inside a Basic credential, as git and curl send it.
    Buffer.from(`x-access-token:${v}`).toString("base64").slice(0, 40),
  ];
}

interface Seen {
  readonly server: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

const seen: Seen[] = [];
let host: ReadyHost;
let rpc: RpcClient;
let stranger: RpcClient;
const servers: http.Server[] = [];
const ports: Record<string, number> = {};
const answers: string[] = [];
const unavailable = sandboxUnavailable();
const hasGit = spawnSync("git", ["--version"]).status === 0;
let gitRoot = "";

/** Record the request, then answer with everything it carried (the echo an agent must not read). */
const echo =
  (server: string): http.RequestListener =>
  (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      seen.push({ server, url: req.url ?? "", headers: req.headers, body });
      if (req.url?.startsWith("/redirect")) {
        res.writeHead(302, { location: `https://127.0.0.1:${ports.other}/landed` }).end();
        return;
      }
      res
        .writeHead(200, {
          "content-type": "application/json",
          "x-echo": String(req.headers["x-key"] ?? ""),
        })
        .end(JSON.stringify({ url: req.url, headers: req.headers, body }));
    });
  };

/** git's smart HTTP, through `git http-backend`, behind Basic auth with the canary. */
function gitServer(root: string): http.RequestListener {
  return (req, res) => {
    const expected = `Basic ${Buffer.from(`x-access-token:${CANARY}`).toString("base64")}`;
    seen.push({ server: "git", url: req.url ?? "", headers: req.headers, body: "" });
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { "www-authenticate": 'Basic realm="git"' }).end("auth required\n");
      return;
    }
    const u = new URL(req.url ?? "/", "https://git.invalid");
    const child = spawn("git", ["http-backend"], {
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: "1",
        PATH_INFO: u.pathname,
        QUERY_STRING: u.search.slice(1),
        REQUEST_METHOD: req.method ?? "GET",
        CONTENT_TYPE: req.headers["content-type"] ?? "",
        HTTP_CONTENT_ENCODING: req.headers["content-encoding"] ?? "",
        GIT_PROTOCOL: String(req.headers["git-protocol"] ?? ""),
        REMOTE_USER: "x-access-token",
      },
    });
    req.pipe(child.stdin);
    let head = Buffer.alloc(0);
    let sent = false;
    child.stdout.on("data", (c: Buffer) => {
      if (sent) return void res.write(c);
      head = Buffer.concat([head, c]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      const lines = head.subarray(0, end).toString("latin1").split("\r\n");
      let status = 200;
      const h: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(":");
        const k = l.slice(0, i).trim().toLowerCase();
        const v = l.slice(i + 1).trim();
        if (k === "status") status = Number(v.split(" ")[0]);
        else h[k] = v;
      }
      res.writeHead(status, h);
      res.write(head.subarray(end + 4));
      sent = true;
    });
    child.stdout.on("end", () => res.end());
    child.on("error", () => res.destroy());
  };
}

async function listen(
  name: string,
  handler: http.RequestListener,
  tls?: { cert: string; key: string },
): Promise<void> {
  const s = tls ? https.createServer(tls, handler) : http.createServer(handler);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  servers.push(s);
  ports[name] = (s.address() as AddressInfo).port;
}

async function invoke(
  c: RpcClient,
  name: string,
  inputs: Record<string, unknown>,
): Promise<RpcReply> {
  const r = await c.invoke(name, inputs);
  answers.push(JSON.stringify(r));
  return r;
}

function ok(r: RpcReply): Record<string, unknown> {
  assert.equal(r.error, undefined, JSON.stringify(r.error));
  return r.result?.data as Record<string, unknown>;
}

function secretDenied(r: RpcReply, reason: string): void {
  const e = r.error as { data?: { type?: string; reason?: string; secret?: string } } | undefined;
  assert.equal(e?.data?.type, "SecretDenied", JSON.stringify(r));
  assert.equal(e?.data?.reason, reason, JSON.stringify(r));
}

before(async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "kruxos-secrets-test-"));
  // The upstreams' own PKI, unrelated to the appliance's interception CA.
  const ca = await createInterceptionCa("test upstream CA");
  const leaf = await (await LeafIssuer.create(ca)).leaf("127.0.0.1");
  const caFile = path.join(dir, "upstream-ca.pem");
  writeFileSync(caFile, ca.certPem);
  const tlsOpts = { cert: leaf.certPem, key: leaf.keyPem };
  await listen("https", echo("https"), tlsOpts);
  await listen("plain", echo("plain"));
  await listen("other", echo("other"), tlsOpts);
  if (hasGit) {
    gitRoot = path.join(dir, "git");
    const src = path.join(dir, "src");
    const g = (args: string[], cwd?: string) =>
      spawnSync("git", args, {
        cwd,
        encoding: "utf8",
        env: { ...process.env, GIT_CONFIG_GLOBAL: "/dev/null" },
      });
    g(["init", "-q", "-b", "main", src]);
    writeFileSync(path.join(src, "README"), "private repository\n");
    g(["-c", "user.email=t@t", "-c", "user.name=t", "add", "README"], src);
    g(["-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "first"], src);
    g(["clone", "-q", "--bare", src, path.join(gitRoot, "repo.git")]);
    await listen("git", gitServer(gitRoot), tlsOpts);
  }
  const allow = Object.values(ports).map((p) => `127.0.0.1:${p}`);
  const policyFile = autonomousPolicyFile(allow);
  host = await readyHostWithAgent("netagent", (m) => ({
    ...m,
    policy: { ...(m.policy ?? {}), files: [policyFile] },
    proxy: { ...(m.proxy ?? {}), upstream_ca_files: [caFile] },
  }));
  const inScope = ["https", "plain", "git"]
    .filter((n) => ports[n] !== undefined)
    .map((n) => `127.0.0.1:${ports[n]}`)
    .join(",");
  const add = await host.cli(
    [
      "vault",
      "add",
      "canary",
      "--agents",
      "netagent",
      "--capabilities",
      "network.http_request,network.download,process.run,git.clone",
      "--hosts",
      inScope,
    ],
    CANARY,
  );
  assert.equal(add.code, 0, add.stderr);
  const add2 = await host.cli(
    [
      "vault",
      "add",
      "download_only",
      "--agents",
      "netagent",
      "--capabilities",
      "network.download",
      "--hosts",
      inScope,
    ],
    OTHER_VALUE,
  );
  assert.equal(add2.code, 0, add2.stderr);
  rpc = await RpcClient.connect(portOf(host.m, "gateway"), host.token);
  const made = await host.cli(["agent", "create", "stranger", "--json"]);
  assert.equal(made.code, 0, made.stderr);
  stranger = await RpcClient.connect(
    portOf(host.m, "gateway"),
    (JSON.parse(made.stdout) as { token: string }).token,
  );
});

after(async () => {
  rpc?.close();
  stranger?.close();
  await host?.a.cleanup();
  for (const s of servers) s.close();
});

test("network.http_request over HTTPS: the upstream gets the value in header, URL and body; the agent gets it redacted", async () => {
  const mark = seen.length;
  const r = await invoke(rpc, "network.http_request", {
    url: `https://127.0.0.1:${ports.https}/echo?k=\${secret:canary}`,
    method: "POST",
    headers: { "X-Key": "${secret:canary}" },
    body: '{"token":"${secret:canary}"}',
  });
  const data = ok(r);
  const got = seen.slice(mark).filter((s) => s.server === "https");
  assert.equal(got.length, 1);
  assert.equal(got[0]?.headers["x-key"], CANARY);
  assert.equal(got[0]?.url, `/echo?k=${CANARY}`);
  assert.equal(got[0]?.body, `{"token":"${CANARY}"}`);
  const text = JSON.stringify(data);
  assert.equal(text.includes(CANARY), false, text);
  assert.match(text, /\[REDACTED:canary\]/);
  assert.equal((data.headers as Record<string, string>)["x-echo"], "[REDACTED:canary]");
});

test("network.http_request over plain http: placed by the forwarding proxy, echoed back redacted", async () => {
  const mark = seen.length;
  const data = ok(
    await invoke(rpc, "network.http_request", {
      url: `http://127.0.0.1:${ports.plain}/p/\${secret:canary}`,
      headers: { "X-Key": "Bearer ${secret:canary}" },
    }),
  );
  const got = seen.slice(mark).filter((s) => s.server === "plain");
  assert.equal(got[0]?.headers["x-key"], `Bearer ${CANARY}`);
  assert.equal(got[0]?.url, `/p/${CANARY}`);
  assert.equal(JSON.stringify(data).includes(CANARY), false);
});

test("network.download: the file written to the workspace holds the redacted echo", async () => {
  const mark = seen.length;
  ok(
    await invoke(rpc, "network.download", {
      url: `https://127.0.0.1:${ports.https}/file`,
      path: "echo.json",
      headers: { "X-Key": "${secret:canary}" },
    }),
  );
  assert.equal(seen.slice(mark)[0]?.headers["x-key"], CANARY);
  const written = readFileSync(path.join(host.a.home ?? "", "workspace", "echo.json"), "utf8");
  assert.equal(written.includes(CANARY), false, written);
  assert.match(written, /\[REDACTED:canary\]/);
});

test("process.run: curl holds only the placeholder; the intercepting proxy places it and redacts the echo", async (t) => {
  if (unavailable) return t.skip(unavailable);
  const mark = seen.length;
  const data = ok(
    await invoke(rpc, "process.run", {
      command: [
        "curl",
        "-sS",
        "--max-time",
        "20",
        "-H",
        "X-Key: ${secret:canary}",
        "-u",
        "x-access-token:${secret:canary}",
        `https://127.0.0.1:${ports.https}/curl`,
      ],
      timeout_s: 30,
    }),
  );
  assert.equal(data.exit_code, 0, JSON.stringify(data));
  const got = seen.slice(mark).filter((s) => s.server === "https");
  assert.equal(got[0]?.headers["x-key"], CANARY);
  assert.equal(
    got[0]?.headers.authorization,
    `Basic ${Buffer.from(`x-access-token:${CANARY}`).toString("base64")}`,
  );
  const out = String(data.stdout);
  assert.equal(out.includes(CANARY), false, out);
  assert.match(out, /\[REDACTED:canary\]/);
});

test("git.clone over HTTPS with Basic auth: the credential travels as a placeholder and the clone works", async (t) => {
  if (unavailable) return t.skip(unavailable);
  if (!hasGit) return t.skip("git is not installed");
  const data = ok(
    await invoke(rpc, "git.clone", {
      url: `https://127.0.0.1:${ports.git}/repo.git`,
      path: "cloned",
      credentials: { password: "${secret:canary}" },
    }),
  );
  assert.equal(data.path, "/workspace/cloned");
  const readme = readFileSync(
    path.join(host.a.home ?? "", "workspace", "cloned", "README"),
    "utf8",
  );
  assert.equal(readme, "private repository\n");
  // Nothing of the credential, not even the placeholder, is kept in the clone.
  const kept = filesUnder(path.join(host.a.home ?? "", "workspace", "cloned")).filter((f) =>
    /secret:canary|Authorization/i.test(readFileSync(f, "latin1")),
  );
  assert.deepEqual(kept, []);
});

test("a host outside the secret's scope: refused with SecretDenied, audited, the upstream sees nothing", async () => {
  const mark = seen.length;
  secretDenied(
    await invoke(rpc, "network.http_request", {
      url: `https://127.0.0.1:${ports.other}/x`,
      headers: { "X-Key": "${secret:canary}" },
    }),
    "host",
  );
  assert.equal(seen.slice(mark).length, 0);
});

test("a redirect toward a host outside the scope does not carry the placeholder there", async () => {
  const mark = seen.length;
  secretDenied(
    await invoke(rpc, "network.http_request", {
      url: `https://127.0.0.1:${ports.https}/redirect`,
      headers: { "X-Key": "${secret:canary}" },
    }),
    "host",
  );
  assert.deepEqual(
    seen.slice(mark).map((s) => s.server),
    ["https"],
  );
});

test("a placeholder the program builds itself, for a secret outside its scope: the proxy answers 403 secret_out_of_scope", async (t) => {
  if (unavailable) return t.skip(unavailable);
  // The pipeline sees no placeholder in the inputs (the shell assembles it), so the proxy is the
  // guard: the https upstream is opened up for canary with process.run, and download_only may not
  // be used with process.run there.
  const mark = seen.length;
  const data = ok(
    await invoke(rpc, "process.run", {
      command: `curl -sS --max-time 20 -H "X-Key: $(printf '$%s' '{secret:download_only}')" https://127.0.0.1:${ports.https}/denied`,
      timeout_s: 30,
    }),
  );
  assert.match(String(data.stdout), /secret_out_of_scope/);
  assert.equal(seen.slice(mark).length, 0);
});

test("another agent, or a capability outside the scope, cannot use the secret", async () => {
  secretDenied(
    await invoke(stranger, "network.http_request", {
      url: `https://127.0.0.1:${ports.https}/x`,
      headers: { "X-Key": "${secret:canary}" },
    }),
    "not_available",
  );
  secretDenied(
    await invoke(rpc, "network.http_request", {
      url: `https://127.0.0.1:${ports.https}/x`,
      headers: { "X-Key": "${secret:download_only}" },
    }),
    "capability",
  );
  secretDenied(
    await invoke(rpc, "network.http_request", {
      url: `https://127.0.0.1:${ports.https}/x`,
      headers: { "X-Key": "${secret:no_such_secret}" },
    }),
    "not_available",
  );
});

test("placeholders smuggled into other fields, or malformed, are invalid input", async () => {
  for (const [name, inputs, at] of [
    ["filesystem.write", { path: "${secret:canary}", content: "x" }, "/inputs/path"],
    ["filesystem.write", { path: "f.txt", content: "${secret:canary}" }, "/inputs/content"],
    [
      "network.http_request",
      { url: `https://127.0.0.1:${ports.https}/`, headers: { "X-Key": "${ secret:canary}" } },
      "/inputs/headers/X-Key",
    ],
    ["process.run", { command: "true", cwd: "${secret:canary}" }, "/inputs/cwd"],
    // A placeholder split across two headers, hoping something joins them later.
    [
      "network.http_request",
      {
        url: `https://127.0.0.1:${ports.https}/`,
        headers: { "X-A": "${secret:", "X-B": "canary}" },
      },
      "/inputs/headers/X-A",
    ],
  ] as const) {
    const r = await invoke(rpc, name, inputs);
    const e = r.error as { code?: number; data?: { errors?: { path: string }[] } } | undefined;
    assert.equal(e?.code, -32602, JSON.stringify(r));
    assert.equal(e?.data?.errors?.[0]?.path, at, JSON.stringify(r));
  }
});

test("secrets.use hands back the placeholder for a use inside the scope, and records the purpose", async () => {
  const d = ok(
    await invoke(rpc, "secrets.use", {
      name: "canary",
      purpose: "call the echo service in the test",
      capability: "network.http_request",
      host: `127.0.0.1:${ports.https}`,
    }),
  );
  assert.equal(d.placeholder, "${secret:canary}");
  assert.equal(d.version, 1);
  secretDenied(
    await invoke(rpc, "secrets.use", {
      name: "canary",
      purpose: "send it somewhere else",
      capability: "network.http_request",
      host: `127.0.0.1:${ports.other}`,
    }),
    "host",
  );
  const missing = await invoke(stranger, "secrets.use", {
    name: "canary",
    purpose: "try another agent's secret",
  });
  assert.equal((missing.error as { data?: { type?: string } }).data?.type, "NotFound");
  const used = await host.cli(["audit", "query", "--json", "--kind", "vault.use"]);
  assert.match(used.stdout, /call the echo service in the test/);
});

test("secrets.rotate makes a new generated version of a rotatable secret and never returns it", async () => {
  const add = await host.cli(
    [
      "vault",
      "add",
      "generated",
      "--agents",
      "netagent",
      "--capabilities",
      "process.run",
      "--hosts",
      `127.0.0.1:${ports.https}`,
      "--rotatable",
    ],
    "first-generated-value-123",
  );
  assert.equal(add.code, 0, add.stderr);
  const d = ok(
    await invoke(rpc, "secrets.rotate", {
      name: "generated",
      reason: "exposed in a test log",
      length: 40,
    }),
  );
  assert.deepEqual(Object.keys(d).sort(), ["name", "previous_version", "rotated_at", "version"]);
  assert.equal(d.version, 2);
  assert.equal(d.previous_version, 1);
  const notRotatable = await invoke(rpc, "secrets.rotate", {
    name: "canary",
    reason: "agents cannot rotate operators' secrets",
  });
  assert.equal((notRotatable.error as { data?: { type?: string } }).data?.type, "NotRotatable");
});

test("kruxos vault rekey: the proxy follows the new key, the audit chain and its keyed checkpoints stay intact", async () => {
  const keyFile = path.join(host.a.home ?? "", "data", "secrets", "vault.key");
  const oldKey = readFileSync(keyFile, "utf8");
  const r = await host.cli(["vault", "rekey", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const body = JSON.parse(r.stdout) as { rewrapped: number; key_source: string };
  assert.equal(body.key_source, "file");
  assert.ok(body.rewrapped >= 3, r.stdout);
  assert.notEqual(readFileSync(keyFile, "utf8"), oldKey);
  const mark = seen.length;
  ok(
    await invoke(rpc, "network.http_request", {
      url: `https://127.0.0.1:${ports.https}/after-rekey`,
      headers: { "X-Key": "${secret:canary}" },
    }),
  );
  assert.equal(seen.slice(mark)[0]?.headers["x-key"], CANARY);
  const verify = await host.cli(["audit", "verify", "--json"]);
  assert.equal(verify.code, 0, verify.stdout);
  assert.equal((JSON.parse(verify.stdout) as { keyed: boolean }).keyed, true);
  const rekeyed = await host.cli(["audit", "query", "--json", "--kind", "operator.action"]);
  assert.match(rekeyed.stdout, /vault\.rekey/);
});

test("afterwards, no file of the appliance, no log and no answer holds the value or its encodings", async () => {
  const audit = await host.cli(["audit", "query", "--json", "--kind", "vault.access"]);
  assert.equal(audit.code, 0, audit.stderr);
  assert.match(audit.stdout, /"secret":\s*"canary"/);
  const denied = await host.cli(["audit", "query", "--json", "--kind", "vault.denied"]);
  assert.match(denied.stdout, /"reason":\s*"host"/);
  const home = host.a.home ?? "";
  const hits: string[] = [];
  for (const f of filesUnder(home)) {
    const text = readFileSync(f).toString("latin1");
    for (const form of forms(CANARY)) if (text.includes(form)) hits.push(`${f}: ${form}`);
  }
  for (const [i, a] of answers.entries())
    for (const form of forms(CANARY)) if (a.includes(form)) hits.push(`answer ${i}: ${form}`);
  const logs = await host.a.logText();
  for (const form of forms(CANARY)) if (logs.includes(form)) hits.push(`logs: ${form}`);
  assert.deepEqual(hits, []);
});
