// A resolved secret must not come back out in any form a reader could decode: not as itself, not
// base64'd (alone or inside a longer credential such as HTTP Basic), not percent-, hex- or
// JSON-encoded, and not when a stream splits it across chunks. The expected forms below are built
// with the platform's own encoders, independently of the module under test.
import assert from "node:assert/strict";
import { once } from "node:events";
import { test } from "node:test";
import util from "node:util";
import { Redactor, createLogger, redactLogValues } from "../../src/core/index.js";

const V = 's3cr3t pa$$/wörd+ä!~"(x)?>';
const MARK = "[REDACTED:PASSWORD]";
const redactor = new Redactor([{ name: "PASSWORD", value: V }]);

function formsOf(value: string): Record<string, string> {
  const b = Buffer.from(value);
  const b64 = b.toString("base64");
  const uri = encodeURIComponent(value);
  return {
    raw: value,
    base64: b64,
    base64NoPadding: b64.replace(/=+$/, ""),
    base64url: b.toString("base64url"),
    percent: uri,
    percentLowerHex: uri.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
    percentPlusForSpace: uri.replace(/%20/g, "+"),
    formUrlencoded: new URLSearchParams({ v: value }).toString().slice(2),
    hex: b.toString("hex"),
    hexUpper: b.toString("hex").toUpperCase(),
    json: JSON.stringify(value).slice(1, -1),
  };
}

/** Runs `chunks` through a fresh stream() and returns everything it emitted. */
async function streamed(r: Redactor, chunks: readonly Buffer[]): Promise<Buffer> {
  const t = r.stream();
  const out: Buffer[] = [];
  t.on("data", (c: Buffer) => out.push(c));
  for (const c of chunks) t.write(c);
  t.end();
  await once(t, "end");
  return Buffer.concat(out);
}

/** `b` cut at the given offsets. */
function cut(b: Buffer, ...at: number[]): Buffer[] {
  const edges = [0, ...at, b.length];
  return edges.slice(1).map((end, i) => b.subarray(edges[i], end));
}

/** Deterministic pseudo-random numbers (mulberry32), so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBuffer(rand: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/**
 * The obvious slow implementation: at every position try each form, longest first; on a match
 * write the marker and jump past it.
 */
function reference(data: Buffer, forms: readonly { bytes: Buffer; name: string }[]): Buffer {
  const sorted = [...forms].sort((a, b) => b.bytes.length - a.bytes.length);
  const parts: Buffer[] = [];
  let plain = 0;
  for (let i = 0; i < data.length;) {
    const hit = sorted.find(
      (f) => data[i] === f.bytes[0] && data.subarray(i, i + f.bytes.length).equals(f.bytes),
    );
    if (hit === undefined) {
      i++;
      continue;
    }
    parts.push(data.subarray(plain, i), Buffer.from(`[REDACTED:${hit.name}]`));
    i += hit.bytes.length;
    plain = i;
  }
  parts.push(data.subarray(plain));
  return Buffer.concat(parts);
}

test("the test's forms of the value are all different, so each one is tested on its own", () => {
  const forms = Object.values(formsOf(V));
  assert.equal(new Set(forms).size, forms.length);
  assert.ok(formsOf(V).base64!.endsWith("=="));
});

test("every form of a value is redacted in text, bytes and stream", async () => {
  for (const [kind, form] of Object.entries(formsOf(V))) {
    const input = `before ${form} after`;
    const expected = `before ${MARK} after`;
    assert.equal(redactor.text(input), expected, `text: ${kind}`);
    assert.equal(redactor.bytes(Buffer.from(input)).toString(), expected, `bytes: ${kind}`);
    const b = Buffer.from(input);
    const out = await streamed(redactor, cut(b, 3, 12, b.length - 4));
    assert.equal(out.toString(), expected, `stream: ${kind}`);
    assert.equal(redactor.hits(input), true, `hits: ${kind}`);
    assert.equal(redactor.hits(Buffer.from(input)), true, `hits (bytes): ${kind}`);
  }
});

test("JSON with non-ASCII escaped as \\uXXXX is redacted too", () => {
  const ascii = JSON.stringify(V)
    .slice(1, -1)
    .replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  assert.equal(redactor.text(`{"p":"${ascii}"}`), `{"p":"${MARK}"}`);
});

test("a value inside a longer base64 or base64url text is hidden at every byte alignment", async () => {
  const value = Buffer.from(V);
  const n = value.length;
  for (let p = 0; p <= 7; p++) {
    for (let s = 0; s <= 4; s++) {
      const plain = Buffer.concat([
        Buffer.from("ABCDEFG".slice(0, p)),
        value,
        Buffer.alloc(s, 0x5a),
      ]);
      for (const alphabet of ["base64", "base64url"] as const) {
        const enc = plain.toString(alphabet);
        // Characters made only of prefix (or suffix) bits may stay; every character that depends
        // on the value's bits alone must go, and nothing that depends only on the prefix or suffix
        // may change.
        const keptHead = enc.slice(0, Math.floor((8 * p) / 6));
        // (With no suffix the padding belongs to the value's own base64 and may go with it.)
        const keptTail = s === 0 ? "" : enc.slice(Math.ceil((8 * (p + n)) / 6));
        const mayStay = Math.ceil((8 * p) / 6) + (enc.length - Math.floor((8 * (p + n)) / 6));
        const where = `${alphabet}, prefix ${p}, suffix ${s}`;
        for (const out of [
          redactor.text(enc),
          redactor.bytes(Buffer.from(enc)).toString(),
          (await streamed(redactor, cut(Buffer.from(enc), 5, 17))).toString(),
        ]) {
          assert.ok(out.includes(MARK), where);
          assert.ok(out.replace(MARK, "").length <= mayStay, `${where}: ${out}`);
          assert.ok(out.startsWith(keptHead), where);
          assert.ok(out.endsWith(keptTail), where);
        }
      }
    }
  }
});

test("an HTTP Basic credential carrying the value does not show its encoding", () => {
  for (const user of ["user", "u", "ab", "abc", "admin", "x-service", "someone@example.com"]) {
    const header = `Authorization: Basic ${Buffer.from(`${user}:${V}`).toString("base64")}`;
    const out = redactor.text(header);
    assert.ok(out.startsWith("Authorization: Basic "), user);
    assert.ok(out.includes(MARK), `${user}: ${out}`);
    // What is left of the credential is at most the user's characters plus one straddling the
    // boundary and the final padding group.
    const left = out.slice("Authorization: Basic ".length).replace(MARK, "");
    assert.ok(left.length <= Math.ceil(((user.length + 1) * 8) / 6) + 4, `${user}: ${out}`);
    assert.equal(redactor.bytes(Buffer.from(header)).toString(), out);
  }
});

test("a value split at every position across two and three chunks is redacted by stream()", async () => {
  const forms = formsOf(V);
  for (const form of [forms.raw, forms.base64, forms.json]) {
    const data = Buffer.from(`<<${form}>>`);
    const expected = `<<${MARK}>>`;
    for (let i = 1; i < data.length; i++) {
      assert.equal((await streamed(redactor, cut(data, i))).toString(), expected, `cut ${i}`);
      for (let j = i + 1; j < data.length; j++) {
        const out = (await streamed(redactor, cut(data, i, j))).toString();
        assert.equal(out, expected, `cuts ${i}, ${j}`);
      }
    }
    const bytewise = [...data].map((x) => Buffer.from([x]));
    assert.equal((await streamed(redactor, bytewise)).toString(), expected, "1-byte chunks");
  }
});

test("stream() holds back less than the longest form and passes the rest on at once", async () => {
  const longest = Math.max(...Object.values(formsOf(V)).map((f) => Buffer.byteLength(f)));
  const t = redactor.stream();
  const out: Buffer[] = [];
  t.on("data", (c: Buffer) => out.push(c));
  t.write(Buffer.alloc(10_000, 0x2e));
  await new Promise((resolve) => setImmediate(resolve));
  const emitted = out.reduce((n, c) => n + c.length, 0);
  assert.ok(emitted >= 10_000 - (longest - 1), `emitted ${emitted}`);
  t.end();
  await once(t, "end");
  assert.equal(Buffer.concat(out).length, 10_000);
});

test("1 MiB of random bytes with values inserted at random places: all redacted, nothing else changed", async () => {
  const rand = prng(0x5eed);
  const secrets = [
    { name: "TOKEN", value: "ghp_" + randomBuffer(rand, 24).toString("base64url") },
    { name: "BINARY", value: randomBuffer(rand, 32) }, // not valid UTF-8
    { name: "PASSWORD", value: V },
  ];
  const r = new Redactor(secrets);
  const inserted = secrets.flatMap((s) => {
    const b = Buffer.from(s.value);
    return [b, Buffer.from(b.toString("base64")), Buffer.from(b.toString("hex"))].map((bytes) => ({
      bytes,
      name: s.name,
    }));
  });
  const parts: Buffer[] = [];
  let size = 0;
  while (size < 1 << 20) {
    const gap = randomBuffer(rand, Math.floor(rand() * 12_000));
    const form = inserted[Math.floor(rand() * inserted.length)]!.bytes;
    parts.push(gap, form);
    size += gap.length + form.length;
  }
  const data = Buffer.concat(parts);
  const expected = reference(data, inserted);
  assert.ok(expected.length < data.length, "something was redacted");
  assert.ok(r.bytes(data).equals(expected), "bytes()");
  const cuts: number[] = [];
  for (let at = 0; at < data.length; at += 1 + Math.floor(rand() * 5000)) cuts.push(at);
  assert.ok((await streamed(r, cut(data, ...cuts.slice(1)))).equals(expected), "stream()");
  // And the same over text: printable characters around the string forms.
  const textParts: string[] = [];
  while (textParts.join("").length < 1 << 18) {
    let gap = "";
    for (let k = Math.floor(rand() * 3000); k > 0; k--)
      gap += String.fromCharCode(32 + rand() * 95);
    const s = secrets[Math.floor(rand() * secrets.length)]!;
    const b = Buffer.from(s.value);
    textParts.push(gap, rand() < 0.5 ? b.toString("hex") : b.toString("base64"));
  }
  const text = textParts.join("");
  const textExpected = reference(Buffer.from(text, "latin1"), inserted).toString("latin1");
  assert.equal(r.text(text), textExpected, "text()");
});

test("nothing else changes, and bytes() returns the very Buffer it got when nothing matched", () => {
  const b = randomBuffer(prng(7), 100_000);
  assert.equal(redactor.bytes(b), b);
  const s = "nothing to see here ".repeat(1000);
  assert.equal(redactor.text(s), s);
  assert.equal(redactor.hits(s), false);
  assert.equal(redactor.hits(b), false);
  // A result is the caller's to change: writing into it must not change the next one.
  redactor.bytes(Buffer.from(V)).fill(0x21);
  assert.equal(redactor.bytes(Buffer.from(V)).toString(), MARK);
});

test("value() redacts nested strings, keys, arrays and bytes, and returns the same reference when nothing matched", () => {
  const clean = {
    a: [1, "two", { three: null, four: true }],
    b: { c: "d" },
    buf: Buffer.from("x"),
  };
  assert.equal(redactor.value(clean), clean);
  assert.equal(redactor.value("plain"), "plain");
  assert.equal(redactor.value(42), 42);
  assert.equal(redactor.value(null), null);

  const b64 = Buffer.from(V).toString("base64");
  const input = {
    ok: { untouched: [1, 2, 3] },
    list: ["fine", `Bearer ${V}`, { deep: [{ deeper: `x${b64}y` }] }],
    [V]: "key holds the value",
    bytes: Buffer.from(`<${V}>`),
    view: new Uint8Array(Buffer.from(`(${V})`)),
    n: 3.5,
    nil: null,
  };
  const snapshot = util.inspect(input, { depth: Infinity });
  const out = redactor.value(input);
  assert.notEqual(out, input);
  assert.equal(util.inspect(input, { depth: Infinity }), snapshot, "the input is not changed");
  assert.deepEqual(out.list, ["fine", `Bearer ${MARK}`, { deep: [{ deeper: `x${MARK}y` }] }]);
  assert.equal((out as Record<string, unknown>)[MARK], "key holds the value");
  assert.equal(Object.keys(out).includes(V), false);
  assert.equal(out.bytes.toString(), `<${MARK}>`);
  assert.ok(Buffer.isBuffer(out.bytes));
  assert.ok(out.view instanceof Uint8Array);
  assert.equal(Buffer.from(out.view).toString(), `(${MARK})`);
  assert.equal(out.ok, input.ok, "an unchanged subtree is shared, not copied");
  assert.equal(out.n, 3.5);
  assert.equal(out.nil, null);
  assert.equal(redactor.hits(JSON.stringify(out)), false);
});

test("value() redacts an Error's message and stack, and survives cycles", () => {
  const err = new Error(`login failed for ${V}`);
  const out = redactor.value({ err });
  assert.ok(out.err instanceof Error);
  assert.equal(out.err.message, `login failed for ${MARK}`);
  assert.equal(redactor.hits(out.err.stack ?? ""), false);

  const loop: Record<string, unknown> = { secret: V };
  loop.self = loop;
  const copy = redactor.value(loop);
  assert.equal(copy.secret, MARK);
  assert.equal(copy.self, copy);
  assert.equal(util.inspect(copy, { depth: 5 }).includes(V), false);
  const cleanLoop: Record<string, unknown> = { a: 1 };
  cleanLoop.self = cleanLoop;
  assert.equal(redactor.value(cleanLoop), cleanLoop);
});

test("when one value is a substring of another, the longer match wins", () => {
  const long = "tok_ABCDEFGH12345678_live";
  const inner = "ABCDEFGH12345678";
  const prefix = "tok_ABCDEFGH";
  const orders = [
    [
      { name: "LONG", value: long },
      { name: "INNER", value: inner },
      { name: "PREFIX", value: prefix },
    ],
    [
      { name: "PREFIX", value: prefix },
      { name: "INNER", value: inner },
      { name: "LONG", value: long },
    ],
  ];
  for (const r of orders.map((secrets) => new Redactor(secrets))) {
    assert.equal(r.text(`a ${long} b`), "a [REDACTED:LONG] b");
    assert.equal(r.text(`a ${inner} b`), "a [REDACTED:INNER] b");
    assert.equal(r.text(`a ${prefix} b`), "a [REDACTED:PREFIX] b");
    assert.equal(r.text(`${inner}${long}`), "[REDACTED:INNER][REDACTED:LONG]");
    assert.equal(r.bytes(Buffer.from(`-${long}-`)).toString(), "-[REDACTED:LONG]-");
    const hex = Buffer.from(long).toString("hex");
    assert.equal(r.bytes(Buffer.from(hex)).toString(), "[REDACTED:LONG]");
    const b64 = Buffer.from(long).toString("base64");
    assert.equal(r.text(b64), "[REDACTED:LONG]");
  }
});

test("overlapping values of two secrets are both hidden, in text, bytes and every stream split", async () => {
  const r = new Redactor([
    { name: "A", value: "abcdefgh1234" },
    { name: "B", value: "1234WXYZqrst" },
  ]);
  const input = "<abcdefgh1234WXYZqrst>";
  const expected = "<[REDACTED:A][REDACTED:B]>";
  assert.equal(r.text(input), expected);
  assert.equal(r.bytes(Buffer.from(input)).toString(), expected);
  const data = Buffer.from(input);
  for (let i = 1; i < data.length; i++) {
    for (let j = i + 1; j < data.length; j++) {
      assert.equal((await streamed(r, cut(data, i, j))).toString(), expected, `cuts ${i}, ${j}`);
    }
  }
  // A value that overlaps itself is hidden whole.
  const same = new Redactor([{ name: "R", value: "abab" }]);
  assert.equal(same.text("xabababx"), "x[REDACTED:R]x");
});

test("a stream split inside overlapping encoded values gives what bytes() gives", async () => {
  // Overlapping hex forms are longer together than any one form, so a split can fall where one
  // has been passed on and the next is not complete yet.
  const two = new Redactor([
    { name: "A", value: "abcdefgh1234" },
    { name: "B", value: "1234WXYZqrst" },
  ]);
  const self = new Redactor([{ name: "R", value: "xyzxyzxyzxyz" }]);
  const cases: [Redactor, string, string][] = [
    [two, "abcdefgh1234WXYZqrst", "<[REDACTED:A][REDACTED:B]>"],
    [self, "xyz".repeat(5), "<[REDACTED:R]>"],
    [self, "xyz".repeat(7), "<[REDACTED:R]>"],
  ];
  for (const [r, plain, expected] of cases) {
    for (const data of [
      Buffer.from(`<${plain}>`),
      Buffer.from(`<${Buffer.from(plain).toString("hex")}>`),
    ]) {
      assert.equal(r.bytes(data).toString(), expected);
      for (let i = 1; i < data.length; i++) {
        assert.equal((await streamed(r, cut(data, i))).toString(), expected, `cut ${i}`);
        for (let j = i + 1; j < data.length; j++) {
          const out = (await streamed(r, cut(data, i, j))).toString();
          assert.equal(out, expected, `${data.toString()} cut at ${i}, ${j}`);
        }
      }
    }
  }
});

test("on inputs dense with overlapping values, no covered form survives and any chunking gives what bytes() gives", async () => {
  const rand = prng(42);
  const pick = (n: number): string => {
    let s = "";
    for (let i = 0; i < n; i++) s += "ab12"[Math.floor(rand() * 4)];
    return s;
  };
  for (let round = 0; round < 200; round++) {
    const secrets = ["X", "Y", "Z"].map((name) => ({
      name,
      value: pick(4 + Math.floor(rand() * 6)),
    }));
    const r = new Redactor(secrets);
    const pieces: string[] = [];
    while (pieces.join("").length < 300) {
      const s = secrets[Math.floor(rand() * secrets.length)]!.value;
      const b = Buffer.from(s);
      pieces.push(pick(Math.floor(rand() * 4)));
      pieces.push([s, b.toString("hex"), b.toString("base64")][Math.floor(rand() * 3)]!);
    }
    const data = Buffer.from(pieces.join(""));
    const whole = r.bytes(data);
    assert.equal(r.hits(whole), false, `round ${round}: ${whole.toString()}`);
    assert.equal(
      r.text(data.toString()),
      whole.toString(),
      `round ${round}: text() and bytes() agree`,
    );
    const cuts: number[] = [];
    for (
      let at = 1 + Math.floor(rand() * 20);
      at < data.length;
      at += 1 + Math.floor(rand() * 20)
    ) {
      cuts.push(at);
    }
    assert.ok((await streamed(r, cut(data, ...cuts))).equals(whole), `round ${round}: stream()`);
  }
});

test("values shorter than 4 bytes are covered as themselves and their direct encodings", () => {
  const r = new Redactor([{ name: "PIN", value: "k9!" }]);
  assert.equal(r.text("pin=k9!"), "pin=[REDACTED:PIN]");
  assert.equal(r.text("hex 6b3921"), "hex [REDACTED:PIN]");
  assert.equal(r.text("b64 azkh"), "b64 [REDACTED:PIN]");
  assert.equal(r.text("url k9%21"), "url [REDACTED:PIN]");
  // A number containing a numeric value is redacted in value().
  const digits = new Redactor([{ name: "CODE", value: "482913" }]);
  assert.deepEqual(digits.value({ code: 482913, other: 7 }), { code: "[REDACTED:CODE]", other: 7 });
});

test("EMPTY redacts nothing, and with() covers both sets", async () => {
  const e = Redactor.EMPTY;
  assert.equal(e.empty, true);
  assert.deepEqual(e.names, []);
  const b = Buffer.from(V);
  assert.equal(e.bytes(b), b);
  assert.equal(e.text(V), V);
  const o = { v: V };
  assert.equal(e.value(o), o);
  assert.equal(e.hits(V), false);
  assert.ok((await streamed(e, [b])).equals(b));
  assert.equal(new Redactor([{ name: "NOTHING", value: "" }]).empty, true);

  const a = new Redactor([{ name: "A", value: "alpha-secret-1" }]);
  const c = new Redactor([{ name: "C", value: Buffer.from("charlie-secret-2") }]);
  const both = a.with(c);
  assert.equal(both.empty, false);
  assert.deepEqual([...both.names], ["A", "C"]);
  assert.equal(both.text("alpha-secret-1 charlie-secret-2"), "[REDACTED:A] [REDACTED:C]");
  assert.equal(a.text("charlie-secret-2"), "charlie-secret-2", "with() leaves its operands alone");
  assert.equal(e.with(a).text("alpha-secret-1"), "[REDACTED:A]");
  assert.equal(a.with(e).text("alpha-secret-1"), "[REDACTED:A]");
});

test("a Redactor shows only names in JSON.stringify and util.inspect, never a value", () => {
  const r = new Redactor([
    { name: "PASSWORD", value: V },
    { name: "KEY", value: Buffer.from("binary-key-material") },
  ]);
  const shown = [
    JSON.stringify(r),
    JSON.stringify({ r }),
    util.inspect(r),
    util.inspect(r, { showHidden: true, depth: Infinity, getters: true }),
    util.format("%o %O %j", r, r, r),
    String(r),
  ].join("\n");
  assert.ok(shown.includes("PASSWORD") && shown.includes("KEY"));
  for (const leak of [V, "binary-key-material", Buffer.from(V).toString("base64")]) {
    assert.equal(shown.includes(leak), false);
  }
  assert.deepEqual(JSON.parse(JSON.stringify(r)), { names: ["PASSWORD", "KEY"] });
});

test("log lines are redacted by content once a process has a vault: nested fields, messages, encodings", () => {
  const lines: string[] = [];
  const log = createLogger({
    program: "t",
    destination: { write: (l: string) => void lines.push(l) },
  });
  const value = "log-canary-4f1e9a7c2d";
  redactLogValues(() => new Redactor([{ name: "k", value }]));
  try {
    log
      .child({ call: "c" })
      .info(
        { detail: { echoed: `Bearer ${value}`, b64: Buffer.from(value).toString("base64") } },
        `upstream said ${value}`,
      );
  } finally {
    redactLogValues(undefined);
  }
  log.info({ after: value }, "no vault any more");
  assert.equal(lines.length, 2);
  assert.equal(lines[0]?.includes(value), false, String(lines[0]));
  assert.equal(lines[0]?.includes(Buffer.from(value).toString("base64")), false, String(lines[0]));
  assert.match(lines[0] ?? "", /\[REDACTED:k\]/);
  assert.ok(lines[1]?.includes(value), "the hook is off once unset");
});
