import { DuckDBInstance } from "@duckdb/node-api";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatDay, parseDay } from "../src/reports/periods.js";
import { weekCover, weeksFilter } from "../src/storage/duckdb/report-sql.js";

/**
 * Weekly reports read activity_weeks: whole weeks by number, and the weeks at a range's edges by the
 * days of each row (a mask, bit 0 for Monday).
 */
const day = (text: string) => parseDay(text) as number;
/** The result with weeks as [Monday, Sunday] and partial weeks as the dates their masks stand for, to compare with a calendar. */
function cover(ranges: [string, string][]) {
  const { weeks, partial } = weekCover(ranges.map(([lo, hi]) => [day(lo), day(hi)]));
  return {
    weeks: weeks.map(([first, last]) => [formatDay(first * 7 - 3), formatDay(last * 7 + 3)]),
    partial: partial.map(([week, mask]) =>
      Array.from({ length: 7 }, (_, i) => i)
        .filter((i) => (mask >> i) & 1)
        .map((i) => formatDay(week * 7 - 3 + i)),
    ),
  };
}

describe("weekCover", () => {
  it("splits a range into its whole weeks (Monday to Sunday) and the days of the weeks at its edges", () => {
    // 2026-03-04 is a Wednesday, 2026-03-25 a Wednesday too: the weeks of 03-09 and 03-16 are whole;
    // Wednesday to Sunday of the week of 03-02 and Monday to Wednesday of the week of 03-23 are left.
    expect(cover([["2026-03-04", "2026-03-25"]])).toEqual({
      weeks: [["2026-03-09", "2026-03-22"]],
      partial: [
        ["2026-03-04", "2026-03-05", "2026-03-06", "2026-03-07", "2026-03-08"],
        ["2026-03-23", "2026-03-24", "2026-03-25"],
      ],
    });
    // Monday 03-02 to Sunday 03-08: one whole week, no partial one.
    expect(cover([["2026-03-02", "2026-03-08"]])).toEqual({ weeks: [["2026-03-02", "2026-03-08"]], partial: [] });
    // Tuesday to Saturday of one week: one partial week.
    expect(cover([["2026-03-03", "2026-03-07"]])).toEqual({
      weeks: [],
      partial: [["2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06", "2026-03-07"]],
    });
    // A single Sunday, the last bit of the mask.
    expect(cover([["2026-03-08", "2026-03-08"]])).toEqual({ weeks: [], partial: [["2026-03-08"]] });
    // ISO week 53 of 2026 (Monday 12-28 to Sunday 2027-01-03) is whole across New Year.
    expect(cover([["2026-12-27", "2027-01-03"]])).toEqual({
      weeks: [["2026-12-28", "2027-01-03"]],
      partial: [["2026-12-27"]],
    });
  });

  it("joins the days that several ranges take of one week", () => {
    // A whole week, an empty range, then Wednesday 03-11 and Friday 03-13 of the next week as two
    // ranges: one mask with two days.
    expect(
      cover([
        ["2026-03-02", "2026-03-08"],
        ["2026-03-10", "2026-03-09"],
        ["2026-03-11", "2026-03-11"],
        ["2026-03-13", "2026-03-13"],
      ]),
    ).toEqual({ weeks: [["2026-03-02", "2026-03-08"]], partial: [["2026-03-11", "2026-03-13"]] });
    // Thursday to Sunday, then Monday to Wednesday of the same week: the week is whole.
    expect(
      cover([
        ["2026-03-05", "2026-03-08"],
        ["2026-03-02", "2026-03-04"],
      ]),
    ).toEqual({ weeks: [["2026-03-02", "2026-03-08"]], partial: [] });
    // A partial week that another range holds whole is read once, as a whole week.
    expect(
      cover([
        ["2026-03-02", "2026-03-15"],
        ["2026-03-10", "2026-03-12"],
      ]),
    ).toEqual({ weeks: [["2026-03-02", "2026-03-15"]], partial: [] });
  });
});

describe("weeksFilter", () => {
  it("keeps exactly the rows of activity_weeks with a day in one of the ranges", async () => {
    // Every week of a 15-week stretch with every set of days: a row is kept when one of its days
    // lies in a range, worked out here day by day.
    const instance = await DuckDBInstance.create(":memory:");
    const connection = await instance.connect();
    const firstWeek = 2920;
    try {
      await connection.run(
        `CREATE TABLE x AS SELECT w AS week, d::UTINYINT AS days
         FROM range(${firstWeek}, ${firstWeek + 15}) t(w), range(1, 128) u(d)`,
      );
      const monday = firstWeek * 7 - 3;
      const ranges = fc.array(
        fc
          .tuple(fc.integer({ min: monday - 3, max: monday + 110 }), fc.integer({ min: 0, max: 30 }))
          .map(([lo, length]) => [lo, lo + length] as [number, number]),
        { minLength: 1, maxLength: 4 },
      );
      await fc.assert(
        fc.asyncProperty(ranges, async (spans) => {
          const { weeks, partial } = weekCover(spans);
          const kept = (
            await connection.runAndReadAll(
              `SELECT week, days FROM x WHERE ${weeksFilter(weeks, partial)} ORDER BY week, days`,
            )
          ).getRows();
          const expected: [number, number][] = [];
          for (let week = firstWeek; week < firstWeek + 15; week++) {
            for (let days = 1; days < 128; days++) {
              const hit = Array.from({ length: 7 }, (_, i) => i).some(
                (i) => (days >> i) & 1 && spans.some(([lo, hi]) => week * 7 - 3 + i >= lo && week * 7 - 3 + i <= hi),
              );
              if (hit) expected.push([week, days]);
            }
          }
          expect(kept.map(([week, days]) => [Number(week), Number(days)])).toEqual(expected);
        }),
        { numRuns: 60 },
      );
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
  });
});
