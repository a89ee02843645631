// Attempts an agent (or anyone on the network) would make against what the appliance exposes
// today: read the first-boot secrets, reach operator surfaces without a user token, smuggle a token
// in a URL, walk out of the dashboard's asset folder, or get out through the egress proxy.
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { after, before, test } from "node:test";
import {
  defaultManifest,
  portOf,
  startHost,
  waitReady,
  withFreePorts,
  type Appliance,
  type ManifestObject,
} from "../contract/harness.js";

let a: Appliance;
let m: ManifestObject;
let home: string;

before(async () => {
  m = await withFreePorts(defaultManifest());
  a = await startHost(m);
  await waitReady(a, 60_000);
  const banner = await a.logText();
  const file = /admin token: (\S+)/.exec(banner)?.[1];
  assert.ok(file, banner);
  home = path.resolve(path.dirname(file), "..", "..");
});
after(async () => {
  await a.cleanup();
});

function request(
  port: number,
  urlPath: string,
  opts: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path: urlPath,
        method: opts.method ?? "GET",
        headers: opts.headers,
      },
      (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** Send raw bytes and read the reply until the peer closes (or 3 s). */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1", () => s.write(bytes));
    let out = "";
    s.on("data", (c) => (out += c.toString()));
    s.on("close", () => resolve(out));
    s.on("error", () => resolve(out));
    setTimeout(() => s.destroy(), 3000).unref();
  });
}

const adminToken = (): string =>
  readFileSync(path.join(home, "data", "secrets", "admin.token"), "utf8").trim();

test("first-boot secrets are files only the appliance user can read", () => {
  assert.equal(statSync(path.join(home, "data", "secrets")).mode & 0o777, 0o700);
  for (const f of ["admin.token", "vault.key"])
    assert.equal(statSync(path.join(home, "data", "secrets", f)).mode & 0o777, 0o600, f);
  assert.match(adminToken(), /^krx_user_[0-9a-f]{64}$/);
});

test("the admin token and vault key never appear in the logs", async () => {
  const logs = await a.logText();
  assert.ok(!logs.includes(adminToken().slice("krx_user_".length)), "admin token leaked into logs");
  const key = readFileSync(path.join(home, "data", "secrets", "vault.key"), "utf8").trim();
  assert.ok(!logs.includes(key), "vault key leaked into logs");
});

test("the admin token is stored only as a hash", () => {
  const db = readFileSync(path.join(home, "data", "agents.db"));
  assert.equal(db.includes(Buffer.from(adminToken())), false);
});

test("the user API refuses a missing, malformed or unknown token and accepts the admin token", async () => {
  const api = portOf(m, "supervision", "api_port");
  assert.equal((await request(api, "/api/v1/health")).status, 401);
  assert.equal(
    (await request(api, "/api/v1/health", { headers: { authorization: "Bearer nope" } })).status,
    401,
  );
  const forged = `krx_user_${"0".repeat(64)}`;
  assert.equal(
    (await request(api, "/api/v1/health", { headers: { authorization: `Bearer ${forged}` } }))
      .status,
    401,
  );
  // An agent-style token (64 hex without the user prefix) is not a user token.
  assert.equal(
    (
      await request(api, "/api/v1/health", {
        headers: { authorization: `Bearer ${"a".repeat(64)}` },
      })
    ).status,
    401,
  );
  const ok = await request(api, "/api/v1/health", {
    headers: { authorization: `Bearer ${adminToken()}` },
  });
  assert.equal(ok.status, 200);
  assert.equal((JSON.parse(ok.body) as { status: string }).status, "ok");
  const openapi = await request(api, "/api/v1/openapi.json");
  assert.equal(openapi.status, 200);
  assert.equal((JSON.parse(openapi.body) as { openapi: string }).openapi, "3.1.0");
});

test("the dashboard proxies the user API without adding authority", async () => {
  const dash = portOf(m, "dashboard");
  assert.equal((await request(dash, "/api/v1/health")).status, 401);
  assert.equal(
    (
      await request(dash, "/api/v1/health", {
        headers: { authorization: `Bearer ${adminToken()}` },
      })
    ).status,
    200,
  );
});

test("the event stream refuses upgrades without a user token, and tokens in the URL", async () => {
  const ws = portOf(m, "supervision", "ws_port");
  const upgrade = (url: string, auth?: string): string =>
    `GET ${url} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${auth ? `Authorization: Bearer ${auth}\r\n` : ""}\r\n`;
  assert.match(await raw(ws, upgrade("/")), /^HTTP\/1\.1 401 /);
  assert.match(await raw(ws, upgrade(`/?token=${adminToken()}`)), /^HTTP\/1\.1 400 /);
  assert.match(await raw(ws, upgrade("/", adminToken())), /^HTTP\/1\.1 101 /);
});

test("tokens in agent-port URLs are refused before routing", async () => {
  const res = await request(portOf(m, "gateway"), `/livez?token=${"a".repeat(64)}`);
  assert.equal(res.status, 400);
  assert.equal((JSON.parse(res.body) as { error: string }).error, "token_in_url_refused");
});

test("the dashboard never serves files outside its asset folder", async () => {
  const dash = portOf(m, "dashboard");
  for (const p of [
    "/../../package.json",
    "/%2e%2e/%2e%2e/package.json",
    "/..%2f..%2fpackage.json",
    "/%2e%2e%2f%2e%2e%2fdata/secrets/admin.token",
  ]) {
    const res = await raw(dash, `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.match(res, /^HTTP\/1\.1 (404|400) /, p);
    assert.doesNotMatch(res, /"name": "kruxos"|krx_user_/, p);
  }
  const index = await request(dash, "/");
  assert.equal(index.status, 200);
  assert.match(String(index.headers["content-security-policy"]), /default-src 'self'/);
});

test("the egress proxy refuses anyone without a per-call credential with 407", async () => {
  const proxy = portOf(m, "proxy");
  const connect = await raw(
    proxy,
    "CONNECT 169.254.169.254:80 HTTP/1.1\r\nHost: 169.254.169.254:80\r\n\r\n",
  );
  assert.match(connect, /^HTTP\/1\.1 407 /);
  assert.match(connect, /proxy-authenticate: Basic/i);
  const body = JSON.parse(connect.slice(connect.indexOf("\r\n\r\n") + 4)) as Record<string, string>;
  assert.equal(body.error, "proxy_auth_required");
  const forged = await raw(
    proxy,
    "CONNECT 169.254.169.254:80 HTTP/1.1\r\nHost: 169.254.169.254:80\r\nProxy-Authorization: Basic a3J1eG9zOmZvcmdlZA==\r\n\r\n",
  );
  assert.match(forged, /^HTTP\/1\.1 407 /);
  const forward = await request(proxy, "http://127.0.0.1:1/", { headers: { host: "127.0.0.1:1" } });
  assert.equal(forward.status, 407);
});
