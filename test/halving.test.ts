import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { failingAlone } from "../src/storage/duckdb/halving.js";

/**
 * failingAlone finds the items that fail alone by trying parts of them. Here a part fails when it
 * holds a "poison" item (its error names the first one); the answer is then the poison items, which
 * a filter over the indices gives without any halving.
 */
function poisoned(poison: ReadonlySet<number>) {
  const tries: [number, number][] = [];
  const fails = async (first: number, end: number) => {
    tries.push([first, end]);
    for (let i = first; i < end; i++) if (poison.has(i)) return `poison ${i}`;
    return null;
  };
  return { fails, tries };
}

describe("failingAlone", () => {
  it("finds every item that fails alone, in order, with its error, and tries few parts", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 0, max: 300 })
          .chain((count) =>
            fc.tuple(fc.constant(count), fc.uniqueArray(fc.nat({ max: Math.max(0, count - 1) }), { maxLength: 8 })),
          ),
        async ([count, picked]) => {
          const poison = new Set(picked.filter((i) => i < count));
          const { fails, tries } = poisoned(poison);
          const found = await failingAlone(count, fails);
          const expected = Array.from({ length: count }, (_, i) => i).filter((i) => poison.has(i));
          expect(found).toEqual(expected.map((index) => ({ index, error: `poison ${index}` })));
          // Nothing to find: one try of everything (none for no items). Else at most two tries per
          // poison item at each level of the halving, plus the first.
          const levels = Math.ceil(Math.log2(Math.max(count, 1)));
          if (poison.size === 0) expect(tries.length).toBe(count === 0 ? 0 : 1);
          else expect(tries.length).toBeLessThanOrEqual(1 + 2 * poison.size * levels);
          // Every try is a non-empty part of the items.
          for (const [first, end] of tries) expect(0 <= first && first < end && end <= count).toBe(true);
        },
      ),
    );
  });

  it("finds nothing when only several items together fail", async () => {
    // Items 3 and 4 fail together only: the whole fails, each half passes.
    const fails = async (first: number, end: number) => (first <= 3 && 4 < end ? "together" : null);
    expect(await failingAlone(8, fails)).toEqual([]);
  });

  it("stops when a try throws", async () => {
    const fails = async (first: number, end: number) => {
      if (end - first === 1) throw new Error("not the data's");
      return "fails";
    };
    await expect(failingAlone(4, fails)).rejects.toThrow("not the data's");
  });
});
