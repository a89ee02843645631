// Redaction of resolved secret values. Whatever leaves the appliance after a secret was resolved
// into a request (call results, log lines, audit records, event payloads, bytes streaming back from
// an upstream server) passes through a Redactor, which replaces every covered form of every value
// by `[REDACTED:NAME]`. Pure: no I/O, no logging, and no value ever appears in an error, in
// JSON.stringify or in util.inspect output.
//
// Forms covered for a value v (its UTF-8 bytes):
//   - v itself;
//   - base64 with and without `=` padding, base64url without padding;
//   - v inside a longer base64 / base64url text at byte offset 0, 1 or 2 (mod 3) — e.g. an HTTP
//     Basic credential `base64("user:" + v)`: only the characters that depend on v's bytes alone,
//     and only when there are at least 8 of them (fewer would match random text);
//   - percent-encoding (encodeURIComponent, the same with lower-case hex, `+` for space, and the
//     WHATWG application/x-www-form-urlencoded serialisation) where it differs from v;
//   - hex, lower and upper case;
//   - the JSON string escape (JSON.stringify without the quotes, and with non-ASCII as \uXXXX)
//     where it differs from v.
// A value shorter than 4 bytes is covered only by itself and its direct (unshifted) forms; such
// short values also redact innocent text that happens to contain them, which is the price of not
// leaking them. Empty values cover nothing and are ignored. A Buffer value that is not valid UTF-8
// has no string or JSON form, so text() covers only its ASCII encodings.
//
// Matching: text() matches on the string, bytes() and stream() on bytes. Matches are taken left to
// right, the longest first where several start at the same place. A match that overlaps the one
// before it and runs past its end extends the redaction (its name is added when it differs), so no
// part of any covered form survives; output is not scanned again.
//
// Cost: three secrets have some thirty forms, and an indexOf pass per form would cost 3-8 ms per
// MiB. So forms of 8 or more characters are found together in one Wu–Manber pass (a skip table over
// 3-character blocks lets it look at about one position in every (shortest form − 2) of input
// without hits: well under a millisecond per MiB), and only the shorter forms of short values get
// an indexOf pass each. A value that overlaps itself (like "abababab") can match at every byte of a
// hostile input; that stays linear, at a fraction of a microsecond per match.
import { Transform, type TransformCallback } from "node:stream";
import { inspect, type InspectOptions } from "node:util";

export interface RedactableSecret {
  readonly name: string;
  readonly value: Buffer | string;
}

/** Shortest value that gets the alignment-shifted base64 forms. */
const MIN_SHIFTED_VALUE_BYTES = 4;
/** Shortest alignment-shifted base64 form worth matching. */
const MIN_SHIFTED_FORM_CHARS = 8;

/** One form of one secret: what to look for and which marker replaces it. */
interface Form<T> {
  readonly needle: T;
  readonly marker: number;
}

/** A plan: flat triples [start, end, marker] (marker −1: drop the bytes, no new marker). */
type Plan = number[];

interface Compiled {
  readonly names: readonly string[];
  readonly markers: readonly string[];
  readonly markerBytes: readonly Buffer[];
  /** Sorted longest first. */
  readonly textForms: readonly Form<string>[];
  readonly byteForms: readonly Form<Buffer>[];
  /** Some text form could occur inside a number's decimal string. */
  readonly numeric: boolean;
}

export class Redactor {
  readonly #secrets: readonly Secret[];
  readonly #c: Compiled;
  // Built on first use: a redactor made per call may never see text, or never bytes.
  #text: Searcher<string> | undefined;
  #bytes: Searcher<Buffer> | undefined;

  static readonly EMPTY: Redactor = new Redactor([]);

  constructor(secrets: readonly RedactableSecret[]) {
    const own: Secret[] = [];
    for (const s of secrets) {
      if (typeof s.name !== "string") {
        throw new TypeError("Redactor: a secret name must be a string");
      }
      if (typeof s.value === "string") {
        if (s.value.length > 0)
          own.push({ name: s.name, value: Buffer.from(s.value), str: s.value });
      } else if (Buffer.isBuffer(s.value)) {
        if (s.value.length === 0) continue;
        const value = Buffer.from(s.value); // our own copy
        const decoded = value.toString("utf8");
        own.push({ name: s.name, value, str: Buffer.from(decoded).equals(value) ? decoded : null });
      } else {
        throw new TypeError(
          `Redactor: the value of secret ${s.name} is neither a string nor a Buffer`,
        );
      }
    }
    this.#secrets = own;
    this.#c = compile(own);
  }

  /** True when there is nothing to redact. */
  get empty(): boolean {
    return this.#c.byteForms.length === 0;
  }

  /** Names of the secrets covered. */
  get names(): readonly string[] {
    return this.#c.names;
  }

  /** A redactor covering both sets. */
  with(other: Redactor): Redactor {
    if (other.empty) return this;
    if (this.empty) return other;
    const again = (s: Secret): RedactableSecret => ({ name: s.name, value: s.str ?? s.value });
    return new Redactor([...this.#secrets.map(again), ...other.#secrets.map(again)]);
  }

  text(s: string): string {
    if (this.#c.textForms.length === 0 || s.length === 0) return s;
    const search = this.#textSearcher();
    const { plan } = chain(search, search.find(s, 0, Infinity, false), 0, -1);
    if (plan.length === 0) return s;
    let out = "";
    let at = 0;
    for (let k = 0; k < plan.length; k += 3) {
      out += s.slice(at, plan[k]);
      const m = plan[k + 2]!;
      if (m >= 0) out += this.#c.markers[m]!;
      at = plan[k + 1]!;
    }
    return out + s.slice(at);
  }

  bytes(b: Buffer): Buffer {
    if (this.#c.byteForms.length === 0 || b.length === 0) return b;
    const search = this.#byteSearcher();
    const { plan } = chain(search, search.find(b, 0, Infinity, false), 0, -1);
    if (plan.length === 0) return b;
    return render(b, plan, 0, b.length, this.#c.markerBytes);
  }

  /**
   * Deep copy of a JSON-like value (objects, arrays, strings, numbers, booleans, null) with every
   * string and every object key redacted; non-plain objects (Buffer, Uint8Array) redacted as bytes.
   * Returns the same reference when nothing changed, and likewise for every unchanged sub-value
   * (a changed result shares its unchanged subtrees with the input). Beyond JSON: a number whose
   * decimal form contains a covered form becomes the redacted string; an object with toJSON (Date,
   * URL) is replaced by its redacted toJSON() result when that changed; an Error or other class
   * instance is copied onto the same prototype with its own properties redacted; cycles are kept.
   */
  value<T>(v: T): T {
    if (this.empty) return v;
    const walk = new Walk(this, this.#c.numeric, null);
    const out = walk.any(v);
    if (out === v || !walk.sawCycle) return out as T;
    // A changed graph with a cycle: copy every object so no back-edge reaches an unredacted one.
    return new Walk(this, this.#c.numeric, new Map()).any(v) as T;
  }

  /** True when `s` (string or Buffer) contains any covered form. */
  hits(s: string | Buffer): boolean {
    if (typeof s === "string") {
      return (
        this.#c.textForms.length > 0 && this.#textSearcher().find(s, 0, Infinity, true).length > 0
      );
    }
    return (
      this.#c.byteForms.length > 0 && this.#byteSearcher().find(s, 0, Infinity, true).length > 0
    );
  }

  /**
   * A Transform (node:stream) redacting a byte stream: holds back at most (longest form − 1) bytes
   * between chunks so a value split across chunk boundaries is still caught; flushes the rest at
   * end. Its output is what bytes() makes of the whole stream.
   */
  stream(): Transform {
    if (this.#c.byteForms.length === 0) {
      return new Transform({
        transform: (chunk: Buffer, _enc, cb: TransformCallback) => cb(null, chunk),
      });
    }
    const search = this.#byteSearcher();
    const markers = this.#c.markerBytes;
    const keep = search.longest - 1;
    // held: bytes not yet emitted (at most `keep`). ctx: up to `keep` bytes emitted just before
    // them, so a form that starts inside an emitted redaction and ends in held is still seen and
    // extends that redaction. open: the marker the output so far ends inside of (−1: plain bytes).
    let held = Buffer.alloc(0);
    let ctx = Buffer.alloc(0);
    let open = -1;
    const step = (buf: Buffer, final: boolean): Buffer => {
      const from = ctx.length;
      // Every form starting before `cut` lies wholly in buf, so all before it can be decided.
      const cut = final ? buf.length : Math.max(from, buf.length - keep);
      const found = search.find(buf, 0, cut, false);
      const { plan, regionEnd, last } = chain(search, found, from, open);
      const end = Math.max(cut, regionEnd);
      open = regionEnd === end ? last : -1;
      const out = render(buf, plan, from, end, markers);
      held = Buffer.from(buf.subarray(end));
      ctx = Buffer.from(buf.subarray(Math.max(0, end - keep), end));
      return out;
    };
    return new Transform({
      transform(chunk: Buffer, _enc, cb: TransformCallback) {
        const buf = ctx.length + held.length === 0 ? chunk : Buffer.concat([ctx, held, chunk]);
        const out = step(buf, false);
        cb(null, out.length > 0 ? out : undefined);
      },
      flush(cb: TransformCallback) {
        const out = step(Buffer.concat([ctx, held]), true);
        cb(null, out.length > 0 ? out : undefined);
      },
    });
  }

  /** Only the names: a Redactor never shows a value. */
  toJSON(): { names: readonly string[] } {
    return { names: this.names };
  }

  [inspect.custom](_depth: number, options: InspectOptions): string {
    return `Redactor ${inspect({ names: this.names }, options)}`;
  }

  #textSearcher(): Searcher<string> {
    return (this.#text ??= new Searcher(this.#c.textForms));
  }

  #byteSearcher(): Searcher<Buffer> {
    return (this.#bytes ??= new Searcher(this.#c.byteForms));
  }
}

interface Sweep {
  readonly plan: Plan;
  /** Where the last redaction ends (or the starting `regionEnd`). */
  readonly regionEnd: number;
  /** The marker the last redaction ends with (or the starting `open`). */
  readonly last: number;
}

/**
 * Turns matches into redactions: in start order, the longest first at one start; overlapping
 * matches chain into one redaction. Starts as if a redaction with marker `open` (−1: none) ended
 * at `regionEnd`, so matches ending there or before change nothing.
 */
function chain(
  search: Searcher<string | Buffer>,
  found: number[],
  regionEnd: number,
  open: number,
): Sweep {
  const plan: Plan = [];
  let last = open;
  if (found.length === 0) return { plan, regionEnd, last };
  const { count, lens, markers } = search;
  // (start, form) as start * count + form: numeric order is start order, then longest first. The
  // scan finds them in that order; only the indexOf passes for short forms add others.
  let sorted = true;
  for (let k = 1; k < found.length && sorted; k++) sorted = found[k - 1]! <= found[k]!;
  const order = sorted ? found : Float64Array.from(found).sort();
  for (const code of order) {
    const form = code % count;
    const at = (code - form) / count;
    const end = at + lens[form]!;
    const marker = markers[form]!;
    if (at >= regionEnd) {
      plan.push(at, end, marker);
      regionEnd = end;
      last = marker;
    } else if (end > regionEnd) {
      // Overlaps the redaction before it and runs past it: extend it, adding the name if new.
      if (marker !== last) plan.push(regionEnd, end, marker);
      else if (plan.length > 0) plan[plan.length - 2] = end;
      else plan.push(regionEnd, end, -1); // continues a marker already written (stream)
      regionEnd = end;
      last = marker;
    }
  }
  return { plan, regionEnd, last };
}

function render(
  b: Buffer,
  plan: Plan,
  from: number,
  to: number,
  markers: readonly Buffer[],
): Buffer {
  if (plan.length === 0) return b.subarray(from, to);
  const parts: Buffer[] = [];
  let at = from;
  for (let k = 0; k < plan.length; k += 3) {
    if (plan[k]! > at) parts.push(b.subarray(at, plan[k]));
    const m = plan[k + 2]!;
    if (m >= 0) parts.push(markers[m]!);
    at = plan[k + 1]!;
  }
  if (to > at) parts.push(b.subarray(at, to));
  return Buffer.concat(parts); // a copy even of one part: markers are shared
}

// --- search ------------------------------------------------------------------------------------

/** Forms shorter than this get an indexOf pass each; the rest share one Wu–Manber pass. */
const MIN_SCANNED = 8;
/** Characters per hashed block. */
const BLOCK = 3;
const HASH_MASK = (1 << 14) - 1;
/** The window the skip table looks at; its shifts must fit a byte. */
const MAX_WINDOW = 255;

function blockHash(a: number, b: number, c: number): number {
  return ((a * 2531) ^ (b * 59) ^ c) & HASH_MASK;
}

/**
 * Finds every occurrence (overlapping ones too) of a set of forms. Wu–Manber: the window is the
 * first `m` characters of every scanned form (m: the shortest); the skip table says, for the hash
 * of the window's last block, how far the window may move before that block could line up with a
 * form; blocks that end a window of some form (skip 0) have the forms to check in `buckets`.
 */
class Searcher<T extends string | Buffer> {
  readonly count: number;
  readonly lens: readonly number[];
  readonly markers: readonly number[];
  readonly longest: number;
  readonly #needles: readonly T[];
  readonly #short: readonly number[];
  readonly #m: number;
  readonly #skip: Uint8Array;
  readonly #buckets = new Map<number, number[]>();

  constructor(forms: readonly Form<T>[]) {
    this.count = forms.length;
    this.#needles = forms.map((f) => f.needle);
    this.lens = forms.map((f) => f.needle.length);
    this.markers = forms.map((f) => f.marker);
    this.longest = Math.max(0, ...this.lens);
    const scanned: number[] = [];
    const short: number[] = [];
    this.lens.forEach((len, i) => (len >= MIN_SCANNED ? scanned : short).push(i));
    this.#short = short;
    this.#m = scanned.length === 0 ? 0 : Math.min(MAX_WINDOW, ...scanned.map((i) => this.lens[i]!));
    const m = this.#m;
    this.#skip = new Uint8Array(scanned.length === 0 ? 0 : HASH_MASK + 1).fill(m - BLOCK + 1);
    for (const i of scanned) {
      const n = this.#needles[i]!;
      const code = (j: number): number => (typeof n === "string" ? n.charCodeAt(j) : n[j]!);
      for (let j = BLOCK - 1; j < m; j++) {
        const h = blockHash(code(j - 2), code(j - 1), code(j));
        const skip = m - 1 - j;
        if (skip < this.#skip[h]!) this.#skip[h] = skip;
        if (skip === 0) {
          const bucket = this.#buckets.get(h);
          if (bucket === undefined) this.#buckets.set(h, [i]);
          else if (!bucket.includes(i)) bucket.push(i);
        }
      }
    }
  }

  /**
   * Occurrences starting at `from` or later and before `limit`, each as start * count + form, in
   * no particular order; with `first`, stops at the first one.
   */
  find(hay: T, from: number, limit: number, first: boolean): number[] {
    const found: number[] = [];
    const count = this.count;
    for (const f of this.#short) {
      const needle = this.#needles[f]!;
      // indexOf is overloaded per haystack type; both take the needle type that goes with them.
      const indexOf = (at: number): number =>
        typeof hay === "string"
          ? hay.indexOf(needle as string, at)
          : hay.indexOf(needle as Buffer, at);
      for (let p = indexOf(from); p >= 0 && p < limit; p = indexOf(p + 1)) {
        found.push(p * count + f);
        if (first) return found;
      }
    }
    if (this.#m === 0) return found;
    if (typeof hay === "string") this.#scanText(hay, from, limit, first, found);
    else this.#scanBytes(hay as Buffer, from, limit, first, found);
    return found;
  }

  // The two scans differ only in how they read a character; one loop each keeps them monomorphic.
  #scanBytes(b: Buffer, from: number, limit: number, first: boolean, found: number[]): void {
    const m = this.#m;
    const skip = this.#skip;
    const n = b.length;
    const end = Math.min(n, limit + m - 1); // window ends below this: its start is below limit
    for (let i = from + m - 1; i < end;) {
      const h = blockHash(b[i - 2]!, b[i - 1]!, b[i]!);
      const s = skip[h]!;
      if (s !== 0) {
        i += s;
        continue;
      }
      const p = i - m + 1;
      const bucket = this.#buckets.get(h)!; // skip 0: some form's window ends in this block
      for (let k = 0; k < bucket.length; k++) {
        const f = bucket[k]!;
        if (p + this.lens[f]! <= n && startsWith(b, this.#needles[f] as Buffer, p)) {
          found.push(p * this.count + f);
          if (first) return;
        }
      }
      i++;
    }
  }

  #scanText(t: string, from: number, limit: number, first: boolean, found: number[]): void {
    const m = this.#m;
    const skip = this.#skip;
    const n = t.length;
    const end = Math.min(n, limit + m - 1);
    for (let i = from + m - 1; i < end;) {
      const h = blockHash(t.charCodeAt(i - 2), t.charCodeAt(i - 1), t.charCodeAt(i));
      const s = skip[h]!;
      if (s !== 0) {
        i += s;
        continue;
      }
      const p = i - m + 1;
      const bucket = this.#buckets.get(h)!;
      for (let k = 0; k < bucket.length; k++) {
        const f = bucket[k]!;
        if (t.startsWith(this.#needles[f] as string, p)) {
          found.push(p * this.count + f);
          if (first) return;
        }
      }
      i++;
    }
  }
}

/** `b` holds `needle` at `p` (a loop: cheaper than a native call for the few candidates). */
function startsWith(b: Buffer, needle: Buffer, p: number): boolean {
  for (let k = 0; k < needle.length; k++) if (b[p + k] !== needle[k]) return false;
  return true;
}

// --- forms -------------------------------------------------------------------------------------

interface Secret {
  readonly name: string;
  readonly value: Buffer;
  /** The value as a string: as given, or its UTF-8 decoding when that round-trips; else null. */
  readonly str: string | null;
}

function compile(secrets: readonly Secret[]): Compiled {
  const names: string[] = [];
  const textSeen = new Set<string>();
  const byteSeen = new Set<string>();
  const textForms: Form<string>[] = [];
  const byteForms: Form<Buffer>[] = [];
  for (const s of secrets) {
    // One marker per name, so a chain of two values of one name is written once.
    let marker = names.indexOf(s.name);
    if (marker < 0) marker = names.push(s.name) - 1;
    for (const f of formsOf(s.value, s.str)) {
      // The first secret to claim a form keeps it.
      if (f.text !== null && !textSeen.has(f.text)) {
        textSeen.add(f.text);
        textForms.push({ needle: f.text, marker });
      }
      const key = f.bytes.toString("latin1");
      if (!byteSeen.has(key)) {
        byteSeen.add(key);
        byteForms.push({ needle: f.bytes, marker });
      }
    }
  }
  // Longest first, so a tie at one start goes to the longest form (the sort is stable).
  textForms.sort((a, b) => b.needle.length - a.needle.length);
  byteForms.sort((a, b) => b.needle.length - a.needle.length);
  // A marker that would itself contain a covered form (a name holding a value) is left bare.
  const markers = names.map((name) => {
    const m = `[REDACTED:${name}]`;
    const mb = Buffer.from(m);
    const leaks =
      textForms.some((f) => m.includes(f.needle)) || byteForms.some((f) => mb.includes(f.needle));
    return leaks ? "[REDACTED]" : m;
  });
  return {
    names: Object.freeze(names),
    markers,
    markerBytes: markers.map((m) => Buffer.from(m)),
    textForms,
    byteForms,
    numeric: textForms.some((f) => /^[-+.0-9eE]+$/.test(f.needle)),
  };
}

interface RawForm {
  readonly text: string | null;
  readonly bytes: Buffer;
}

function formsOf(v: Buffer, str: string | null): RawForm[] {
  const out: RawForm[] = [{ text: str, bytes: v }];
  const ascii = (t: string): void => {
    out.push({ text: t, bytes: Buffer.from(t, "latin1") });
  };
  const b64 = v.toString("base64");
  ascii(b64);
  ascii(b64.replace(/=+$/, ""));
  ascii(v.toString("base64url"));
  if (v.length >= MIN_SHIFTED_VALUE_BYTES) {
    for (let k = 0; k < 3; k++) {
      const padded = Buffer.concat([Buffer.alloc(k), v]);
      // Character i covers bits [6i, 6i + 6); keep those inside v's bits [8k, 8(k + n)).
      const from = Math.ceil((8 * k) / 6);
      const to = Math.floor((8 * (k + v.length)) / 6);
      if (to - from < MIN_SHIFTED_FORM_CHARS) continue;
      ascii(padded.toString("base64").slice(from, to));
      ascii(padded.toString("base64url").slice(from, to));
    }
  }
  ascii(percent(v, URI_KEEP, HEX_UPPER, false));
  ascii(percent(v, URI_KEEP, HEX_LOWER, false));
  ascii(percent(v, URI_KEEP, HEX_UPPER, true));
  ascii(percent(v, FORM_KEEP, HEX_UPPER, true));
  ascii(v.toString("hex"));
  ascii(v.toString("hex").toUpperCase());
  if (str !== null) {
    const json = JSON.stringify(str).slice(1, -1);
    out.push({ text: json, bytes: Buffer.from(json, "utf8") });
    ascii(
      json.replace(
        /[\u0080-\uffff]/g,
        (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`,
      ),
    );
  }
  return out;
}

const HEX_UPPER = "0123456789ABCDEF";
const HEX_LOWER = "0123456789abcdef";

function byteSet(chars: string): Uint8Array {
  const t = new Uint8Array(256);
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  return t;
}
const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/** What encodeURIComponent leaves alone. */
const URI_KEEP = byteSet(`${ALNUM}-_.!~*'()`);
/** What the WHATWG application/x-www-form-urlencoded serializer leaves alone. */
const FORM_KEEP = byteSet(`${ALNUM}*-._`);

function percent(v: Buffer, keep: Uint8Array, hex: string, plusForSpace: boolean): string {
  let s = "";
  for (const byte of v) {
    if (keep[byte] === 1) s += String.fromCharCode(byte);
    else if (byte === 0x20 && plusForSpace) s += "+";
    else s += `%${hex[byte >> 4]!}${hex[byte & 15]!}`;
  }
  return s;
}

// --- value() -----------------------------------------------------------------------------------

/**
 * One walk over a value. With `memo`, every array, plain object and Error is copied and back-edges
 * lead to the copies (used when a changed graph has a cycle).
 */
class Walk {
  sawCycle = false;
  readonly #r: Redactor;
  readonly #numeric: boolean;
  readonly #memo: Map<object, unknown> | null;
  readonly #active = new Set<object>();

  constructor(r: Redactor, numeric: boolean, memo: Map<object, unknown> | null) {
    this.#r = r;
    this.#numeric = numeric;
    this.#memo = memo;
  }

  any(v: unknown): unknown {
    switch (typeof v) {
      case "string":
        return this.#r.text(v);
      case "number":
      case "bigint": {
        if (!this.#numeric) return v;
        const s = String(v);
        return this.#r.hits(s) ? this.#r.text(s) : v;
      }
      case "object":
        return v === null ? v : this.#object(v);
      default:
        return v;
    }
  }

  #object(o: object): unknown {
    if (o instanceof Uint8Array) {
      const view = Buffer.isBuffer(o) ? o : Buffer.from(o.buffer, o.byteOffset, o.byteLength);
      const out = this.#r.bytes(view);
      if (out === view) return o;
      return Buffer.isBuffer(o) ? out : new Uint8Array(out);
    }
    if (this.#memo?.has(o) === true) return this.#memo.get(o);
    if (this.#active.has(o)) {
      this.sawCycle = true;
      return o;
    }
    this.#active.add(o);
    try {
      if (Array.isArray(o)) return this.#array(o);
      const proto: unknown = Object.getPrototypeOf(o);
      if (proto === Object.prototype || proto === null) {
        return this.#props(o, Object.keys(o), proto, true);
      }
      // An Error's message, stack and cause are own but not enumerable.
      if (o instanceof Error) return this.#props(o, Object.getOwnPropertyNames(o), proto, true);
      const toJSON: unknown = (o as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === "function") {
        const j: unknown = toJSON.call(o);
        const r = this.any(j);
        return r === j ? o : r;
      }
      return this.#props(o, Object.keys(o), proto, false);
    } finally {
      this.#active.delete(o);
    }
  }

  #array(a: readonly unknown[]): unknown {
    let out: unknown[] | null = null;
    if (this.#memo !== null) {
      out = new Array<unknown>(a.length);
      this.#memo.set(a, out);
    }
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      const r = this.any(v);
      if (out === null && r !== v) out = a.slice(0, i);
      if (out !== null) out[i] = r;
    }
    return out ?? a;
  }

  /** Own properties `keys` of `o`, keys redacted too, copied onto `proto` when anything changed. */
  #props(o: object, keys: readonly string[], proto: unknown, memoize: boolean): unknown {
    const src = o as Record<string, unknown>;
    let out: Record<string, unknown> | null = null;
    const copy = (upTo: number): Record<string, unknown> => {
      const c = Object.create(proto as object | null) as Record<string, unknown>;
      for (let j = 0; j < upTo; j++) put(c, keys[j]!, src[keys[j]!], o, keys[j]!);
      return c;
    };
    if (this.#memo !== null && memoize) {
      out = copy(0);
      this.#memo.set(o, out);
    }
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const v = src[k];
      const rk = this.#r.text(k);
      const rv = this.any(v);
      if (out === null && (rk !== k || rv !== v)) out = copy(i);
      if (out !== null) put(out, unique(out, rk), rv, o, k);
    }
    if (out === null) return o;
    for (const sym of Object.getOwnPropertySymbols(o)) {
      if (Object.prototype.propertyIsEnumerable.call(o, sym)) {
        (out as Record<symbol, unknown>)[sym] = this.any((o as Record<symbol, unknown>)[sym]);
      }
    }
    return out;
  }
}

/** An own data property (so `__proto__` stays a key), enumerable as `fromKey` was on `from`. */
function put(
  obj: Record<string, unknown>,
  key: string,
  value: unknown,
  from: object,
  fromKey: string,
): void {
  Object.defineProperty(obj, key, {
    value,
    enumerable: Object.prototype.propertyIsEnumerable.call(from, fromKey),
    writable: true,
    configurable: true,
  });
}

/** Two keys that redact alike must not overwrite each other. */
function unique(obj: object, key: string): string {
  if (!Object.prototype.hasOwnProperty.call(obj, key)) return key;
  let n = 2;
  while (Object.prototype.hasOwnProperty.call(obj, `${key}#${n}`)) n++;
  return `${key}#${n}`;
}
