// A seeded fuzz campaign against a real appliance: JSON-RPC on WS /rpc, MCP over WS /mcp and MCP
// Streamable HTTP (POST|GET|DELETE /mcp), pipelined over several connections at once. Every reply
// is checked against what JSON-RPC 2.0 and the MCP transport require (tests/helpers/fuzz.ts): valid
// JSON, the right id, exactly one of result and error, codes of SPEC §4 with data.type and
// data.recovery, never -32603 for client junk, no reply to a notification, bounded size; on HTTP
// never a 5xx. Afterwards the appliance still serves and its audit log verifies.
//
// The fuzzing agent's policy blocks process.*, git.* and network.*, so the campaign touches nothing
// outside the appliance's workspace. Same seed, same messages: KRUXOS_FUZZ_SEED replays a run,
// KRUXOS_FUZZ_MESSAGES sizes it (`npm run fuzz` sends 10^6).
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test, type TestContext } from "node:test";
import WebSocket from "ws";
import {
  HttpFuzzer,
  INTERNAL_ERROR,
  MCP_REVISIONS,
  MessageFuzzer,
  Rng,
  checkErrorObject,
  checkReply,
  defang,
  expectationFor,
  replySignature,
  signature,
  sseMessage,
  streamSeed,
  type CapabilityInfo,
  type CheckResult,
  type Expectation,
  type FuzzWorld,
  type HttpCase,
  type Limits,
  type Mode,
} from "../helpers/fuzz.js";
import { httpGet } from "../helpers/repo.js";
import { RpcClient } from "../helpers/rpc-client.js";
import {
  portOf,
  readyHostWithAgent,
  type Appliance,
  type ManifestObject,
} from "../contract/harness.js";

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer`);
  return n;
}

const SEED = envInt("KRUXOS_FUZZ_SEED", 0x6b727578);
const TOTAL = envInt("KRUXOS_FUZZ_MESSAGES", 25_000);
// Shares of the run: MCP over WebSocket and over HTTP a fifth each, a twentieth to /rpc of an
// appliance with the default rate and concurrency limits, the rest to /rpc of one with raised limits.
const HTTP_COUNT = Math.round(TOTAL * 0.2);
const MCP_WS_COUNT = Math.round(TOTAL * 0.2);
const MCP_PREINIT_COUNT = Math.min(500, Math.round(MCP_WS_COUNT * 0.05));
const RPC_DEFAULTS_COUNT = Math.round(TOTAL * 0.05);
const RPC_COUNT = TOTAL - HTTP_COUNT - MCP_WS_COUNT - RPC_DEFAULTS_COUNT;

const RPC_SOCKETS = 4;
const MCP_SOCKETS = 2;
const DEFAULTS_SOCKETS = 2;
const HTTP_CONCURRENCY = 8;
/** Replies awaited per connection at any time (the gateway reads 64 messages ahead by default). */
const MAX_OUTSTANDING = 32;
/** A reply this late is reported as missing (a liveness bound, not a speed expectation). */
const REPLY_DEADLINE_MS = 15_000;
const AGENT = "fuzzer";

/** Names that exist but this agent may not call (blocked) or that have no handler here. */
const UNLISTED = [
  "process.run",
  "process.kill",
  "git.clone",
  "git.commit",
  "network.http_request",
  "network.download",
  "system.shutdown",
  "alerts.send",
  "comms.send",
  "scheduler.cron_create",
  "secrets.use",
];

// The system layer of this run: the workspace is fair game, everything that reaches further is
// blocked, the rest waits for an operator who never comes (ApprovalRequired, then the per-agent
// pending limit: RateLimited). agent.whoami has a policy rate limit, so that RateLimited shows too.
const POLICY = [
  "version: 1",
  "defaults: { tier: approval_required }",
  "capabilities:",
  '  "filesystem.*": { tier: autonomous }',
  "  agent.whoami: { tier: autonomous, rate_limit: { max: 20, window: 60s, on_exceed: blocked } }",
  "  agent.session: { tier: autonomous }",
  "  system.info: { tier: autonomous }",
  "  system.shutdown: { tier: blocked }",
  '  "process.*": { tier: blocked }',
  '  "git.*": { tier: blocked }',
  '  "network.*": { tier: blocked }',
  "network:",
  "  egress: { allow: [], deny: [] }",
  "",
].join("\n");

interface Target {
  readonly label: string;
  readonly a: Appliance;
  readonly m: ManifestObject;
  readonly token: string;
  readonly cli: Awaited<ReturnType<typeof readyHostWithAgent>>["cli"];
  readonly port: number;
  readonly limits: Limits;
  readonly world: FuzzWorld;
  /** ProgramState log lines about the gateway once ready: a restart would add some. */
  readonly gatewayStates: number;
}

const policyDir = mkdtempSync(path.join(tmpdir(), "kruxos-fuzz-policy-"));
let main: Target;
let defaults: Target;

async function boot(label: string, raiseLimits: boolean): Promise<Target> {
  const policyFile = path.join(policyDir, "system.yaml");
  const r = await readyHostWithAgent(AGENT, (m) => ({
    ...m,
    policy: { ...m.policy, files: [policyFile] },
    gateway: raiseLimits
      ? { ...m.gateway, calls_per_second: 100_000, max_concurrent_calls: 1024 }
      : { ...m.gateway },
  }));
  const g = r.m.gateway ?? {};
  const limits: Limits = {
    maxMessageBytes: Number(g.max_message_bytes),
    maxBatch: Number(g.max_batch),
    maxDepth: Number(g.max_depth),
  };
  const port = portOf(r.m, "gateway");
  return {
    label,
    ...r,
    port,
    limits,
    world: await discover(port, r.token, limits),
    gatewayStates: await gatewayStateLines(r.a),
  };
}

async function gatewayStateLines(a: Appliance): Promise<number> {
  return (await a.logLines()).filter(
    (l) => l.event === "ProgramState" && l.program_name === "gateway",
  ).length;
}

/** What the agent may call, with input schemas, and a few approvals nobody will decide. */
async function discover(port: number, token: string, limits: Limits): Promise<FuzzWorld> {
  const c = await RpcClient.connect(port, token);
  try {
    const listed = await c.call("capabilities.list", {});
    const caps = (listed.result?.capabilities ?? []) as {
      name: string;
      category: string;
      tags: string[];
    }[];
    assert.ok(caps.length > 0, JSON.stringify(listed));
    // The campaign must not run anything outside the workspace: check the policy is in force.
    const reaching = caps.filter((x) => /^(process|git|network)\./.test(x.name));
    assert.deepEqual(reaching, [], "process.*, git.* and network.* must be blocked for the fuzzer");
    const info = async (name: string): Promise<CapabilityInfo> => {
      const d = await c.call("capabilities.describe", { name });
      const inputs = (d.result?.inputs ?? {}) as {
        properties?: Record<string, Record<string, unknown>>;
        required?: string[];
      };
      return { name, properties: inputs.properties ?? {}, required: inputs.required ?? [] };
    };
    const capabilities: CapabilityInfo[] = [];
    for (const cap of caps) capabilities.push(await info(cap.name));
    const blocked: CapabilityInfo[] = [];
    for (const name of UNLISTED) blocked.push(await info(name));
    const approvalIds: string[] = [];
    for (const name of ["system.metrics", "system.health", "agent.capabilities"]) {
      const r = await c.invoke(name, {});
      const id = r.error?.data.approval_id;
      if (typeof id === "string") approvalIds.push(id);
    }
    return {
      limits,
      capabilities,
      blocked,
      categories: [...new Set(caps.map((x) => x.category))],
      tags: [...new Set(caps.flatMap((x) => x.tags ?? []))],
      approvalIds,
    };
  } finally {
    c.close();
  }
}

before(async () => {
  writeFileSync(path.join(policyDir, "system.yaml"), POLICY);
  [main, defaults] = await Promise.all([boot("main", true), boot("defaults", false)]);
});

after(async () => {
  await Promise.all([main?.a.cleanup(), defaults?.a.cleanup()]);
  rmSync(policyDir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// tallies

interface Finding {
  readonly where: string;
  readonly message: string;
  readonly problems: readonly string[];
  readonly reply?: string;
}

/** A message as a report shows it: JSON-quoted (escapes visible), cut when long. */
function show(text: string, max = 600): string {
  const q = JSON.stringify(text);
  return q.length <= max ? q : `${q.slice(0, max)}… (${text.length} characters)`;
}

class Tally {
  readonly sent = new Map<string, number>();
  readonly kinds = new Map<string, number>();
  readonly codes = new Map<number, number>();
  readonly statuses = new Map<number, number>();
  checked = 0;
  notifications = 0;
  readonly nonConformant: Finding[] = [];
  readonly internal: Finding[] = [];
  readonly serverErrors: Finding[] = [];
  readonly broken: Finding[] = [];

  count(map: Map<string, number> | Map<number, number>, key: string | number, n = 1): void {
    const m = map as Map<string | number, number>;
    m.set(key, (m.get(key) ?? 0) + n);
  }

  record(where: string, message: string, res: CheckResult, reply?: string): void {
    this.checked++;
    for (const c of res.codes) this.count(this.codes, c);
    for (const i of res.internal)
      this.internal.push({
        where,
        message: show(message),
        problems: [
          `-32603 "${i.message}" (ref ${String(i.ref)}) for ${show(JSON.stringify(i.request) ?? "")}`,
        ],
      });
    if (res.problems.length > 0)
      this.nonConformant.push({
        where,
        message: show(message),
        problems: res.problems.slice(0, 8),
        ...(reply !== undefined ? { reply: show(reply) } : {}),
      });
  }

  total(): number {
    return [...this.sent.values()].reduce((n, x) => n + x, 0);
  }
}

/** Entries and bytes under a folder (symlinks not followed). */
function workspaceSize(dir: string): { entries: number; bytes: number } {
  let entries = 0;
  let bytes = 0;
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      entries++;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) bytes += statSync(p).size;
    }
  };
  walk(dir);
  return { entries, bytes };
}

function report(findings: readonly Finding[], what: string): string {
  if (findings.length === 0) return "";
  // Every finding, for whoever fixes them; the assertion message shows the first ten.
  const file = path.join(tmpdir(), `kruxos-fuzz-${SEED}-${what.replace(/\W+/g, "-")}.json`);
  writeFileSync(file, JSON.stringify(findings, null, 2));
  return [
    `all of them in ${file}`,
    `${findings.length} ${what} (seed ${SEED}, KRUXOS_FUZZ_MESSAGES ${TOTAL}); first ones:`,
    ...findings
      .slice(0, 10)
      .map(
        (f) =>
          `- ${f.where}\n  sent:  ${f.message}\n  ${f.problems.join("\n  ")}${f.reply ? `\n  reply: ${f.reply}` : ""}`,
      ),
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// WebSocket streams

function openSocket(port: number, token: string, urlPath: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${urlPath}`, {
      headers: { authorization: `Bearer ${token}` },
      perMessageDeflate: false,
    });
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

interface Pending {
  readonly text: string;
  readonly exp: Expectation;
  readonly index: number;
  readonly done: Promise<void>;
  readonly resolve: () => void;
  readonly timer: NodeJS.Timeout;
}

interface StreamOptions {
  readonly target: Target;
  readonly path: "/rpc" | "/mcp";
  readonly mode: Mode;
  readonly label: string;
  readonly count: number;
  readonly transport: string;
  readonly tally: Tally;
}

/**
 * One connection: `count` generated messages, pipelined with at most MAX_OUTSTANDING replies
 * awaited. A reply is matched to its message by the ids it carries; two messages whose replies would
 * look alike are never in flight together, so every reply has exactly one message it can answer.
 */
async function fuzzSocket(o: StreamOptions): Promise<void> {
  const { target, tally, mode } = o;
  const where = `${target.label} ${o.path} #${o.label}`;
  const ws = await openSocket(target.port, target.token, o.path);
  const outstanding = new Map<string, Pending>();
  let waiters: (() => void)[] = [];
  const wake = (): void => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const recentNotifications: string[] = [];
  let ending = false;
  let closed = false;

  ws.on("message", (data, isBinary) => {
    const text = Buffer.isBuffer(data) ? data.toString("utf8") : String(data);
    if (isBinary)
      tally.nonConformant.push({
        where,
        message: "",
        problems: ["a binary frame"],
        reply: show(text),
      });
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      tally.nonConformant.push({
        where,
        message: "",
        problems: ["a reply that is not JSON"],
        reply: show(text),
      });
      return;
    }
    const p = outstanding.get(replySignature(parsed));
    if (!p) {
      tally.nonConformant.push({
        where,
        message: recentNotifications.map((n) => show(n, 300)).join("\n         "),
        problems: ["a reply that answers no message in flight (sent: the latest notifications)"],
        reply: show(text),
      });
      return;
    }
    outstanding.delete(signature(p.exp));
    clearTimeout(p.timer);
    tally.record(
      `${where} message ${p.index}`,
      p.text,
      checkReply(text, p.exp, mode, Buffer.byteLength(p.text)),
      text,
    );
    p.resolve();
    wake();
  });
  ws.on("close", (code, reason) => {
    closed = true;
    if (!ending)
      tally.broken.push({
        where,
        message: "",
        problems: [`the server closed the connection: ${code} ${reason.toString()}`],
      });
    for (const p of outstanding.values()) {
      clearTimeout(p.timer);
      p.resolve();
    }
    outstanding.clear();
    wake();
  });
  ws.on("error", () => undefined);

  const send = (text: string, exp: Expectation, index: number): Pending => {
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    const sig = signature(exp);
    const timer = setTimeout(() => {
      if (outstanding.get(sig) !== p) return;
      outstanding.delete(sig);
      tally.nonConformant.push({
        where: `${where} message ${index}`,
        message: show(text),
        problems: [`no reply within ${REPLY_DEADLINE_MS / 1000} s`],
      });
      resolve();
      wake();
    }, REPLY_DEADLINE_MS);
    const p: Pending = { text, exp, index, done, resolve, timer };
    outstanding.set(sig, p);
    ws.send(text);
    return p;
  };

  if (mode === "mcp") {
    const init = JSON.stringify({
      jsonrpc: "2.0",
      id: `init-${o.label}`,
      method: "initialize",
      params: {
        protocolVersion: MCP_REVISIONS[0],
        capabilities: {},
        clientInfo: { name: "fuzz", version: "1" },
      },
    });
    await send(init, expectationFor(init, "mcp-new", target.limits), -1).done;
    ws.send(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }));
  }

  const fuzzer = new MessageFuzzer(
    new Rng(streamSeed(SEED, `${target.label}/${o.label}`)),
    target.world,
    mode,
  );
  for (let i = 0; i < o.count && !closed; i++) {
    const g = fuzzer.message();
    const text = defang(g.text);
    const exp = expectationFor(text, mode, target.limits);
    tally.count(tally.sent, o.transport);
    tally.count(tally.kinds, g.kind);
    if (exp.kind === "none") {
      tally.notifications++;
      recentNotifications.push(text);
      if (recentNotifications.length > 3) recentNotifications.shift();
      ws.send(text);
      continue;
    }
    const sig = signature(exp);
    for (;;) {
      const same = outstanding.get(sig);
      if (same) await same.done;
      else if (outstanding.size >= MAX_OUTSTANDING) await new Promise<void>((r) => waiters.push(r));
      else break;
      if (closed) break;
    }
    if (closed) break;
    send(text, exp, i);
  }
  await Promise.all([...outstanding.values()].map((p) => p.done));
  // A last well-behaved request: whatever stray reply was still coming arrives before its answer.
  if (!closed) {
    const last = JSON.stringify({
      jsonrpc: "2.0",
      id: `last-${o.label}`,
      method: mode === "rpc" ? "capabilities.describe" : "ping",
      params: mode === "rpc" ? { name: "filesystem.read" } : {},
    });
    await send(last, expectationFor(last, mode, target.limits), o.count).done;
  }
  ending = true;
  ws.close();
}

// ---------------------------------------------------------------------------------------------
// Streamable HTTP

interface HttpAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

function httpSend(
  target: Target,
  agent: http.Agent,
  method: string,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    let answered = false;
    // Node frames a GET/DELETE body only when told its length.
    const withLength = body ? { ...headers, "content-length": String(body.length) } : headers;
    const req = http.request(
      { host: "127.0.0.1", port: target.port, path: "/mcp", method, headers: withLength, agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          answered = true;
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
          });
        });
        res.on("error", (e) => (answered ? undefined : reject(e)));
      },
    );
    req.setTimeout(REPLY_DEADLINE_MS, () => req.destroy(new Error("no answer in time")));
    // A server may answer (413, 401) and close before it has read a large body.
    req.on("error", (e) => (answered ? undefined : reject(e)));
    req.end(body);
  });
}

interface HttpSession {
  readonly id: string;
  readonly version: string;
}

async function openHttpSession(
  target: Target,
  agent: http.Agent,
  version: string,
): Promise<HttpSession> {
  const base = {
    authorization: `Bearer ${target.token}`,
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
  };
  const init = await httpSend(
    target,
    agent,
    "POST",
    base,
    Buffer.from(
      JSON.stringify({
        jsonrpc: "2.0",
        id: 0,
        method: "initialize",
        params: {
          protocolVersion: version,
          capabilities: {},
          clientInfo: { name: "fuzz", version: "1" },
        },
      }),
    ),
  );
  const id = init.headers["mcp-session-id"];
  assert.equal(init.status, 200, init.body);
  assert.equal(typeof id, "string");
  const ready = await httpSend(
    target,
    agent,
    "POST",
    { ...base, "mcp-session-id": String(id) },
    Buffer.from(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" })),
  );
  assert.equal(ready.status, 202, ready.body);
  return { id: String(id), version };
}

/** The JSON-RPC text of a 200 answer, whichever of the two formats it came in. */
function answerText(a: HttpAnswer): { text?: string; problem?: string } {
  const type = String(a.headers["content-type"] ?? "");
  if (type.startsWith("application/json")) return { text: a.body };
  if (type.startsWith("text/event-stream")) {
    const s = sseMessage(a.body);
    return s.problem !== undefined ? { problem: s.problem } : { text: s.data ?? "" };
  }
  return { problem: `content-type "${type}"` };
}

/** What one HTTP answer must be, given the case that asked. */
function checkHttp(c: HttpCase, a: HttpAnswer, limits: Limits): CheckResult {
  const out: CheckResult = { problems: [], internal: [], codes: [] };
  if (a.status >= 500) out.problems.push(`HTTP ${a.status}`);
  if (c.status && !c.status.includes(a.status))
    out.problems.push(`HTTP ${a.status}, expected ${c.status.join(" or ")}`);
  if (a.status >= 400) {
    // Every refusal carries a JSON-RPC error body with id null, data.type and data.recovery.
    let body: unknown;
    try {
      body = JSON.parse(a.body);
    } catch {
      out.problems.push(`HTTP ${a.status} with a body that is not JSON`);
      return out;
    }
    const b = body as Record<string, unknown>;
    if (typeof b !== "object" || b === null || b.jsonrpc !== "2.0" || b.id !== null)
      out.problems.push(`HTTP ${a.status}: the body is not a JSON-RPC error with id null`);
    const code = checkErrorObject(`HTTP ${a.status} body`, b.error, out.problems);
    if (code !== undefined) out.codes.push(code);
    if (code === INTERNAL_ERROR)
      out.internal.push({
        message: String((b.error as { message?: unknown }).message),
        ref: undefined,
        request: c.text,
      });
    if (c.json === undefined || c.initializes) return out;
  }
  if (c.json === undefined) return out;
  const text = c.text ?? "";
  const bytes = Buffer.byteLength(text);
  if (c.initializes) {
    if (a.status !== 200) {
      if (a.status !== 400) out.problems.push(`HTTP ${a.status} for a body carrying initialize`);
      return out;
    }
    const t = answerText(a);
    if (t.problem !== undefined) out.problems.push(t.problem);
    else {
      merge(out, checkReply(t.text, expectationFor(text, "mcp-new", limits), "mcp-new", bytes));
      // A session id is given with the InitializeResult, never with a failed initialize (after
      // which no session is kept).
      if (a.headers["mcp-session-id"] !== undefined && !initialized(t.text))
        out.problems.push(
          "an Mcp-Session-Id header on a failed initialize: no such session is kept",
        );
    }
    return out;
  }
  const e = c.json;
  if (e.kind === "none") {
    if (a.status !== 202)
      out.problems.push(`HTTP ${a.status} for notifications/responses only (202 due)`);
    if (a.body !== "") out.problems.push("a body with 202");
    return out;
  }
  // A whole-message error, or a single invalid message without an id (not a request, and a
  // notification the server cannot accept: the transport says 400), may come back as a 400.
  const request = e.kind === "single" ? e.member.request : undefined;
  const invalidNotification =
    typeof request === "object" &&
    request !== null &&
    !Array.isArray(request) &&
    !Object.hasOwn(request, "id");
  const okStatus = e.kind === "single" && (e.whole || invalidNotification) ? [200, 400] : [200];
  if (!okStatus.includes(a.status)) {
    const due = (e.kind === "single" ? [e.member] : e.members).map(
      (m) =>
        `${m.code ?? m.codes?.join("|") ?? "result"} with id ${m.id} for ${show(JSON.stringify(m.request) ?? "", 200)}`,
    );
    out.problems.push(
      `HTTP ${a.status} for a message that needs a reply (${okStatus.join(" or ")} due): ${due.join("; ")}`,
    );
    return out;
  }
  if (a.status === 400) {
    merge(out, checkReply(a.body, e, "mcp", bytes), true);
    return out;
  }
  const t = answerText(a);
  if (t.problem !== undefined) out.problems.push(t.problem);
  else merge(out, checkReply(t.text, e, "mcp", bytes));
  return out;
}

function initialized(text: string | undefined): boolean {
  try {
    const r = JSON.parse(text ?? "") as { result?: { protocolVersion?: unknown } };
    return typeof r.result?.protocolVersion === "string";
  } catch {
    return false;
  }
}

function merge(into: CheckResult, from: CheckResult, skipCodes = false): void {
  into.problems.push(...from.problems);
  into.internal.push(...from.internal);
  if (!skipCodes) into.codes.push(...from.codes);
}

async function fuzzHttp(target: Target, count: number, tally: Tally): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: HTTP_CONCURRENCY });
  try {
    const sessions: HttpSession[] = [];
    for (const v of MCP_REVISIONS) sessions.push(await openHttpSession(target, agent, v));
    const fuzzer = new HttpFuzzer(
      new Rng(streamSeed(SEED, `${target.label}/http`)),
      target.world,
      sessions.length,
    );
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < count) {
        const index = next++;
        const c = fuzzer.next();
        tally.count(tally.sent, "mcp-http");
        tally.count(tally.kinds, `http:${c.kind}`);
        const headers: Record<string, string> = { ...c.headers };
        if (c.auth === "ok") headers.authorization = `Bearer ${target.token}`;
        else if (c.auth === "wrong") headers.authorization = `Bearer ${"f".repeat(64)}`;
        let session: HttpSession | undefined;
        if (typeof c.session === "number") {
          session = sessions[c.session];
          headers["mcp-session-id"] = session?.id ?? "";
        } else if (c.session !== "none") headers["mcp-session-id"] = c.session.raw;
        // Half the requests on a live session name its revision, as clients after initialize do.
        if (session && headers["mcp-protocol-version"] === undefined && index % 2 === 0)
          headers["mcp-protocol-version"] = session.version;
        const where = `${target.label} ${c.method} /mcp #${index} (${c.kind})`;
        const sent = `${c.method} ${JSON.stringify(c.headers)} ${c.text ?? (c.body ? c.body.subarray(0, 200).toString("latin1") : "")}`;
        let a: HttpAnswer;
        try {
          a = await httpSend(target, agent, c.method, headers, c.body);
        } catch (err) {
          tally.broken.push({
            where,
            message: show(sent),
            problems: [`no answer: ${(err as Error).message}`],
          });
          continue;
        }
        tally.count(tally.statuses, a.status);
        if (a.status >= 500)
          tally.serverErrors.push({
            where,
            message: show(sent),
            problems: [`HTTP ${a.status}`],
            reply: show(a.body),
          });
        tally.record(where, sent, checkHttp(c, a, target.limits), a.body);
        // A body that initialized a new session: end it, so the run's own sessions stay in the
        // agent's 16 (creating more would end the least recently used).
        const created = a.headers["mcp-session-id"];
        if (typeof created === "string") {
          let status: number;
          try {
            status = (
              await httpSend(target, agent, "DELETE", {
                authorization: `Bearer ${target.token}`,
                "mcp-session-id": created,
              })
            ).status;
          } catch (err) {
            tally.broken.push({
              where,
              message: show(sent),
              problems: [`DELETE of the session it created: no answer: ${(err as Error).message}`],
            });
            continue;
          }
          // 404 when the session was never kept (reported above); never a 5xx.
          if (status !== 204 && status !== 404)
            tally.nonConformant.push({
              where,
              message: show(sent),
              problems: [`DELETE of the session it created: HTTP ${status}`],
            });
        }
      }
    };
    await Promise.all(Array.from({ length: HTTP_CONCURRENCY }, worker));
  } finally {
    agent.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// the campaign

function split(total: number, parts: number): number[] {
  return Array.from(
    { length: parts },
    (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0),
  );
}

test(`${TOTAL} fuzzed JSON-RPC and MCP messages get only conformant replies: no internal error, no 5xx, no dropped connection`, async (t: TestContext) => {
  const tally = new Tally();
  const started = performance.now();
  const streams: Promise<void>[] = [];
  split(RPC_COUNT, RPC_SOCKETS).forEach((count, i) =>
    streams.push(
      fuzzSocket({
        target: main,
        path: "/rpc",
        mode: "rpc",
        label: `rpc${i}`,
        count,
        transport: "rpc",
        tally,
      }),
    ),
  );
  split(MCP_WS_COUNT - MCP_PREINIT_COUNT, MCP_SOCKETS).forEach((count, i) =>
    streams.push(
      fuzzSocket({
        target: main,
        path: "/mcp",
        mode: "mcp",
        label: `mcp${i}`,
        count,
        transport: "mcp-ws",
        tally,
      }),
    ),
  );
  streams.push(
    fuzzSocket({
      target: main,
      path: "/mcp",
      mode: "mcp-preinit",
      label: "mcp-preinit",
      count: MCP_PREINIT_COUNT,
      transport: "mcp-ws",
      tally,
    }),
  );
  split(RPC_DEFAULTS_COUNT, DEFAULTS_SOCKETS).forEach((count, i) =>
    streams.push(
      fuzzSocket({
        target: defaults,
        path: "/rpc",
        mode: "rpc",
        label: `rpc${i}`,
        count,
        transport: "rpc-default-limits",
        tally,
      }),
    ),
  );
  streams.push(fuzzHttp(main, HTTP_COUNT, tally));
  await Promise.all(streams);
  const seconds = (performance.now() - started) / 1000;

  const sent = [...tally.sent.entries()].map(([k, v]) => `${k} ${v}`).join(", ");
  const codes = [...tally.codes.entries()]
    .sort((x, y) => y[0] - x[0])
    .map(([k, v]) => `${k === 0 ? "results" : k}: ${v}`);
  const statuses = [...tally.statuses.entries()]
    .sort((x, y) => x[0] - y[0])
    .map(([k, v]) => `${k}: ${v}`);
  t.diagnostic(`seed ${SEED}; messages sent ${tally.total()} (${sent})`);
  t.diagnostic(
    `replies checked ${tally.checked}; notifications and responses (no reply due) ${tally.notifications}`,
  );
  t.diagnostic(
    `non-conformant ${tally.nonConformant.length}; internal errors ${tally.internal.length}; 5xx ${tally.serverErrors.length}; dropped connections or requests ${tally.broken.length}`,
  );
  t.diagnostic(`replies (members) by outcome: ${codes.join(", ")}`);
  t.diagnostic(`HTTP statuses: ${statuses.join(", ")}`);
  const kinds = [...tally.kinds.entries()].sort((x, y) => y[1] - x[1]);
  t.diagnostic(`messages by kind: ${kinds.map(([k, v]) => `${k} ${v}`).join(", ")}`);
  t.diagnostic(`${(tally.total() / seconds).toFixed(0)} messages/s over ${seconds.toFixed(1)} s`);

  // Every kind of finding is written out before the first assertion stops the test.
  const reports = {
    internal: report(tally.internal, "internal errors (-32603) for client input"),
    serverErrors: report(tally.serverErrors, "5xx answers"),
    broken: report(tally.broken, "dropped connections or requests"),
    nonConformant: report(tally.nonConformant, "non-conformant replies"),
  };
  const ws = workspaceSize(path.join(main.a.home ?? "", "workspace"));
  t.diagnostic(`workspace afterwards: ${ws.entries} entries, ${ws.bytes} bytes`);

  assert.ok(tally.total() >= TOTAL, `sent ${tally.total()} of ${TOTAL}`);
  assert.equal(tally.internal.length, 0, reports.internal);
  assert.equal(tally.serverErrors.length, 0, reports.serverErrors);
  assert.equal(tally.broken.length, 0, reports.broken);
  assert.equal(tally.nonConformant.length, 0, reports.nonConformant);
  // The limits were reached, not just configured: RateLimited came back on the default-limits
  // appliance (rate, concurrency) and for pending approvals and the policy rate limit.
  assert.ok((tally.codes.get(-32004) ?? 0) > 0, "RateLimited was exercised");
  assert.ok((tally.codes.get(-32002) ?? 0) > 0, "ApprovalRequired was exercised");
  assert.ok((tally.codes.get(-32001) ?? 0) > 0, "PolicyDenied was exercised");
});

test("after the campaign both appliances are alive and ready, serve a fresh client, and their audit logs verify", async () => {
  for (const target of [main, defaults]) {
    const live = await httpGet(`http://127.0.0.1:${target.port}/livez`);
    assert.equal(live.status, 200, `${target.label}: /livez ${live.body}`);
    const ready = await httpGet(`http://127.0.0.1:${target.port}/ready`);
    assert.equal(ready.status, 200, `${target.label}: /ready ${ready.body}`);
    // The gateway never went down and came back (a crash would be restarted, and logged).
    assert.equal(
      await gatewayStateLines(target.a),
      target.gatewayStates,
      `${target.label}: gateway restarted`,
    );
    const internal = (await target.a.logLines()).filter((l) => l.event === "InternalError");
    assert.equal(internal.length, 0, `${target.label}: ${JSON.stringify(internal.slice(0, 3))}`);

    const c = await RpcClient.connect(target.port, target.token);
    try {
      // The default-limits appliance may still be refilling its bucket: honour retry_after_s.
      const call = async (method: string, params: unknown): Promise<Record<string, unknown>> => {
        for (let attempt = 0; ; attempt++) {
          const r = await c.call(method, params);
          if (r.error?.code === -32004 && attempt < 5) {
            await new Promise((res) =>
              setTimeout(res, 1000 * Number(r.error?.data.retry_after_s ?? 1)),
            );
            continue;
          }
          assert.ok(r.result, `${target.label}: ${method} ${JSON.stringify(r)}`);
          return r.result;
        }
      };
      const listed = (await call("capabilities.list", {})).capabilities as { name: string }[];
      assert.ok(listed.some((x) => x.name === "filesystem.read"));
      assert.ok(!listed.some((x) => x.name === "process.run"), "process.run stays blocked");
      const content = `after the campaign ${SEED}`;
      const w = await call("capabilities.invoke", {
        name: "filesystem.write",
        inputs: { path: "after-fuzz/ok.txt", content, create_dirs: true },
      });
      assert.equal(w.success, true);
      const r = await call("capabilities.invoke", {
        name: "filesystem.read",
        inputs: { path: "after-fuzz/ok.txt" },
      });
      assert.equal((r.data as { content: string }).content, content);
    } finally {
      c.close();
    }
    const verify = await target.cli(["audit", "verify"]);
    assert.equal(verify.code, 0, `${target.label}: ${verify.stdout}${verify.stderr}`);
    assert.match(verify.stdout, /^intact/, verify.stdout);
  }
});

test("the oracle and checker hold replies to JSON-RPC 2.0 (they would catch what the campaign looks for)", () => {
  const limits: Limits = { maxMessageBytes: 1 << 20, maxBatch: 50, maxDepth: 32 };
  const exp = (text: string, mode: Mode = "rpc"): Expectation => expectationFor(text, mode, limits);
  const problems = (reply: string, text: string, mode: Mode = "rpc"): string[] =>
    checkReply(reply, exp(text, mode), mode, Buffer.byteLength(text)).problems;
  const recovery = [{ action: "fix_inputs", description: "d" }];
  const err = (id: unknown, code: number, data: Record<string, unknown> = {}): string =>
    JSON.stringify({
      jsonrpc: "2.0",
      id,
      error: { code, message: "m", data: { type: "T", recovery, ...data } },
    });

  assert.deepEqual(exp('{"jsonrpc":"2.0","method":"capabilities.list"}'), { kind: "none" });
  assert.equal(signature(exp("[]")), "s:null");
  assert.equal(signature(exp("{")), "s:null");
  assert.equal(signature(exp('{"jsonrpc":"2.0","id":1e400,"method":"x"}')), "s:null");
  assert.equal(
    signature(exp(`{"jsonrpc":"2.0","id":"${"i".repeat(257)}","method":"x"}`)),
    "s:null",
  );
  assert.equal(signature(exp('[{"jsonrpc":"2.0","id":2,"method":"x"},1]')), "b:2\u0001null");
  // MCP ignores responses sent to it; /rpc calls them invalid.
  assert.deepEqual(exp('{"jsonrpc":"2.0","id":1,"result":{}}', "mcp"), { kind: "none" });
  assert.equal(signature(exp('{"jsonrpc":"2.0","id":1,"result":{}}')), "s:1");

  const unknown = '{"jsonrpc":"2.0","id":7,"method":"toString"}';
  assert.deepEqual(problems(err(7, -32601), unknown), []);
  assert.match(problems(err(7, -32602), unknown).join(), /where JSON-RPC gives -32601/);
  assert.match(problems(err(8, -32601), unknown).join(), /is not the request's/);
  assert.match(problems(err(7, -32601, { recovery: [] }), unknown).join(), /recovery/);
  assert.match(
    problems(JSON.stringify({ jsonrpc: "2.0", id: 7, result: {} }), unknown).join(),
    /a result where/,
  );
  assert.match(
    problems("{}", '{"jsonrpc":"2.0","method":"x"}').join(),
    /a reply where none is due/,
  );
  const internal = checkReply(
    err(7, -32603, { ref: "err_1" }),
    exp('{"jsonrpc":"2.0","id":7,"method":"capabilities.list"}'),
    "rpc",
    50,
  );
  assert.equal(internal.internal.length, 1);
  assert.match(
    problems(err(null, -32600, { echo: "x".repeat(40_000) }), "[]").join(),
    /error object of/,
  );
  const batch = '[{"jsonrpc":"2.0","id":1,"method":"nope"},{"jsonrpc":"2.0","method":"nope"}]';
  assert.deepEqual(problems(`[${err(1, -32601)}]`, batch), []);
  assert.match(
    problems(`[${err(1, -32601)},${err(null, -32601)}]`, batch).join(),
    /2 responses for 1/,
  );
});
