// RC: two `npm run image` builds of the same tree give the same app-layer digest.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { REPO, run, tempDir } from "../helpers/repo.js";

test("two image builds of the same tree give the same app-layer digest [image]", async (t) => {
  const tools = await run("sh", ["-c", "command -v mmdebstrap && command -v tar"]);
  if (tools.code !== 0)
    return t.skip("mmdebstrap is not installed (CI installs it with apt-get install mmdebstrap)");
  const a = tempDir();
  const b = tempDir();
  t.after(() => {
    a.cleanup();
    b.cleanup();
  });
  const build = async (
    out: string,
  ): Promise<{ app_layer_digest: string; layers: { name: string; digest: string }[] }> => {
    const r = await run(
      process.execPath,
      [path.join(REPO, "dist", "scripts", "build-image.js"), "--no-load", "--json", "--out", out],
      {
        timeoutMs: 15 * 60_000,
      },
    );
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "{}") as {
      app_layer_digest: string;
      layers: { name: string; digest: string }[];
    };
  };
  const first = await build(path.join(a.dir, "image.oci.tar"));
  const second = await build(path.join(b.dir, "image.oci.tar"));
  t.diagnostic(`app layer ${first.app_layer_digest}`);
  assert.match(first.app_layer_digest, /^sha256:[0-9a-f]{64}$/);
  assert.equal(second.app_layer_digest, first.app_layer_digest);
  assert.deepEqual(
    second.layers.map((l) => l.digest),
    first.layers.map((l) => l.digest),
  );
});
