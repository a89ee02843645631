import assert from "node:assert/strict";
import { test } from "node:test";
import { Counter, createRegistry, mergeExpositions } from "../../src/core/index.js";

test("merging program expositions keeps one HELP/TYPE per family and every sample", async () => {
  const a = createRegistry("proxy", false);
  const b = createRegistry("gateway", false);
  for (const r of [a, b]) new Counter({ name: "kruxos_x_total", help: "x", registers: [r] }).inc();
  const merged = mergeExpositions([await a.metrics(), await b.metrics()]);
  assert.equal(merged.split("\n")[0], "# HELP kruxos_x_total x");
  assert.equal(merged.match(/^# TYPE kruxos_x_total counter$/gm)?.length, 1);
  assert.match(merged, /^kruxos_x_total\{program="proxy"\} 1$/m);
  assert.match(merged, /^kruxos_x_total\{program="gateway"\} 1$/m);
});

test("process metrics of several programs merge without duplicate families", async () => {
  const texts = await Promise.all(["proxy", "gateway"].map((p) => createRegistry(p).metrics()));
  const merged = mergeExpositions(texts);
  const types = [...merged.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]);
  assert.equal(new Set(types).size, types.length);
  assert.match(merged, /^kruxos_process_cpu_seconds_total\{program="proxy"\}/m);
});
