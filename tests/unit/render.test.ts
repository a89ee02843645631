// Rendering is a pure function of the manifest, and every rendered run keeps the hardened baseline.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { parse as parseYaml } from "yaml";
import { renderAll, validateManifestText, type Manifest } from "../../src/config/index.js";
import { REPO, run, runCli, tempDir } from "../helpers/repo.js";

function load(text: string): { m: Manifest; sha: string } {
  const r = validateManifestText(text);
  assert.ok(r.manifest, JSON.stringify(r.findings));
  return { m: r.manifest, sha: r.sha256 };
}

const defaultText = readFileSync(path.join(REPO, "kruxos.toml"), "utf8");

test("the same manifest renders to the same bytes", () => {
  const a = load(defaultText);
  const b = load(defaultText);
  assert.deepEqual(renderAll(a.m, a.sha), renderAll(b.m, b.sha));
});

test("a changed manifest changes what is rendered", () => {
  const a = load(defaultText);
  const b = load(defaultText.replace("port = 7800", "port = 7801"));
  const ra = renderAll(a.m, a.sha);
  const rb = renderAll(b.m, b.sha);
  for (let i = 0; i < ra.length; i++)
    assert.notEqual(ra[i]?.content, rb[i]?.content, String(ra[i]?.name));
});

test("supervisord.conf lists the programs in priority order with their settings", () => {
  const { m, sha } = load(defaultText);
  const conf = renderAll(m, sha).find((f) => f.name === "supervisord.conf")?.content ?? "";
  const programs = [...conf.matchAll(/^\[program:([^\]]+)\]/gm)].map((x) => x[1]);
  assert.deepEqual(programs, ["proxy", "gateway", "dashboard", "bootstrap-seal"]);
  assert.match(
    conf,
    /\[program:bootstrap-seal\]\ncommand=kruxos seal\npriority=99\nautostart=true\nautorestart=false/,
  );
  assert.match(conf, /^file=\/run\/kruxos\/supervisor\.sock$/m);
  assert.match(conf, new RegExp(`^; manifest sha256: ${sha}$`, "m"));
});

test("oci-config.json carries user, ports, entrypoint and the manifest hash label", () => {
  const { m, sha } = load(defaultText);
  assert.equal(sha, createHash("sha256").update(defaultText).digest("hex"));
  const cfg = JSON.parse(
    renderAll(m, sha).find((f) => f.name === "oci-config.json")?.content ?? "{}",
  ) as Record<string, unknown>;
  assert.equal(cfg.User, "1000:1000");
  assert.deepEqual(cfg.ExposedPorts, { "7700/tcp": {}, "7800/tcp": {}, "9464/tcp": {} });
  assert.deepEqual(cfg.Entrypoint, ["/opt/kruxos/bin/kruxos", "boot"]);
  assert.equal((cfg.Labels as Record<string, string>)["io.kruxos.manifest.sha256"], sha);
});

test("compose.yaml is the hardened baseline and publishes the manifest's ports", () => {
  const { m, sha } = load(defaultText.replace("metrics_port = 9464", "metrics_port = 9555"));
  const doc = parseYaml(
    renderAll(m, sha).find((f) => f.name === "compose.yaml")?.content ?? "",
  ) as {
    services: { kruxos: Record<string, unknown> };
  };
  const s = doc.services.kruxos;
  assert.equal(s.user, "1000:1000");
  assert.equal(s.read_only, true);
  assert.deepEqual(s.cap_drop, ["ALL"]);
  assert.equal(s.cap_add, undefined);
  assert.ok((s.security_opt as string[]).includes("no-new-privileges:true"));
  assert.ok((s.ports as string[]).includes("9555:9555"));
  const tmpfs = s.tmpfs as string[];
  assert.ok(tmpfs.some((t) => t.startsWith("/tmp:")));
  assert.ok(tmpfs.some((t) => t.startsWith("/run/kruxos:") && t.includes("uid=1000,gid=1000")));
});

test("an enabled exception adds privilege to compose.yaml and run.sh while CapDrop stays ALL", () => {
  const text = `${defaultText.replace(/^\[features\]$/m, "")}\n[features]\nlow_ports = true\n\n[security.exceptions.low_ports]\ncap_add = ["NET_BIND_SERVICE"]\n`;
  const { m, sha } = load(text);
  const files = renderAll(m, sha);
  const compose = parseYaml(files.find((f) => f.name === "compose.yaml")?.content ?? "") as {
    services: { kruxos: Record<string, unknown> };
  };
  assert.deepEqual(compose.services.kruxos.cap_drop, ["ALL"]);
  assert.deepEqual(compose.services.kruxos.cap_add, ["NET_BIND_SERVICE"]);
  const sh = files.find((f) => f.name === "run.sh")?.content ?? "";
  assert.match(sh, /--cap-drop ALL \\\n/);
  assert.match(sh, /--cap-add 'NET_BIND_SERVICE' \\\n/);
});

test("run.sh is valid POSIX sh and keeps the baseline flags", async (t) => {
  const { m, sha } = load(defaultText);
  const sh = renderAll(m, sha).find((f) => f.name === "run.sh");
  assert.equal(sh?.mode, 0o755);
  for (const flag of [
    "--read-only",
    "--cap-drop ALL",
    "--security-opt 'no-new-privileges:true'",
    "--user '1000:1000'",
    "--tmpfs '/tmp:",
  ])
    assert.ok(sh?.content.includes(flag), flag);
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const file = path.join(dir, "run.sh");
  (await import("node:fs")).writeFileSync(file, sh?.content ?? "");
  const r = await run("sh", ["-n", file]);
  assert.equal(r.code, 0, r.stderr);
});

test("kruxos config render --out writes the four files, byte-identical across runs", async (t) => {
  const a = tempDir();
  const b = tempDir();
  t.after(() => {
    a.cleanup();
    b.cleanup();
  });
  const ra = await runCli(["config", "render", "--out", a.dir]);
  const rb = await runCli([
    "config",
    "render",
    "--out",
    b.dir,
    "--manifest",
    path.join(REPO, "kruxos.toml"),
  ]);
  assert.equal(ra.code, 0, ra.stderr);
  assert.equal(rb.code, 0, rb.stderr);
  const names = readdirSync(a.dir).sort();
  assert.deepEqual(names, ["compose.yaml", "oci-config.json", "run.sh", "supervisord.conf"]);
  for (const n of names)
    assert.equal(
      readFileSync(path.join(a.dir, n), "utf8"),
      readFileSync(path.join(b.dir, n), "utf8"),
      n,
    );
  assert.equal(statSync(path.join(a.dir, "run.sh")).mode & 0o777, 0o755);
});

test("kruxos config render refuses an invalid manifest and writes nothing", async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const bad = path.join(REPO, "tests", "fixtures", "rules", "E003.invalid.toml");
  const out = path.join(dir, "out");
  const r = await runCli(["config", "render", "--out", out, "--manifest", bad]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^E003 image\.user: /m);
  assert.equal((await import("node:fs")).existsSync(out), false);
});
