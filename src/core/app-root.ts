// Where the application's own files live: the package root in host mode, /opt/kruxos in the image.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

let cached: string | undefined;

/** The directory holding package.json, schema/, config/, native/ and dist/. */
export function appRoot(): string {
  if (cached) return cached;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, "package.json");
    if (
      existsSync(pkg) &&
      (JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "kruxos"
    ) {
      cached = dir;
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error("cannot locate the kruxos application root (package.json)");
    dir = parent;
  }
}

export function appVersion(): string {
  return (
    JSON.parse(readFileSync(path.join(appRoot(), "package.json"), "utf8")) as { version: string }
  ).version;
}
