// RC: a boot with no network reaches /ready 200 within 60 s; the body says ready, since and requirements.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  MODES,
  defaultManifest,
  imageUnavailable,
  start,
  waitReady,
  withFreePorts,
} from "./harness.js";

for (const mode of MODES) {
  test(`a boot without network reaches /ready 200 within 60 s [${mode}]`, async (t) => {
    if (mode === "image") {
      const why = await imageUnavailable();
      if (why) return t.skip(why);
    }
    const a = await start(mode, await withFreePorts(defaultManifest()));
    t.after(a.cleanup);
    const { body, ms } = await waitReady(a, 60_000);
    t.diagnostic(`boot-to-ready ${ms} ms (${mode})`);
    assert.equal(body.ready, true);
    assert.ok(!Number.isNaN(Date.parse(String(body.since))), "since is ISO 8601");
    const reqs = body.requirements as { name: string; ok: boolean }[];
    assert.deepEqual(
      reqs.map((r) => r.name),
      ["bootstrap", "policy", "audit", "vault", "state"],
    );
    assert.ok(reqs.every((r) => r.ok));
    assert.ok(await a.sentinelExists());
    assert.equal(await a.stop(), 0, "a clean stop exits 0");
  });
}
