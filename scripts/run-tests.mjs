// `npm test` after build and lint: builds the image when the tools for it exist (so the contract
// tests run against the real image), then runs every test file with node's test runner.
// Tests that cannot run here skip themselves with their reason; nothing is silently dropped.
import { execFileSync, spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const has = (cmd) => spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;

const env = { ...process.env };
if (process.env.KRUXOS_SKIP_IMAGE) {
  console.log("# image: skipped (KRUXOS_SKIP_IMAGE is set); image-mode contract tests will skip");
} else if (!has("podman") || !has("mmdebstrap")) {
  console.log(
    "# image: podman or mmdebstrap not installed; image-mode contract tests will skip (CI installs both)",
  );
} else {
  console.log("# image: building with npm run image (base layer cached under .kruxos-build/cache)");
  const started = Date.now();
  const out = execFileSync(
    process.execPath,
    [path.join(root, "dist", "scripts", "build-image.js"), "--json"],
    {
      cwd: root,
      stdio: ["ignore", "pipe", "inherit"],
      encoding: "utf8",
    },
  );
  const result = JSON.parse(out.trim().split("\n").at(-1));
  env.KRUXOS_TEST_IMAGE = result.reference;
  console.log(
    `# image: ${result.reference} built in ${((Date.now() - started) / 1000).toFixed(1)} s, ${result.image_bytes ?? result.archive_bytes} bytes`,
  );
}

const suites = ["dist/tests/unit", "dist/tests/security", "dist/tests/e2e", "dist/tests/contract"];
const r = spawnSync(
  process.execPath,
  // Node 20 searches directories for *.test.js itself (glob arguments arrived in Node 21).
  ["--test", "--test-reporter=spec", "--test-concurrency=2", ...suites],
  { cwd: root, env, stdio: "inherit" },
);
process.exit(r.status ?? 1);
