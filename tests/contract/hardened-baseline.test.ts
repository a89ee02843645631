// RC: the hardened baseline: non-root user, read-only root, CapDrop ALL, no-new-privileges, tmpfs mounts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parse as parseYaml } from "yaml";
import { renderAll, validateManifestText } from "../../src/config/index.js";
import { run } from "../helpers/repo.js";
import {
  ENGINE_ARGS,
  defaultManifest,
  imageUnavailable,
  manifestText,
  start,
  waitReady,
  withFreePorts,
} from "./harness.js";

test("the rendered run declares the hardened baseline [host]", () => {
  const r = validateManifestText(manifestText(defaultManifest()));
  assert.ok(r.manifest);
  const compose = parseYaml(
    renderAll(r.manifest, r.sha256).find((f) => f.name === "compose.yaml")?.content ?? "",
  ) as {
    services: { kruxos: Record<string, unknown> };
  };
  const s = compose.services.kruxos;
  assert.equal(s.user, "1000:1000");
  assert.equal(s.read_only, true);
  assert.deepEqual(s.cap_drop, ["ALL"]);
  assert.deepEqual(s.security_opt, ["no-new-privileges:true"]);
  assert.deepEqual(
    (s.tmpfs as string[]).map((x) => x.split(":")[0]),
    ["/tmp", "/run/kruxos"],
  );
});

test("podman inspect shows the hardened baseline of the running image [image]", async (t) => {
  const why = await imageUnavailable();
  if (why) return t.skip(why);
  const a = await start("image", await withFreePorts(defaultManifest()));
  t.after(a.cleanup);
  await waitReady(a, 60_000);
  const info = JSON.parse(
    (await run("podman", [...ENGINE_ARGS, "inspect", a.container ?? ""])).stdout,
  ) as {
    Name: string;
    Config: { User: string };
    HostConfig: {
      ReadonlyRootfs: boolean;
      CapDrop: string[];
      CapAdd: string[];
      SecurityOpt: string[];
      Tmpfs: Record<string, string>;
    };
    EffectiveCaps: string[] | null;
  }[];
  const c = info[0];
  assert.ok(c);
  assert.equal(c.Config.User, "1000:1000");
  assert.equal(c.HostConfig.ReadonlyRootfs, true);
  assert.ok(c.HostConfig.CapDrop.length >= 14, `CapDrop: ${c.HostConfig.CapDrop.join(",")}`);
  assert.deepEqual(c.HostConfig.CapAdd ?? [], []);
  assert.deepEqual(c.EffectiveCaps ?? [], []);
  assert.ok(
    c.HostConfig.SecurityOpt.some((o) => /^no-new-privileges/.test(o)),
    c.HostConfig.SecurityOpt.join(","),
  );
  assert.ok("/tmp" in c.HostConfig.Tmpfs);
  assert.ok("/run/kruxos" in c.HostConfig.Tmpfs);
});
