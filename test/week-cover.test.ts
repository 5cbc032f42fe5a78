import { describe, expect, it } from "vitest";
import { formatDay, parseDay } from "../src/reports/periods.js";
import { weekCover } from "../src/storage/duckdb/report-sql.js";

/** Weekly reports read whole weeks from activity_weeks and the days at the edges from activity_days. */
const day = (text: string) => parseDay(text) as number;
/** The result with weeks as [first day, last day] and days as dates, to compare with a calendar. */
function cover(ranges: [string, string][]) {
  const { weeks, days } = weekCover(ranges.map(([lo, hi]) => [day(lo), day(hi)]));
  return {
    weeks: weeks.map(([first, last]) => [formatDay(first * 7 - 3), formatDay(last * 7 + 3)]),
    days: days.map(([lo, hi]) => [formatDay(lo), formatDay(hi)]),
  };
}

describe("weekCover", () => {
  it("splits a range into its whole weeks (Monday to Sunday) and the days at its edges", () => {
    // 2026-03-04 is a Wednesday, 2026-03-25 a Wednesday too: the weeks of 03-09 and 03-16 are whole;
    // 03-04 to 03-08 and 03-23 to 03-25 are left over.
    expect(cover([["2026-03-04", "2026-03-25"]])).toEqual({
      weeks: [["2026-03-09", "2026-03-22"]],
      days: [
        ["2026-03-04", "2026-03-08"],
        ["2026-03-23", "2026-03-25"],
      ],
    });
    // Monday 03-02 to Sunday 03-08: one whole week, no days.
    expect(cover([["2026-03-02", "2026-03-08"]])).toEqual({ weeks: [["2026-03-02", "2026-03-08"]], days: [] });
    // Tuesday to Saturday of one week: days only.
    expect(cover([["2026-03-03", "2026-03-07"]])).toEqual({ weeks: [], days: [["2026-03-03", "2026-03-07"]] });
    // ISO week 53 of 2026 (Monday 12-28 to Sunday 2027-01-03) is whole across New Year.
    expect(cover([["2026-12-27", "2027-01-03"]])).toEqual({
      weeks: [["2026-12-28", "2027-01-03"]],
      days: [["2026-12-27", "2026-12-27"]],
    });
    // Several ranges, and an empty one.
    expect(
      cover([
        ["2026-03-02", "2026-03-08"],
        ["2026-03-10", "2026-03-09"],
        ["2026-03-11", "2026-03-11"],
      ]),
    ).toEqual({ weeks: [["2026-03-02", "2026-03-08"]], days: [["2026-03-11", "2026-03-11"]] });
  });
});
