import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FunnelWalk } from "../src/reports/funnel-walk.js";
import { EntityTimeLists } from "../src/storage/duckdb/time-lists.js";
import { median } from "./reference/reports.js";

interface Occurrence {
  event: string;
  ts: number;
  /** The run (an actor's or company's list) it is in. */
  run: number;
}

/**
 * The spec's walk written plainly: for each step-1 occurrence in [start, end), each next step is the
 * earliest occurrence of its event, not yet used, at or after the previous step's time and at most
 * `windowMs` after the start. Returns the step times of the earliest start reaching the most steps.
 */
function plainWalk(occurrences: Occurrence[], steps: string[], windowMs: number, start: number, end: number): number[] {
  const numbered = occurrences.map((o, id) => ({ ...o, id }));
  const starts = numbered
    .filter((o) => o.event === steps[0] && o.ts >= start && o.ts < end)
    .sort((a, b) => a.ts - b.ts);
  let best: number[] = [];
  for (const s of starts) {
    const used = new Set([s.id]);
    const reached = [s.ts];
    for (let k = 1; k < steps.length; k++) {
      const previous = reached[k - 1] as number;
      const next = numbered
        .filter((o) => o.event === steps[k] && !used.has(o.id) && o.ts >= previous && o.ts <= s.ts + windowMs)
        .sort((a, b) => a.ts - b.ts)[0];
      if (!next) break;
      used.add(next.id);
      reached.push(next.ts);
    }
    if (reached.length > best.length) best = reached;
  }
  return best;
}

const EVENTS = ["A", "B", "C"];

describe("the funnel's walk over each entity's times per event", () => {
  it("gives the counts and medians of the spec's walk written plainly", () => {
    // Times on a coarse grid (seconds, few of them) so that ties, repeats and window edges are common.
    const occurrence = fc.record({
      event: fc.constantFrom(...EVENTS),
      ts: fc.integer({ min: 0, max: 30 }).map((s) => s * 1000),
      run: fc.integer({ min: 0, max: 2 }),
    });
    fc.assert(
      fc.property(
        fc.array(fc.array(occurrence, { maxLength: 12 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.constantFrom(...EVENTS), { minLength: 2, maxLength: 5 }),
        fc.integer({ min: 0, max: 10 }),
        fc.integer({ min: 0, max: 30 }),
        fc.integer({ min: 0, max: 30 }),
        (entities, steps, windowSeconds, a, b) => {
          const [start, end] = [Math.min(a, b) * 1000, (Math.max(a, b) + 1) * 1000];
          const walk = new FunnelWalk(steps, windowSeconds * 1000, start, end);
          // Each entity's times of each event in runs (as of several actors or companies), each run
          // ascending in a shared array between other times (later and earlier than any here), the
          // runs of all entities handed over interleaved, last entity first.
          const lists = new EntityTimeLists(walk.events.length);
          const shared: number[] = [];
          const runs: [number, number, number, number][] = [];
          entities.forEach((occurrences, entity) => {
            walk.events.forEach((event, e) => {
              for (let run = 0; run < 3; run++) {
                const times = occurrences.filter((o) => o.event === event && o.run === run).map((o) => o.ts);
                if (times.length === 0) continue;
                shared.push(31_000);
                runs.push([entity, e, shared.length, shared.length + times.length]);
                shared.push(...times.sort((x, y) => x - y), 15_000);
              }
            });
          });
          const buffer = lists.addBuffer(Float64Array.from(shared));
          for (const [entity, e, from, to] of runs.reverse()) lists.addRun(entity, e, buffer, from, to);
          // An entity with no run at all is not handed over: it has no step-1 occurrence.
          const depths = new Map<number, number>();
          let visited = 0;
          lists.visit((times) => {
            depths.set(visited++, walk.add(times));
          });
          const paths: number[][] = [];
          entities.forEach((occurrences, entity) => {
            const path = plainWalk(occurrences, steps, windowSeconds * 1000, start, end);
            expect(depths.get(entity) ?? 0).toBe(path.length);
            if (path.length > 0) paths.push(path);
          });
          expect(walk.rows()).toEqual(
            steps.map((_, k) => ({
              step: k,
              count: paths.filter((p) => p.length > k).length,
              medianSeconds:
                k === 0
                  ? null
                  : median(
                      paths.filter((p) => p.length > k).map((p) => ((p[k] as number) - (p[k - 1] as number)) / 1000),
                    ),
            })),
          );
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("numbers the distinct events in the order their first step names them", () => {
    const walk = new FunnelWalk(["B", "A", "B", "C"], 1000, 0, 1000);
    expect(walk.events).toEqual(["B", "A", "C"]);
    expect(walk.eventOf).toEqual([0, 1, 0, 2]);
  });
});
