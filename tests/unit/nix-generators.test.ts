// The image built by the Nix flake is configured by builtins-only generators (nix/*.nix); hosts
// without Nix use `kruxos config render`. Both must write the same bytes from the same manifest,
// so every manifest here is rendered by both and compared byte for byte, together with the
// effective manifest (schema defaults applied) each side works from.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { test, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  renderOciConfig,
  renderSupervisordConf,
  validateManifestText,
} from "../../src/config/index.js";

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const fixtureDir = path.join(root, "tests", "fixtures", "nix");
const manifests = [
  path.join(root, "kruxos.toml"),
  ...readdirSync(fixtureDir)
    .filter((f) => f.endsWith(".toml"))
    .sort()
    .map((f) => path.join(fixtureDir, f)),
];

interface NixRender {
  manifest: unknown;
  sha256: string;
  supervisordConf: string;
  ociConfig: string;
  ociConfigAttrs: unknown;
}

/** nix-instantiate with a dummy store: pure evaluation needs neither /nix/store nor a daemon. */
async function nix(...args: string[]): Promise<string> {
  const { stdout } = await run("nix-instantiate", ["--store", "dummy://", ...args], {
    cwd: root,
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

const nixMissing: Promise<string | undefined> = nix("--version").then(
  () => undefined,
  (err: unknown) => (err instanceof Error ? err.message : String(err)),
);

/** Skips the test (with the reason) when nix-instantiate is not installed; true when it ran. */
async function needNix(t: TestContext): Promise<boolean> {
  const missing = await nixMissing;
  if (missing !== undefined) t.skip(`nix-instantiate not found: ${missing}`);
  return missing === undefined;
}

async function renderWithNix(manifestPath: string): Promise<NixRender> {
  const out = await nix(
    "--eval",
    "--strict",
    "--json",
    "--argstr",
    "manifestPath",
    manifestPath,
    path.join(root, "nix", "default.nix"),
  );
  return JSON.parse(out) as NixRender;
}

async function renderBoth(manifestPath: string) {
  const loaded = validateManifestText(readFileSync(manifestPath, "utf8"));
  assert.ok(loaded.manifest, `${manifestPath} does not load`);
  assert.deepEqual(
    loaded.findings.filter((f) => f.severity === "error"),
    [],
    `${manifestPath} must be a valid manifest`,
  );
  return {
    ts: {
      manifest: loaded.manifest,
      sha256: loaded.sha256,
      supervisordConf: renderSupervisordConf(loaded.manifest, loaded.sha256),
      ociConfig: renderOciConfig(loaded.manifest, loaded.sha256),
    },
    nix: await renderWithNix(manifestPath),
  };
}

for (const manifestPath of manifests) {
  const name = path.relative(root, manifestPath);
  test(`the Nix generators render ${name} to the same bytes as kruxos config render`, async (t) => {
    if (!(await needNix(t))) return;
    const { ts, nix } = await renderBoth(manifestPath);
    assert.equal(nix.sha256, ts.sha256, "manifest digest");
    assert.deepEqual(nix.manifest, ts.manifest, "effective manifest (schema defaults applied)");
    assert.equal(nix.supervisordConf, ts.supervisordConf, "supervisord.conf");
    assert.equal(nix.ociConfig, ts.ociConfig, "oci-config.json");
    assert.deepEqual(
      nix.ociConfigAttrs,
      JSON.parse(ts.ociConfig),
      "image config handed to dockerTools",
    );
  });
}

// Equal output could still be equally wrong; pin what the image exposes for two manifests.
const programOrder = (conf: string): string[] =>
  [...conf.matchAll(/^\[program:([^\]]+)\]$/gm)].map((m) => m[1] ?? "");

test("the default manifest renders the documented image contract", async (t) => {
  if (!(await needNix(t))) return;
  const { nix } = await renderBoth(path.join(root, "kruxos.toml"));
  const oci = JSON.parse(nix.ociConfig) as Record<string, unknown>;
  assert.equal(oci["User"], "1000:1000");
  assert.deepEqual(oci["Entrypoint"], ["/opt/kruxos/bin/kruxos", "boot"]);
  assert.deepEqual(Object.keys(oci["ExposedPorts"] as object), [
    "7700/tcp",
    "7800/tcp",
    "9464/tcp",
  ]);
  assert.deepEqual(Object.keys(oci["Volumes"] as object), ["/data/kruxos", "/workspace"]);
  assert.deepEqual(programOrder(nix.supervisordConf), [
    "proxy",
    "gateway",
    "dashboard",
    "bootstrap-seal",
  ]);
  assert.match(nix.supervisordConf, /^file=\/run\/kruxos\/supervisor\.sock$/m);
  assert.ok(nix.supervisordConf.endsWith("redirect_stderr=true\n"));
  assert.ok(nix.ociConfig.endsWith("}\n"));
});

test("a custom layout moves paths, ports and start order in both renderings", async (t) => {
  if (!(await needNix(t))) return;
  const { nix } = await renderBoth(path.join(fixtureDir, "custom-layout.toml"));
  const oci = JSON.parse(nix.ociConfig) as Record<string, unknown>;
  assert.equal(oci["User"], "1001:1002");
  assert.deepEqual(oci["Entrypoint"], ["/srv/acme/app/bin/kruxos", "boot"]);
  assert.deepEqual(Object.keys(oci["ExposedPorts"] as object), [
    "8700/tcp",
    "8800/tcp",
    "9100/tcp",
  ]);
  assert.deepEqual(programOrder(nix.supervisordConf), [
    "zz-metrics-relay",
    "gateway",
    "proxy",
    "bootstrap-seal",
  ]);
  assert.match(nix.supervisordConf, /^file=\/run\/acme\/supervisor\.sock$/m);
  assert.match(nix.supervisordConf, /^pidfile=\/run\/acme\/supervisord\.pid$/m);
});

test("flake.nix parses", async (t) => {
  if (!(await needNix(t))) return;
  await nix("--parse", path.join(root, "flake.nix"));
});

test("flake.lock pins the flake's nixpkgs input to a full revision and content hash", async (t) => {
  if (!(await needNix(t))) return;
  const inputs = JSON.parse(
    await nix("--eval", "--strict", "--json", "-A", "inputs", path.join(root, "flake.nix")),
  ) as Record<string, { url: string }>;
  const lock = JSON.parse(readFileSync(path.join(root, "flake.lock"), "utf8")) as {
    version: number;
    root: string;
    nodes: Record<
      string,
      {
        inputs?: Record<string, string>;
        locked?: Record<string, unknown>;
        original?: Record<string, unknown>;
      }
    >;
  };
  assert.equal(lock.version, 7);
  const rootInputs = lock.nodes[lock.root]?.inputs ?? {};
  assert.deepEqual(
    Object.keys(rootInputs).sort(),
    Object.keys(inputs).sort(),
    "every input is locked",
  );
  for (const [input, { url }] of Object.entries(inputs)) {
    const node = lock.nodes[rootInputs[input] ?? ""];
    const [owner, repo, ref] = url.replace(/^github:/, "").split("/");
    assert.deepEqual(
      node?.original,
      { type: "github", owner, repo, ref },
      `${input}: original = flake.nix url`,
    );
    assert.equal(node?.locked?.["type"], "github");
    assert.equal(node?.locked?.["owner"], owner);
    assert.equal(node?.locked?.["repo"], repo);
    assert.match(String(node?.locked?.["rev"]), /^[0-9a-f]{40}$/);
    assert.match(String(node?.locked?.["narHash"]), /^sha256-[A-Za-z0-9+/]{43}=$/);
    assert.ok(Number.isInteger(node?.locked?.["lastModified"]), `${input}: lastModified`);
  }
});
