// JSON-RPC 2.0 exactly as the spec says, with the appliance's limits. Codes are pinned literally.
import assert from "node:assert/strict";
import { test } from "node:test";
import { KruxError, type ErrorCode } from "../../src/core/index.js";
import {
  handleMessage,
  jsonDepth,
  methodNotFound,
  rpcDispatch,
  toRpcError,
  type Dispatch,
  type Pipeline,
} from "../../src/gateway/index.js";
import { PROTOTYPE_NAMES } from "../helpers/fuzz.js";

const limits = { maxMessageBytes: 4096, maxBatch: 4, maxDepth: 8 };
const calls: string[] = [];
const dispatch: Dispatch = async (method, params) => {
  calls.push(method);
  if (method === "echo") return params;
  if (method === "boom") throw new Error("secret internal detail");
  if (method === "denied")
    throw new KruxError("PolicyDenied", "blocked by policy", {
      capability: "process.run",
      rule: "r1",
      file: "system.yaml",
      line: 3,
    });
  throw methodNotFound(method);
};
const send = async (v: unknown): Promise<unknown> => {
  const out = await handleMessage(typeof v === "string" ? v : JSON.stringify(v), dispatch, limits);
  return out === undefined ? undefined : JSON.parse(out);
};

test("a request gets its result with the same id", async () => {
  assert.deepEqual(await send({ jsonrpc: "2.0", id: 7, method: "echo", params: { a: 1 } }), {
    jsonrpc: "2.0",
    id: 7,
    result: { a: 1 },
  });
  assert.deepEqual(await send({ jsonrpc: "2.0", id: "x", method: "echo", params: [1] }), {
    jsonrpc: "2.0",
    id: "x",
    result: [1],
  });
});

test("invalid JSON is -32700 with id null", async () => {
  const r = (await send("{nope")) as {
    id: null;
    error: { code: number; data: { type: string; recovery: unknown[] } };
  };
  assert.equal(r.id, null);
  assert.equal(r.error.code, -32700);
  assert.equal(r.error.data.type, "ParseError");
  assert.ok(r.error.data.recovery.length > 0);
});

test("a request without jsonrpc 2.0, method, or with a bad id is -32600", async () => {
  for (const bad of [
    { id: 1, method: "echo" },
    { jsonrpc: "2.0", id: 1 },
    { jsonrpc: "2.0", id: {}, method: "echo" },
    42,
    true,
    null,
  ]) {
    const r = (await send(bad)) as { error: { code: number } };
    assert.equal(r.error.code, -32600, JSON.stringify(bad));
  }
  const p = (await send({ jsonrpc: "2.0", id: 1, method: "echo", params: 3 })) as {
    error: { code: number };
  };
  assert.equal(p.error.code, -32600);
});

test("an empty batch is answered by one -32600 object, not an array", async () => {
  const r = (await send([])) as { id: null; error: { code: number } };
  assert.equal(Array.isArray(r), false);
  assert.equal(r.error.code, -32600);
  assert.equal(r.id, null);
});

test("a mixed batch answers every non-notification, in order, and invalid members individually", async () => {
  const r = (await send([
    { jsonrpc: "2.0", id: 1, method: "echo", params: { n: 1 } },
    { jsonrpc: "2.0", method: "echo", params: { n: 2 } },
    1,
    { jsonrpc: "2.0", id: 3, method: "nope" },
  ])) as { id: unknown; result?: unknown; error?: { code: number } }[];
  assert.equal(r.length, 3);
  assert.deepEqual(r[0], { jsonrpc: "2.0", id: 1, result: { n: 1 } });
  assert.equal(r[1]?.error?.code, -32600);
  assert.equal(r[2]?.error?.code, -32601);
});

test("notifications get no reply, even when they fail; a batch of only notifications gets none", async () => {
  calls.length = 0;
  assert.equal(await send({ jsonrpc: "2.0", method: "echo" }), undefined);
  assert.equal(await send({ jsonrpc: "2.0", method: "nope" }), undefined);
  assert.equal(
    await send([
      { jsonrpc: "2.0", method: "echo" },
      { jsonrpc: "2.0", method: "boom" },
    ]),
    undefined,
  );
  assert.deepEqual(calls, ["echo", "nope", "echo", "boom"]);
});

test("an unknown method is -32601 and names the method", async () => {
  const r = (await send({ jsonrpc: "2.0", id: 1, method: "nope" })) as {
    error: { code: number; data: { type: string; method: string } };
  };
  assert.equal(r.error.code, -32601);
  assert.equal(r.error.data.type, "MethodNotFound");
  assert.equal(r.error.data.method, "nope");
});

test("an internal failure is -32603 and leaks no detail", async () => {
  const r = (await send({ jsonrpc: "2.0", id: 1, method: "boom" })) as {
    error: { code: number; message: string };
  };
  assert.equal(r.error.code, -32603);
  assert.doesNotMatch(JSON.stringify(r), /secret internal detail/);
});

test("a policy denial is -32001 with capability, rule, file:line and recovery", async () => {
  const r = (await send({ jsonrpc: "2.0", id: 1, method: "denied" })) as {
    error: { code: number; data: Record<string, unknown> };
  };
  assert.equal(r.error.code, -32001);
  assert.equal(r.error.data.type, "PolicyDenied");
  assert.equal(r.error.data.rule, "r1");
  assert.ok(Array.isArray(r.error.data.recovery));
});

test("the message size, batch size and nesting depth limits are clear -32600 errors", async () => {
  const big = (await send({
    jsonrpc: "2.0",
    id: 1,
    method: "echo",
    params: { s: "x".repeat(5000) },
  })) as { error: { code: number; data: { limit: string } } };
  assert.equal(big.error.code, -32600);
  assert.equal(big.error.data.limit, "max_message_bytes");
  const batch = (await send(
    Array.from({ length: 5 }, (_, i) => ({ jsonrpc: "2.0", id: i, method: "echo" })),
  )) as { error: { data: { limit: string } } };
  assert.equal(batch.error.data.limit, "max_batch");
  const deep = (await send(
    `{"jsonrpc":"2.0","id":1,"method":"echo","params":${"[".repeat(20)}${"]".repeat(20)}}`,
  )) as { error: { data: { limit: string } } };
  assert.equal(deep.error.data.limit, "max_depth");
});

test("the depth scan ignores brackets inside strings", () => {
  assert.equal(jsonDepth('{"a":"[[[[[[[[[[[["}', 8), 1);
  assert.equal(jsonDepth('{"a":"\\"[[["}', 8), 1);
});

test("every KruxError code maps to its SPEC wire code; anything unknown is -32603", () => {
  const pinned: [string, number][] = [
    ["PolicyDenied", -32001],
    ["ApprovalRequired", -32002],
    ["ApprovalRejected", -32003],
    ["ApprovalExpired", -32003],
    ["RateLimited", -32004],
    ["CapabilityError", -32005],
    ["VersionConflict", -32006],
    ["Unavailable", -32007],
    ["AuditUnavailable", -32007],
    ["InvalidParams", -32602],
    ["MethodNotFound", -32601],
    ["Unauthorized", -32000],
    ["ManifestInvalid", -32603],
    ["InternalError", -32603],
  ];
  for (const [code, wire] of pinned)
    assert.equal(toRpcError(new KruxError(code as ErrorCode, "m")).code, wire, code);
  assert.equal(toRpcError(new KruxError("AuditUnavailable", "m")).data.type, "Unavailable");
  assert.equal(
    toRpcError(new KruxError("CapabilityError", "m", { type: "PathOutOfScope" })).data.type,
    "PathOutOfScope",
  );
});

test("per-agent limits: in-flight calls beyond the limit are RateLimited, long waits hold no slot, the rate is enforced", async () => {
  const { AgentCallLimiter } = await import("../../src/gateway/index.js");
  const limiter = new AgentCallLimiter({ maxConcurrent: 2, ratePerS: 1000 });
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const held = [limiter.run("a", () => gate), limiter.run("a", () => gate)];
  const waiting = limiter.run("a", () => gate, { holdsSlot: false });
  await assert.rejects(
    limiter.run("a", async () => 1),
    (e: KruxError) => e.code === "RateLimited" && e.data.limit === "concurrency",
  );
  assert.equal(await limiter.run("b", async () => 2), 2, "another agent is unaffected");
  release();
  await Promise.all([...held, waiting]);
  assert.equal(await limiter.run("a", async () => 3), 3, "slots are returned");
  const slow = new AgentCallLimiter({ maxConcurrent: 100, ratePerS: 1 });
  const t0 = 1_000_000;
  await slow.run("c", async () => 0, {}, t0);
  await slow.run("c", async () => 0, {}, t0);
  await assert.rejects(
    slow.run("c", async () => 0, {}, t0),
    (e: KruxError) =>
      e.code === "RateLimited" && e.data.limit === "rate" && Number(e.data.retry_after_s) >= 1,
  );
  assert.equal(await slow.run("c", async () => 4, {}, t0 + 1500), 4, "the bucket refills");
});

/** The agent methods' dispatch; these tests never reach the pipeline. */
const agentRpc = (): Dispatch =>
  rpcDispatch(
    {} as Pipeline,
    { name: "a", session: "s", source: "t" },
    new AbortController().signal,
  );

test("methods named after Object.prototype members are -32601 like any unknown method", async () => {
  const rpc = agentRpc();
  for (const method of PROTOTYPE_NAMES) {
    const out = await handleMessage(
      JSON.stringify({ jsonrpc: "2.0", id: 1, method, params: {} }),
      rpc,
      limits,
    );
    const r = JSON.parse(out ?? "{}") as { error: { code: number; data: { type: string } } };
    assert.equal(r.error.code, -32601, method);
    assert.equal(r.error.data.type, "MethodNotFound", method);
  }
});

test("parameters named after Object.prototype members are unknown parameters, not inherited ones", async () => {
  const rpc = agentRpc();
  for (const key of PROTOTYPE_NAMES) {
    const out = await handleMessage(
      `{"jsonrpc":"2.0","id":1,"method":"capabilities.describe","params":{"name":"x","${key}":1}}`,
      rpc,
      limits,
    );
    const r = JSON.parse(out ?? "{}") as {
      error: { code: number; data: { errors: { path: string; message: string }[] } };
    };
    assert.equal(r.error.code, -32602, key);
    assert.deepEqual(r.error.data.errors, [
      { path: `/${key}`, message: "is not a parameter of this method" },
    ]);
  }
});

test("no error reply echoes more than a bounded prefix of what the client sent", async () => {
  const big = { maxMessageBytes: 4 << 20, maxBatch: 4, maxDepth: 8 };
  const huge = "m".repeat(1 << 20);
  const rpc = agentRpc();
  const many = Object.fromEntries(
    Array.from({ length: 5000 }, (_, i) => [`k${i}${huge.slice(0, 100)}`, 1]),
  );
  for (const msg of [
    { jsonrpc: "2.0", id: 1, method: huge, params: {} },
    { jsonrpc: "2.0", id: 1, method: "capabilities.list", params: { [huge]: 1 } },
    { jsonrpc: "2.0", id: 1, method: "capabilities.list", params: many },
  ]) {
    const out = (await handleMessage(JSON.stringify(msg), rpc, big)) ?? "";
    assert.ok(out.length < 8192, `reply of ${out.length} bytes`);
    const r = JSON.parse(out) as { error: { code: number; data: { more_errors?: number } } };
    assert.ok(r.error.code === -32601 || r.error.code === -32602);
  }
  const many2 = JSON.parse(
    (await handleMessage(
      JSON.stringify({ jsonrpc: "2.0", id: 1, method: "capabilities.list", params: many }),
      rpc,
      big,
    )) ?? "{}",
  ) as { error: { data: { errors: unknown[]; more_errors: number } } };
  assert.equal(many2.error.data.errors.length, 20);
  assert.equal(many2.error.data.more_errors, 4980);
});

test("a string id longer than 256 characters is refused, since a reply must echo it whole", async () => {
  const r = (await send({ jsonrpc: "2.0", id: "i".repeat(257), method: "echo" })) as {
    id: null;
    error: { code: number };
  };
  assert.equal(r.id, null);
  assert.equal(r.error.code, -32600);
  const ok = (await send({ jsonrpc: "2.0", id: "i".repeat(256), method: "echo" })) as {
    id: string;
  };
  assert.equal(ok.id.length, 256);
});

test("an internal failure is logged under the reference its -32603 reply carries", async () => {
  const logged: { ref: string; method: string | undefined; err: unknown }[] = [];
  const out = await handleMessage(
    JSON.stringify({ jsonrpc: "2.0", id: 3, method: "boom" }),
    dispatch,
    limits,
    (err, ref, method) => logged.push({ err, ref, method }),
  );
  const r = JSON.parse(out ?? "{}") as {
    error: { code: number; message: string; data: { ref: string } };
  };
  assert.equal(r.error.code, -32603);
  assert.equal(logged.length, 1);
  assert.equal(logged[0]?.ref, r.error.data.ref);
  assert.match(r.error.message, new RegExp(r.error.data.ref));
  assert.equal(logged[0]?.method, "boom");
  assert.match(String((logged[0]?.err as Error).message), /secret internal detail/);
});
