// Refusals arrive at the rate an attacker chooses; what they cost in records must not grow with it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { RefusalSampler, type RefusalEvent, type RefusalSummary } from "../../src/core/index.js";

function sampler(now: () => number) {
  const reported: RefusalEvent[] = [];
  const summaries: RefusalSummary[] = [];
  const s = new RefusalSampler<RefusalEvent>({
    perSource: 3,
    perWindow: 10,
    windowMs: 60_000,
    maxSources: 100,
    report: (e) => reported.push(e),
    summary: (x) => summaries.push(x),
    now,
  });
  return { s, reported, summaries };
}

const ev = (source: string, reason = "unknown"): RefusalEvent => ({
  source,
  kind: "auth.failure",
  reason,
});

test("one source is reported one by one up to its bound, then only counted", () => {
  const { s, reported, summaries } = sampler(() => 0);
  for (let i = 0; i < 1000; i++) s.add(ev("10.0.0.1"));
  assert.equal(reported.length, 3);
  s.flush();
  assert.equal(summaries.length, 1);
  assert.equal(summaries[0]?.total, 1000);
  assert.equal(summaries[0]?.reported, 3);
  assert.equal(summaries[0]?.suppressed, 997);
  assert.deepEqual(summaries[0]?.top_sources, [{ source: "10.0.0.1", count: 1000 }]);
  assert.deepEqual(summaries[0]?.by_reason, { "auth.failure:unknown": 1000 });
});

test("any number of sources together are reported at most perWindow times, plus one summary", () => {
  const { s, reported, summaries } = sampler(() => 0);
  for (let i = 0; i < 100_000; i++) s.add(ev(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`));
  assert.equal(reported.length, 10);
  s.flush();
  assert.equal(summaries.length, 1);
  assert.equal(summaries[0]?.suppressed, 99_990);
  // Sources past the tracking bound are counted together: memory stays bounded too.
  assert.equal(summaries[0]?.sources, 101);
  assert.equal(summaries[0]?.top_sources.length, 5);
});

test("a window with nothing suppressed has no summary, and each window starts afresh", () => {
  let t = 0;
  const { s, reported, summaries } = sampler(() => t);
  s.add(ev("a"));
  s.add(ev("a"));
  s.flush();
  assert.equal(summaries.length, 0);
  t = 120_000;
  for (let i = 0; i < 5; i++) s.add(ev("a"));
  assert.equal(reported.length, 2 + 3);
  s.close();
  assert.equal(summaries.length, 1);
  assert.equal(summaries[0]?.suppressed, 2);
  s.add(ev("a"));
  assert.equal(reported.length, 5, "nothing is reported after close");
});

test("a sink that throws does not stop the counting", () => {
  const s = new RefusalSampler<RefusalEvent>({
    perSource: 1,
    perWindow: 1,
    windowMs: 1000,
    report: () => {
      throw new Error("audit unavailable");
    },
    summary: () => {
      throw new Error("audit unavailable");
    },
  });
  assert.equal(s.add(ev("a")), true);
  assert.equal(s.add(ev("a")), false);
  s.close();
});
