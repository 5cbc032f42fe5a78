import { describe, expect, it } from "vitest";
import { sendBatch, serversClosedAfterEach, setSettings } from "./helpers/fixtures.js";
import { messageBuilders, user } from "./helpers/messages.js";
import { expectBadParameter, getReport } from "./helpers/reports.js";
import { SECRET_KEY, type TestServer } from "./helpers/server.js";

/**
 * Retention on hand-worked fixtures. Every expected number below is derived in the comment next to
 * it from the spec's definitions: cohort = period of first seen (or first startEvent, over all
 * data), only cohorts whose period starts in [from, to]; offset k counts entities with activity
 * (or returnEvent) in period cohort+k (bounded) or in cohort+k or any later period up to `to`
 * (unbounded); an offset k ≥ 1 whose period ends after `to` is null.
 */
const NOW = Date.parse("2027-06-01T12:00:00Z");

interface Retention {
  level: string;
  period: string;
  mode: string;
  cohorts: { period: string; size: number; counts: (number | null)[]; rates: (number | null)[] }[];
}

const start = serversClosedAfterEach(NOW);

const messages = messageBuilders();
/** A track call by a user; `ts` is a full ISO instant or a day (at 10:00 UTC). */
const track = (userId: string, event: string, ts: string, context?: Record<string, unknown>) =>
  messages.track(user(userId), event, ts.length === 10 ? `${ts}T10:00:00.000Z` : ts, context ? { context } : {});
const group = (userId: string, groupId: string, day: string) =>
  messages.group(user(userId), groupId, `${day}T09:00:00.000Z`);

const retention = (t: TestServer, params: Record<string, string>) => getReport<Retention>(t, "retention", params);

/** The cohorts reduced to what the comments work out: period, and the counts (offset 0 is the size). */
const table = (r: Retention) => r.cohorts.map((c) => [c.period, ...c.counts]);

describe("retention by week", () => {
  /*
   * Range 2026-01-07 (Wed) .. 2026-02-08 (Sun). Weeks: W0 = 01-05 (starts before `from`: no cohort),
   * W1 = 01-12..01-18, W2 = 01-19..01-25, W3 = 01-26..02-01, W4 = 02-02..02-08 (ends on `to`),
   * W5 = 02-09..02-15 (ends after `to`).
   *   uPre first seen 2025-12-20, active in W1: first seen before the range, in no cohort.
   *   u0   first seen 01-07 (W0), active in W1: cohort W0 starts before `from`, so no cohort.
   *   u1   first 01-12 (W1); active 01-20 (W2, k1), 02-03 (W4, k3).
   *   u2   first 01-13 (W1); active 01-27 (W3, k2).
   *   u3   first 01-14 (W1); never again.
   *   u4   first 01-19 (W2); active 01-21 (W2 itself, offset 0), 02-04 (W4, k2).
   *   u5   first 01-22 (W2); active 02-08 (W4, k2; the last day of `to`), 02-09 (W5, after `to`).
   *   u6   first 02-05 (W4); active 02-10 (after `to`).
   *   v1   a visitor (never linked) first seen in W1: not a user.
   *   Nobody is first seen in W3: that cohort has size 0 and is left out.
   */
  async function fixture(t: TestServer) {
    await sendBatch(t, [
      track("uPre", "Open", "2025-12-20"),
      track("uPre", "Open", "2026-01-13"),
      track("u0", "Open", "2026-01-07"),
      track("u0", "Open", "2026-01-12"),
      track("u1", "Open", "2026-01-12"),
      track("u1", "Open", "2026-01-20"),
      track("u1", "Open", "2026-02-03"),
      track("u2", "Open", "2026-01-13"),
      track("u2", "Open", "2026-01-27"),
      track("u3", "Open", "2026-01-14"),
      track("u4", "Open", "2026-01-19"),
      track("u4", "Open", "2026-01-21"),
      track("u4", "Open", "2026-02-04"),
      track("u5", "Open", "2026-01-22"),
      track("u5", "Open", "2026-02-08T23:59:59.000Z"),
      track("u5", "Open", "2026-02-09"),
      track("u6", "Open", "2026-02-05"),
      track("u6", "Open", "2026-02-10"),
      { type: "page", anonymousId: "v1", name: "Home", timestamp: "2026-01-12T10:00:00.000Z", messageId: "v1p" },
      { type: "page", anonymousId: "v1", name: "Home", timestamp: "2026-01-20T10:00:00.000Z", messageId: "v1q" },
    ]);
  }
  const range = { period: "week", from: "2026-01-07", to: "2026-02-08", periods: "4" };

  it("bounded: counts per offset, null where the period ends after `to`, empty cohorts left out", async () => {
    const t = await start();
    await fixture(t);
    const r = await retention(t, { ...range, mode: "bounded" });
    expect([r.level, r.period, r.mode]).toEqual(["user", "week", "bounded"]);
    expect(table(r)).toEqual([
      // W1 {u1,u2,u3}: k1 (W2) u1; k2 (W3) u2; k3 (W4, ends 02-08 = to) u1.
      ["2026-01-12", 3, 1, 1, 1],
      // W2 {u4,u5}: k1 (W3) nobody; k2 (W4) u4 and u5; k3 (W5 ends 02-15 > to) null.
      ["2026-01-19", 2, 0, 2, null],
      // W3: nobody first seen, left out. W4 {u6}: W5.. end after `to`, all null.
      ["2026-02-02", 1, null, null, null],
    ]);
    // rates = counts / size; offset 0 is always the whole cohort.
    expect(r.cohorts.map((c) => c.rates)).toEqual([
      [1, 1 / 3, 1 / 3, 1 / 3],
      [1, 0, 1, null],
      [1, null, null, null],
    ]);
  });

  it("unbounded: returned in period cohort+k or any later one, never below bounded", async () => {
    const t = await start();
    await fixture(t);
    const r = await retention(t, { ...range, mode: "unbounded" });
    expect(table(r)).toEqual([
      // W1: k1 = active in W2..W4: u1 (W2, W4), u2 (W3) → 2; k2 = W3..W4: u1 (W4), u2 (W3) → 2; k3 = W4: u1 → 1.
      ["2026-01-12", 3, 2, 2, 1],
      // W2: k1 = W3..W4: u4 (W4), u5 (W4) → 2; k2 = W4: 2; k3 null (u5's 02-09 is after `to`).
      ["2026-01-19", 2, 2, 2, null],
      ["2026-02-02", 1, null, null, null],
    ]);
    const bounded = await retention(t, { ...range, mode: "bounded" });
    for (const [i, c] of r.cohorts.entries()) {
      c.counts.forEach((n, k) => {
        const b = bounded.cohorts[i]?.counts[k];
        if (n === null) expect(b).toBeNull();
        else expect(n).toBeGreaterThanOrEqual(b as number);
      });
    }
  });

  it("unbounded counts returns in periods beyond the offsets shown", async () => {
    const t = await start();
    await fixture(t);
    // Only offsets 0 and 1 are shown, but "cohort+1 or any later period" still reaches W4.
    const r = await retention(t, { ...range, mode: "unbounded", periods: "2" });
    expect(table(r)).toEqual([
      // W1: k1 = active in W2, W3 or W4: u1, u2 → 2.
      ["2026-01-12", 3, 2],
      // W2: k1 = active in W3 or W4: u4, u5 → 2.
      ["2026-01-19", 2, 2],
      // W4: k1 is W5, ending after `to`: null.
      ["2026-02-02", 1, null],
    ]);
    // Bounded with two offsets is the first two columns of the four-offset answer.
    const bounded = await retention(t, { ...range, mode: "bounded", periods: "2" });
    expect(table(bounded)).toEqual([
      ["2026-01-12", 3, 1],
      ["2026-01-19", 2, 0],
      ["2026-02-02", 1, null],
    ]);
  });

  it("answers CSV with one column per offset, null as empty", async () => {
    const t = await start();
    await fixture(t);
    const res = await fetch(
      `${t.url}/api/v1/reports/retention?${new URLSearchParams({ ...range, mode: "bounded", format: "csv" })}`,
      { headers: { authorization: `Bearer ${SECRET_KEY}` } },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/csv/);
    // The same numbers as the bounded JSON answer above.
    expect((await res.text()).trim().split("\n")).toEqual([
      "period,size,offset0,offset1,offset2,offset3",
      "2026-01-12,3,3,1,1,1",
      "2026-01-19,2,2,0,2,",
      "2026-02-02,1,1,,,",
    ]);
  });
});

describe("retention by month, user and company level, across a year boundary", () => {
  /*
   * Range 2025-11-01 .. 2026-02-28 (the last day of February): months Nov, Dec, Jan, Feb; March ends after `to`.
   * Memberships (group calls are not activity; a membership counts whenever it was made):
   *   uA ∈ {cA, cB}; uB ∈ {cB} (joined only in January); uD ∈ {cD}; uC ∈ none.
   * Activity:
   *   e1 uA 2025-11-10, no context        → users: uA;  companies: cA, cB
   *   e2 uB 2025-12-15, no context        → uB;         cB
   *   e3 uC 2025-12-20, context cC        → uC;         cC
   *   e4 uA 2026-01-05, context cA        → uA;         cA only
   *   e5 uC 2026-02-03, context cC        → uC;         cC
   *   e6 uB 2026-03-02, no context        → after `to`: never counted
   *   e7 uD 2025-10-20, e8 uD 2025-11-05  → uD, cD first seen in October, before the range: no cohort
   */
  async function fixture(t: TestServer) {
    await sendBatch(t, [
      group("uA", "cA", "2025-11-01"),
      group("uA", "cB", "2025-11-01"),
      group("uD", "cD", "2025-10-01"),
      track("uA", "Open", "2025-11-10"),
      track("uB", "Open", "2025-12-15"),
      track("uC", "Open", "2025-12-20", { groupId: "cC" }),
      track("uA", "Open", "2026-01-05", { groupId: "cA" }),
      group("uB", "cB", "2026-01-20"),
      track("uC", "Open", "2026-02-03", { groupId: "cC" }),
      track("uB", "Open", "2026-03-02"),
      track("uD", "Open", "2025-10-20"),
      track("uD", "Open", "2025-11-05"),
    ]);
  }
  const range = { period: "month", from: "2025-11-01", to: "2026-02-28", periods: "4" };

  it("counts companies by attribution: context.groupId alone, else every company of the user", async () => {
    const t = await start();
    await fixture(t);
    const bounded = await retention(t, { ...range, level: "company", mode: "bounded" });
    expect(bounded.level).toBe("company");
    expect(table(bounded)).toEqual([
      // Nov {cA, cB} (e1): k1 Dec: cB (e2); k2 Jan: cA (e4 is cA's only); k3 Feb (ends 02-28 = to): nobody.
      ["2025-11-01", 2, 1, 1, 0],
      // Dec {cC} (e3): k1 Jan: 0; k2 Feb: cC (e5); k3 Mar ends after `to`: null. Jan, Feb: no new company.
      ["2025-12-01", 1, 0, 1, null],
    ]);
    const unbounded = await retention(t, { ...range, level: "company", mode: "unbounded" });
    expect(table(unbounded)).toEqual([
      // Nov: k1 Dec..Feb: cB (Dec), cA (Jan) → 2; k2 Jan..Feb: cA → 1; k3 Feb: 0.
      ["2025-11-01", 2, 2, 1, 0],
      // Dec: k1 Jan..Feb: cC (Feb) → 1; k2 Feb: 1.
      ["2025-12-01", 1, 1, 1, null],
    ]);
  });

  it("counts users on the same data", async () => {
    const t = await start();
    await fixture(t);
    const bounded = await retention(t, { ...range, level: "user", mode: "bounded" });
    expect(table(bounded)).toEqual([
      // Nov {uA} (e1): k1 Dec: 0; k2 Jan: uA (e4); k3 Feb: 0.
      ["2025-11-01", 1, 0, 1, 0],
      // Dec {uB, uC}: k1 Jan: 0 (uB's group call is not activity); k2 Feb: uC (e5); k3 null.
      ["2025-12-01", 2, 0, 1, null],
    ]);
    expect(bounded.cohorts[1]?.rates).toEqual([1, 0, 0.5, null]);
    const unbounded = await retention(t, { ...range, level: "user", mode: "unbounded" });
    expect(table(unbounded)).toEqual([
      // Nov: k1 Dec..Feb: uA (Jan) → 1; k2: uA → 1; k3 Feb: 0.
      ["2025-11-01", 1, 1, 1, 0],
      // Dec: k1 Jan..Feb: uC → 1 (uB's March activity is after `to`); k2: uC → 1.
      ["2025-12-01", 2, 1, 1, null],
    ]);
  });
});

describe("retention by day with startEvent and returnEvent, across a month boundary", () => {
  /*
   * Range 2026-01-30 .. 2026-02-02, periods=4 (offsets 0..3).
   *   u1: page 01-20 (first seen, before the range); Signed Up 01-30; Report Run 01-31; page 02-01; Report Run 02-02.
   *   u2: Signed Up 01-25 and again 01-31: its first Signed Up (over all data) is before `from` — no cohort.
   *   u3: Signed Up 02-01; Report Run 02-01 (offset 0), 02-02 (k1), 02-03 (after `to`).
   *   u4: Signed Up 01-31; page 02-01.
   */
  async function fixture(t: TestServer) {
    const page = (userId: string, day: string) => messages.page(user(userId), "Dashboard", `${day}T08:00:00.000Z`);
    await sendBatch(t, [
      page("u1", "2026-01-20"),
      track("u1", "Signed Up", "2026-01-30"),
      track("u1", "Report Run", "2026-01-31"),
      page("u1", "2026-02-01"),
      track("u1", "Report Run", "2026-02-02"),
      track("u2", "Signed Up", "2026-01-25"),
      track("u2", "Signed Up", "2026-01-31"),
      track("u2", "Report Run", "2026-02-01"),
      track("u3", "Signed Up", "2026-02-01"),
      track("u3", "Report Run", "2026-02-01T11:00:00.000Z"),
      track("u3", "Report Run", "2026-02-02"),
      track("u3", "Report Run", "2026-02-03"),
      track("u4", "Signed Up", "2026-01-31"),
      page("u4", "2026-02-01"),
    ]);
  }
  const range = { period: "day", from: "2026-01-30", to: "2026-02-02", periods: "4", startEvent: "Signed Up" };

  it("returns only by returnEvent", async () => {
    const t = await start();
    await fixture(t);
    const bounded = await retention(t, { ...range, returnEvent: "Report Run", mode: "bounded" });
    expect(table(bounded)).toEqual([
      // 01-30 {u1}: k1 01-31 Report Run → 1; k2 02-01 only a page → 0; k3 02-02 Report Run → 1.
      ["2026-01-30", 1, 1, 0, 1],
      // 01-31 {u4}: no Report Run; k3 = 02-03 ends after `to` → null.
      ["2026-01-31", 1, 0, 0, null],
      // 02-01 {u3}: k1 02-02 → 1; k2, k3 after `to`.
      ["2026-02-01", 1, 1, null, null],
    ]);
    const unbounded = await retention(t, { ...range, returnEvent: "Report Run", mode: "unbounded" });
    expect(table(unbounded)).toEqual([
      // 01-30: k2 = 02-01 or later: Report Run on 02-02 → 1.
      ["2026-01-30", 1, 1, 1, 1],
      ["2026-01-31", 1, 0, 0, null],
      ["2026-02-01", 1, 1, null, null],
    ]);
  });

  it("returns by any activity when no returnEvent is given", async () => {
    const t = await start();
    await fixture(t);
    const bounded = await retention(t, { ...range, mode: "bounded" });
    expect(table(bounded)).toEqual([
      // 01-30 {u1}: 01-31 Report Run, 02-01 page, 02-02 Report Run: all three offsets.
      ["2026-01-30", 1, 1, 1, 1],
      // 01-31 {u4}: 02-01 page → k1; nothing on 02-02.
      ["2026-01-31", 1, 1, 0, null],
      ["2026-02-01", 1, 1, null, null],
    ]);
  });

  it("uses first seen when no startEvent is given", async () => {
    const t = await start();
    await fixture(t);
    // First seen: u1 01-20, u2 01-25 (before the range); u4 01-31, u3 02-01.
    const r = await retention(t, { period: "day", from: "2026-01-30", to: "2026-02-02", periods: "2" });
    // 01-31 {u4}: 02-01 page → 1. 02-01 {u3}: 02-02 Report Run → 1.
    expect(table(r)).toEqual([
      ["2026-01-31", 1, 1],
      ["2026-02-01", 1, 1],
    ]);
  });
});

describe("retention across ISO week 53", () => {
  /*
   * 2026 has 53 ISO weeks; week 53 starts Monday 2026-12-28 and ends Sunday 2027-01-03.
   * Range 2026-12-21 .. 2027-01-10: weeks 12-21, 12-28, 2027-01-04; periods=3.
   * Companies: u2, u3 ∈ cX; every event of u1 carries context cY.
   *   u1 first 12-22 (week 12-21); active 12-31 (week 12-28, k1), 2027-01-04 (k2).
   *   u2 first 12-29 (week 12-28); active 2027-01-03 (Sunday, still week 12-28), 2027-01-05 (k1).
   *   u3 first 2027-01-01 (Friday of week 12-28: labelled 2026-12-28); active 2027-01-10 (Sunday, k1).
   */
  async function fixture(t: TestServer) {
    const cY = { groupId: "cY" };
    await sendBatch(t, [
      group("u2", "cX", "2026-12-01"),
      group("u3", "cX", "2026-12-01"),
      track("u1", "Open", "2026-12-22", cY),
      track("u1", "Open", "2026-12-31", cY),
      track("u1", "Open", "2027-01-04", cY),
      track("u2", "Open", "2026-12-29"),
      track("u2", "Open", "2027-01-03"),
      track("u2", "Open", "2027-01-05"),
      track("u3", "Open", "2027-01-01"),
      track("u3", "Open", "2027-01-10T23:00:00.000Z"),
    ]);
  }
  const params = { period: "week", from: "2026-12-21", to: "2027-01-10", periods: "3" };

  it("labels the week by its Monday in the previous year", async () => {
    const t = await start();
    await fixture(t);
    expect(table(await retention(t, { ...params, level: "user" }))).toEqual([
      // Week 12-21 {u1}: k1 week 12-28 → 1; k2 week 01-04 (ends 01-10 = to) → 1.
      ["2026-12-21", 1, 1, 1],
      // Week 12-28 {u2, u3}: k1 week 01-04 → u2, u3; k2 week 01-11 ends after `to` → null.
      ["2026-12-28", 2, 2, null],
    ]);
    expect(table(await retention(t, { ...params, level: "company" }))).toEqual([
      // cY is u1's: first seen 12-22; active in weeks 12-28 and 01-04.
      ["2026-12-21", 1, 1, 1],
      // cX = u2 and u3 together: first seen 12-29 (u2); week 01-04 active (u2 01-05, u3 01-10).
      ["2026-12-28", 1, 1, null],
    ]);
  });
});

describe("retention in the workspace's time zone", () => {
  /*
   * Instants and their days (America/Los_Angeles is UTC−8 until 2026-03-08):
   *   u1 first  2026-03-02T06:00Z  UTC 03-02, LA 03-01 22:00
   *   u1 again  2026-03-03T07:30Z  UTC 03-03, LA 03-02 23:30
   *   u2 first  2026-03-03T05:00Z  UTC 03-03, LA 03-02 21:00
   *   u2 again  2026-03-04T03:00Z  UTC 03-04, LA 03-03 19:00
   * Range 03-02 .. 03-04 by day, periods=3.
   */
  it("moves cohorts and returns with the day boundary", async () => {
    const t = await start();
    await sendBatch(t, [
      track("u1", "Open", "2026-03-02T06:00:00.000Z"),
      track("u1", "Open", "2026-03-03T07:30:00.000Z"),
      track("u2", "Open", "2026-03-03T05:00:00.000Z"),
      track("u2", "Open", "2026-03-04T03:00:00.000Z"),
    ]);
    const params = { period: "day", from: "2026-03-02", to: "2026-03-04", periods: "3" };
    // UTC: 03-02 {u1}: k1 03-03 → 1, k2 03-04 → 0. 03-03 {u2}: k1 03-04 → 1, k2 03-05 after `to`.
    expect(table(await retention(t, params))).toEqual([
      ["2026-03-02", 1, 1, 0],
      ["2026-03-03", 1, 1, null],
    ]);
    await setSettings(t, { timeZone: "America/Los_Angeles" });
    // LA: u1 is first seen on 03-01, before the range. 03-02 {u2}: k1 03-03 → 1; k2 03-04 → 0.
    expect(table(await retention(t, params))).toEqual([["2026-03-02", 1, 1, 0]]);
  });
});

describe("retention parameters", () => {
  it("answers 400 naming the bad parameter", async () => {
    const t = await start();
    const cases: [Record<string, string>, string][] = [
      [{ mode: "sometimes" }, "mode"],
      [{ periods: "0" }, "periods"],
      [{ periods: "two" }, "periods"],
      [{ period: "year" }, "period"],
      [{ level: "team" }, "level"],
      [{ from: "2026-02-30" }, "from"],
      [{ from: "2026-03-05" }, "from"],
    ];
    for (const [bad, parameter] of cases) {
      const params = { from: "2026-03-01", to: "2026-03-04", ...bad };
      const refusal = await expectBadParameter(t, "GET", "retention", params, parameter);
      expect(refusal.error).toContain(parameter);
    }
  });
});
