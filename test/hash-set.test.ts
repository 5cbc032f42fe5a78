import { describe, expect, it } from "vitest";
import { HashSet128 } from "../src/storage/dedup/hash-set.js";

type Hash = [number, number, number, number];

/** A small seeded generator (mulberry32), so that a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return (x ^ (x >>> 14)) | 0;
  };
}

const keyOf = (h: Hash) => h.join(",");

/** A random hash whose first word is never zero, as the set requires. */
function randomHash(next: () => number): Hash {
  let h0 = next();
  while (h0 === 0) h0 = next();
  return [h0, next(), next(), next()];
}

/** Every hash the set holds, as reported by forEach. */
function contents(set: HashSet128): string[] {
  const out: string[] = [];
  set.forEach((h0, h1, h2, h3) => {
    out.push(keyOf([h0, h1, h2, h3]));
  });
  return out;
}

/** Adds each hash to both sets, checking they agree at every step; reports the first disagreement. */
function addBoth(set: HashSet128, reference: Set<string>, hashes: readonly Hash[]): void {
  for (const [i, h] of hashes.entries()) {
    const isNew = !reference.has(keyOf(h));
    reference.add(keyOf(h));
    const added = set.add(...h);
    if (added !== isNew || set.size !== reference.size) {
      expect({ step: i, hash: h, added, size: set.size }).toEqual({
        step: i,
        hash: h,
        added: isNew,
        size: reference.size,
      });
    }
  }
}

describe("HashSet128", () => {
  it("is empty when new", () => {
    const set = new HashSet128(16);
    expect(set.size).toBe(0);
    expect(set.has(1, 2, 3, 4)).toBe(false);
    expect(contents(set)).toEqual([]);
  });

  it("agrees with a JS Set on random hashes with repeats, growing past several resizes", () => {
    const next = random(42);
    const set = new HashSet128(16);
    const reference = new Set<string>();
    const initialBytes = set.byteLength;
    const pool: Hash[] = [];
    for (let i = 0; i < 20_000; i++) {
      // One time in four, repeat a hash already offered, so add() must report it as present.
      const reuse = pool.length > 0 && (next() & 3) === 0;
      const h = reuse ? (pool[(next() >>> 0) % pool.length] as Hash) : randomHash(next);
      if (!reuse) pool.push(h);
      addBoth(set, reference, [h]);
    }
    // From 16 slots to at least 16,384 for ~15,000 entries: ten doublings.
    expect(set.byteLength).toBeGreaterThanOrEqual(initialBytes * 1024);
    expect(set.size).toBe(reference.size);
    expect(pool.filter((h) => !set.has(...h))).toEqual([]);
    const probes = Array.from({ length: 20_000 }, () => randomHash(next));
    expect(probes.filter((h) => set.has(...h) !== reference.has(keyOf(h)))).toEqual([]);
    expect(contents(set).sort()).toEqual([...reference].sort());
  });

  it("keeps its load under 70% as it grows", () => {
    const next = random(7);
    const set = new HashSet128(16);
    let worst = 0;
    const capacities = new Set<number>();
    for (let i = 0; i < 5_000; i++) {
      set.add(...randomHash(next));
      const slots = set.byteLength / 16;
      worst = Math.max(worst, set.size / slots);
      capacities.add(slots);
    }
    expect(worst).toBeLessThanOrEqual(0.7);
    expect([...capacities]).toEqual([16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]);
  });

  it("rounds the initial capacity up to a power of two of at least 16 slots", () => {
    expect(new HashSet128(0).byteLength).toBe(16 * 16);
    expect(new HashSet128(17).byteLength).toBe(32 * 16);
    expect(new HashSet128(1000).byteLength).toBe(1024 * 16);
  });

  it("tells apart hashes that differ in one word only", () => {
    const set = new HashSet128(16);
    const base: Hash = [11, 22, 33, 44];
    expect(set.add(...base)).toBe(true);
    for (let word = 0; word < 4; word++) {
      const other = [...base] as Hash;
      other[word] = (other[word] as number) + 1;
      expect(set.has(...other)).toBe(false);
      expect(set.add(...other)).toBe(true);
      expect(set.add(...other)).toBe(false);
    }
    expect(set.size).toBe(5);
  });

  it("handles many hashes sharing a home slot, with wrap-around, through growth", () => {
    // The slot comes from the second word, so equal second words all collide; -1 is the table's last slot.
    const set = new HashSet128(16);
    const reference = new Set<string>();
    const next = random(99);
    const hashes: Hash[] = [];
    for (let i = 0; i < 300; i++) hashes.push([i + 1, -1, next(), i]);
    for (let i = 0; i < 300; i++) hashes.push([-(i + 1), 0x7fffffff, i, next()]);
    for (let i = 0; i < 300; i++) hashes.push([i + 1, 0, 0, 0]);
    addBoth(set, reference, hashes);
    addBoth(set, reference, hashes);
    for (const h of hashes) expect(set.has(...h)).toBe(true);
    expect(set.has(301, -1, 0, 0)).toBe(false);
    expect(set.has(1, -1, 0, 1)).toBe(false);
    expect(contents(set).sort()).toEqual([...reference].sort());
  });

  it("stores negative and extreme 32-bit words", () => {
    const set = new HashSet128(16);
    const extremes: Hash[] = [
      [-2147483648, -2147483648, -2147483648, -2147483648],
      [2147483647, 2147483647, 2147483647, 2147483647],
      [-1, 0, -1, 0],
      [1, 0, 0, 0],
    ];
    const reference = new Set<string>();
    addBoth(set, reference, extremes);
    for (const h of extremes) expect(set.has(...h)).toBe(true);
    expect(contents(set).sort()).toEqual(extremes.map(keyOf).sort());
  });

  it("refuses a hash whose first word is zero, and never reports one as present", () => {
    const set = new HashSet128(16);
    expect(() => set.add(0, 1, 2, 3)).toThrow(RangeError);
    expect(set.size).toBe(0);
    // Empty slots are all zeros: an all-zero hash must not be mistaken for one stored.
    expect(set.has(0, 0, 0, 0)).toBe(false);
    expect(set.has(0, 1, 2, 3)).toBe(false);
    set.add(5, 0, 0, 0);
    expect(set.has(0, 0, 0, 0)).toBe(false);
  });
});
