// A client cannot start more than `limit` messages at once on one WebSocket, however fast it sends:
// past the limit the connection stops being read and the rest wait, in order.
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import WebSocket from "ws";
import { boundedMessages, createHttpServer, createWebSocketServer } from "../../src/core/index.js";

test("at most `limit` messages run at once; the others wait in order and all run", async () => {
  const started: string[] = [];
  const release: (() => void)[] = [];
  let running = 0;
  let most = 0;
  const guard = { name: "test" };
  const sockets = createWebSocketServer(guard, { maxPayload: 1024 });
  const server = createHttpServer(guard, {
    upgrade: (req, socket, head) =>
      sockets.accept(req, socket, head, (ws) =>
        boundedMessages(ws, 4, async (data) => {
          started.push(data.toString());
          running++;
          most = Math.max(most, running);
          await new Promise<void>((r) => release.push(r));
          running--;
        }),
      ),
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  const client = new WebSocket(`ws://127.0.0.1:${port}/`);
  await new Promise((r) => client.once("open", r));
  for (let i = 0; i < 200; i++) client.send(String(i));
  const until = async (cond: () => boolean): Promise<void> => {
    const deadline = Date.now() + 10_000;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`stuck at ${started.length} started`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  await until(() => started.length === 4);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(started.length, 4, "nothing past the limit started while the first four run");
  while (started.length < 200 || release.length > 0) {
    const r = release.shift();
    if (r) r();
    else await new Promise((r) => setTimeout(r, 5));
  }
  assert.deepEqual(
    started,
    Array.from({ length: 200 }, (_, i) => String(i)),
  );
  assert.ok(most <= 4, `${most} ran at once`);
  client.close();
  await sockets.close();
  await new Promise<void>((r) => server.close(() => r()));
});
