// One catalogue of error types, in code and in docs/errors.md, kept equal in both directions.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { ERROR_CATALOGUE, KruxError, asKruxError } from "../../src/core/index.js";
import { REPO } from "../helpers/repo.js";

const doc = readFileSync(path.join(REPO, "docs", "errors.md"), "utf8");
const documented = [...doc.matchAll(/^### (\w+)$/gm)].map((m) => m[1] ?? "");

test("every error code in the code catalogue is documented", () => {
  for (const code of Object.keys(ERROR_CATALOGUE))
    assert.ok(documented.includes(code), `${code} missing from docs/errors.md`);
});

test("every documented error code exists in the code catalogue", () => {
  for (const code of documented)
    assert.ok(code in ERROR_CATALOGUE, `${code} documented but not in src/core/errors.ts`);
});

test("each documented code states the same fault as the catalogue", () => {
  for (const [code, spec] of Object.entries(ERROR_CATALOGUE)) {
    const section = doc.split(`### ${code}\n`)[1]?.split("\n### ")[0] ?? "";
    assert.match(section, new RegExp(`^Fault: ${spec.fault}\\.`, "m"), code);
  }
});

test("an unknown failure becomes InternalError, a server fault", () => {
  const e = asKruxError(new TypeError("boom"));
  assert.equal(e.code, "InternalError");
  assert.equal(ERROR_CATALOGUE[e.code].fault, "server");
  const k = new KruxError("PortInUse", "taken", { address: "x" });
  assert.equal(asKruxError(k), k);
  assert.deepEqual(k.toJSON(), { code: "PortInUse", message: "taken", data: { address: "x" } });
});
