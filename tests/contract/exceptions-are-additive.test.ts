// RC: an enabled [security.exceptions.<feature>] adds privilege, but CapDrop stays ALL.
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
  type ManifestObject,
} from "./harness.js";

function withLowPorts(m: ManifestObject): ManifestObject {
  return {
    ...m,
    features: { low_ports: true },
    security: { ...m.security, exceptions: { low_ports: { cap_add: ["NET_BIND_SERVICE"] } } },
  };
}

test("an enabled exception adds its capability while cap_drop stays ALL [host]", () => {
  const r = validateManifestText(manifestText(withLowPorts(defaultManifest())));
  assert.ok(r.manifest);
  const s = (
    parseYaml(
      renderAll(r.manifest, r.sha256).find((f) => f.name === "compose.yaml")?.content ?? "",
    ) as {
      services: { kruxos: Record<string, unknown> };
    }
  ).services.kruxos;
  assert.deepEqual(s.cap_drop, ["ALL"]);
  assert.deepEqual(s.cap_add, ["NET_BIND_SERVICE"]);
  assert.equal(s.read_only, true);
});

test("a disabled exception grants nothing and is rejected [host]", () => {
  const m = withLowPorts(defaultManifest());
  m.features = { low_ports: false };
  const r = validateManifestText(
    manifestText({ ...m, security: { ...m.security, exceptions: {} } }) +
      '\n[security.exceptions.low_ports]\ncap_add = ["NET_BIND_SERVICE"]\n',
  );
  assert.ok(r.findings.some((f) => f.code === "E005"));
});

test("an image run with an exception has exactly the added capability and drops every other [image]", async (t) => {
  const why = await imageUnavailable();
  if (why) return t.skip(why);
  const a = await start("image", withLowPorts(await withFreePorts(defaultManifest())));
  t.after(a.cleanup);
  await waitReady(a, 60_000);
  const [c] = JSON.parse(
    (await run("podman", [...ENGINE_ARGS, "inspect", a.container ?? ""])).stdout,
  ) as {
    HostConfig: { CapDrop: string[]; CapAdd: string[]; ReadonlyRootfs: boolean };
    EffectiveCaps: string[] | null;
  }[];
  assert.ok(c);
  // podman states CapAdd/CapDrop relative to its default set (which holds NET_BIND_SERVICE), so the
  // effective set is the truth: exactly the added capability, every other default one dropped.
  assert.deepEqual(c.EffectiveCaps, ["CAP_NET_BIND_SERVICE"]);
  assert.ok(!c.HostConfig.CapDrop.includes("CAP_NET_BIND_SERVICE"));
  for (const cap of [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_SETUID",
    "CAP_SETGID",
    "CAP_NET_RAW",
    "CAP_SYS_CHROOT",
  ])
    assert.ok(c.HostConfig.CapDrop.includes(cap), `${cap} not dropped`);
  assert.equal(c.HostConfig.ReadonlyRootfs, true);
});
