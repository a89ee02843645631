// The dependencies layer: the production node_modules tree only, as npm resolves it, with native
// addons kept and their build intermediates (object files, static libraries, makefiles) left out.
import { existsSync, realpathSync } from "node:fs";
import path from "node:path";
import type { PlannedEntry } from "./layer.js";
import { BuildError, run } from "./proc.js";
import { walkTree, withParents, type WalkFilter } from "./tree.js";

/** Directories of every production package (nested ones included), relative to the repo root. */
export async function productionPackages(repoRoot: string): Promise<string[]> {
  const { stdout } = await run("npm", ["ls", "--omit=dev", "--all", "--parseable"], {
    cwd: repoRoot,
    purpose: "list the production dependencies (if node_modules is incomplete, run: npm ci)",
  });
  const root = realpathSync(repoRoot);
  const dirs = new Set<string>();
  for (const line of stdout.split("\n")) {
    const abs = line.trim();
    if (abs === "") continue;
    const rel = path.relative(root, abs);
    if (rel === "") continue; // the project itself
    if (
      rel.startsWith("..") ||
      path.isAbsolute(rel) ||
      !rel.startsWith("node_modules" + path.sep)
    ) {
      throw new BuildError(`production dependency outside node_modules is not supported: ${abs}`);
    }
    if (!existsSync(abs)) {
      throw new BuildError(`npm lists ${rel} but it is not installed; run: npm ci`);
    }
    dirs.add(rel.split(path.sep).join("/"));
  }
  if (dirs.size === 0) throw new BuildError("npm lists no production dependencies; run: npm ci");
  return [...dirs].sort();
}

/** Layer entries placing each production package under `<appDir>/node_modules`. */
export function dependencyEntries(
  repoRoot: string,
  packages: readonly string[],
  appDir: string,
  mtime: number,
): PlannedEntry[] {
  const dest = appDir.replace(/^\/+/, "");
  const entries: PlannedEntry[] = [];
  for (const pkg of packages) {
    const source = realpathSync(path.join(repoRoot, pkg));
    const isNative = existsSync(path.join(source, "binding.gyp"));
    entries.push(...walkTree(source, `${dest}/${pkg}`, { mtime }, packageFilter(isNative)));
  }
  return withParents(entries, { mtime });
}

/**
 * Skip a package's own node_modules (nested packages are listed, and copied, separately). For
 * node-gyp packages keep only the built addons (`build/Release/*.node`, `build/Debug/*.node`).
 */
function packageFilter(isNative: boolean): WalkFilter {
  return (rel, isDir) => {
    if (rel === "node_modules") return false;
    if (!isNative || !(rel === "build" || rel.startsWith("build/"))) return true;
    if (isDir) return rel === "build" || rel === "build/Release" || rel === "build/Debug";
    return /^build\/(?:Release|Debug)\/[^/]+\.node$/.test(rel);
  };
}
