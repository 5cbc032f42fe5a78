import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sendBatch } from "./helpers/fixtures.js";
import {
  visitor as a,
  companyContext as ctx,
  idsWithPrefix,
  sameEventBuilders,
  user as u,
  type Who,
} from "./helpers/messages.js";
import { getReport } from "./helpers/reports.js";
import { startTestServer, type TestServer, tempDataDir } from "./helpers/server.js";

/**
 * Hand-worked fixtures for the lifecycle, power and slipping reports, at user and company level, in
 * the default UTC zone. Times are 10:00 UTC unless given.
 */
const NOW = Date.parse("2026-04-15T12:00:00Z");
const at = (day: string, time = "10:00:00") => `${day}T${time}.000Z`;

const { track, identify, group } = sameEventBuilders("Report Viewed", idsWithPrefix("re-"));
/** One track event per day, at 10:00. */
const days = (who: Who, list: string[], extra: object = {}) => list.map((d) => track(who, at(d), extra));

async function serve(batches: object[][]): Promise<TestServer> {
  const t = await startTestServer(tempDataDir(), { now: () => NOW });
  for (const batch of batches) await sendBatch(t, batch);
  return t;
}

interface LifecycleRow {
  period: string;
  new: number;
  returning: number;
  resurrecting: number;
  dormant: number;
}
const lifecycle = async (t: TestServer, params: Record<string, string>) =>
  (await getReport<{ series: LifecycleRow[] }>(t, "lifecycle", params)).series.map((r) => [
    r.period,
    r.new,
    r.returning,
    r.resurrecting,
    r.dormant,
  ]);

describe("lifecycle", () => {
  /**
   * Weeks from Monday 03-02 to Sunday 03-22; the week before the first is 02-23..03-01.
   *   L1  02-25, 03-03, 03-10                          member of K1
   *   L2  01-05, 02-24, 03-17                          member of K1
   *   L3  03-04, 03-11, 03-18                          member of K2
   *   L4  01-10 (a Saturday, week 01-05), 03-05, 03-20, all with context.groupId K3; member of nothing
   *   L5  03-16, 03-23 (after to)                      member of K1 and K4
   *   L6  03-23 only (after to)                        member of K5
   *   L7  identify and a group call for K2 on 03-03; first activity 03-10
   */
  let t: TestServer;
  beforeAll(async () => {
    t = await serve([
      [
        group(u("L1"), "K1", at("2026-01-01")),
        group(u("L2"), "K1", at("2026-01-01")),
        group(u("L3"), "K2", at("2026-01-01")),
        group(u("L5"), "K1", at("2026-01-01")),
        group(u("L5"), "K4", at("2026-01-01")),
        group(u("L6"), "K5", at("2026-01-01")),
        identify(u("L7"), at("2026-03-03")),
        group(u("L7"), "K2", at("2026-03-03")),
        ...days(u("L1"), ["2026-02-25", "2026-03-03", "2026-03-10"]),
        ...days(u("L2"), ["2026-01-05", "2026-02-24", "2026-03-17"]),
        ...days(u("L3"), ["2026-03-04", "2026-03-11", "2026-03-18"]),
        ...days(u("L4"), ["2026-01-10", "2026-03-05", "2026-03-20"], ctx("K3")),
        ...days(u("L5"), ["2026-03-16", "2026-03-23"]),
        ...days(u("L6"), ["2026-03-23"]),
        ...days(u("L7"), ["2026-03-10"]),
      ],
    ]);
  });
  afterAll(() => t.close());

  it("classifies users per week, the week before from included", async () => {
    // Active weeks: L1 {02-23, 03-02, 03-09}, L2 {01-05, 02-23, 03-16}, L3 {03-02, 03-09, 03-16},
    // L4 {01-05, 03-02, 03-16}, L5 {03-16}, L7 {03-09}; L6 only after to.
    //   03-02  active {L1, L3, L4}, before {L1, L2}: new L3; returning L1; resurrecting L4 (first seen 01-10);
    //          dormant L2 (active in 02-23, before from, and not in 03-02)
    //   03-09  active {L1, L3, L7}, before {L1, L3, L4}: new L7 (its identify on 03-03 is not activity);
    //          returning L1, L3; dormant L4
    //   03-16  active {L2, L3, L4, L5}, before {L1, L3, L7}: new L5; returning L3; resurrecting L2, L4;
    //          dormant L1, L7
    expect(await lifecycle(t, { period: "week", from: "2026-03-02", to: "2026-03-22" })).toEqual([
      ["2026-03-02", 1, 1, 1, -1],
      ["2026-03-09", 1, 2, 0, -1],
      ["2026-03-16", 1, 1, 2, -2],
    ]);
  });

  it("classifies companies per week", async () => {
    // Active weeks: K1 (L1, L2, L5) {01-05, 02-23, 03-02, 03-09, 03-16}, first seen 01-05;
    // K2 (L3, L7) {03-02, 03-09, 03-16}, first seen 03-04; K3 (L4's context) {01-05, 03-02, 03-16};
    // K4 (L5) {03-16}; K5 only after to.
    //   03-02  active {K1, K2, K3}, before {K1}: new K2; returning K1; resurrecting K3; dormant none
    //   03-09  active {K1, K2}, before {K1, K2, K3}: returning K1, K2; dormant K3
    //   03-16  active {K1, K2, K3, K4}, before {K1, K2}: new K4; returning K1, K2; resurrecting K3
    expect(await lifecycle(t, { level: "company", period: "week", from: "2026-03-02", to: "2026-03-22" })).toEqual([
      ["2026-03-02", 1, 1, 1, 0],
      ["2026-03-09", 0, 2, 0, -1],
      ["2026-03-16", 1, 2, 1, 0],
    ]);
  });

  it("counts a first period cut by from only inside the range, also as the previous period of the next", async () => {
    // Weeks from Wednesday 03-04 to Sunday 03-15: week 03-02 is cut to 03-04..03-08; week 02-23 lies
    // wholly before from and counts in full.
    //   C1  02-25, 03-03 (in week 03-02 but before from)
    //   C2  03-03 (before from), 03-10
    //   C3  03-05, 03-11
    // Week 03-02 counts C3 only: new C3; C1 was active in week 02-23 and not in the cut week: dormant.
    // Week 03-09: active {C2, C3}; its previous period is the cut week, {C3}: returning C3; C2 was seen
    // before (03-03) but not in the cut week: resurrecting. C1 is not dormant a second time.
    const t = await serve([
      [
        ...days(u("C1"), ["2026-02-25", "2026-03-03"], ctx("KC1")),
        ...days(u("C2"), ["2026-03-03", "2026-03-10"], ctx("KC2")),
        ...days(u("C3"), ["2026-03-05", "2026-03-11"], ctx("KC3")),
      ],
    ]);
    try {
      const expected = [
        ["2026-03-02", 1, 0, 0, -1],
        ["2026-03-09", 0, 1, 1, 0],
      ];
      const range = { period: "week", from: "2026-03-04", to: "2026-03-15" };
      expect(await lifecycle(t, range)).toEqual(expected);
      // Each user's events carry its own company: the same classification.
      expect(await lifecycle(t, { ...range, level: "company" })).toEqual(expected);
    } finally {
      await t.close();
    }
  });
});

interface Power {
  days: number;
  date: string;
  histogram: { activeDays: number; entities: number }[];
  top: { id: string; name: string | null; activeDays: number }[];
}

describe("power", () => {
  /**
   * The 7 days ending 03-31: 03-25..03-31.
   *   P1  name "Pat One"; 03-24 (before the window), 03-25, 03-26, 03-27, 03-31, 04-01 (after date); member of CA
   *   P2  three events on 03-30, with context.groupId CC; member of nothing
   *   P3  name "Pat Three"; every day 03-25..03-31; member of CB
   *   P4  no traits; 03-28, 03-29; member of CA
   *   P5  name "Pat Five" (03-20), sent before an older "Old Name" (03-01); 03-27, 03-28, 03-29; member of CD
   *   P6  identify on 03-30 only
   *   P7  03-24 only
   *   v1  a visitor: 03-25..03-29
   * Companies: CA "Acme", CB "Beta" (renamed from "Beta Old"), CD "Delta", CC no name.
   */
  let t: TestServer;
  beforeAll(async () => {
    t = await serve([
      [
        identify(u("P1"), at("2026-03-01"), { name: "Pat One" }),
        identify(u("P3"), at("2026-03-01"), { name: "Pat Three" }),
        identify(u("P5"), at("2026-03-20"), { name: "Pat Five" }),
        identify(u("P6"), at("2026-03-30"), { name: "Pat Six" }),
        group(u("P1"), "CA", at("2026-03-01"), { name: "Acme" }),
        group(u("P4"), "CA", at("2026-03-01")),
        group(u("P3"), "CB", at("2026-03-10"), { name: "Beta" }),
        group(u("P5"), "CD", at("2026-03-01"), { name: "Delta" }),
        ...days(u("P1"), ["2026-03-24", "2026-03-25", "2026-03-26", "2026-03-27", "2026-03-31", "2026-04-01"]),
        track(u("P2"), at("2026-03-30", "08:00:00"), ctx("CC")),
        track(u("P2"), at("2026-03-30", "12:00:00"), ctx("CC")),
        track(u("P2"), at("2026-03-30", "23:59:59"), ctx("CC")),
        ...days(u("P3"), ["2026-03-25", "2026-03-26", "2026-03-27", "2026-03-28", "2026-03-29", "2026-03-30"]),
        track(u("P3"), at("2026-03-31", "00:00:00")),
        ...days(u("P4"), ["2026-03-28", "2026-03-29"]),
        ...days(u("P5"), ["2026-03-27", "2026-03-28", "2026-03-29"]),
        ...days(u("P7"), ["2026-03-24"]),
        ...days(a("v1"), ["2026-03-25", "2026-03-26", "2026-03-27", "2026-03-28", "2026-03-29"]),
      ],
      // Arriving later, but older: neither renames anything.
      [
        identify(u("P5"), at("2026-03-01"), { name: "Old Name" }),
        group(u("P3"), "CB", at("2026-03-01"), { name: "Beta Old" }),
      ],
    ]);
  });
  afterAll(() => t.close());

  const histogram = (...entities: number[]) => entities.map((n, i) => ({ activeDays: i + 1, entities: n }));

  it("counts users by active days in the window, with a row for every count and the most active first", async () => {
    // Active days in 03-25..03-31: P3 7, P1 4, P5 3, P4 2, P2 1 (three events, one day); P6 and P7 none.
    const power = await getReport<Power>(t, "power", { days: "7", date: "2026-03-31" });
    expect(power.histogram).toEqual(histogram(1, 1, 1, 1, 0, 0, 1));
    expect(power.top).toEqual([
      { id: "P3", name: "Pat Three", activeDays: 7 },
      { id: "P1", name: "Pat One", activeDays: 4 },
      { id: "P5", name: "Pat Five", activeDays: 3 },
      { id: "P4", name: null, activeDays: 2 },
      { id: "P2", name: null, activeDays: 1 },
    ]);
    // Visitors: v1 adds a row at 5 days.
    const withVisitors = await getReport<Power>(t, "power", {
      days: "7",
      date: "2026-03-31",
      includeAnonymous: "true",
    });
    expect(withVisitors.histogram).toEqual(histogram(1, 1, 1, 1, 1, 0, 1));
    expect(withVisitors.top.map((r) => [r.id, r.activeDays])).toEqual([
      ["P3", 7],
      ["v1", 5],
      ["P1", 4],
      ["P5", 3],
      ["P4", 2],
      ["P2", 1],
    ]);
  });

  it("counts companies by their attributed active days", async () => {
    // CA: P1 {25, 26, 27, 31} ∪ P4 {28, 29} = 6 days; CB: P3, 7 days; CD: P5, 3 days; CC: P2's context, 1 day.
    const power = await getReport<Power>(t, "power", { level: "company", days: "7", date: "2026-03-31" });
    expect(power.histogram).toEqual(histogram(1, 0, 1, 0, 0, 1, 1));
    expect(power.top).toEqual([
      { id: "CB", name: "Beta", activeDays: 7 },
      { id: "CA", name: "Acme", activeDays: 6 },
      { id: "CD", name: "Delta", activeDays: 3 },
      { id: "CC", name: null, activeDays: 1 },
    ]);
  });

  it("uses a 30-day window by default", async () => {
    // 03-02..03-31: P3 7, P1 5 (03-24 now inside), P5 3, P4 2, P2 1, P7 1.
    const power = await getReport<Power>(t, "power", { date: "2026-03-31" });
    expect([power.days, power.date, power.histogram.length]).toEqual([30, "2026-03-31", 30]);
    expect(power.histogram.slice(0, 7)).toEqual(histogram(2, 1, 1, 0, 1, 0, 1));
    expect(power.histogram.slice(7).every((r) => r.entities === 0)).toBe(true);
  });
});

interface Slipping {
  entities: { id: string; name: string | null; lastSeen: string; activeDaysInPrior30: number }[];
}

describe("slipping", () => {
  /**
   * date 03-31, inactiveDays 14: date − 14 = 03-17 and date − 14 − 30 = 02-15, so an entity slips when
   * its last day L (up to 03-31) is in [02-15, 03-17), and its prior days are counted in [02-15, 03-17).
   *   S1  name "Sam One"; 03-10, 03-12, 03-16 08:00 and 20:00       L = 03-16, the last day that slips
   *   S2  03-02, 03-17                                              L = 03-17 = date − 14: not slipping
   *   S3  02-14 (context.groupId K3), 02-15 (context.groupId K5)    L = 02-15, the first day that slips
   *   S4  02-14                                                     L = 02-14: gone too long ago
   *   S5  02-10, 02-20, 02-21, 02-22, 02-23, 03-01                  L = 03-01
   *   S6  03-05, 03-06, 04-02 (after date, ignored)                 L = 03-06
   *   S7  03-20; S8 03-01 and 03-31                                 still active
   *   v9  a visitor, 02-20
   * Members: KT {S1} "Tee"; K1 {S1, S7}; K2 {S2}; K4 {S4}; K5 {S5}; K6 {S6} "Six".
   */
  let t: TestServer;
  beforeAll(async () => {
    t = await serve([
      [
        identify(u("S1"), at("2026-01-01"), { name: "Sam One" }),
        group(u("S1"), "KT", at("2026-01-01"), { name: "Tee" }),
        group(u("S1"), "K1", at("2026-01-01")),
        group(u("S7"), "K1", at("2026-01-01")),
        group(u("S2"), "K2", at("2026-01-01")),
        group(u("S4"), "K4", at("2026-01-01")),
        group(u("S5"), "K5", at("2026-01-01")),
        group(u("S6"), "K6", at("2026-01-01"), { name: "Six" }),
        ...days(u("S1"), ["2026-03-10", "2026-03-12"]),
        track(u("S1"), at("2026-03-16", "08:00:00")),
        track(u("S1"), at("2026-03-16", "20:00:00")),
        ...days(u("S2"), ["2026-03-02", "2026-03-17"]),
        track(u("S3"), at("2026-02-14"), ctx("K3")),
        track(u("S3"), at("2026-02-15"), ctx("K5")),
        ...days(u("S4"), ["2026-02-14"]),
        ...days(u("S5"), ["2026-02-10", "2026-02-20", "2026-02-21", "2026-02-22", "2026-02-23", "2026-03-01"]),
        ...days(u("S6"), ["2026-03-05", "2026-03-06", "2026-04-02"]),
        ...days(u("S7"), ["2026-03-20"]),
        ...days(u("S8"), ["2026-03-01", "2026-03-31"]),
        ...days(a("v9"), ["2026-02-20"]),
      ],
    ]);
  });
  afterAll(() => t.close());

  const rows = (s: Slipping) => s.entities.map((e) => [e.id, e.name, e.lastSeen, e.activeDaysInPrior30]);

  it("lists users whose last day is in [date − inactiveDays − 30, date − inactiveDays), most active first", async () => {
    // S5: 5 prior days (02-10 is before 02-15); S1: 3; S6: 2; S3: 1 (02-14 is before 02-15).
    const slipping = await getReport<Slipping>(t, "slipping", { date: "2026-03-31" });
    expect(rows(slipping)).toEqual([
      ["S5", null, at("2026-03-01"), 5],
      ["S1", "Sam One", at("2026-03-16", "20:00:00"), 3],
      ["S6", null, at("2026-03-06"), 2],
      ["S3", null, at("2026-02-15"), 1],
    ]);
    expect(
      rows(await getReport<Slipping>(t, "slipping", { date: "2026-03-31", inactiveDays: "14", limit: "2" })),
    ).toEqual(rows(slipping).slice(0, 2));
  });

  it("moves both edges with inactiveDays", async () => {
    // inactiveDays 15: L in [02-14, 03-16). S1 (03-16) no longer slips; S4 (02-14) now does.
    // Prior days in [02-14, 03-16): S5 5, S3 2 (02-14, 02-15), S6 2, S4 1.
    const slipping = await getReport<Slipping>(t, "slipping", { date: "2026-03-31", inactiveDays: "15" });
    expect(slipping.entities.map((e) => e.activeDaysInPrior30)).toEqual([5, 2, 2, 1]);
    expect(rows(slipping).sort()).toEqual([
      ["S3", null, at("2026-02-15"), 2],
      ["S4", null, at("2026-02-14"), 1],
      ["S5", null, at("2026-03-01"), 5],
      ["S6", null, at("2026-03-06"), 2],
    ]);
  });

  it("lists companies that stopped: one active member keeps a company off the list", async () => {
    // KT (S1): L 03-16, 3 days. K1 (S1, S7): S7's 03-20 keeps it active. K2 (S2): L 03-17. K3 (S3's 02-14): too old.
    // K4 (S4): too old. K5: S5's days and S3's 02-15 (context.groupId K5): {02-15, 02-20..02-23, 03-01}, 6 days.
    // K6 (S6): L 03-06, 2 days.
    const slipping = await getReport<Slipping>(t, "slipping", { level: "company", date: "2026-03-31" });
    expect(rows(slipping)).toEqual([
      ["K5", null, at("2026-03-01"), 6],
      ["KT", "Tee", at("2026-03-16", "20:00:00"), 3],
      ["K6", "Six", at("2026-03-06"), 2],
    ]);
  });
});
