// RC: a writable /opt/kruxos → ImmutableRootWritable warning, and the boot still seals.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  MODES,
  defaultManifest,
  imageUnavailable,
  start,
  waitFor,
  waitReady,
  withFreePorts,
} from "./harness.js";

for (const mode of MODES) {
  test(`a writable application root is warned about and the boot still seals [${mode}]`, async (t) => {
    if (mode === "image") {
      const why = await imageUnavailable();
      if (why) return t.skip(why);
    }
    const m = await withFreePorts(defaultManifest());
    // Host mode: the checkout is writable by nature. Image: root without a read-only rootfs owns /opt/kruxos.
    const a = await start(
      mode,
      m,
      mode === "image"
        ? { extraArgs: ["--read-only=false", "--user", "0:0"], volumeOwner: { uid: 0, gid: 0 } }
        : {},
    );
    t.after(a.cleanup);
    const warn = await waitFor(
      async () => (await a.logLines()).find((l) => l.event === "ImmutableRootWritable"),
      60_000,
    );
    assert.equal(warn.level, "warn");
    assert.equal(warn.stage, "bootstrap");
    await waitReady(a, 60_000);
    assert.ok(await a.sentinelExists());
  });

  test(`strict mode makes a writable application root fatal [${mode}]`, async (t) => {
    if (mode === "image") {
      const why = await imageUnavailable();
      if (why) return t.skip(why);
    }
    const m = await withFreePorts(defaultManifest());
    m.appliance = { ...m.appliance, strict: true };
    const a = await start(
      mode,
      m,
      mode === "image"
        ? { extraArgs: ["--read-only=false", "--user", "0:0"], volumeOwner: { uid: 0, gid: 0 } }
        : {},
    );
    t.after(a.cleanup);
    const code = await a.waitExit(30_000);
    assert.notEqual(code, null);
    assert.notEqual(code, 0);
    const lines = await a.logLines();
    assert.ok(
      lines.some((l) => l.event === "BootstrapFailed" && l.code === "ImmutableRootWritable"),
      await a.logText(),
    );
  });
}
