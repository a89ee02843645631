// The protocol fuzzer's two halves, apart from any transport: a seeded generator of JSON-RPC and MCP
// messages (valid, mutated, batched, broken, deep, odd numbers and strings) and an oracle plus
// conformance checker that says, for each message, what JSON-RPC 2.0 requires in return and whether
// a reply is that. The expectations are written here from the spec and docs/agent-protocol.md and
// docs/mcp.md — literally, never imported from src — so the fuzzer judges the gateway, not itself.

// ---------------------------------------------------------------------------------------------
// seeded randomness

import { Rng } from "./rng.js";

export { Rng };

/** A seed for one stream (one connection, one transport) derived from the run's seed. */
export function streamSeed(seed: number, stream: string): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (let i = 0; i < stream.length; i++) {
    h = Math.imul(h ^ stream.charCodeAt(i), 0x01000193) >>> 0;
    h ^= h >>> 13;
  }
  return h >>> 0;
}

// ---------------------------------------------------------------------------------------------
// what the generator knows about the appliance

export interface Limits {
  readonly maxMessageBytes: number;
  readonly maxBatch: number;
  readonly maxDepth: number;
}

/**
 * Where a message goes: `/rpc`, an initialized MCP session, an MCP session before initialize, or
 * (Streamable HTTP) a POST carrying initialize, which starts a new session.
 */
export type Mode = "rpc" | "mcp" | "mcp-preinit" | "mcp-new";

export interface CapabilityInfo {
  readonly name: string;
  /** Input property name → its JSON Schema (only `type`, `enum`, `minimum`, `maximum` are read). */
  readonly properties: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  readonly required: readonly string[];
}

export interface FuzzWorld {
  readonly limits: Limits;
  /** What capabilities.list answered (callable for this agent). */
  readonly capabilities: readonly CapabilityInfo[];
  /** Capabilities policy blocks or that have no handler here (a call is refused), with schemas when known. */
  readonly blocked: readonly CapabilityInfo[];
  readonly categories: readonly string[];
  readonly tags: readonly string[];
  /** Approvals queued (and never decided) before the run. */
  readonly approvalIds: readonly string[];
}

/** The JSON-RPC methods of /rpc (docs/agent-protocol.md). */
export const RPC_METHODS = [
  "capabilities.list",
  "capabilities.describe",
  "capabilities.invoke",
  "capabilities.call",
  "approvals.check",
  "approvals.wait",
] as const;

/** MCP methods a tools-only server answers (docs/mcp.md). */
const MCP_METHODS = ["initialize", "ping", "tools/list", "tools/call"] as const;

/** MCP methods it does not have, and notifications. */
const MCP_OTHER = [
  "resources/list",
  "resources/read",
  "resources/templates/list",
  "prompts/list",
  "prompts/get",
  "logging/setLevel",
  "completion/complete",
  "sampling/createMessage",
  "elicitation/create",
  "roots/list",
  "tasks/get",
  "tasks/list",
  "server/discover",
];

const MCP_NOTIFICATIONS = [
  "notifications/initialized",
  "notifications/cancelled",
  "notifications/progress",
  "notifications/roots/list_changed",
  "notifications/message",
];

export const PROTOTYPE_NAMES = [
  "toString",
  "__proto__",
  "constructor",
  "hasOwnProperty",
  "valueOf",
  "isPrototypeOf",
  "propertyIsEnumerable",
  "toLocaleString",
  "__defineGetter__",
  "__defineSetter__",
  "__lookupGetter__",
  "__lookupSetter__",
  "prototype",
];

export const MCP_REVISIONS = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"] as const;

// ---------------------------------------------------------------------------------------------
// the generator

/** Set a key as an own, enumerable property, even "__proto__" (plain assignment would not). */
function put(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

function obj(entries: readonly (readonly [string, unknown])[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of entries) put(o, k, v);
  return o;
}

/** Characters with a story: controls, NUL, RTL override, zero width, BOM, astral, lone surrogates. */
const ODD_CHARS = [
  "\u0000",
  "\u0001",
  "\u001f",
  "\u007f",
  "\n",
  "\t",
  '"',
  "\\",
  "/",
  "\u00e9",
  "\u4e2d",
  "\u202e",
  "\u200b",
  "\ufeff",
  "\uffff",
  "\ud83d\ude00",
  "\ud800",
  "\udfff",
  "\udc00\ud800",
  "\u2028",
];

const KEY_POOL = [
  "a",
  "name",
  "path",
  "inputs",
  "params",
  "id",
  "method",
  "jsonrpc",
  "x",
  "",
  " ",
  "\u0000",
  "\ud800",
  "k\u00e9y",
  ...PROTOTYPE_NAMES,
];

const WORKSPACE_PATHS = [
  "fz",
  "fz/a.txt",
  "fz/b",
  "fz/b/c.txt",
  "fz/b/../a.txt",
  "/workspace/fz/d.txt",
  "/workspace",
  ".",
  "",
  "fz/",
  "fz//a.txt",
  "fz/\u00e9\u4e2d.txt",
  "fz/\ud83d\ude00",
  "fz/\u0000x",
  "fz/\ud800",
  "../outside",
  "fz/../../x",
  "/etc/passwd",
  "/workspace/../etc/passwd",
  "/proc/self/environ",
  ".git/hooks/pre-commit",
  ".git/config",
  ".bashrc",
  ".ssh/id_rsa",
  ".mcp.json",
  ".vscode/settings.json",
  "~",
  "fz/*",
  "fz/?",
  "C:\\Windows",
  "fz/" + "x/".repeat(40) + "y",
  "fz/" + "n".repeat(300),
];

/**
 * Where filesystem.copy reads and writes. Copies are the one way to multiply what the workspace
 * holds; with sources and destinations apart from every other path (nothing is ever written below
 * fz/f*.txt), a long run cannot grow the workspace without bound by copying trees into trees.
 */
const COPY_PATHS = [
  "fz/f1.txt",
  "fz/f2.txt",
  "/workspace/fz/f3.txt",
  "fz/b",
  "fz",
  ".",
  "../outside",
  "/etc/passwd",
  ".git/config",
  ".bashrc",
  "fz/\u0000x",
];

export interface GeneratedMessage {
  readonly text: string;
  /** The generator's name for what it made (for figures and reports). */
  readonly kind: string;
}

/**
 * Makes messages for one stream. Ids are mostly unique within the stream (a counter inside many
 * shapes) so pipelined replies can be told apart; the rest come from small pools on purpose.
 */
export class MessageFuzzer {
  private seq = 0;

  constructor(
    private readonly rng: Rng,
    private readonly world: FuzzWorld,
    private readonly mode: Mode,
  ) {}

  // -- scalars ---------------------------------------------------------------------------------

  private asciiString(maxLen: number): string {
    const n = this.rng.int(maxLen + 1);
    let s = "";
    for (let i = 0; i < n; i++) s += String.fromCharCode(32 + this.rng.int(95));
    return s;
  }

  private oddString(maxLen: number): string {
    const n = this.rng.int(maxLen + 1);
    let s = "";
    for (let i = 0; i < n; i++)
      s += this.rng.chance(0.5)
        ? this.rng.pick(ODD_CHARS)
        : String.fromCharCode(32 + this.rng.int(95));
    return s;
  }

  string(): string {
    const r = this.rng;
    return r.weighted<string>([
      [5, () => this.asciiString(12)],
      [3, () => this.oddString(12)],
      [1, () => ""],
      [1, () => r.pick(WORKSPACE_PATHS)],
      [1, () => r.pick(PROTOTYPE_NAMES)],
      [0.5, () => "x".repeat(r.range(200, 1200))],
      [0.3, () => "[[[[{{{{".repeat(r.range(10, 60))],
    ]);
  }

  number(): number {
    const r = this.rng;
    return r.weighted<number>([
      [4, () => r.range(-5, 100)],
      [2, () => (r.next() - 0.5) * 1e6],
      [1, () => r.pick([-0, 0.5, -1.5, 1e-7, 5e-324, 1.7976931348623157e308, -1e308])],
      [1, () => r.pick([2 ** 53, 2 ** 53 + 2, -(2 ** 63), 2 ** 64, 1e21, 123456789012345680000])],
    ]);
  }

  value(depth = 0): unknown {
    const r = this.rng;
    const leaf = depth >= 3;
    return r.weighted<unknown>([
      [2, () => null],
      [2, () => r.chance(0.5)],
      [3, () => this.number()],
      [4, () => this.string()],
      [leaf ? 0 : 2, () => Array.from({ length: r.int(5) }, () => this.value(depth + 1))],
      [leaf ? 0 : 3, () => this.randomObject(depth + 1)],
    ]);
  }

  private randomObject(depth: number): Record<string, unknown> {
    const o: Record<string, unknown> = {};
    const n = this.rng.int(5);
    for (let i = 0; i < n; i++)
      put(o, this.rng.chance(0.8) ? this.rng.pick(KEY_POOL) : this.string(), this.value(depth));
    return o;
  }

  // -- ids ---------------------------------------------------------------------------------------

  /** An id JSON-RPC allows (string ≤ 256, finite number, null); mostly unique in the stream. */
  validId(): unknown {
    const r = this.rng;
    const n = ++this.seq;
    return r.weighted<unknown>([
      [5, () => n],
      [4, () => `id-${n}`],
      [1, () => -n],
      [1, () => n + 0.25],
      [1, () => n * 1e15],
      [1, () => `${n}\u00e9\ud83d\ude00\u0000"\\`],
      [0.5, () => `${n}\ud800`],
      [0.5, () => `${n}:`.padEnd(256, "i")],
      [0.5, () => ""],
      [0.5, () => null],
      [0.5, () => r.pick([0, -0, 1.7976931348623157e308, 5e-324, 2 ** 64])],
      [0.3, () => r.pick(PROTOTYPE_NAMES)],
    ]);
  }

  /** An id JSON-RPC does not allow: a long string, object, array or boolean. */
  invalidId(): unknown {
    const r = this.rng;
    const n = ++this.seq;
    return r.weighted<unknown>([
      [2, () => `${n}:`.padEnd(257, "i")],
      [1, () => `${n}:`.padEnd(r.range(300, 3000), "l")],
      [2, () => ({ n })],
      [1, () => ({})],
      [2, () => [n]],
      [1, () => []],
      [2, () => r.chance(0.5)],
    ]);
  }

  id(): unknown {
    return this.rng.chance(0.85) ? this.validId() : this.invalidId();
  }

  // -- methods and params ------------------------------------------------------------------------

  private mutateName(name: string): string {
    const r = this.rng;
    return r.weighted<string>([
      [1, () => name.toUpperCase()],
      [1, () => ` ${name}`],
      [1, () => `${name} `],
      [1, () => `${name}\u0000`],
      [1, () => name.replace(".", "/")],
      [1, () => name.replace(".", "..")],
      [1, () => name.slice(0, r.int(name.length))],
      [1, () => name + name],
      [1, () => name.replace("a", "\u0430")], // Cyrillic a
      [1, () => `${name}.${r.pick(PROTOTYPE_NAMES)}`],
    ]);
  }

  method(): string {
    const r = this.rng;
    const real: readonly string[] = this.mode === "rpc" ? RPC_METHODS : MCP_METHODS;
    return r.weighted<string>([
      [this.mode === "rpc" ? 14 : 4, () => r.pick(real)],
      [this.mode === "rpc" ? 8 : 0, () => r.pick(["capabilities.invoke", "capabilities.call"])],
      [this.mode === "rpc" ? 0 : 10, () => "tools/call"],
      [this.mode === "rpc" ? 0 : 2, () => r.pick(MCP_OTHER)],
      [this.mode === "rpc" ? 1 : 2, () => r.pick(this.mode === "rpc" ? MCP_METHODS : RPC_METHODS)],
      [
        1,
        () =>
          r.pick([
            "state.session.get",
            "transaction.begin",
            "rpc.discover",
            "system.listMethods",
            "capabilities",
            "approvals",
          ]),
      ],
      [2, () => this.mutateName(r.pick(real))],
      [2, () => r.pick(PROTOTYPE_NAMES)],
      [1, () => this.oddString(20)],
      [1, () => ""],
      [0.5, () => "m".repeat(r.range(257, 5000))],
      [0.5, () => `${r.pick(real)}${"x".repeat(r.range(300, 3000))}`],
    ]);
  }

  private capabilityName(): string {
    const r = this.rng;
    const caps = this.world.capabilities.map((c) => c.name);
    return r.weighted<string>([
      [10, () => r.pick(caps)],
      [2, () => r.pick(this.world.blocked).name],
      [1, () => this.mutateName(r.pick(caps))],
      [1, () => r.pick(PROTOTYPE_NAMES)],
      [1, () => this.string()],
      [0.3, () => "c".repeat(r.range(257, 3000))],
    ]);
  }

  private schemaValue(
    capability: string,
    prop: string,
    schema: Readonly<Record<string, unknown>>,
  ): unknown {
    const r = this.rng;
    if (r.chance(0.15)) return this.value(1);
    if (Array.isArray(schema.enum) && r.chance(0.8)) return r.pick(schema.enum as unknown[]);
    const type = Array.isArray(schema.type) ? r.pick(schema.type as string[]) : schema.type;
    switch (type) {
      case "string":
        if (["path", "from", "to", "cwd"].includes(prop) && r.chance(0.85))
          return r.pick(capability === "filesystem.copy" ? COPY_PATHS : WORKSPACE_PATHS);
        if (prop === "content")
          return this.rng.chance(0.8) ? this.asciiString(200) : this.oddString(60);
        return this.string();
      case "boolean":
        return r.chance(0.5);
      case "integer": {
        const lo = typeof schema.minimum === "number" ? schema.minimum : -10;
        const hi = typeof schema.maximum === "number" ? Math.min(schema.maximum, lo + 100) : 100;
        return r.chance(0.8) ? r.range(Math.ceil(lo), Math.floor(hi)) : this.number();
      }
      case "number":
        return r.chance(0.8) ? r.next() : this.number();
      case "array":
        return Array.from({ length: r.int(3) }, () =>
          r.chance(0.7) ? this.string() : this.value(2),
        );
      case "object":
        return this.randomObject(2);
      default:
        return this.value(1);
    }
  }

  /** Capability inputs: mostly shaped by the input schema, sometimes anything at all. */
  inputs(name: string): unknown {
    const r = this.rng;
    const cap =
      this.world.capabilities.find((c) => c.name === name) ??
      this.world.blocked.find((c) => c.name === name);
    if (!cap || r.chance(0.12))
      return this.confine(name, r.chance(0.5) ? this.randomObject(1) : this.value(1));
    const o: Record<string, unknown> = {};
    for (const [k, s] of Object.entries(cap.properties))
      if (cap.required.includes(k) ? r.chance(0.93) : r.chance(0.4))
        put(o, k, this.schemaValue(cap.name, k, s));
    if (r.chance(0.08)) put(o, r.pick(KEY_POOL), this.value(2));
    return this.confine(name, o);
  }

  /**
   * Capabilities that add to the workspace name only paths of the pools: a random name per call
   * would grow the workspace through a long run, and every recursive list, search and watch with
   * it, until the campaign measured tree walks rather than the protocol.
   */
  private confine(name: string, inputs: unknown): unknown {
    const creates = ["filesystem.write", "filesystem.mkdir", "filesystem.copy", "filesystem.move"];
    if (!creates.includes(name) || !isPlain(inputs)) return inputs;
    const pool = name === "filesystem.copy" ? COPY_PATHS : WORKSPACE_PATHS;
    for (const k of ["path", "from", "to"]) {
      const v = inputs[k];
      if (typeof v === "string" && !pool.includes(v)) put(inputs, k, this.rng.pick(pool));
    }
    return inputs;
  }

  private approvalId(): unknown {
    const r = this.rng;
    return r.weighted<unknown>([
      [4, () => (this.world.approvalIds.length ? r.pick(this.world.approvalIds) : "apr_none")],
      [2, () => this.string()],
      [1, () => `apr_${this.asciiString(20)}`],
      [1, () => this.value(1)],
    ]);
  }

  /** Params for a method: plausible for real methods, random otherwise, sometimes any JSON type. */
  params(method: string): unknown {
    const r = this.rng;
    if (r.chance(0.08)) return this.value(0);
    if (r.chance(0.04)) return [this.value(1), this.value(1)];
    const extra = (o: Record<string, unknown>): Record<string, unknown> => {
      if (r.chance(0.07)) put(o, r.pick(KEY_POOL), this.value(1));
      return o;
    };
    switch (method) {
      case "capabilities.list":
        return extra(
          r.weighted<Record<string, unknown>>([
            [3, () => ({})],
            [2, () => ({ category: r.pick([...this.world.categories, this.string()]) })],
            [2, () => ({ tag: r.pick([...this.world.tags, this.string()]) })],
            [1, () => ({ category: this.value(1) })],
          ]),
        );
      case "capabilities.describe":
        return extra({ name: r.chance(0.9) ? this.capabilityName() : this.value(1) });
      case "capabilities.invoke":
      case "capabilities.call": {
        const name = r.chance(0.95) ? this.capabilityName() : this.value(1);
        const o: Record<string, unknown> = { name };
        if (r.chance(0.9)) put(o, "inputs", this.inputs(typeof name === "string" ? name : ""));
        if (r.chance(0.05)) put(o, "transaction_id", r.chance(0.7) ? this.string() : this.value(1));
        return extra(o);
      }
      case "approvals.check":
        return extra({ approval_id: this.approvalId() });
      case "approvals.wait":
        return extra({ approval_id: this.approvalId(), timeout_s: 0 });
      case "initialize":
        return extra(
          obj([
            [
              "protocolVersion",
              r.chance(0.8) ? r.pick([...MCP_REVISIONS, "1999-01-01", ""]) : this.value(1),
            ],
            ["capabilities", r.chance(0.8) ? {} : this.value(1)],
            ["clientInfo", { name: this.string(), version: "1" }],
          ]),
        );
      case "tools/list":
        return r.chance(0.7) ? {} : { cursor: this.value(1) };
      case "tools/call":
        return extra(this.toolCallParams());
      case "notifications/cancelled":
        return { requestId: this.validId(), reason: this.string() };
      case "ping":
        return r.chance(0.6) ? {} : this.randomObject(1);
      default:
        return r.chance(0.5) ? {} : this.randomObject(1);
    }
  }

  private toolName(): string {
    const r = this.rng;
    const name = this.capabilityName();
    return r.weighted<string>([
      [6, () => name],
      [3, () => name.replaceAll(".", "_")],
      [2, () => r.pick(["approvals.check", "approvals.wait", "approvals_check", "approvals_wait"])],
    ]);
  }

  private toolCallParams(): Record<string, unknown> {
    const r = this.rng;
    if (r.chance(0.05)) return { arguments: {} };
    const name = r.chance(0.95) ? this.toolName() : this.value(1);
    const o: Record<string, unknown> = { name };
    const canonical = typeof name === "string" ? name.replace(/^([a-z]+)_/, "$1.") : "";
    if (r.chance(0.9))
      put(
        o,
        "arguments",
        r.chance(0.9)
          ? canonical.startsWith("approvals.")
            ? { approval_id: this.approvalId(), timeout_s: 0 }
            : this.inputs(canonical)
          : this.value(1),
      );
    if (r.chance(0.05))
      put(o, "_meta", r.chance(0.5) ? { "kruxos/transaction_id": this.value(1) } : this.value(1));
    return o;
  }

  // -- requests --------------------------------------------------------------------------------

  /** A well-formed request (for a real method, with plausible params). */
  request(): Record<string, unknown> {
    let method = this.method();
    if (this.mode === "mcp-preinit" && method === "initialize") method = "ping";
    const o = obj([
      ["jsonrpc", "2.0"],
      ["id", this.validId()],
      ["method", method],
    ]);
    if (this.rng.chance(0.9)) put(o, "params", this.params(method));
    return o;
  }

  /**
   * A request whose text is patched with raw literals afterwards: never approvals.wait, whose
   * timeout defang() would have to write into the text (and so lose the raw literal).
   */
  private rawRequest(): Record<string, unknown> {
    const msg = this.request();
    if (msg.method === "approvals.wait") put(msg, "method", "approvals.check");
    return msg;
  }

  notification(): Record<string, unknown> {
    const r = this.rng;
    const method =
      this.mode === "rpc"
        ? this.method()
        : r.chance(0.6)
          ? r.pick(MCP_NOTIFICATIONS)
          : this.method();
    const o = obj([
      ["jsonrpc", "2.0"],
      ["method", method === "initialize" ? "notifications/initialized" : method],
    ]);
    if (r.chance(0.8)) put(o, "params", this.params(method));
    return o;
  }

  /** A request with one to three of its fields broken. */
  mutated(): Record<string, unknown> {
    const r = this.rng;
    const base = r.chance(0.8) ? this.request() : this.notification();
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(base)) put(out, k, v);
    const n = r.range(1, 3);
    for (let i = 0; i < n; i++)
      r.weighted<void>([
        [
          3,
          () =>
            put(
              out,
              "jsonrpc",
              r.pick<unknown>([
                "1.0",
                "2",
                2,
                2.0,
                "2.0 ",
                " 2.0",
                "2.00",
                "",
                null,
                true,
                {},
                ["2.0"],
              ]),
            ),
        ],
        [1, () => delete out.jsonrpc],
        [2, () => put(out, "method", this.value(1))],
        [1, () => delete out.method],
        [3, () => put(out, "id", this.id())],
        [1, () => put(out, "id", this.invalidId())],
        [1, () => delete out.id],
        [3, () => put(out, "params", this.value(0))],
        [1, () => put(out, "params", null)],
        [1, () => put(out, r.pick(KEY_POOL), this.value(1))],
        [1, () => put(out, r.pick(["Method", "ID", "JSONRPC", "Params"]), this.value(1))],
        [1, () => put(out, r.pick(["result", "error"]), this.value(1))],
      ]);
    return out;
  }

  /** A JSON-RPC response sent to the server (MCP ignores these; /rpc calls them invalid). */
  private response(): Record<string, unknown> {
    const r = this.rng;
    return r.chance(0.5)
      ? { jsonrpc: "2.0", id: this.validId(), result: this.value(1) }
      : {
          jsonrpc: "2.0",
          id: this.validId(),
          error: { code: r.pick([-32601, -1, 0]), message: this.string() },
        };
  }

  private member(): unknown {
    const r = this.rng;
    return r.weighted<unknown>([
      [5, () => this.request()],
      [4, () => this.mutated()],
      [2, () => this.notification()],
      [1, () => this.response()],
      [1, () => r.pick<unknown>([1, "x", null, true, [], [1], {}, -0.5])],
    ]);
  }

  batch(): unknown[] {
    const r = this.rng;
    const max = this.world.limits.maxBatch;
    const n = r.weighted<number>([
      [10, () => r.range(1, 6)],
      [3, () => r.range(7, max)],
      [0.5, () => max],
      [1, () => r.range(max + 1, max + 20)],
      [0.6, () => 0],
    ]);
    if (r.chance(0.1)) return Array.from({ length: Math.min(n, max) }, () => this.notification());
    return Array.from({ length: n }, () => this.member());
  }

  // -- raw text ------------------------------------------------------------------------------------

  /** A JSON text with placeholders replaced by raw literals JSON.stringify cannot write. */
  private withRaw(value: unknown, raws: readonly string[]): string {
    let text = JSON.stringify(value);
    raws.forEach((raw, i) => (text = text.replace(JSON.stringify(`@@raw${i}@@`), raw)));
    return text;
  }

  private rawNumber(): string {
    const r = this.rng;
    return r.pick([
      "1e400",
      "-1e400",
      "1e-400",
      "-0",
      "-0.0",
      "0e0",
      "1E+2",
      "9007199254740993",
      "123456789012345678901234567890",
      "1".repeat(r.range(300, 1200)),
      "0." + "0".repeat(400) + "1",
      `${r.range(1, 9)}e${r.range(300, 330)}`,
    ]);
  }

  private numbersMessage(): string {
    const r = this.rng;
    const raw = this.rawNumber();
    const msg = this.rawRequest();
    return r.weighted<string>([
      [3, () => this.withRaw({ ...msg, id: "@@raw0@@" }, [raw])],
      [3, () => this.withRaw({ ...msg, params: { a: "@@raw0@@" } }, [raw])],
      [1, () => this.withRaw({ ...msg, params: ["@@raw0@@"] }, [raw])],
      [1, () => raw],
    ]);
  }

  /** Duplicate keys: JSON.parse keeps the last; the generator picks safe methods only. */
  private duplicateKeys(): string {
    const r = this.rng;
    const safe =
      this.mode === "rpc" ? ["capabilities.list", "capabilities.describe"] : ["ping", "tools/list"];
    const pairs: [string, string][] = [
      ["jsonrpc", JSON.stringify("2.0")],
      ["id", JSON.stringify(this.validId())],
      ["method", JSON.stringify(r.pick(safe))],
      ["params", "{}"],
    ];
    const n = r.range(1, 4);
    for (let i = 0; i < n; i++) {
      const k = r.pick(["jsonrpc", "id", "method", "params", "__proto__"]);
      const v =
        k === "id"
          ? JSON.stringify(this.id())
          : k === "method"
            ? JSON.stringify(r.chance(0.7) ? r.pick(safe) : this.string())
            : k === "jsonrpc"
              ? JSON.stringify(r.pick(["2.0", "1.0", 2]))
              : JSON.stringify(this.value(1));
      pairs.splice(r.int(pairs.length + 1), 0, [k, v]);
    }
    return `{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(",")}}`;
  }

  /** Strings full of escapes: \u0000, lone surrogates, astral pairs written as escapes. */
  private escapes(): string {
    const r = this.rng;
    const esc = (): string =>
      Array.from({ length: r.range(1, 12) }, () =>
        r.pick([
          "\\u0000",
          "\\ud800",
          "\\udfff",
          "\\udc00\\ud800",
          "\\ud83d\\ude00",
          "\\u202e",
          "\\ufeff",
          "\\\\",
          '\\"',
          "\\/",
          "\\b\\f\\n\\r\\t",
          "\\u00e9",
          "a",
        ]),
      ).join("");
    const msg = this.rawRequest();
    const where = r.int(4);
    const raws = [`"${esc()}"`];
    if (where === 0) return this.withRaw({ ...msg, id: "@@raw0@@" }, raws);
    if (where === 1) return this.withRaw({ ...msg, method: "@@raw0@@" }, raws);
    if (where === 2) return this.withRaw({ ...msg, params: { name: "@@raw0@@" } }, raws);
    return this.withRaw({ ...msg, params: obj([["@@key@@", 1]]) }, []).replace(
      '"@@key@@"',
      raws[0] ?? '""',
    );
  }

  /** Nesting near and past the depth limit, in params or as the whole message. */
  private deep(): string {
    const r = this.rng;
    const max = this.world.limits.maxDepth;
    const depth = r.pick([max - 2, max - 1, max, max + 1, max + 2, 2 * max, r.range(max, 600)]);
    if (r.chance(0.2)) return "[".repeat(depth) + "]".repeat(depth);
    const msg = this.rawRequest();
    if (r.chance(0.1))
      // Brackets inside a string do not nest.
      return this.withRaw({ ...msg, params: { name: "@@raw0@@" } }, [
        JSON.stringify("[{".repeat(depth)),
      ]);
    // The envelope is one level; params holds the rest.
    const k = Math.max(1, depth - 1);
    const inner = r.chance(0.5)
      ? "[".repeat(k) + "1" + "]".repeat(k)
      : '{"a":'.repeat(k) + "1" + "}".repeat(k);
    return this.withRaw({ ...msg, params: "@@raw0@@" }, [inner]);
  }

  /** Text that is not one JSON value. */
  private notJson(): string {
    const r = this.rng;
    const valid = JSON.stringify(this.request());
    return r.weighted<string>([
      [3, () => valid.slice(0, r.int(valid.length))],
      [2, () => this.asciiString(60)],
      [1, () => this.oddString(30)],
      [1, () => ""],
      [1, () => " \n\t "],
      [1, () => `\ufeff${valid}`],
      [1, () => `${valid}${r.pick(["x", "}", ",", " {}", "\u0000"])}`],
      [1, () => valid.replace(/"/g, "'")],
      [1, () => valid.replace(/}$/, ",}")],
      [1, () => `// hi\n${valid}`],
      [1, () => r.pick(["NaN", "Infinity", "-Infinity", "undefined", "0x10", "01", ".5", "+1"])],
      [1, () => `{"jsonrpc":"2.0","id":1,"method":"${r.pick(RPC_METHODS)}","params":{"a":NaN}}`],
      [1, () => `[${valid},]`],
      [1, () => `{"a" 1}`],
      [1, () => '"\\x41"'],
      [1, () => '"\\ud800'],
    ]);
  }

  /** A JSON value that is not an object or array. */
  private scalar(): string {
    return JSON.stringify(this.rng.pick<unknown>([1, -1, 0, "x", "", null, true, false, 1.5]));
  }

  /** One message as it goes on the wire, and what kind of message it is. */
  message(): GeneratedMessage {
    const r = this.rng;
    return r.weighted<GeneratedMessage>([
      [26, () => ({ kind: "request", text: JSON.stringify(this.request()) })],
      [24, () => ({ kind: "mutated", text: JSON.stringify(this.mutated()) })],
      [7, () => ({ kind: "notification", text: JSON.stringify(this.notification()) })],
      [12, () => ({ kind: "batch", text: JSON.stringify(this.batch()) })],
      [3, () => ({ kind: "response", text: JSON.stringify(this.response()) })],
      [10, () => ({ kind: "not-json", text: this.notJson() })],
      [2, () => ({ kind: "scalar", text: this.scalar() })],
      [5, () => ({ kind: "duplicate-keys", text: this.duplicateKeys() })],
      [5, () => ({ kind: "escapes", text: this.escapes() })],
      [3, () => ({ kind: "numbers", text: this.numbersMessage() })],
      [3, () => ({ kind: "depth", text: this.deep() })],
    ]);
  }
}

/**
 * Keep the run fast and free of waits: an approvals.wait without a timeout waits 30 s, a watch up to
 * 60 s. Applied to every parsed message before it is sent (the text is written again).
 */
export function defang(text: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return text;
  }
  let changed = false;
  const fix = (m: unknown): void => {
    if (typeof m !== "object" || m === null || Array.isArray(m)) return;
    const r = m as Record<string, unknown>;
    const p = r.params;
    if (typeof p !== "object" || p === null || Array.isArray(p)) return;
    const params = p as Record<string, unknown>;
    const short = (o: Record<string, unknown>, key: string, max: number): void => {
      const t = o[key];
      if (!Object.hasOwn(o, key) || (typeof t === "number" && t > max)) {
        put(o, key, max === 0 ? 0 : Math.min(max, 0.1));
        changed = true;
      }
    };
    if (r.method === "approvals.wait") short(params, "timeout_s", 0);
    const capName = (v: unknown): string =>
      typeof v === "string" ? v.replace(/^([a-z]+)_/, "$1.") : "";
    const inputsOf = (key: string): Record<string, unknown> | undefined => {
      const v = params[key];
      return typeof v === "object" && v !== null && !Array.isArray(v)
        ? (v as Record<string, unknown>)
        : undefined;
    };
    if (r.method === "capabilities.invoke" || r.method === "capabilities.call") {
      const inputs = inputsOf("inputs");
      if (
        inputs &&
        capName(params.name) === "filesystem.watch" &&
        Object.hasOwn(inputs, "timeout_s")
      )
        short(inputs, "timeout_s", 0.1);
    }
    if (r.method === "tools/call") {
      const args = inputsOf("arguments");
      const name = capName(params.name);
      if (args && name === "approvals.wait") short(args, "timeout_s", 0);
      if (args && name === "filesystem.watch" && Object.hasOwn(args, "timeout_s"))
        short(args, "timeout_s", 0.1);
    }
  };
  if (Array.isArray(parsed)) parsed.forEach(fix);
  else fix(parsed);
  return changed ? JSON.stringify(parsed) : text;
}

// ---------------------------------------------------------------------------------------------
// the oracle: what JSON-RPC 2.0 (and the MCP lifecycle) require in reply

/** Every error code the appliance may send (SPEC §4); -32603 is allowed on the wire but never for junk. */
export const CLIENT_FAULT_CODES: readonly number[] = [
  -32700, -32600, -32601, -32602, -32000, -32001, -32002, -32003, -32004, -32005, -32006, -32007,
];
export const INTERNAL_ERROR = -32603;

/** Verdicts of the call pipeline on /rpc (docs/errors.md). */
const PIPELINE_CODES = [-32602, -32001, -32002, -32003, -32004, -32005, -32006, -32007];

export interface MemberExpectation {
  /** The reply's id as canonical JSON ("null" for an unusable or missing id). */
  readonly id: string;
  /** An error code the spec fixes for this member. */
  readonly code?: number;
  /** Or: the error codes that may come back. */
  readonly codes?: readonly number[];
  readonly result: "never" | "may" | "must";
  /** For checking the shape of a result. */
  readonly method?: string;
  /** The member as sent (for reports). */
  readonly request?: unknown;
}

export type Expectation =
  | { readonly kind: "none" }
  | { readonly kind: "single"; readonly member: MemberExpectation; readonly whole: boolean }
  | { readonly kind: "batch"; readonly members: readonly MemberExpectation[] };

const canonId = (id: unknown): string => JSON.stringify(id);

export function isValidId(id: unknown): boolean {
  return (
    id === null ||
    (typeof id === "string" && id.length <= 256) ||
    (typeof id === "number" && Number.isFinite(id))
  );
}

/** Nesting depth of a parsed JSON value (the envelope counts as one). */
export function depthOf(v: unknown): number {
  if (typeof v !== "object" || v === null) return 0;
  let d = 0;
  for (const x of Array.isArray(v) ? v : Object.values(v)) d = Math.max(d, depthOf(x));
  return d + 1;
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A JSON-RPC response object sent by the client: MCP ignores these. */
function isClientResponse(m: unknown): boolean {
  return (
    isPlain(m) &&
    !Object.hasOwn(m, "method") &&
    (Object.hasOwn(m, "result") || Object.hasOwn(m, "error"))
  );
}

const whole = (codes: readonly number[]): Expectation => ({
  kind: "single",
  whole: true,
  member: { id: "null", codes, result: "never" },
});

function memberExpectation(m: unknown, mode: Mode): MemberExpectation | undefined {
  if (!isPlain(m)) return { id: "null", code: -32600, result: "never", request: m };
  const hasId = Object.hasOwn(m, "id");
  const validId = hasId && isValidId(m.id);
  const id = validId ? canonId(m.id) : "null";
  const params = m.params;
  if (
    m.jsonrpc !== "2.0" ||
    typeof m.method !== "string" ||
    (hasId && !validId) ||
    (Object.hasOwn(m, "params") && (typeof params !== "object" || params === null))
  )
    return { id, code: -32600, result: "never", request: m };
  if (!hasId) return undefined; // a notification: no reply, even on error
  const method = m.method;
  const base = { id, method, request: m };
  if (mode === "rpc") {
    if (!(RPC_METHODS as readonly string[]).includes(method))
      return { ...base, code: -32601, result: "never" };
    return { ...base, codes: PIPELINE_CODES, result: "may" };
  }
  if (method === "ping") return { ...base, result: "must" };
  if (mode === "mcp-new" && method === "initialize")
    return { ...base, codes: [-32602], result: "may" };
  if (mode === "mcp-preinit" || mode === "mcp-new")
    return { ...base, code: -32600, result: "never" };
  switch (method) {
    case "initialize":
      return { ...base, code: -32600, result: "never" };
    case "tools/list":
      return { ...base, result: "must" };
    case "tools/call":
      return { ...base, codes: [-32602], result: "may" };
    default:
      return { ...base, code: -32601, result: "never" };
  }
}

/** What must come back for one message (text as sent) on a transport in a mode. */
export function expectationFor(text: string, mode: Mode, limits: Limits): Expectation {
  if (Buffer.byteLength(text, "utf8") > limits.maxMessageBytes) return whole([-32600]);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Depth is scanned before parsing, so deep junk may be either.
    return whole([-32700, -32600]);
  }
  if (depthOf(parsed) > limits.maxDepth) return whole([-32600]);
  if (mode !== "rpc") {
    if (Array.isArray(parsed)) {
      const kept = parsed.filter((x) => !isClientResponse(x));
      if (parsed.length > 0 && kept.length === 0) return { kind: "none" };
      parsed = kept;
    } else if (isClientResponse(parsed)) return { kind: "none" };
  }
  if (Array.isArray(parsed)) {
    if (parsed.length === 0 || parsed.length > limits.maxBatch) return whole([-32600]);
    const members = parsed
      .map((x) => memberExpectation(x, mode))
      .filter((x): x is MemberExpectation => x !== undefined);
    return members.length === 0 ? { kind: "none" } : { kind: "batch", members };
  }
  const one = memberExpectation(parsed, mode);
  return one === undefined ? { kind: "none" } : { kind: "single", whole: false, member: one };
}

/** A key that tells pipelined replies apart: what frame comes back and with which ids. */
export function signature(e: Expectation): string {
  if (e.kind === "none") return "none";
  if (e.kind === "single") return `s:${e.member.id}`;
  return `b:${e.members
    .map((m) => m.id)
    .sort()
    .join("\u0001")}`;
}

/** The signature of a reply frame (parsed), to find the message it answers. */
export function replySignature(reply: unknown): string {
  const idOf = (r: unknown): string =>
    isPlain(r) && Object.hasOwn(r, "id") ? canonId(r.id) : "<no id>";
  if (Array.isArray(reply)) return `b:${reply.map(idOf).sort().join("\u0001")}`;
  return `s:${idOf(reply)}`;
}

// ---------------------------------------------------------------------------------------------
// the conformance checker

export interface InternalErrorSeen {
  readonly message: string;
  readonly ref: unknown;
  readonly request: unknown;
}

export interface CheckResult {
  readonly problems: string[];
  readonly internal: InternalErrorSeen[];
  /** Error codes seen, and 0 for each result (for figures). */
  readonly codes: number[];
}

/**
 * Replies to a request under this size must stay under REPLY_BOUND (no echo of unbounded input),
 * except the data a capability returns.
 */
export const SMALL_REQUEST = 4 * 1024;
export const REPLY_BOUND = 64 * 1024;
/** An error object is bounded whatever was sent: message ≤ 512, echoes ≤ 256, ≤ 20 listed errors. */
export const ERROR_BOUND = 32 * 1024;

function checkRecovery(where: string, recovery: unknown, problems: string[]): void {
  if (!Array.isArray(recovery) || recovery.length === 0) {
    problems.push(`${where}: recovery is not a non-empty array`);
    return;
  }
  for (const x of recovery)
    if (
      !isPlain(x) ||
      typeof x.action !== "string" ||
      x.action === "" ||
      typeof x.description !== "string" ||
      x.description === ""
    )
      problems.push(
        `${where}: a recovery entry is not {action, description}: ${JSON.stringify(x)}`,
      );
}

/** An error object, on its own: code, message, data.type, data.recovery, bounded size. */
export function checkErrorObject(
  where: string,
  error: unknown,
  problems: string[],
): number | undefined {
  if (!isPlain(error)) {
    problems.push(`${where}: error is not an object`);
    return undefined;
  }
  const code = error.code;
  if (typeof code !== "number" || !Number.isInteger(code)) {
    problems.push(`${where}: error.code is not an integer`);
    return undefined;
  }
  if (code !== INTERNAL_ERROR && !CLIENT_FAULT_CODES.includes(code))
    problems.push(`${where}: error.code ${code} is not a code of SPEC §4`);
  if (typeof error.message !== "string") problems.push(`${where}: error.message is not a string`);
  const data = error.data;
  if (!isPlain(data)) problems.push(`${where}: error.data is not an object`);
  else {
    if (typeof data.type !== "string" || data.type === "")
      problems.push(`${where}: error.data.type is not a string`);
    checkRecovery(`${where}: error.data`, data.recovery, problems);
  }
  const size = JSON.stringify(error).length;
  if (size > ERROR_BOUND) problems.push(`${where}: error object of ${size} characters`);
  return code;
}

function checkResultShape(
  e: MemberExpectation,
  mode: Mode,
  result: unknown,
  problems: string[],
): void {
  const bad = (why: string): void => {
    problems.push(`${e.method} result ${why}: ${JSON.stringify(result).slice(0, 300)}`);
  };
  if (mode === "rpc") {
    if (!isPlain(result)) return bad("is not an object");
    if (e.method === "capabilities.list" && !Array.isArray(result.capabilities))
      bad("has no capabilities array");
    if (
      (e.method === "capabilities.invoke" || e.method === "capabilities.call") &&
      (result.success !== true ||
        typeof result.duration_ms !== "number" ||
        typeof result.audit_seq !== "number")
    )
      bad("is not {success: true, data, duration_ms, audit_seq}");
    if (
      (e.method === "approvals.check" || e.method === "approvals.wait") &&
      (typeof result.approval_id !== "string" || typeof result.status !== "string")
    )
      bad("has no approval_id and status");
    return;
  }
  if (!isPlain(result)) return bad("is not an object");
  if (e.method === "tools/list" && !Array.isArray(result.tools)) bad("has no tools array");
  if (e.method === "tools/call") {
    if (!Array.isArray(result.content) || typeof result.isError !== "boolean")
      return bad("is not {content: [...], isError}");
    if (!isPlain(result.structuredContent)) return bad("has no structuredContent object");
    if (result.isError) {
      const sc = result.structuredContent;
      if (typeof sc.type !== "string" || sc.type === "") bad("(isError) has no structured type");
      checkRecovery("tools/call isError structuredContent", sc.recovery, problems);
    }
  }
}

function checkMember(
  reply: unknown,
  e: MemberExpectation,
  mode: Mode,
  requestBytes: number,
  out: CheckResult,
): void {
  const problems = out.problems;
  const where = `reply id ${e.id.slice(0, 80)}`;
  if (!isPlain(reply)) {
    problems.push(`${where}: a response is not an object`);
    return;
  }
  for (const k of Object.keys(reply))
    if (!["jsonrpc", "id", "result", "error"].includes(k))
      problems.push(`${where}: unexpected member "${k}"`);
  if (reply.jsonrpc !== "2.0") problems.push(`${where}: jsonrpc is not "2.0"`);
  if (!Object.hasOwn(reply, "id")) problems.push(`${where}: no id`);
  else if (canonId(reply.id) !== e.id)
    problems.push(`${where}: id ${canonId(reply.id).slice(0, 80)} is not the request's`);
  const hasResult = Object.hasOwn(reply, "result");
  const hasError = Object.hasOwn(reply, "error");
  if (hasResult === hasError) {
    problems.push(`${where}: not exactly one of result and error`);
    return;
  }
  // A capability's data is as large as what it reads (filesystem.list of a workspace the run
  // filled), not an echo of the request; every other reply, and every error, is bounded.
  const carriesData =
    hasResult &&
    (e.method === "capabilities.invoke" ||
      e.method === "capabilities.call" ||
      e.method === "tools/call");
  const size = JSON.stringify(reply).length;
  if (requestBytes < SMALL_REQUEST && size > REPLY_BOUND && !carriesData)
    problems.push(`${where}: ${size} characters in reply to a ${requestBytes}-byte request`);
  if (hasError) {
    const code = checkErrorObject(where, reply.error, problems);
    if (code === undefined) return;
    out.codes.push(code);
    if (code === INTERNAL_ERROR) {
      const err = reply.error as { message?: unknown; data?: { ref?: unknown } };
      out.internal.push({ message: String(err.message), ref: err.data?.ref, request: e.request });
      return;
    }
    if (e.result === "must") problems.push(`${where}: error ${code} where a result is due`);
    else if (e.code !== undefined && code !== e.code)
      problems.push(`${where}: error ${code} where JSON-RPC gives ${e.code}`);
    else if (e.codes !== undefined && !e.codes.includes(code))
      problems.push(`${where}: error ${code}, not one of ${e.codes.join(" ")}`);
    return;
  }
  out.codes.push(0);
  if (e.result === "never") {
    problems.push(
      `${where}: a result where JSON-RPC requires error ${e.code ?? e.codes?.join("|")}`,
    );
    return;
  }
  checkResultShape(e, mode, reply.result, problems);
}

/** Check one reply frame (text as received) against what the message that caused it requires. */
export function checkReply(
  replyText: string | undefined,
  e: Expectation,
  mode: Mode,
  requestBytes: number,
): CheckResult {
  const out: CheckResult = { problems: [], internal: [], codes: [] };
  if (e.kind === "none") {
    if (replyText !== undefined)
      out.problems.push("a reply where none is due (notification or response)");
    return out;
  }
  if (replyText === undefined) {
    out.problems.push("no reply");
    return out;
  }
  let reply: unknown;
  try {
    reply = JSON.parse(replyText);
  } catch {
    out.problems.push("the reply is not JSON");
    return out;
  }
  if (e.kind === "single") {
    if (Array.isArray(reply)) out.problems.push("an array in reply to a single message");
    else checkMember(reply, e.member, mode, requestBytes, out);
    return out;
  }
  if (!Array.isArray(reply)) {
    out.problems.push("a single object in reply to a batch");
    return out;
  }
  if (reply.length !== e.members.length)
    out.problems.push(`${reply.length} responses for ${e.members.length} requests in the batch`);
  // Order within a batch is free: pair replies with expectations by id.
  const pending = [...e.members];
  for (const r of reply) {
    const id = isPlain(r) && Object.hasOwn(r, "id") ? canonId(r.id) : "<no id>";
    const candidates = pending.filter((m) => m.id === id);
    if (candidates.length === 0) {
      out.problems.push(`a batch response with id ${id.slice(0, 80)} answers no request`);
      continue;
    }
    // Several members may share an id (null); take the first this reply satisfies.
    let chosen = candidates[0] as MemberExpectation;
    for (const c of candidates) {
      const trial: CheckResult = { problems: [], internal: [], codes: [] };
      checkMember(r, c, mode, requestBytes, trial);
      if (trial.problems.length === 0) {
        chosen = c;
        break;
      }
    }
    pending.splice(pending.indexOf(chosen), 1);
    checkMember(r, chosen, mode, requestBytes, out);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Streamable HTTP: mutated requests and what each must get

export interface HttpCase {
  readonly kind: string;
  readonly method: "POST" | "GET" | "DELETE" | "PUT" | "PATCH" | "OPTIONS" | "HEAD";
  /** Which of the run's sessions to name in Mcp-Session-Id; "none" for no header; a string as is. */
  readonly session: number | "none" | { readonly raw: string };
  readonly headers: Readonly<Record<string, string>>;
  /** Drop the Authorization header / send a wrong one. */
  readonly auth: "ok" | "missing" | "wrong";
  readonly body?: Buffer;
  /** The status the transport must answer, when the mutation fixes it. */
  readonly status?: readonly number[];
  /** For a well-formed POST: what JSON-RPC requires in the body. */
  readonly json?: Expectation;
  /** The body carries initialize: a new session may be created. */
  readonly initializes?: boolean;
  readonly text?: string;
}

export class HttpFuzzer {
  private readonly messages: MessageFuzzer;

  constructor(
    private readonly rng: Rng,
    private readonly world: FuzzWorld,
    private readonly sessions: number,
  ) {
    this.messages = new MessageFuzzer(rng, world, "mcp");
  }

  private session(): number {
    return this.rng.int(this.sessions);
  }

  /** A JSON-RPC body for a live session, with what it must get back. */
  private post(): HttpCase {
    const r = this.rng;
    const g = this.messages.message();
    const text = defang(g.text);
    const accept = r.pick([
      "application/json, text/event-stream",
      "application/json",
      "text/event-stream, application/json;q=0.5",
      "*/*",
      "application/*",
      "text/event-stream",
    ]);
    let initializes = false;
    try {
      const p = JSON.parse(text) as unknown;
      initializes = (Array.isArray(p) ? p : [p]).some(
        (x) => isPlain(x) && x.method === "initialize",
      );
    } catch {
      // not JSON: initializes nothing
    }
    return {
      kind: `post:${g.kind}`,
      method: "POST",
      session: this.session(),
      headers: {
        "content-type": r.pick(["application/json", "application/json; charset=utf-8"]),
        accept,
      },
      auth: "ok",
      body: Buffer.from(text, "utf8"),
      text,
      initializes,
      json: expectationFor(text, "mcp", this.world.limits),
    };
  }

  private validBody(): Buffer {
    return Buffer.from(
      JSON.stringify({ jsonrpc: "2.0", id: this.rng.int(1e6), method: "tools/list" }),
      "utf8",
    );
  }

  /** One request: mostly a fuzzed body on a good envelope, else a broken envelope. */
  next(): HttpCase {
    const r = this.rng;
    const json = {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
    };
    return r.weighted<HttpCase>([
      [60, () => this.post()],
      [
        4,
        () => ({
          kind: "wrong-content-type",
          method: "POST",
          session: this.session(),
          headers: {
            ...json,
            "content-type": r.pick([
              "text/plain",
              "application/jsonx",
              "application/x-www-form-urlencoded",
              "multipart/form-data; boundary=x",
              "text/json",
              "application/json-seq",
            ]),
          },
          auth: "ok",
          body: this.validBody(),
          status: [415],
        }),
      ],
      [
        1,
        () => ({
          kind: "no-content-type",
          method: "POST",
          session: this.session(),
          headers: { accept: json.accept },
          auth: "ok",
          body: this.validBody(),
          status: [415],
        }),
      ],
      [
        4,
        () => ({
          kind: "wrong-accept",
          method: "POST",
          session: this.session(),
          headers: {
            ...json,
            accept: r.pick([
              "text/html",
              "application/xml",
              "application/json;q=0",
              "image/*",
              "text/plain",
            ]),
          },
          auth: "ok",
          body: this.validBody(),
          status: [406],
        }),
      ],
      [
        3,
        () => ({
          kind: "missing-session",
          method: "POST",
          session: "none",
          headers: json,
          auth: "ok",
          body: this.validBody(),
          status: [400],
        }),
      ],
      [
        4,
        () => ({
          kind: "unknown-session",
          method: r.pick(["POST", "DELETE"] as const),
          session: {
            raw: r.pick([
              "x",
              "0".repeat(43),
              "A".repeat(r.range(1, 1000)),
              "%00",
              "..%2f..%2f",
              "s\u0009t",
            ]),
          },
          headers: json,
          auth: "ok",
          body: this.validBody(),
          status: [404],
        }),
      ],
      [
        4,
        () => ({
          kind: "bad-protocol-version",
          method: "POST",
          session: this.session(),
          headers: {
            ...json,
            "mcp-protocol-version": r.pick([
              "1999-01-01",
              "2025-13-45",
              "",
              "latest",
              "2026-07-28x",
            ]),
          },
          auth: "ok",
          body: this.validBody(),
          status: [400],
        }),
      ],
      [
        4,
        () => {
          const text = r.pick([
            "{",
            "not json",
            "[]",
            '{"jsonrpc":"2.0","id":1,"method":"tools/list"',
            "[".repeat(this.world.limits.maxDepth + 1) + "]".repeat(this.world.limits.maxDepth + 1),
          ]);
          return {
            kind: "malformed-body",
            method: "POST",
            session: this.session(),
            headers: json,
            auth: "ok",
            body: Buffer.from(text, "utf8"),
            status: [400],
          };
        },
      ],
      [
        1,
        () => ({
          kind: "invalid-utf8-body",
          method: "POST",
          session: this.session(),
          headers: json,
          auth: "ok",
          body: Buffer.from([0x7b, 0xff, 0xfe, 0xc0, 0xaf, 0x7d]),
          status: [400],
        }),
      ],
      [
        1,
        () => ({
          kind: "empty-body",
          method: "POST",
          session: this.session(),
          headers: json,
          auth: "ok",
          body: Buffer.alloc(0),
          status: [400],
        }),
      ],
      [
        0.15,
        () => ({
          kind: "oversized-body",
          method: "POST",
          session: this.session(),
          headers: json,
          auth: "ok",
          body: Buffer.concat([
            Buffer.from('{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"'),
            Buffer.alloc(this.world.limits.maxMessageBytes + 1, 0x61),
            Buffer.from('"}}'),
          ]),
          status: [413],
        }),
      ],
      [
        3,
        () => ({
          kind: "origin-mismatch",
          method: r.pick(["POST", "GET", "DELETE"] as const),
          session: this.session(),
          headers: {
            ...json,
            origin: r.pick([
              "http://evil.example",
              "null",
              "http://127.0.0.1:1",
              "not a url",
              "file://",
            ]),
          },
          auth: "ok",
          body: this.validBody(),
          status: [403],
        }),
      ],
      [
        1,
        () => ({
          kind: "no-token",
          method: "POST",
          session: this.session(),
          headers: json,
          auth: r.pick(["missing", "wrong"] as const),
          body: this.validBody(),
          // After ten failures a minute from one source, further failures get 429.
          status: [401, 429],
        }),
      ],
      [
        2,
        () => ({
          kind: "get",
          method: "GET",
          session: r.chance(0.5) ? this.session() : "none",
          headers: { accept: "text/event-stream" },
          auth: "ok",
          status: [405],
        }),
      ],
      [
        2,
        () => ({
          kind: "other-method",
          method: r.pick(["PUT", "PATCH", "OPTIONS"] as const),
          session: this.session(),
          headers: json,
          auth: "ok",
          body: this.validBody(),
          status: [405],
        }),
      ],
      [
        1,
        () => ({
          kind: "delete-without-session",
          method: "DELETE",
          session: "none",
          headers: {},
          auth: "ok",
          status: [400],
        }),
      ],
      [
        2,
        () => ({
          kind: "batched-initialize",
          method: "POST",
          session: "none",
          headers: json,
          auth: "ok",
          body: Buffer.from(
            JSON.stringify([
              {
                jsonrpc: "2.0",
                id: 1,
                method: "initialize",
                params: {
                  protocolVersion: "2025-06-18",
                  capabilities: {},
                  clientInfo: { name: "f", version: "1" },
                },
              },
              { jsonrpc: "2.0", id: 2, method: "tools/list" },
            ]),
          ),
          status: [400],
        }),
      ],
    ]);
  }
}

/** The JSON-RPC message in an SSE response: exactly one `event: message`. */
export function sseMessage(body: string): { data?: string; problem?: string } {
  const events = body.split(/\n\n/).filter((e) => /^event: message$/m.test(e));
  if (events.length !== 1) return { problem: `${events.length} message events in the SSE stream` };
  const data = (events[0] ?? "")
    .split("\n")
    .filter((l) => l.startsWith("data: "))
    .map((l) => l.slice(6))
    .join("\n");
  return { data };
}
