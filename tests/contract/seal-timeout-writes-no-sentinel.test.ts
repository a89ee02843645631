// RC: a required program that never reaches RUNNING → no sentinel, BootstrapSealTimeout logged.
// In the image it exits (supervisord: FATAL, the seal waits it out); in host mode a FATAL required
// program ends the process (host-mode-fails-loudly.test.ts), so there it stays STARTING instead.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  MODES,
  defaultManifest,
  imageUnavailable,
  start,
  waitFor,
  withFreePorts,
  withProgramThatNeverRuns,
  withProgramThatStaysStarting,
} from "./harness.js";

for (const mode of MODES) {
  test(`a required program that never runs makes the seal time out without a sentinel [${mode}]`, async (t) => {
    if (mode === "image") {
      const why = await imageUnavailable();
      if (why) return t.skip(why);
    }
    const base = await withFreePorts(defaultManifest());
    const m =
      mode === "image"
        ? withProgramThatNeverRuns(base, 6, 1)
        : withProgramThatStaysStarting(base, 6);
    const a = await start(mode, m);
    t.after(a.cleanup);
    const line = await waitFor(
      async () => (await a.logLines()).find((l) => l.event === "BootstrapSealTimeout"),
      60_000,
    );
    assert.equal(line.stage, "bootstrap");
    // Under load other programs may still be starting too; the one that never runs must be named.
    const waiting = line.waiting as Record<string, string>;
    assert.ok("never" in waiting, JSON.stringify(waiting));
    assert.notEqual(waiting.never, "RUNNING");
    assert.equal(await a.sentinelExists(), false);
    assert.equal(
      (await a.logLines()).some((l) => l.event === "BootstrapCompleted"),
      false,
    );
  });
}
