// What someone without a valid agent token tries on the agent port: no token, a guessed token, a
// user (operator) token, a token in the URL, brute force — each refused before any upgrade and
// audited; and an agent token used on an operator surface.
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { runCli } from "../helpers/repo.js";
import { RpcClient } from "../helpers/rpc-client.js";
import {
  portOf,
  type Appliance,
  type ManifestObject,
  readyHostWithAgent,
} from "../contract/harness.js";

let a: Appliance;
let m: ManifestObject;
let token: string;
let cli: (args: readonly string[]) => ReturnType<typeof runCli>;

before(async () => {
  // Every refusal of this file's few attempts is recorded one by one (the bound on how many
  // are, under a flood, is tested in brute-force.test.ts).
  ({ a, m, token, cli } = await readyHostWithAgent("bob", (m) => ({
    ...m,
    audit: { ...m.audit, refusal_records_per_source: 100, refusal_records_per_window: 1000 },
  })));
});
after(async () => {
  await a.cleanup();
});

/** Upgrade request from a chosen local source address (127.0.0.x) so each test has its own limiter bucket. */
function upgrade(urlPath: string, auth: string | undefined, source: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(
      { port: portOf(m, "gateway"), host: "127.0.0.1", localAddress: source },
      () =>
        s.write(
          `GET ${urlPath} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${auth ? `Authorization: ${auth}\r\n` : ""}\r\n`,
        ),
    );
    let out = "";
    s.on("data", (c) => {
      out += c.toString();
      if (out.includes("\r\n\r\n") && out.startsWith("HTTP/1.1 101")) s.destroy();
    });
    s.on("close", () => resolve(out));
    s.on("error", () => resolve(out));
    setTimeout(() => s.destroy(), 3000).unref();
  });
}

test("no token, a guessed token, a revoked-looking token and a malformed header get 401 before any upgrade", async () => {
  for (const auth of [
    undefined,
    `Bearer ${randomBytes(32).toString("hex")}`,
    `Bearer ${"A".repeat(64)}`,
    `Basic ${token}`,
    token,
  ])
    assert.match(await upgrade("/rpc", auth, "127.0.0.2"), /^HTTP\/1\.1 401 /, String(auth));
});

test("an operator's user token is refused on the agent port", async () => {
  const admin = readFileSync(
    path.join(a.home ?? "", "data", "secrets", "admin.token"),
    "utf8",
  ).trim();
  const r = await upgrade("/rpc", `Bearer ${admin}`, "127.0.0.3");
  assert.match(r, /^HTTP\/1\.1 401 /);
  assert.match(r, /user_token_refused/);
});

test("a token in the URL is refused even when it is valid", async () => {
  assert.match(await upgrade(`/rpc?token=${token}`, undefined, "127.0.0.4"), /^HTTP\/1\.1 400 /);
  assert.match(
    await upgrade(`/rpc?access_token=${token}`, `Bearer ${token}`, "127.0.0.4"),
    /^HTTP\/1\.1 400 /,
  );
});

test("repeated failures from one source are answered 429, yet a valid token from that source always gets in", async () => {
  const codes: string[] = [];
  for (let i = 0; i < 12; i++)
    codes.push(
      (await upgrade("/rpc", `Bearer ${randomBytes(32).toString("hex")}`, "127.0.0.5")).slice(
        9,
        12,
      ),
    );
  assert.deepEqual(codes.slice(0, 10), Array(10).fill("401"));
  assert.deepEqual(codes.slice(10), ["429", "429"]);
  // Failing on purpose from an agent's address must not lock the agent out…
  assert.match(await upgrade("/rpc", `Bearer ${token}`, "127.0.0.5"), /^HTTP\/1\.1 101 /);
  assert.match(await upgrade("/mcp", `Bearer ${token}`, "127.0.0.5"), /^HTTP\/1\.1 101 /);
  // …while more guesses from there are still held back.
  assert.match(
    await upgrade("/rpc", `Bearer ${randomBytes(32).toString("hex")}`, "127.0.0.5"),
    /^HTTP\/1\.1 429 /,
  );
  // Other sources are unaffected.
  assert.match(await upgrade("/rpc", `Bearer ${token}`, "127.0.0.6"), /^HTTP\/1\.1 101 /);
});

test("every refused authentication is an audit record", async () => {
  const q = JSON.parse(
    (await cli(["audit", "query", "--kind", "auth.failure", "--json", "--limit", "500"])).stdout,
  ) as { detail: { reason: string } }[];
  const reasons = new Set(q.map((r) => r.detail.reason));
  for (const r of ["missing", "unknown", "malformed", "user_token_refused", "rate_limited"])
    assert.ok(reasons.has(r), `${r} not audited: ${[...reasons].join(",")}`);
});

test("an agent token is refused on the user API", async () => {
  const status = await new Promise<number>((resolve) =>
    http
      .get(
        {
          host: "127.0.0.1",
          port: portOf(m, "supervision", "api_port"),
          path: "/api/v1/agents",
          headers: { authorization: `Bearer ${token}` },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      )
      .on("error", () => resolve(0)),
  );
  assert.equal(status, 401);
});

test("a valid agent token opens /rpc and works", async () => {
  const c = await RpcClient.connect(portOf(m, "gateway"), token);
  const r = await c.invoke("agent.whoami");
  c.close();
  assert.equal((r.result?.data as { agent: string }).agent, "bob");
});
