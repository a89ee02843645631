// The supervision stream: a client that stops reading is disconnected once it falls a bounded
// number of bytes behind, instead of growing the gateway's memory; reading clients go on.
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import WebSocket from "ws";
import { createEventStream } from "../../src/supervision/index.js";
import { rawUpgrade } from "../helpers/raw-ws.js";

const admin = { name: "admin", role: "admin" as const };

test("a client that stops reading is cut off past the backlog bound; a reading client keeps receiving", async () => {
  const stream = createEventStream({
    authenticate: () => ({ ok: true, who: admin, source: "127.0.0.1" }),
    version: "test",
    maxBacklogBytes: 256 * 1024,
  });
  await new Promise<void>((r) => stream.server.listen(0, "127.0.0.1", r));
  const { port } = stream.server.address() as AddressInfo;
  try {
    // The stalled client completes the upgrade and then never reads a byte.
    const stalled = await rawUpgrade(port, "/", { authorization: "Bearer x" });
    assert.match(stalled.status, /^HTTP\/1\.1 101 /);
    const reader = new WebSocket(`ws://127.0.0.1:${port}/`);
    let received = 0;
    reader.on("message", () => received++);
    await new Promise((r) => reader.once("open", r));
    assert.equal(stream.clients(), 2);
    const payload = "x".repeat(16 * 1024);
    // Far more than the kernel's socket buffers and the bound together.
    for (let i = 0; i < 4000 && stream.clients() > 1; i++) {
      stream.publish({ type: "test", i, payload });
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    const deadline = Date.now() + 10_000;
    while (stream.clients() > 1 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    assert.equal(stream.clients(), 1, "the stalled client was never cut off");
    stream.publish({ type: "after" });
    const before = received;
    while (received === before && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    assert.ok(received > before, "the reading client stopped receiving");
    reader.close();
    stalled.socket.destroy();
  } finally {
    await stream.close();
  }
});
