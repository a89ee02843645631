// Brute force against the agent port from many local addresses: 10,000 refused attempts (guessed
// tokens, no token, malformed headers, an operator's token), over WebSocket upgrades and MCP POSTs.
// Throughout, the real agent token keeps working from the very addresses that flood; no guess gets
// in; and the audit log grows by a bounded number of records however many attempts there are —
// the first few per source and window one by one, the rest counted in one refusal.summary.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { test } from "node:test";
import { mcpInitialize } from "../helpers/rpc-client.js";
import { portOf, readyHostForFile } from "../contract/harness.js";

const ATTEMPTS = 10_000;
const SOURCES = 20;
const PER_SOURCE = 10;
const PER_WINDOW = 100;
const WINDOW_S = 60;

const host = readyHostForFile("victim", (m) => ({
  ...m,
  audit: {
    ...m.audit,
    refusal_records_per_source: PER_SOURCE,
    refusal_records_per_window: PER_WINDOW,
    refusal_window_s: WINDOW_S,
  },
}));

const source = (i: number): string => `127.0.0.${2 + (i % SOURCES)}`;

function auditBytes(): number {
  const dir = path.join(host.a.home ?? "", "data", "audit");
  return readdirSync(dir)
    .filter((f) => /^audit-\d{4}-\d{2}-\d{2}\.log$/.test(f))
    .reduce((n, f) => n + statSync(path.join(dir, f)).size, 0);
}

/** A WebSocket upgrade to /rpc; resolves with the status code. */
function upgrade(auth: string | undefined, from: string): Promise<number> {
  return new Promise((resolve) => {
    const s = net.connect(
      { port: portOf(host.m, "gateway"), host: "127.0.0.1", localAddress: from },
      () =>
        s.write(
          `GET /rpc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n${auth === undefined ? "" : `Authorization: ${auth}\r\n`}\r\n`,
        ),
    );
    let out = "";
    s.on("data", (c: Buffer) => {
      out += c.toString("latin1");
      if (out.includes("\r\n")) s.destroy();
    });
    s.on("close", () => resolve(Number(out.slice(9, 12)) || 0));
    s.on("error", () => undefined);
  });
}

/** An MCP initialize POST; resolves with the status code. */
function post(auth: string | undefined, from: string): Promise<number> {
  return new Promise((resolve) => {
    const body = JSON.stringify(mcpInitialize("b"));
    const req = http.request(
      {
        host: "127.0.0.1",
        port: portOf(host.m, "gateway"),
        path: "/mcp",
        method: "POST",
        localAddress: from,
        agent: false,
        headers: {
          "content-type": "application/json",
          accept: "application/json",
          ...(auth === undefined ? {} : { authorization: auth }),
        },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on("error", () => resolve(0));
    req.end(body);
  });
}

const GUESSES: ((i: number) => string | undefined)[] = [
  () => `Bearer ${randomBytes(32).toString("hex")}`,
  () => undefined,
  () => "Bearer not-a-token",
  () => `Basic ${randomBytes(8).toString("base64")}`,
  () => `Bearer ${host.adminToken}`,
];

test(`${ATTEMPTS} refused attempts from ${SOURCES} addresses: none gets in, the real host.token always does, and audit growth stays bounded`, async (t) => {
  const before = { bytes: auditBytes(), started: Date.now() };
  const refused = new Map<number, number>();
  let validChecks = 0;
  const CONCURRENCY = 32;
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= ATTEMPTS) return;
      const auth = GUESSES[i % GUESSES.length]?.(i);
      const status = i % 2 === 0 ? await upgrade(auth, source(i)) : await post(auth, source(i));
      refused.set(status, (refused.get(status) ?? 0) + 1);
      if (i % 250 === 0) {
        // The agent, from an address that is flooding right now, still gets in on both transports.
        assert.equal(await upgrade(`Bearer ${host.token}`, source(i)), 101, `attempt ${i}`);
        assert.equal(await post(`Bearer ${host.token}`, source(i)), 200, `attempt ${i}`);
        validChecks++;
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const elapsedS = (Date.now() - before.started) / 1000;
  assert.deepEqual(
    [...refused.keys()].sort(),
    [401, 429],
    `statuses: ${JSON.stringify([...refused])}`,
  );
  assert.equal((refused.get(401) ?? 0) + (refused.get(429) ?? 0), ATTEMPTS);

  // A clean stop writes the current window's summary.
  assert.equal(await host.a.stop(), 0);
  const grown = auditBytes() - before.bytes;
  const query = async (kind: string): Promise<Record<string, unknown>[]> => {
    const r = await host.cli(["audit", "query", "--kind", kind, "--json", "--limit", "100000"]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Record<string, unknown>[];
  };
  const individual = await query("auth.failure");
  const summaries = (await query("refusal.summary")).map(
    (r) => r.detail as { total: number; reported: number; suppressed: number },
  );
  const windows = Math.ceil(elapsedS / WINDOW_S) + 1;
  assert.ok(individual.length <= windows * PER_WINDOW, `${individual.length} individual records`);
  assert.ok(summaries.length >= 1 && summaries.length <= windows, `${summaries.length} summaries`);
  assert.equal(
    individual.length + summaries.reduce((n, s) => n + s.suppressed, 0),
    ATTEMPTS,
    "every refusal is accounted for, one by one or in a summary",
  );
  const records = individual.length + summaries.length;
  assert.ok(grown <= records * 1024, `${grown} bytes for ${records} records`);
  const verify = await host.cli(["audit", "verify"]);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  t.diagnostic(
    `${ATTEMPTS} refused attempts in ${elapsedS.toFixed(1)} s (401: ${refused.get(401)}, 429: ${refused.get(429)}); ` +
      `${validChecks} checks of the real host.token from flooding addresses, all admitted; ` +
      `audit grew by ${records} records (${individual.length} one by one, ${summaries.length} summaries), ` +
      `${grown} bytes — ${Math.round((grown * 10_000) / ATTEMPTS)} bytes per 10,000 refused attempts`,
  );
});
