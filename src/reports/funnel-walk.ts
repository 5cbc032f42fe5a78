import type { FunnelPlan, FunnelRow } from "./plans.js";

/**
 * The funnel's walk over one entity's occurrences at a time, as the spec defines it (ClickHouse's
 * windowFunnel in its default mode), for engines that hand over each entity's times per event rather
 * than count in SQL. Times are epoch milliseconds.
 *
 * For each occurrence of step 1 in [start, end), step k+1 is reached by the earliest occurrence of
 * its event at or after the time step k was reached, at most the window after that step-1
 * occurrence; one message satisfies at most one step. An entity's depth is the largest over its
 * step-1 occurrences, and its step times (for the medians) are those of the earliest step-1
 * occurrence reaching that depth.
 */
/** One entity's times of each distinct event of a funnel (by number), as an engine hands them over. */
export interface EntityTimes {
  /** The earliest time (whole milliseconds) of event `event` at or after `time`; infinite when there is none. */
  firstAtOrAfter(event: number, time: number): number;
  /** Every time of event `event`, ascending, as [start, end) of `list` (for funnels with a repeated event). */
  merged(event: number): { list: Float64Array; start: number; end: number };
}

export class FunnelWalk {
  /** Per step, the index of its event among the distinct events: the first step that names it. */
  readonly eventOf: readonly number[];
  /** The distinct events, in the order their first step names them. */
  readonly events: readonly string[];
  private readonly reached: number[];
  /** Per step k ≥ 1, the milliseconds from step k−1 to k of each entity reaching k. */
  private readonly gaps: number[][];
  /** Per step, the occurrence index that reached it, in the step's own event's list (walk state). */
  private readonly taken: Int32Array;
  private readonly times: Float64Array;
  private readonly best: Float64Array;
  private readonly repeats: boolean;
  /** The merged lists of the entity being walked, per distinct event: lists[e] from starts[e] to ends[e]. */
  private readonly lists: Float64Array[] = [];
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  /** Set by walk() when it stops short: see there. */
  private blocking = Number.POSITIVE_INFINITY;

  constructor(
    steps: readonly string[],
    private readonly windowMs: number,
    /** Step-1 occurrences count from this instant (inclusive) to `end` (exclusive). */
    private readonly start: number,
    private readonly end: number,
  ) {
    const events = [...new Set(steps)];
    this.eventOf = steps.map((step) => events.indexOf(step));
    this.events = events;
    this.repeats = events.length < steps.length;
    this.reached = steps.map(() => 0);
    this.gaps = steps.map(() => []);
    this.taken = new Int32Array(steps.length);
    this.times = new Float64Array(steps.length);
    this.best = new Float64Array(steps.length);
  }

  /** Adds one entity. Returns its depth. */
  add(times: EntityTimes): number {
    const n = this.eventOf.length;
    if (!this.repeats) return this.addByRuns(times);
    for (let e = 0; e < this.events.length; e++) {
      const { list, start, end } = times.merged(e);
      this.lists[e] = list;
      this.starts[e] = start;
      this.ends[e] = end;
    }
    const first = this.lists[0] as Float64Array;
    const firstEnd = this.ends[0] as number;
    let depth = 0;
    for (let i = lowerBound(first, this.starts[0] as number, firstEnd, this.start); i < firstEnd; i++) {
      const t0 = first[i] as number;
      if (t0 >= this.end) break;
      const d = this.walk(i, t0);
      if (d > depth) {
        depth = d;
        this.best.set(this.times);
        if (depth === n) break;
      }
      // Later starts reach each step at an occurrence no earlier than this one did (by induction on
      // the steps), so none gets past the step that failed here before its window reaches the
      // occurrence found there, and none at all when there was none.
      if (d < n) {
        if (this.blocking === Number.POSITIVE_INFINITY) break;
        i = Math.max(i, lowerBound(first, i + 1, firstEnd, this.blocking - this.windowMs) - 1);
      }
    }
    return this.count(this.best, depth);
  }

  /**
   * add() without a repeated event: then the walk from a step-1 occurrence depends on its time only,
   * and each step is the earliest occurrence at or after a time, which the entity's runs of each
   * event answer as they are, without a merge. Times are whole milliseconds, so the next start
   * after t0 is the first at or after t0 + 1.
   */
  private addByRuns(times: EntityTimes): number {
    const n = this.eventOf.length;
    let depth = 0;
    let t0 = times.firstAtOrAfter(0, this.start);
    while (t0 < this.end) {
      this.times[0] = t0;
      let k = 1;
      let blocking = Number.POSITIVE_INFINITY;
      for (; k < n; k++) {
        const t = times.firstAtOrAfter(this.eventOf[k] as number, this.times[k - 1] as number);
        if (!(t <= t0 + this.windowMs)) {
          blocking = t;
          break;
        }
        this.times[k] = t;
      }
      if (k > depth) {
        depth = k;
        this.best.set(this.times);
        if (depth === n) break;
      }
      // As in add(): no later start gets further before its window reaches `blocking`.
      if (blocking === Number.POSITIVE_INFINITY) break;
      t0 = times.firstAtOrAfter(0, Math.max(t0 + 1, blocking - this.windowMs));
    }
    return this.count(this.best, depth);
  }

  /** Counts an entity of depth `depth` whose steps were reached at `times`. */
  private count(times: Float64Array, depth: number): number {
    for (let k = 0; k < depth; k++) {
      this.reached[k] = (this.reached[k] ?? 0) + 1;
      if (k > 0) this.gaps[k]?.push((times[k] as number) - (times[k - 1] as number));
    }
    return depth;
  }

  /**
   * The depth reached from occurrence i (at t0) of step 1 over the merged lists; this.times holds
   * each step's time. When a step is not reached, this.blocking is the earliest occurrence of its
   * event that the step could have taken but for the window (infinite when there is none).
   */
  private walk(i: number, t0: number): number {
    const n = this.eventOf.length;
    const last = t0 + this.windowMs;
    this.times[0] = t0;
    this.taken[0] = i;
    let prev = t0;
    for (let k = 1; k < n; k++) {
      const event = this.eventOf[k] as number;
      const list = this.lists[event] as Float64Array;
      const end = this.ends[event] as number;
      let j = lowerBound(list, this.starts[event] as number, end, prev);
      // A message already taken by an earlier step of the same event is not taken again: those
      // steps took occurrences in order, so the last of them bounds this one.
      for (let s = k - 1; s >= 0; s--) {
        if (this.eventOf[s] === event) {
          j = Math.max(j, (this.taken[s] as number) + 1);
          break;
        }
      }
      if (j >= end || (list[j] as number) > last) {
        this.blocking = j >= end ? Number.POSITIVE_INFINITY : (list[j] as number);
        return k;
      }
      prev = list[j] as number;
      this.times[k] = prev;
      this.taken[k] = j;
    }
    return n;
  }

  /** Per step, the entities reaching it and the median seconds from the step before. */
  rows(): FunnelRow[] {
    return this.reached.map((count, k) => ({
      step: k,
      count,
      medianSeconds: k === 0 ? null : medianSeconds(this.gaps[k] ?? []),
    }));
  }
}

/** The first index in [lo, hi) of `list` (ascending there) whose value is at least `value`, else hi. */
export function lowerBound(list: Float64Array, from: number, to: number, value: number): number {
  let lo = from;
  let hi = to;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((list[mid] as number) < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The middle of durations in milliseconds (the mean of the two middle ones), in seconds; null for none. */
function medianSeconds(ms: number[]): number | null {
  if (ms.length === 0) return null;
  const sorted = Float64Array.from(ms).sort();
  const mid = sorted.length >> 1;
  const middle =
    sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return middle / 1000;
}

/** The walk for a plan, given its step-1 range as instants (epoch milliseconds). */
export const funnelWalk = (plan: FunnelPlan, start: number, end: number) =>
  new FunnelWalk(plan.steps, plan.windowSeconds * 1000, start, end);
