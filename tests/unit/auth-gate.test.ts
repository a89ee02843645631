// The one way every surface checks a bearer token: a token that verifies always gets in, failures
// from one source are held back (429) past a bound, and a flood costs bounded memory.
import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { test } from "node:test";
import { AuthLimiter, createAuthGate, type AuthRefusalReport } from "../../src/core/index.js";

const GOOD = "a".repeat(64);

function request(source: string, authorization?: string): IncomingMessage {
  return {
    url: "/rpc",
    headers: authorization === undefined ? {} : { authorization },
    socket: { remoteAddress: source },
  } as unknown as IncomingMessage;
}

function gate() {
  const failures: AuthRefusalReport[] = [];
  const g = createAuthGate<string>({
    verify: (token) =>
      token === GOOD
        ? { ok: true, who: "bob" }
        : { ok: false, reason: token ? "unknown" : "missing" },
    onFailure: (f) => failures.push(f),
    hint: "send a token",
    maxFailures: 10,
    windowMs: 60_000,
  });
  return { g, failures };
}

test("a token that verifies gets in however many failures its source has", () => {
  const { g, failures } = gate();
  const statuses: number[] = [];
  for (let i = 0; i < 50; i++) {
    const r = g(request("10.0.0.9", "Bearer wrong"));
    statuses.push(r.ok ? 200 : r.status);
  }
  assert.deepEqual(statuses.slice(0, 10), Array(10).fill(401));
  assert.deepEqual(statuses.slice(10), Array(40).fill(429));
  const ok = g(request("10.0.0.9", `Bearer ${GOOD}`));
  assert.equal(ok.ok, true);
  assert.equal(ok.ok && ok.who, "bob");
  assert.equal(failures.length, 50);
  assert.equal(failures.filter((f) => f.reason === "rate_limited").length, 40);
  const other = g(request("10.0.0.8"));
  assert.equal(!other.ok && other.status, 401, "other sources are not held back");
});

test("the limiter keeps at most maxFailures timestamps per source, however long the flood", () => {
  const l = new AuthLimiter({ maxFailures: 10, windowMs: 60_000, maxSources: 100 });
  for (let i = 0; i < 100_000; i++) l.fail("10.0.0.1", 1000);
  assert.equal(l.retryAfter("10.0.0.1", 1000), 60);
  const internal = (l as unknown as { failures: Map<string, number[]> }).failures;
  assert.equal(internal.get("10.0.0.1")?.length, 10);
  for (let i = 0; i < 1000; i++) l.fail(`10.1.${i >> 8}.${i & 255}`, 1000);
  assert.equal(internal.size, 100);
  assert.equal(l.retryAfter("10.0.0.1", 1000), 0, "the oldest source was forgotten first");
});
