// Every capability failure has one shape on the wire: CapabilityError with data.type,
// data.capability, the facts, and data.recovery — whichever handler family raised it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { KruxError, capabilityError } from "../../src/core/index.js";
import { fsError } from "../../src/capabilities/filesystem/errors.js";
import { capabilityError as sandboxedError } from "../../src/capabilities/process/errors.js";
import { netError, withDocumentedRecovery } from "../../src/capabilities/network/errors.js";

test("a capability failure carries type, capability, its facts and the recovery steps", () => {
  const steps = [{ action: "retry", description: "Try again." }];
  const e = capabilityError("Timeout", "process.run", "too slow", steps, { timeout_s: 5 });
  assert.equal(e.code, "CapabilityError");
  assert.equal(e.message, "too slow");
  assert.deepEqual(e.data, {
    type: "Timeout",
    capability: "process.run",
    timeout_s: 5,
    recovery: [{ action: "retry", description: "Try again." }],
  });
  assert.deepEqual(Object.keys(e.data), ["type", "capability", "timeout_s", "recovery"]);
  assert.notEqual(e.data.recovery, steps, "the caller's steps are copied, not shared");
});

test("filesystem, sandboxed and network failures have the same shape", () => {
  const fs = fsError("NotFound", "filesystem.read", "a.txt", "a.txt: ENOENT");
  assert.deepEqual(Object.keys(fs.data), ["type", "capability", "path", "recovery"]);
  assert.equal(fs.data.path, "a.txt");
  const run = sandboxedError("Timeout", "process.run", "too slow", { timeout_s: 5 });
  assert.deepEqual(Object.keys(run.data), ["type", "capability", "timeout_s", "recovery"]);
  const net = netError("Timeout", "network.dns_lookup", "too slow");
  assert.deepEqual(net.data, {
    type: "Timeout",
    capability: "network.dns_lookup",
    recovery: [{ action: "retry_later", description: "Try again in a few seconds." }],
  });
  const own = [{ action: "fix_inputs" as const, description: "Use another name." }];
  assert.deepEqual(
    fsError("AlreadyExists", "filesystem.write", "b", "b exists", { recovery: own }).data.recovery,
    own,
  );
});

test("a helper's failure re-issued for a network capability keeps its facts and its cause", () => {
  const inner = fsError("PathOutOfScope", "filesystem.write", "../x", "outside");
  const e = withDocumentedRecovery(inner, "network.download") as KruxError;
  assert.equal(e.cause, inner);
  assert.equal(e.data.capability, "network.download");
  assert.equal(e.data.path, "../x");
  assert.deepEqual(Object.keys(e.data), ["type", "capability", "path", "recovery"]);
  assert.equal((e.data.recovery as { action: string }[])[0]?.action, "fix_inputs");
});
