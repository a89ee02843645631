// RC: before the seal, /livez answers 200 in < 100 ms while /ready is 503 with `missing` containing bootstrap.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  MODES,
  defaultManifest,
  imageUnavailable,
  portOf,
  start,
  waitFor,
  withFreePorts,
  withProgramThatStaysStarting,
} from "./harness.js";

for (const mode of MODES) {
  test(`before the seal /livez is 200 in < 100 ms while /ready is 503 missing bootstrap [${mode}]`, async (t) => {
    if (mode === "image") {
      const why = await imageUnavailable();
      if (why) return t.skip(why);
    }
    // A required program that stays STARTING holds the seal back for the whole test.
    const m = withProgramThatStaysStarting(await withFreePorts(defaultManifest()), 600);
    const a = await start(mode, m);
    t.after(a.cleanup);
    const port = portOf(m, "gateway");
    await waitFor(
      async () => ((await a.get(port, "/livez")).status === 200 ? true : undefined),
      60_000,
    );
    const samples = [];
    for (let i = 0; i < 5; i++) samples.push(await a.get(port, "/livez"));
    for (const s of samples) {
      assert.equal(s.status, 200);
      const body = JSON.parse(s.body) as { live: boolean; uptime_s: number };
      assert.equal(body.live, true);
      assert.equal(typeof body.uptime_s, "number");
    }
    const median = samples.map((s) => s.ms).sort((x, y) => x - y)[2] ?? Infinity;
    t.diagnostic(`/livez median ${median.toFixed(2)} ms`);
    assert.ok(median < 100, `/livez took ${median} ms`);
    const ready = await a.get(port, "/ready");
    assert.equal(ready.status, 503);
    const body = JSON.parse(ready.body) as { ready: boolean; reason: string; missing: string[] };
    assert.equal(body.ready, false);
    assert.ok(body.missing.includes("bootstrap"), ready.body);
    assert.equal(typeof body.reason, "string");
    assert.equal(await a.sentinelExists(), false);
  });
}
