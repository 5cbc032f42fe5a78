import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { slices } from "../src/storage/duckdb/compactor.js";

describe("the slices that compaction merges the track event times in", () => {
  it("cover every item once, in order, each as heavy as allowed and no heavier unless alone", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 40 }),
        fc.integer({ min: 1, max: 100 }),
        (weights, most) => {
          const items = weights.map((weight, key) => ({ key, weight }));
          const cut = slices(items, most);
          // Contiguous and complete: each slice starts after the one before it ends.
          expect(cut.flatMap(([first, last]) => Array.from({ length: last - first + 1 }, (_, i) => first + i))).toEqual(
            items.map((item) => item.key),
          );
          cut.forEach(([first, last], i) => {
            const weight = weights.slice(first, last + 1).reduce((a, b) => a + b, 0);
            if (last > first) expect(weight).toBeLessThanOrEqual(most);
            // Greedy: the next item would not have fitted.
            const next = cut[i + 1];
            if (next) expect(weight + (weights[next[0]] as number)).toBeGreaterThan(most);
          });
        },
      ),
    );
  });
});
