// Seeded randomness for tests that must replay a failing run exactly: mulberry32, small, fast, and
// the same sequence for the same seed on every platform.

function mix(state: number): number {
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/** A function returning the next number in [0, 1) of the sequence for `seed`. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    return mix(a);
  };
}

/** mulberry32 with the helpers the fuzzer draws with. */
export class Rng {
  private s: number;

  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    return mix(this.s);
  }

  /** 0 … n-1 */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** lo … hi, both included */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    const v = items[this.int(items.length)];
    if (v === undefined) throw new Error("pick from an empty list");
    return v;
  }

  /** One of the thunks, by weight. */
  weighted<T>(entries: readonly (readonly [number, () => T])[]): T {
    const total = entries.reduce((n, [w]) => n + w, 0);
    let x = this.next() * total;
    for (const [w, f] of entries) {
      if (x < w) return f();
      x -= w;
    }
    const last = entries[entries.length - 1];
    if (!last) throw new Error("weighted from an empty list");
    return last[1]();
  }
}
