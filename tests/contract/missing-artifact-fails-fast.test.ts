// RC: a missing artifact → non-zero exit within 30 s, MissingArtifactDetected and BootstrapFailed logged.
import assert from "node:assert/strict";
import { test } from "node:test";
import { tempDir } from "../helpers/repo.js";
import {
  MODES,
  copyAppWithout,
  defaultManifest,
  imageUnavailable,
  start,
  withFreePorts,
} from "./harness.js";

for (const mode of MODES) {
  test(`a missing native helper stops the boot with a non-zero exit within 30 s [${mode}]`, async (t) => {
    if (mode === "image") {
      const why = await imageUnavailable();
      if (why) return t.skip(why);
    }
    const tmp = tempDir();
    t.after(tmp.cleanup);
    const m = await withFreePorts(defaultManifest());
    const a =
      mode === "host"
        ? await start(mode, m, { appDir: copyAppWithout(tmp.dir, ["native/build/kruxos-sandbox"]) })
        : // An empty tmpfs over the helper's folder hides it, as a broken image would
          // (notmpcopyup: podman would otherwise copy the image's files into the tmpfs).
          await start(mode, m, {
            extraArgs: ["--tmpfs", "/opt/kruxos/native/build:ro,size=1m,notmpcopyup"],
          });
    t.after(a.cleanup);
    const started = Date.now();
    const code = await a.waitExit(30_000);
    t.diagnostic(`exited ${code} after ${Date.now() - started} ms`);
    assert.notEqual(code, null, "still running after 30 s");
    assert.notEqual(code, 0);
    const lines = await a.logLines();
    const missing = lines.find((l) => l.event === "MissingArtifactDetected");
    assert.ok(missing, await a.logText());
    assert.equal(missing.artifact, "native helper");
    assert.equal(missing.stage, "bootstrap");
    assert.ok(lines.some((l) => l.event === "BootstrapFailed" && l.stage === "bootstrap"));
  });
}
