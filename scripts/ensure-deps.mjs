// Install step of `npm start` / `npm test` / `npm run image`: installs exactly the lockfile when
// node_modules is missing or older than package-lock.json, so a fresh clone needs only Node.
import { execFileSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const lock = path.join(root, "package-lock.json");
const stamp = path.join(root, "node_modules", ".package-lock.json");

const stale = !existsSync(stamp) || statSync(stamp).mtimeMs < statSync(lock).mtimeMs;
if (stale) {
  process.stderr.write("kruxos: installing dependencies from package-lock.json (npm ci)…\n");
  execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: root, stdio: "inherit" });
}
