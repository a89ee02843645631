// RC: the manifest's metrics_port is published by compose.yaml and run.sh and serves Prometheus text.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parse as parseYaml } from "yaml";
import { renderAll, validateManifestText } from "../../src/config/index.js";
import { httpGet } from "../helpers/repo.js";
import {
  MODES,
  defaultManifest,
  imageUnavailable,
  manifestText,
  portOf,
  start,
  waitFor,
  waitReady,
  withFreePorts,
} from "./harness.js";

for (const mode of MODES) {
  test(`the manifest's metrics_port is published and serves # HELP metrics [${mode}]`, async (t) => {
    if (mode === "image") {
      const why = await imageUnavailable();
      if (why) return t.skip(why);
    }
    const m = await withFreePorts(defaultManifest());
    const port = portOf(m, "observability", "metrics_port");
    const r = validateManifestText(manifestText(m));
    assert.ok(r.manifest);
    const files = renderAll(r.manifest, r.sha256);
    const compose = parseYaml(files.find((f) => f.name === "compose.yaml")?.content ?? "") as {
      services: { kruxos: { ports: string[] } };
    };
    assert.ok(compose.services.kruxos.ports.includes(`${port}:${port}`));
    assert.match(
      files.find((f) => f.name === "run.sh")?.content ?? "",
      new RegExp(`--publish ${port}:${port}`),
    );

    const a = await start(mode, m, { publish: true });
    t.after(a.cleanup);
    await waitReady(a, 60_000);
    // From the host, through the published port (image) or the listener itself (host).
    const res = await waitFor(async () => {
      const x = await httpGet(`http://127.0.0.1:${port}/metrics`);
      return x.status === 200 ? x : undefined;
    }, 20_000);
    assert.equal(res.body.split("\n")[0]?.startsWith("# HELP "), true, res.body.slice(0, 200));
    for (const program of ["proxy", "gateway", "dashboard"])
      assert.match(
        res.body,
        new RegExp(`program="${program}"`),
        `metrics of ${program} are merged in`,
      );
    assert.match(res.body, /^kruxos_build_info\{/m);
    assert.match(res.body, /^kruxos_ready\{program="gateway"\} 1$/m);
  });
}
