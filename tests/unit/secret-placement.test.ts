// Where a value may go, decided without a network: the placeholder grammar and its near-misses, the
// resolver's scope (agents, capability patterns, host:port patterns, expiry, revocation, the
// appliance's own secrets), and the proxy's rewrite of one request (URL-encoded in the path, raw in
// headers, inside Basic credentials, in a body) with the refusals an agent would try to get past.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import path from "node:path";
import { test } from "node:test";
import { Registry, createLogger } from "../../src/core/index.js";
import {
  LeafIssuer,
  createInterceptionCa,
  createProxy,
  mintCredential,
  proxyAuthorization,
} from "../../src/egress/index.js";
import { placeSecrets } from "../../src/egress/intercept.js";
import { proxySecrets } from "../../src/appliance/secrets-wiring.js";
import { PolicyEngine } from "../../src/policy/index.js";
import {
  SecretResolver,
  Vault,
  malformedPlaceholder,
  mentionsPlaceholder,
  placeholderNames,
  substitutePlaceholders,
} from "../../src/vault/index.js";
import { tempDir } from "../helpers/repo.js";

const VALUE = "s3cr3t-v@lue/with&odd=chars";

/** A fresh vault (env key) in a temporary folder, closed and removed after the test. */
function emptyVault(t: { after(fn: () => void): void }): { v: Vault; dir: string } {
  const { dir, cleanup } = tempDir("kruxos-placement-");
  t.after(cleanup);
  const env = { KRUXOS_VAULT_KEY: randomBytes(32).toString("hex") };
  const v = Vault.open({
    file: path.join(dir, "vault.db"),
    secretsDir: dir,
    keySource: "env",
    env,
  });
  t.after(() => v.close());
  return { v, dir };
}

function vault(t: { after(fn: () => void): void }): { v: Vault; r: SecretResolver } {
  const { v } = emptyVault(t);
  const s = v.store;
  assert.ok(s, String(v.health().detail));
  s.add("api", Buffer.from(VALUE), {
    agents: ["builder"],
    capabilities: ["network.*"],
    hosts: ["api.example.com:443", "*.example.org:443"],
  });
  s.add("anyone", Buffer.from("for-every-agent-123"), {
    agents: ["*"],
    capabilities: ["*"],
    hosts: ["files.example.net:443"],
  });
  s.add("old", Buffer.from("expired-value-123"), {
    agents: ["builder"],
    capabilities: ["*"],
    hosts: ["api.example.com:443"],
    expires_at: "2020-01-01T00:00:00Z",
  });
  s.add("gone", Buffer.from("revoked-value-123"), {
    agents: ["builder"],
    capabilities: ["*"],
    hosts: ["api.example.com:443"],
  });
  s.revoke("gone");
  s.add("crlf", Buffer.from("line1\r\nX-Injected: yes"), {
    agents: ["builder"],
    capabilities: ["network.http_request"],
    hosts: ["api.example.com:443"],
  });
  return { v, r: new SecretResolver(v) };
}

const who = {
  agent: "builder",
  session: "s",
  callId: "call-1",
  capability: "network.http_request",
};

test("placeholders: found plainly and percent-encoded; near-misses are malformed, never silently literal", () => {
  assert.deepEqual(placeholderNames("a ${secret:x} b $%7Bsecret:y%7D c ${secret:x}"), ["x", "y"]);
  for (const near of [
    "${ secret:x}",
    "${SECRET:x}",
    "${secret:x",
    "${secret:bad name}",
    "${secret:}",
  ])
    assert.ok(mentionsPlaceholder(near) && malformedPlaceholder(near), near);
  assert.equal(malformedPlaceholder("Bearer ${secret:x}"), false);
  assert.equal(mentionsPlaceholder("$5 {secret} no"), false);
  assert.equal(
    substitutePlaceholders(
      "/v1/${secret:x}?k=$%7Bsecret:x%7D",
      new Map([["x", "a/b c"]]),
      encodeURIComponent,
    ),
    "/v1/a%2Fb%20c?k=a%2Fb%20c",
  );
});

test("scope: agent, capability pattern, host pattern, expiry and revocation each refuse with their own reason", (t) => {
  const { r } = vault(t);
  const use = (agent: string, capability: string, host?: string, port?: number) => {
    const m = r.check(
      "api",
      host === undefined ? { agent, capability } : { agent, capability, host, port: port ?? 443 },
    );
    return "reason" in m ? m.reason : "ok";
  };
  assert.equal(use("builder", "network.http_request", "api.example.com"), "ok");
  assert.equal(use("builder", "network.download", "API.Example.Com."), "ok");
  assert.equal(use("builder", "network.http_request", "deep.sub.example.org"), "ok");
  assert.equal(use("builder", "network.http_request", "example.org"), "host");
  assert.equal(use("builder", "network.http_request", "api.example.com", 8443), "host");
  assert.equal(use("builder", "network.http_request", "api.example.com.evil.test"), "host");
  assert.equal(use("builder", "process.run"), "capability");
  assert.equal(use("intruder", "network.http_request"), "not_available");
  const byName = (name: string) => {
    const m = r.check(name, { agent: "builder", capability: "network.http_request" });
    return "reason" in m ? m.reason : "ok";
  };
  assert.equal(byName("old"), "expired");
  assert.equal(byName("gone"), "not_available");
  assert.equal(byName("no_such"), "not_available");
  assert.equal(byName("kruxos.egress-ca"), "not_available");
  // Another agent learns nothing more than "not available" about a secret that is not theirs.
  const other = r.check("api", { agent: "intruder", capability: "network.http_request" });
  assert.ok("reason" in other);
  assert.equal(other.message, 'secret "api" is not available to you');
  assert.equal(r.check("anyone", { agent: "whoever", capability: "git.clone" }).name, "anyone");
});

test("the proxy places values raw in headers, URL-encoded in the path, inside Basic credentials and in a body", (t) => {
  const { r } = vault(t);
  const s = proxySecrets(r);
  const basic = `Basic ${Buffer.from("user:${secret:api}").toString("base64")}`;
  const placed = placeSecrets(
    s,
    who,
    "api.example.com",
    443,
    "/v1/items?key=${secret:api}",
    { "x-key": "${secret:api}", authorization: basic, "x-plain": "no placeholder" },
    Buffer.from('{"token":"${secret:api}"}'),
  );
  assert.ok(!("reason" in placed), JSON.stringify(placed));
  assert.equal(placed.path, `/v1/items?key=${encodeURIComponent(VALUE)}`);
  assert.equal(placed.headers["x-key"], VALUE);
  assert.equal(
    placed.headers.authorization,
    `Basic ${Buffer.from(`user:${VALUE}`).toString("base64")}`,
  );
  assert.equal(placed.headers["x-plain"], "no placeholder");
  assert.equal(placed.body?.toString(), `{"token":"${VALUE}"}`);
  assert.deepEqual(
    placed.placed.map((p) => [p.name, p.version]),
    [["api", 1]],
  );
});

test("the proxy refuses what may not go there, whole: another host, a secret outside the call, a value that would split the request", (t) => {
  const { r } = vault(t);
  const s = proxySecrets(r);
  const reason = (host: string, headers: Record<string, string>, w = who) => {
    const p = placeSecrets(s, w, host, 443, "/", headers, undefined);
    return "reason" in p ? `${p.name}:${p.reason}` : "placed";
  };
  assert.equal(reason("evil.example.com", { "x-key": "${secret:api}" }), "api:host");
  // One good and one bad placeholder: nothing is placed.
  assert.equal(
    reason("api.example.com", { a: "${secret:api}", b: "${secret:old}" }),
    "old:expired",
  );
  assert.equal(
    reason("api.example.com", { a: "${secret:api}" }, { ...who, capability: "process.run" }),
    "api:capability",
  );
  assert.equal(reason("api.example.com", { a: "${secret:crlf}" }), "crlf:host");
  assert.equal(
    reason("api.example.com", { a: "${secret:kruxos.egress-ca}" }),
    "kruxos.egress-ca:not_available",
  );
});

test("interception is decided per call and destination: only where some secret may go", (t) => {
  const { r } = vault(t);
  const s = proxySecrets(r);
  assert.equal(s.covers(who, "api.example.com", 443), true);
  assert.equal(s.covers(who, "x.example.org", 443), true);
  assert.equal(s.covers(who, "example.org", 443), false);
  assert.equal(s.covers({ ...who, agent: "intruder" }, "api.example.com", 443), false);
  assert.equal(s.covers({ ...who, agent: "intruder" }, "files.example.net", 443), true);
  assert.equal(s.covers({ ...who, capability: "process.run" }, "api.example.com", 443), false);
});

test("what comes back is redacted with exactly the values that could have been placed there", (t) => {
  const { r } = vault(t);
  const s = proxySecrets(r);
  const here = s.redactor(who, "api.example.com", 443);
  assert.deepEqual([...here.names].sort(), ["api", "crlf"]);
  assert.equal(here.text(`echo ${VALUE}`), "echo [REDACTED:api]");
  assert.equal(s.redactor({ ...who, agent: "intruder" }, "api.example.com", 443).empty, true);
  // A rotation is seen at once: the old value's redactor is not reused.
  r.redactor({ agent: "builder", capability: "network.http_request" });
  (r as unknown as { vault: Vault }).vault.store?.rotate("api", Buffer.from("rotated-value-456"));
  assert.equal(
    r.redactor({ agent: "builder", capability: "network.http_request" }).text("rotated-value-456"),
    "[REDACTED:api]",
  );
});

test("plain HTTP inside a CONNECT tunnel toward an opened-up host is placed and answered redacted", async (t) => {
  const { v, dir } = emptyVault(t);
  const seen: string[] = [];
  const up = http.createServer((q, res) => {
    seen.push(String(q.headers["x-key"]));
    res.end(`echo ${String(q.headers["x-key"])}`);
  });
  await new Promise<void>((r) => up.listen(0, "127.0.0.1", r));
  t.after(() => up.close());
  const target = `127.0.0.1:${(up.address() as AddressInfo).port}`;
  v.store?.add("k", Buffer.from("plain-tunnel-value-1"), {
    agents: ["a"],
    capabilities: ["process.run"],
    hosts: [target],
  });
  const policyFile = path.join(dir, "policy.yaml");
  writeFileSync(policyFile, `version: 1\nnetwork: { egress: { allow: ["${target}"] } }\n`);
  const policy = new PolicyEngine({ files: [policyFile] });
  policy.reload();
  const ca = await createInterceptionCa("test CA");
  const leaves = await LeafIssuer.create(ca);
  const key = randomBytes(32);
  const audit: string[] = [];
  const proxy = createProxy({
    log: createLogger({ program: "t", level: "silent" }),
    registry: new Registry(),
    policy,
    credentialKey: key,
    audit: async (e) => void audit.push(e.kind),
    interception: {
      secrets: proxySecrets(new SecretResolver(v)),
      leaf: (h) => leaves.leaf(h),
      upstreamCa: [],
    },
  });
  const server = proxy.server();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => server.close());
  const auth = proxyAuthorization(
    mintCredential(
      key,
      { agent: "a", session: "s", callId: "c", capability: "process.run" },
      60_000,
    ),
  );
  const exchange = (header: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const s = net.connect((server.address() as AddressInfo).port, "127.0.0.1", () =>
        s.write(
          `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\nProxy-Authorization: ${auth}\r\n\r\n`,
        ),
      );
      let buf = "";
      let open = false;
      s.on("data", (c: Buffer) => {
        buf += c.toString("latin1");
        if (!open && buf.includes("\r\n\r\n")) {
          open = true;
          buf = "";
          s.write(
            `GET / HTTP/1.1\r\nHost: ${target}\r\nX-Key: ${header}\r\nConnection: close\r\n\r\n`,
          );
        }
      });
      s.on("end", () => resolve(buf));
      s.on("error", reject);
      s.setTimeout(5000, () => reject(new Error(`no answer; got ${JSON.stringify(buf)}`)));
    });
  const ok = await exchange("${secret:k}");
  assert.deepEqual(seen, ["plain-tunnel-value-1"]);
  assert.match(ok, /echo \[REDACTED:k\]/);
  assert.equal(ok.includes("plain-tunnel-value-1"), false);
  const refused = await exchange("${secret:other}");
  assert.match(refused, /^HTTP\/1\.1 403/);
  assert.match(refused, /secret_out_of_scope/);
  assert.equal(seen.length, 1, "the upstream saw nothing of the refused request");
  assert.ok(audit.includes("vault.access") && audit.includes("vault.denied"), audit.join(","));
});
