import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sendBatch, serversClosedAfterEach, setSettings } from "./helpers/fixtures.js";
import { idsWithPrefix, messageBuilders, user } from "./helpers/messages.js";
import { getReport } from "./helpers/reports.js";
import { putSettings, query, startTestServer, type TestServer, tempDataDir } from "./helpers/server.js";

/**
 * Hand-worked fixtures for calendar edges: a year boundary inside ISO week 53 of 2026 (Monday
 * 2026-12-28 to Sunday 2027-01-03), and local days in time zones across daylight-saving changes.
 */
const NOW = Date.parse("2027-02-15T12:00:00Z");
const at = (day: string, time = "10:00:00") => `${day}T${time}.000Z`;

const messages = messageBuilders(idsWithPrefix("rc-"));
const track = (userId: string, timestamp: string, extra: object = {}) =>
  messages.track(user(userId), "Report Viewed", timestamp, extra);
const group = (userId: string, groupId: string, timestamp: string) => messages.group(user(userId), groupId, timestamp);

async function setZone(t: TestServer, timeZone: string): Promise<void> {
  await setSettings(t, { timeZone });
  expect(await query<{ timeZone: string }>(t.url, "/api/v1/settings")).toMatchObject({ timeZone });
}

interface Row {
  period: string;
  count: number;
  wau?: number;
  mau?: number;
  new?: number;
  returning?: number;
  resurrecting?: number;
  dormant?: number;
}
const series = async (t: TestServer, name: string, params: Record<string, string>) =>
  (await getReport<{ series: Row[] }>(t, name, params)).series;
const counts = async (t: TestServer, name: string, params: Record<string, string>) =>
  (await series(t, name, params)).map((r) => [r.period, r.count]);

describe("ISO week 53 and the turn of the year", () => {
  /**
   * UTC. 2026-12-28 is a Monday; 2027-01-01 a Friday; 2027-01-04 a Monday.
   *   Y1  12-27 (Sun, week 12-21), 12-28 (Mon, week 12-28), 2027-01-03 (Sun, week 12-28), 2027-01-04 (Mon)
   *   Y2  12-31, 2027-01-01
   *   Y3  2027-01-02, 2027-01-05
   *   Y4  2026-11-30, 12-29
   * Members: Z1 {Y1, Y2}, Z2 {Y3, Y4}.
   */
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer(tempDataDir(), { now: () => NOW });
    await sendBatch(t, [
      group("Y1", "Z1", at("2026-11-01")),
      group("Y2", "Z1", at("2026-11-01")),
      group("Y3", "Z2", at("2026-11-01")),
      group("Y4", "Z2", at("2026-11-01")),
      ...["2026-12-27", "2026-12-28", "2027-01-03", "2027-01-04"].map((d) => track("Y1", at(d))),
      ...["2026-12-31", "2027-01-01"].map((d) => track("Y2", at(d))),
      ...["2027-01-02", "2027-01-05"].map((d) => track("Y3", at(d))),
      ...["2026-11-30", "2026-12-29"].map((d) => track("Y4", at(d))),
    ]);
  });
  afterAll(() => t.close());

  const weeks = { interval: "week", from: "2026-12-21", to: "2027-01-10" };
  const months = { interval: "month", from: "2026-12-01", to: "2027-01-31" };

  it("counts the week that spans the new year once, labelled by its Monday in December", async () => {
    // Week 12-21: Y1 (12-27). Week 12-28 (12-28..01-03): Y1, Y2, Y3, Y4. Week 01-04: Y1, Y3.
    expect(await counts(t, "active", weeks)).toEqual([
      ["2026-12-21", 1],
      ["2026-12-28", 4],
      ["2027-01-04", 2],
    ]);
    // Companies: week 12-21 {Z1}; 12-28 {Z1, Z2}; 01-04 {Z1 (Y1), Z2 (Y3)}.
    expect(await counts(t, "active", { ...weeks, level: "company" })).toEqual([
      ["2026-12-21", 1],
      ["2026-12-28", 2],
      ["2027-01-04", 2],
    ]);
    // A range starting on New Year's Day cuts week 53: still labelled 2026-12-28; 01-01..01-03 holds Y2, Y3, Y1.
    expect(await counts(t, "active", { interval: "week", from: "2027-01-01", to: "2027-01-03" })).toEqual([
      ["2026-12-28", 3],
    ]);
    // New: Y1 (12-27) in week 12-21; Y2 (12-31) and Y3 (01-02) in week 12-28; Y4 first seen 11-30.
    expect(await counts(t, "new", weeks)).toEqual([
      ["2026-12-21", 1],
      ["2026-12-28", 2],
      ["2027-01-04", 0],
    ]);
    // Z1 first seen 12-27 (week 12-21); Z2 11-30.
    expect(await counts(t, "new", { ...weeks, level: "company" })).toEqual([
      ["2026-12-21", 1],
      ["2026-12-28", 0],
      ["2027-01-04", 0],
    ]);
  });

  it("counts months across the year boundary", async () => {
    // December: Y1, Y2, Y4. January: Y1, Y2, Y3. Companies: both in each month.
    expect(await counts(t, "active", months)).toEqual([
      ["2026-12-01", 3],
      ["2027-01-01", 3],
    ]);
    expect(await counts(t, "active", { ...months, level: "company" })).toEqual([
      ["2026-12-01", 2],
      ["2027-01-01", 2],
    ]);
    // New: Y1 and Y2 in December, Y3 in January; companies: Z1 in December.
    expect(await counts(t, "new", months)).toEqual([
      ["2026-12-01", 2],
      ["2027-01-01", 1],
    ]);
    expect(await counts(t, "new", { ...months, level: "company" })).toEqual([
      ["2026-12-01", 1],
      ["2027-01-01", 0],
    ]);
  });

  it("keeps 7- and 30-day windows running across the new year", async () => {
    //   12-31  {Y2}  wau [12-25..12-31] {Y1, Y2, Y4}      mau [12-02..12-31] {Y1, Y2, Y4} (Y4 by 12-29)
    //   01-01  {Y2}  wau [12-26..01-01] {Y1, Y2, Y4}      mau {Y1, Y2, Y4}
    //   01-02  {Y3}  wau [12-27..01-02] {Y1 (12-27 is the first day), Y2, Y3, Y4}   mau 4
    const rows = await series(t, "active", { interval: "day", from: "2026-12-31", to: "2027-01-02" });
    expect(rows.map((r) => [r.period, r.count, r.wau, r.mau])).toEqual([
      ["2026-12-31", 1, 3, 3],
      ["2027-01-01", 1, 3, 3],
      ["2027-01-02", 1, 4, 4],
    ]);
  });

  it("classifies lifecycle periods across the year boundary", async () => {
    const lifecycle = async (params: Record<string, string>) =>
      (await series(t, "lifecycle", params)).map((r) => [r.period, r.new, r.returning, r.resurrecting, r.dormant]);
    // Months, November before the range: Y4 only.
    //   December: active {Y1, Y2, Y4}: new Y1, Y2; returning Y4.
    //   January: active {Y1, Y2, Y3}, before {Y1, Y2, Y4}: new Y3; returning Y1, Y2; dormant Y4.
    expect(await lifecycle({ period: "month", from: "2026-12-01", to: "2027-01-31" })).toEqual([
      ["2026-12-01", 2, 1, 0, 0],
      ["2027-01-01", 1, 2, 0, -1],
    ]);
    // Companies: December: Z1 new (12-27), Z2 returning (November). January: both returning.
    expect(await lifecycle({ level: "company", period: "month", from: "2026-12-01", to: "2027-01-31" })).toEqual([
      ["2026-12-01", 1, 1, 0, 0],
      ["2027-01-01", 0, 2, 0, 0],
    ]);
    // Weeks from 12-28; week 12-21 before the range holds Y1 only.
    //   12-28: active {Y1, Y2, Y3, Y4}: new Y2, Y3; returning Y1; resurrecting Y4 (first seen 11-30).
    //   01-04: active {Y1, Y3}, before all four: returning Y1, Y3; dormant Y2, Y4.
    expect(await lifecycle({ period: "week", from: "2026-12-28", to: "2027-01-10" })).toEqual([
      ["2026-12-28", 2, 1, 1, 0],
      ["2027-01-04", 0, 2, 0, -2],
    ]);
    // Companies: 12-28: Z1 returning (12-27), Z2 resurrecting (11-30, nothing in week 12-21). 01-04: both returning.
    expect(await lifecycle({ level: "company", period: "week", from: "2026-12-28", to: "2027-01-10" })).toEqual([
      ["2026-12-28", 0, 1, 1, 0],
      ["2027-01-04", 0, 2, 0, 0],
    ]);
  });
});

/**
 * One event per user, each with context.groupId "co-" + user, so company counts equal user counts.
 * Europe/Paris is UTC+1 until 2026-03-29 01:00 UTC, then UTC+2: its 03-29 is 23 hours long,
 * [03-28T23:00Z, 03-29T22:00Z). America/Los_Angeles is UTC−8 until 2026-03-08 10:00 UTC, then UTC−7:
 * its 03-08 is [03-08T08:00Z, 03-09T07:00Z).
 *
 *   user  instant (UTC)        UTC day  Paris                 Los Angeles
 *   P1    2026-03-28 22:30     03-28    03-28 23:30 (+1)      03-28 15:30
 *   P2    2026-03-28 23:30     03-28    03-29 00:30 (+1)      03-28 16:30
 *   P3    2026-03-29 21:30     03-29    03-29 23:30 (+2)      03-29 14:30
 *   P4    2026-03-29 22:30     03-29    03-30 00:30 (+2)      03-29 15:30
 *   L1    2026-03-08 07:30     03-08    03-08 08:30           03-07 23:30 (−8)
 *   L2    2026-03-08 08:30     03-08    03-08 09:30           03-08 00:30 (−8)
 *   L3    2026-03-09 06:30     03-09    03-09 07:30           03-08 23:30 (−7)
 *   L4    2026-03-09 07:30     03-09    03-09 08:30           03-09 00:30 (−7)
 *   M1    2026-03-31 22:30     03-31    04-01 00:30 (+2)      03-31 15:30
 *   M2    2026-04-01 03:00     04-01    04-01 05:00           03-31 20:00
 * Mondays: 03-02, 03-09, 03-16, 03-23, 03-30.
 */
const INSTANTS: Record<string, string> = {
  P1: "2026-03-28T22:30:00.000Z",
  P2: "2026-03-28T23:30:00.000Z",
  P3: "2026-03-29T21:30:00.000Z",
  P4: "2026-03-29T22:30:00.000Z",
  L1: "2026-03-08T07:30:00.000Z",
  L2: "2026-03-08T08:30:00.000Z",
  L3: "2026-03-09T06:30:00.000Z",
  L4: "2026-03-09T07:30:00.000Z",
  M1: "2026-03-31T22:30:00.000Z",
  M2: "2026-04-01T03:00:00.000Z",
};
const ZONE_EVENTS = Object.entries(INSTANTS).map(([user, ts]) =>
  track(user, ts, { context: { groupId: `co-${user}` } }),
);

/** What each zone makes of ZONE_EVENTS, worked out in the table above. */
const EXPECTED = {
  UTC: {
    // Users active on one local day, from the power report with a 1-day window.
    days: {
      "2026-03-07": [],
      "2026-03-08": ["L1", "L2"],
      "2026-03-09": ["L3", "L4"],
      "2026-03-28": ["P1", "P2"],
      "2026-03-29": ["P3", "P4"],
      "2026-03-30": [],
    },
    weeks: [2, 2, 0, 4, 0],
    months: [9, 1],
  },
  "Europe/Paris": {
    days: {
      "2026-03-07": [],
      "2026-03-08": ["L1", "L2"],
      "2026-03-09": ["L3", "L4"],
      "2026-03-28": ["P1"],
      "2026-03-29": ["P2", "P3"],
      "2026-03-30": ["P4"],
    },
    // P4 is on Monday 03-30: the week of 03-30, which the range cuts to that Monday.
    weeks: [2, 2, 0, 3, 1],
    // M1 is on 04-01 in Paris.
    months: [8, 2],
  },
  "America/Los_Angeles": {
    days: {
      "2026-03-07": ["L1"],
      "2026-03-08": ["L2", "L3"],
      "2026-03-09": ["L4"],
      "2026-03-28": ["P1", "P2"],
      "2026-03-29": ["P3", "P4"],
      "2026-03-30": [],
    },
    // L3 is on Sunday 03-08: the week of 03-02.
    weeks: [3, 1, 0, 4, 0],
    // M2 is on 03-31 in Los Angeles.
    months: [10, 0],
  },
} as const;
type Zone = keyof typeof EXPECTED;

async function activeOn(t: TestServer, date: string, level = "user"): Promise<string[]> {
  const power = await getReport<{ top: { id: string }[] }>(t, "power", { level, days: "1", date });
  return power.top.map((r) => (level === "company" ? r.id.replace(/^co-/, "") : r.id)).sort();
}

/** Checks every report that depends on local days against the expected table of a zone. */
async function expectZone(t: TestServer, zone: Zone): Promise<void> {
  const expected = EXPECTED[zone];
  for (const [date, users] of Object.entries(expected.days)) {
    expect(await activeOn(t, date), `${zone} ${date}`).toEqual(users);
    expect(await activeOn(t, date, "company"), `${zone} ${date} companies`).toEqual(users);
  }
  // Each user has one event, so its first seen is its only day: new per day equals active per day.
  const dayCounts = (from: string, to: string) =>
    Object.entries(expected.days)
      .filter(([d]) => d >= from && d <= to)
      .map(([d, users]) => [d, users.length]);
  for (const [from, to] of [
    ["2026-03-07", "2026-03-09"],
    ["2026-03-28", "2026-03-30"],
  ] as const) {
    expect(await counts(t, "active", { interval: "day", from, to }), `${zone} active ${from}`).toEqual(
      dayCounts(from, to),
    );
    expect(await counts(t, "new", { interval: "day", from, to }), `${zone} new ${from}`).toEqual(dayCounts(from, to));
  }
  const mondays = ["2026-03-02", "2026-03-09", "2026-03-16", "2026-03-23", "2026-03-30"];
  const weeks = { interval: "week", from: "2026-03-02", to: "2026-03-30" };
  const weekly = mondays.map((m, i) => [m, expected.weeks[i]]);
  expect(await counts(t, "active", weeks), `${zone} weeks`).toEqual(weekly);
  expect(await counts(t, "active", { ...weeks, level: "company" }), `${zone} company weeks`).toEqual(weekly);
  expect(await counts(t, "new", weeks), `${zone} new weeks`).toEqual(weekly);
  const monthly = [
    ["2026-03-01", expected.months[0]],
    ["2026-04-01", expected.months[1]],
  ];
  const months = { interval: "month", from: "2026-03-01", to: "2026-04-30" };
  expect(await counts(t, "active", months), `${zone} months`).toEqual(monthly);
  expect(await counts(t, "new", { ...months, level: "company" }), `${zone} company new months`).toEqual(monthly);
}

describe("time zones", () => {
  const start = serversClosedAfterEach(NOW);

  it("rebuilds the local days of stored events when the zone changes", async () => {
    const t = await start();
    await sendBatch(t, ZONE_EVENTS);
    await expectZone(t, "UTC");
    await setZone(t, "Europe/Paris");
    await expectZone(t, "Europe/Paris");
    await setZone(t, "America/Los_Angeles");
    await expectZone(t, "America/Los_Angeles");
    await setZone(t, "UTC");
    await expectZone(t, "UTC");
  });

  it("puts events that arrive after the setting, and after a restart, on the zone's local days", async () => {
    const dataDir = tempDataDir();
    let t = await start({ dataDir });
    await setZone(t, "America/Los_Angeles");
    await sendBatch(t, ZONE_EVENTS);
    await expectZone(t, "America/Los_Angeles");

    await t.close();
    t = await start({ dataDir });
    expect(await query<{ timeZone: string }>(t.url, "/api/v1/settings")).toMatchObject({
      timeZone: "America/Los_Angeles",
    });
    await expectZone(t, "America/Los_Angeles");
    // X at 03-30 06:59:59 UTC is Sunday 03-29 23:59:59 in Los Angeles (−7), Monday 08:59:59 in Paris.
    await sendBatch(t, [track("X", "2026-03-30T06:59:59.000Z")]);
    expect(await activeOn(t, "2026-03-29")).toEqual(["P3", "P4", "X"]);
    await setZone(t, "Europe/Paris");
    expect(await activeOn(t, "2026-03-29")).toEqual(["P2", "P3"]);
    expect(await activeOn(t, "2026-03-30")).toEqual(["P4", "X"]);
  });

  it("takes today in the workspace's zone as the default date", async () => {
    // 2026-03-30 05:00 UTC is 03-29 22:00 in Los Angeles and 03-30 07:00 in Paris.
    const t = await start({ clock: () => Date.parse("2026-03-30T05:00:00Z") });
    // Z's only day is 03-28 in all three zones. With inactiveDays 1, Z slips when 03-28 < date − 1:
    // on 03-30, not on 03-29.
    await sendBatch(t, [track("Z", "2026-03-28T12:00:00.000Z")]);
    const dates = async () => [
      (await query<{ date: string }>(t.url, "/api/v1/reports/power?days=7")).date,
      (await query<{ entities: { id: string }[] }>(t.url, "/api/v1/reports/slipping?inactiveDays=1")).entities.map(
        (e) => e.id,
      ),
    ];
    expect(await dates()).toEqual(["2026-03-30", ["Z"]]);
    await setZone(t, "America/Los_Angeles");
    expect(await dates()).toEqual(["2026-03-29", []]);
    await setZone(t, "Europe/Paris");
    expect(await dates()).toEqual(["2026-03-30", ["Z"]]);
  });

  it("refuses a zone that does not exist", async () => {
    const t = await start();
    const res = await putSettings(t.url, { timeZone: "Europe/Atlantis" });
    expect(res.status).toBe(400);
    expect((res.body as { message: string }).message).toContain("timeZone");
  });
});
