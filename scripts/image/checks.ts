// Build-time assertions on layer contents.

const BIN_DIRS = new Set(["bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "usr/local/sbin"]);

/** Compiler drivers and build tools, optionally target-prefixed (x86_64-linux-gnu-gcc) or versioned (gcc-12). */
const TOOL_IN_BIN =
  /^(?:[a-z0-9_]+-linux-[a-z0-9_]+-)?(?:gcc|cc|c\+\+|g\+\+|cpp|clang|clang\+\+|tcc|make|gmake|ld|as)(?:-[0-9][0-9.]*)?$/;
/** Compiler back ends wherever they live (e.g. usr/lib/gcc/<triplet>/12/cc1). */
const BACKEND = /^(?:cc1|cc1plus|collect2|lto1)$/;

/** Paths among `names` that are compilers or build tools; the image must contain none. */
export function findCompilers(names: Iterable<string>): string[] {
  const found: string[] = [];
  for (const name of names) {
    const slash = name.lastIndexOf("/");
    const dir = slash < 0 ? "" : name.slice(0, slash);
    const base = name.slice(slash + 1);
    if ((BIN_DIRS.has(dir) && TOOL_IN_BIN.test(base)) || BACKEND.test(base)) found.push(name);
  }
  return found;
}
