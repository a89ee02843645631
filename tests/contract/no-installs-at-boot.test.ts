// RC: nothing is installed or downloaded at boot: a full boot's logs are free of package managers and downloads.
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

const INSTALLS =
  /\b(apt-get|apt install|dpkg -i|npm (install|ci|i )|npx |pip3? install|yarn add|pnpm add|nix-env|curl |wget |Downloading|Fetched \d|Get:\d+ http)/i;

for (const mode of MODES) {
  test(`a full boot installs and downloads nothing [${mode}]`, async (t) => {
    if (mode === "image") {
      const why = await imageUnavailable();
      if (why) return t.skip(why);
    }
    const a = await start(mode, await withFreePorts(defaultManifest()));
    t.after(a.cleanup);
    await waitReady(a, 60_000);
    await a.stop();
    const text = await a.logText();
    assert.ok(text.includes("BootstrapCompleted"), "the log covers the whole boot");
    const hit = text.split("\n").find((l) => INSTALLS.test(l));
    assert.equal(hit, undefined, `install/download in boot log: ${hit}`);
  });
}
