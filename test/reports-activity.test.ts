import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sendBatch, setSettings } from "./helpers/fixtures.js";
import {
  visitor as a,
  companyContext as ctx,
  idsWithPrefix,
  sameEventBuilders,
  user as u,
} from "./helpers/messages.js";
import { getReport } from "./helpers/reports.js";
import { SECRET_KEY, startTestServer, type TestServer, tempDataDir } from "./helpers/server.js";

/**
 * Hand-worked fixtures for the active and new reports, company attribution, system events, bad
 * parameters and CSV. Every message carries its own timestamp (UTC, the workspace's default zone),
 * so the server's fixed clock matters only for defaults.
 */
const NOW = Date.parse("2026-04-15T12:00:00Z");
const at = (day: string, time = "10:00:00") => `${day}T${time}.000Z`;

const { track, page, identify, group } = sameEventBuilders("Report Created", idsWithPrefix("ra-"));

async function start(): Promise<TestServer> {
  return startTestServer(tempDataDir(), { now: () => NOW });
}

interface Row {
  period: string;
  count: number;
  wau?: number;
  mau?: number;
}

const series = async (t: TestServer, name: string, params: Record<string, string>) =>
  (await getReport<{ series: Row[] }>(t, name, params)).series;

/** [period, count] or [period, count, wau, mau] per row, compact to compare with a hand-worked table. */
const table = (rows: Row[]) =>
  rows.map((r) => (r.wau === undefined ? [r.period, r.count] : [r.period, r.count, r.wau, r.mau]));

/**
 * The range is 2026-02-25 (a Wednesday) to 2026-03-03 (a Tuesday): it cuts the week of Monday
 * 02-23 and the week of Monday 03-02, and it cuts February and March. Times are 10:00 UTC unless given.
 *
 *   u1  track 02-24 (before from), 02-25, 02-26 (context.groupId c4), 03-04 08:00 (after to); member of c1
 *   u2  page 02-01 only; member of nothing
 *   u3  track 03-04 00:00:00 only (the first instant after to)
 *   u4  two tracks on 02-24 (before from), both with context.groupId c3; member of nothing
 *   a5  page 02-26; a group call for c1 with only a5 (02-26 09:00); identify a5 → u5 on 03-01
 *   u5  track 03-01 11:00
 *   u6  identify and a group call for c5 on 02-27: no activity at all
 *   u7  identify and a group call for c2 on 02-10; track 03-03 23:59:59 (the last second of to)
 *   a9  a visitor never linked: page 02-25, page 02-28 with context.groupId c2
 *
 * User days: u1 {02-24, 02-25, 02-26, 03-04}, u2 {02-01}, u3 {03-04}, u4 {02-24}, u5 {02-26 via a5, 03-01},
 * u7 {03-03}; visitor a9 {02-25, 02-28}.
 * Company days (context.groupId wins; else every company of the user, whenever it joined):
 * c1 {02-24, 02-25 (u1), 02-26 (a5 → u5), 03-01 (u5), 03-04}, c2 {02-28 (a9), 03-03 (u7)}, c3 {02-24}, c4 {02-26};
 * c5 none (a group call is not activity); u2's and a9's 02-25 events go to no company.
 */
const FIXTURE = [
  group(u("u1"), "c1", at("2026-02-20"), { name: "Cee One" }),
  identify(u("u7"), at("2026-02-10"), { name: "Seven" }),
  group(u("u7"), "c2", at("2026-02-10")),
  identify(u("u6"), at("2026-02-27")),
  group(u("u6"), "c5", at("2026-02-27")),
  track(u("u1"), at("2026-02-24")),
  track(u("u1"), at("2026-02-25")),
  track(u("u1"), at("2026-02-26"), ctx("c4")),
  track(u("u1"), at("2026-03-04", "08:00:00")),
  page(u("u2"), at("2026-02-01")),
  track(u("u3"), at("2026-03-04", "00:00:00")),
  track(u("u4"), at("2026-02-24", "09:00:00"), ctx("c3")),
  track(u("u4"), at("2026-02-24", "18:00:00"), ctx("c3")),
  page(a("a5"), at("2026-02-26")),
  group(a("a5"), "c1", at("2026-02-26", "09:00:00")),
  identify({ userId: "u5", anonymousId: "a5" }, at("2026-03-01")),
  track(u("u5"), at("2026-03-01", "11:00:00")),
  track(u("u7"), at("2026-03-03", "23:59:59")),
  page(a("a9"), at("2026-02-25")),
  page(a("a9"), at("2026-02-28"), ctx("c2")),
];
const RANGE = { from: "2026-02-25", to: "2026-03-03" };

describe("active and new over a range that cuts weeks and months", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await start();
    // Two requests, the link after the visitor's page, as a real sign-up would send them.
    await sendBatch(t, FIXTURE.slice(0, 14));
    await sendBatch(t, FIXTURE.slice(14));
  });
  afterAll(() => t.close());

  it("counts active users per day with 7- and 30-day windows reaching before from", async () => {
    // count: users active that day. wau: active in [d−6, d]; mau: active in [d−29, d].
    //   02-25  count {u1}                 wau [02-19..02-25] {u1, u4}          mau [01-27..] {u1, u2, u4}
    //   02-26  count {u1, u5}             wau {u1, u4, u5}                     mau {u1, u2, u4, u5}
    //   02-27  count {} (u6 only identified)  wau {u1, u4, u5}                 mau 4
    //   02-28  count {} (a9 is a visitor) wau {u1, u4, u5}                     mau 4
    //   03-01  count {u5}                 wau [02-23..03-01] {u1, u4, u5}      mau 4
    //   03-02  count {}                   wau [02-24..03-02] u4's 02-24 is the first day: 3
    //                                     mau [02-01..03-02] u2's 02-01 is the first day: 4
    //   03-03  count {u7} (23:59:59)      wau [02-25..03-03] {u1, u5, u7}: u4 gone
    //                                     mau [02-02..03-03] {u1, u4, u5, u7}: u2 gone, u7 came
    // u3 and u1's 03-04 are after to: never counted.
    expect(table(await series(t, "active", { ...RANGE, interval: "day" }))).toEqual([
      ["2026-02-25", 1, 2, 3],
      ["2026-02-26", 2, 3, 4],
      ["2026-02-27", 0, 3, 4],
      ["2026-02-28", 0, 3, 4],
      ["2026-03-01", 1, 3, 4],
      ["2026-03-02", 0, 3, 4],
      ["2026-03-03", 1, 3, 4],
    ]);
    // The default level and interval are user and day.
    expect(table(await series(t, "active", RANGE))).toEqual(
      table(await series(t, "active", { ...RANGE, level: "user", interval: "day" })),
    );
  });

  it("counts visitors as users with includeAnonymous=true", async () => {
    // a9 adds itself on 02-25 and 02-28, to wau from 02-25 to 03-03 (its 02-25 is still in [02-25..03-03])
    // and to mau throughout. a5 is linked to u5, so it stays u5.
    //   count: 02-25 {u1, a9}, 02-26 {u1, u5}, 02-28 {a9}, 03-01 {u5}, 03-03 {u7}
    //   wau = the table above + 1; mau = the table above + 1.
    expect(table(await series(t, "active", { ...RANGE, interval: "day", includeAnonymous: "true" }))).toEqual([
      ["2026-02-25", 2, 3, 4],
      ["2026-02-26", 2, 4, 5],
      ["2026-02-27", 0, 4, 5],
      ["2026-02-28", 1, 4, 5],
      ["2026-03-01", 1, 4, 5],
      ["2026-03-02", 0, 4, 5],
      ["2026-03-03", 1, 4, 5],
    ]);
  });

  it("labels a cut week or month by its first day and counts only the part inside the range", async () => {
    // Week of Monday 02-23, cut to 02-25..03-01: u1 (02-25, 02-26), u5 (02-26, 03-01); u4's only day,
    // 02-24, is in that week but before from. Week of 03-02, cut to 03-02..03-03: u7.
    expect(table(await series(t, "active", { ...RANGE, interval: "week" }))).toEqual([
      ["2026-02-23", 2],
      ["2026-03-02", 1],
    ]);
    // February cut to 02-25..02-28: u1, u5. March cut to 03-01..03-03: u5, u7 (not u1's 03-04).
    expect(table(await series(t, "active", { ...RANGE, interval: "month" }))).toEqual([
      ["2026-02-01", 2],
      ["2026-03-01", 2],
    ]);
    // With visitors, a9 (02-25, 02-28) joins the first week and February.
    expect(table(await series(t, "active", { ...RANGE, interval: "week", includeAnonymous: "true" }))).toEqual([
      ["2026-02-23", 3],
      ["2026-03-02", 1],
    ]);
  });

  it("counts active companies by attribution: context.groupId alone, else every company of the user", async () => {
    //   02-25  {c1}          wau [02-19..02-25] {c1, c3}          mau {c1, c3}
    //   02-26  {c1, c4}      wau {c1, c3, c4}                     mau {c1, c3, c4}
    //   02-27  {}            wau 3                                mau 3
    //   02-28  {c2} (a9, a visitor, with context.groupId c2)  wau {c1, c2, c3, c4}  mau 4
    //   03-01  {c1} (u5, a member through a5's group call)    wau 4                 mau 4
    //   03-02  {}            wau [02-24..03-02] c3's 02-24 is the first day: 4      mau 4
    //   03-03  {c2} (u7)     wau [02-25..03-03] {c1, c2, c4}      mau 4
    // u1's 02-26 went to c4 only, yet c1 is active on 02-26 through u5's (a5's) page.
    expect(table(await series(t, "active", { ...RANGE, level: "company", interval: "day" }))).toEqual([
      ["2026-02-25", 1, 2, 2],
      ["2026-02-26", 2, 3, 3],
      ["2026-02-27", 0, 3, 3],
      ["2026-02-28", 1, 4, 4],
      ["2026-03-01", 1, 4, 4],
      ["2026-03-02", 0, 4, 4],
      ["2026-03-03", 1, 3, 4],
    ]);
    // Week 02-23 (02-25..03-01): c1, c2, c4; c3 only on 02-24. Week 03-02 (..03-03): c2; c1's 03-04 is after to.
    expect(table(await series(t, "active", { ...RANGE, level: "company", interval: "week" }))).toEqual([
      ["2026-02-23", 3],
      ["2026-03-02", 1],
    ]);
    // February (02-25..02-28): c1, c2, c4. March (03-01..03-03): c1, c2.
    expect(table(await series(t, "active", { ...RANGE, level: "company", interval: "month" }))).toEqual([
      ["2026-02-01", 3],
      ["2026-03-01", 2],
    ]);
  });

  it("counts new users by first activity over all data, not by identify calls", async () => {
    // First seen: u1 02-24, u4 02-24, u2 02-01 (all before from: not new in the range); u5 02-26 through
    // a5's page (not 03-01, its first event as u5); u7 03-03 (its identify on 02-10 does not count);
    // u3 03-04 (after to); u6 never. Visitor a9: 02-25.
    expect(table(await series(t, "new", { ...RANGE, interval: "day" }))).toEqual([
      ["2026-02-25", 0],
      ["2026-02-26", 1],
      ["2026-02-27", 0],
      ["2026-02-28", 0],
      ["2026-03-01", 0],
      ["2026-03-02", 0],
      ["2026-03-03", 1],
    ]);
    expect(table(await series(t, "new", { ...RANGE, interval: "week" }))).toEqual([
      ["2026-02-23", 1],
      ["2026-03-02", 1],
    ]);
    expect(table(await series(t, "new", { ...RANGE, interval: "month" }))).toEqual([
      ["2026-02-01", 1],
      ["2026-03-01", 1],
    ]);
    expect(table(await series(t, "new", { ...RANGE, interval: "week", includeAnonymous: "true" }))).toEqual([
      ["2026-02-23", 2],
      ["2026-03-02", 1],
    ]);
  });

  it("counts new companies by first attributed activity, not by group calls", async () => {
    // First seen: c1 02-24 and c3 02-24 (before from); c4 02-26; c2 02-28 (a9's page; u7's group call on
    // 02-10 does not count); c5 never (group calls only).
    expect(table(await series(t, "new", { ...RANGE, level: "company", interval: "day" }))).toEqual([
      ["2026-02-25", 0],
      ["2026-02-26", 1],
      ["2026-02-27", 0],
      ["2026-02-28", 1],
      ["2026-03-01", 0],
      ["2026-03-02", 0],
      ["2026-03-03", 0],
    ]);
    expect(table(await series(t, "new", { ...RANGE, level: "company", interval: "week" }))).toEqual([
      ["2026-02-23", 2],
      ["2026-03-02", 0],
    ]);
    expect(table(await series(t, "new", { ...RANGE, level: "company", interval: "month" }))).toEqual([
      ["2026-02-01", 2],
      ["2026-03-01", 0],
    ]);
  });

  it("answers CSV with ?format=csv and with Accept: text/csv", async () => {
    const params = new URLSearchParams({ ...RANGE, interval: "week", format: "csv" });
    const res = await fetch(`${t.url}/api/v1/reports/active?${params}`, {
      headers: { authorization: `Bearer ${SECRET_KEY}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/csv/);
    // The weekly user rows worked out above.
    expect((await res.text()).trim().split(/\r?\n/)).toEqual(["period,count", "2026-02-23,2", "2026-03-02,1"]);

    const daily = await fetch(`${t.url}/api/v1/reports/active?${new URLSearchParams(RANGE)}`, {
      headers: { authorization: `Bearer ${SECRET_KEY}`, accept: "text/csv" },
    });
    const lines = (await daily.text()).trim().split(/\r?\n/);
    expect(lines[0]).toBe("period,count,wau,mau");
    expect(lines[1]).toBe("2026-02-25,1,2,3");
    expect(lines).toHaveLength(8);
  });
});

describe("company attribution", () => {
  it("follows context.groupId, memberships at any time, and group calls made by an anonymousId", async () => {
    const t = await start();
    try {
      await sendBatch(t, [
        // u1 joins c1 on 03-01 and c2 only on 03-08, after its events: membership holds at any time.
        group(u("u1"), "c1", at("2026-03-01"), { name: "One" }),
        group(u("u1"), "c2", at("2026-03-08"), { name: "Two" }),
        track(u("u1"), at("2026-03-02")),
        track(u("u1"), at("2026-03-03"), ctx("c2")),
        track(u("u1"), at("2026-03-04"), ctx("c9")),
        // a2 joins c3 before it is linked to u2; the link then makes u2 a member of c3.
        group(a("a2"), "c3", at("2026-03-01")),
        page(a("a2"), at("2026-03-02")),
        identify({ userId: "u2", anonymousId: "a2" }, at("2026-03-05")),
        track(u("u2"), at("2026-03-06")),
        // v3 is never linked: its group call makes nobody a member, and its events without context.groupId
        // go to no company; with context.groupId c5, to c5.
        group(a("v3"), "c4", at("2026-03-01")),
        page(a("v3"), at("2026-03-03")),
        page(a("v3"), at("2026-03-04"), ctx("c5")),
        group(u("u6"), "c6", at("2026-03-01"), { name: "Six" }),
      ]);
      // Days in the 10 days ending 03-10:
      //   c1 {03-02}            u1's event without context.groupId
      //   c2 {03-02, 03-03}     the same event, and the one with context.groupId c2
      //   c9 {03-04}            context.groupId of a company u1 is not a member of
      //   c3 {03-02, 03-06}     a2's page and u2's track, both u2's
      //   c5 {03-04}            a visitor's event with context.groupId
      //   c4, c6: nothing attributed.
      const power = await getReport<{
        histogram: { activeDays: number; entities: number }[];
        top: { id: string; name: string | null; activeDays: number }[];
      }>(t, "power", { level: "company", days: "10", date: "2026-03-10" });
      expect(power.histogram.slice(0, 3)).toEqual([
        { activeDays: 1, entities: 3 },
        { activeDays: 2, entities: 2 },
        { activeDays: 3, entities: 0 },
      ]);
      const byId = (rows: { id: string }[]) => [...rows].sort((x, y) => x.id.localeCompare(y.id));
      expect(byId(power.top)).toEqual([
        { id: "c1", name: "One", activeDays: 1 },
        { id: "c2", name: "Two", activeDays: 2 },
        { id: "c3", name: null, activeDays: 2 },
        { id: "c5", name: null, activeDays: 1 },
        { id: "c9", name: null, activeDays: 1 },
      ]);
      expect(power.top.map((r) => r.activeDays)).toEqual([2, 2, 1, 1, 1]);
      // Per day: 03-02 {c1, c2, c3}, 03-03 {c2}, 03-04 {c9, c5}, 03-06 {c3}.
      expect(
        table(await series(t, "active", { level: "company", interval: "day", from: "2026-03-02", to: "2026-03-06" })),
      ).toEqual([
        ["2026-03-02", 3, 3, 3],
        ["2026-03-03", 1, 3, 3],
        ["2026-03-04", 2, 5, 5],
        ["2026-03-05", 0, 5, 5],
        ["2026-03-06", 1, 5, 5],
      ]);
    } finally {
      await t.close();
    }
  });
});

describe("system events", () => {
  it("leaves events named in systemEvents out of activity, for stored and for later events", async () => {
    const t = await start();
    try {
      await sendBatch(t, [
        group(u("u2"), "c1", at("2026-03-01")),
        group(u("u1"), "c2", at("2026-03-01")),
        track(u("u1"), at("2026-03-02"), {}, "Heartbeat"),
        track(u("u1"), at("2026-03-03"), {}, "Report Created"),
        track(u("u2"), at("2026-03-02"), {}, "Heartbeat"),
        // A page named like the system event is still activity: systemEvents names track events.
        page(u("u3"), at("2026-03-02"), {}, "Heartbeat"),
      ]);
      const range = { interval: "day", from: "2026-03-02", to: "2026-03-03" };
      const counts = async (name: string, level = "user") =>
        (await series(t, name, { ...range, level })).map((r) => r.count);
      // No system events yet: 03-02 {u1, u2, u3}, 03-03 {u1}; companies 03-02 {c1, c2}, 03-03 {c2}.
      expect(await counts("active")).toEqual([3, 1]);
      expect(await counts("active", "company")).toEqual([2, 1]);
      expect(await counts("new")).toEqual([3, 0]);

      await setSettings(t, { systemEvents: ["Heartbeat"] });
      // A Heartbeat sent after the setting is not activity either.
      await sendBatch(t, [track(u("u4"), at("2026-03-03"), {}, "Heartbeat")]);
      // 03-02 {u3}, 03-03 {u1}; u2 and u4 have no activity at all. Companies: c2 on 03-03 only; c1 never.
      // First seen: u3 03-02, u1 03-03 (its 03-02 Heartbeat no longer counts).
      expect(await counts("active")).toEqual([1, 1]);
      expect(await counts("active", "company")).toEqual([0, 1]);
      expect(await counts("new")).toEqual([1, 1]);
      expect(await counts("new", "company")).toEqual([0, 1]);

      await setSettings(t, { systemEvents: [] });
      // Everything counts again, u4's Heartbeat too: 03-02 {u1, u2, u3}, 03-03 {u1, u4}.
      expect(await counts("active")).toEqual([3, 2]);
      expect(await counts("new")).toEqual([3, 1]);
      expect(await counts("active", "company")).toEqual([2, 1]);
    } finally {
      await t.close();
    }
  });
});

describe("bad parameters", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await start();
    await sendBatch(t, [track(u("u1"), at("2026-03-02"))]);
  });
  afterAll(() => t.close());

  const get = async (route: string) => {
    const res = await fetch(`${t.url}${route}`, { headers: { authorization: `Bearer ${SECRET_KEY}` } });
    return { status: res.status, body: (await res.json()) as { parameter?: string; message: string } };
  };

  it.each([
    ["/api/v1/reports/active?from=2026-02-30&to=2026-03-03", "from"],
    ["/api/v1/reports/active?from=2026-03-01&to=2026-13-01", "to"],
    ["/api/v1/reports/new?from=2026-03-01", "to"],
    ["/api/v1/reports/active?from=2026-03-01&to=2026-03-03&level=team", "level"],
    ["/api/v1/reports/active?from=2026-03-01&to=2026-03-03&interval=year", "interval"],
    ["/api/v1/reports/new?from=2026-03-01&to=2026-03-03&interval=hour", "interval"],
    ["/api/v1/reports/lifecycle?from=2026-03-01&to=2026-03-03&period=quarter", "period"],
    ["/api/v1/reports/lifecycle?from=2026-03-01&to=2026-03-03&level=users", "level"],
    ["/api/v1/reports/power?date=2026-02-29", "date"],
    ["/api/v1/reports/power?date=2026-03-01&days=0", "days"],
    ["/api/v1/reports/slipping?date=2026-03-01&inactiveDays=soon", "inactiveDays"],
    ["/api/v1/reports/active?from=2026-03-01&to=2026-03-03&includeAnonymous=maybe", "includeAnonymous"],
  ])("%s is a 400 naming %s", async (route, parameter) => {
    const { status, body } = await get(route);
    expect(status).toBe(400);
    expect(body.parameter).toBe(parameter);
    expect(body.message).toContain(parameter);
  });

  it("refuses from after to, naming one of them", async () => {
    const { status, body } = await get("/api/v1/reports/active?from=2026-03-04&to=2026-03-03");
    expect(status).toBe(400);
    expect(["from", "to"]).toContain(body.parameter);
  });

  it("takes an unknown event name as an event nobody did, not as an error", async () => {
    const feature = await get("/api/v1/reports/feature?event=No%20Such%20Event&from=2026-03-01&to=2026-03-03");
    expect(feature.status).toBe(200);
    // u1 is active on 03-02 and never did the event.
    expect(feature.body).toMatchObject({ active: 1, used: 0, adopted: 0, returned: 0, adoptionRate: 0 });
    const retention = await get(
      "/api/v1/reports/retention?period=day&from=2026-03-01&to=2026-03-03&startEvent=No%20Such%20Event",
    );
    expect(retention.status).toBe(200);
    expect(retention.body).toMatchObject({ cohorts: [] });
  });
});
