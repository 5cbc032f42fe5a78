import { describe, expect, it } from "vitest";
import { sendBatch, serversClosedAfterEach } from "./helpers/fixtures.js";
import { companyContext, messageBuilders, user } from "./helpers/messages.js";
import { expectBadParameter, postReport } from "./helpers/reports.js";
import type { TestServer } from "./helpers/server.js";

/**
 * Activation on a hand-worked fixture. An entity is activated when, within [firstSeen, firstSeen +
 * windowDays × 86,400 s], every milestone event occurred at least minCount times (any order),
 * counting only activity up to the end of `to`; activation time = when the last milestone reached
 * its minCount. pending = not activated and the window ends after the end of `to`;
 * rate = activated / (size − pending), null for 0/0.
 */
const NOW = Date.parse("2027-01-01T00:00:00Z");

interface Activation {
  level: string;
  period: string;
  cohorts: {
    period: string;
    size: number;
    activated: number;
    pending: number;
    rate: number | null;
    milestones: { event: string; minCount: number; completed: number }[];
    medianSecondsToActivate: number | null;
  }[];
}

const start = serversClosedAfterEach(NOW);

const messages = messageBuilders();
/** Calls by a user; `at` is an instant without its zone (UTC), to the second. */
const track = (userId: string, event: string, at: string, groupId?: string) =>
  messages.track(user(userId), event, `${at}.000Z`, companyContext(groupId));
const page = (userId: string, at: string, groupId?: string) =>
  messages.page(user(userId), "Home", `${at}.000Z`, companyContext(groupId));
const group = (userId: string, groupId: string) => messages.group(user(userId), groupId, "2026-05-01T00:00:00.000Z");

const activation = (t: TestServer, body: Record<string, unknown>) => postReport<Activation>(t, "activation", body);
/** [period, size, activated, pending, rate, completed per milestone, median] per cohort. */
const table = (a: Activation) =>
  a.cohorts.map((c) => [
    c.period,
    c.size,
    c.activated,
    c.pending,
    c.rate,
    c.milestones.map((m) => m.completed),
    c.medianSecondsToActivate,
  ]);

/*
 * Milestones: Invite ×2 and Report ×1; windowDays 2 (172,800 s); range 2026-06-01 (Mon) .. 2026-06-14 (Sun),
 * whose end is 2026-06-15T00:00Z. Weeks W1 = 06-01..06-07, W2 = 06-08..06-14.
 * Memberships: u1, u2 ∈ cA; u3 ∈ cB; u6 ∈ cD. u7's events all carry context cC.
 *   u1: page 06-01 10:00 (first seen); Report 11:00; Invite 06-02 09:00; Invite 06-03 10:00:00 — exactly
 *       172,800 s after first seen, inside the window → activated 06-03 10:00, after 172,800 s.
 *   u2: Invite 06-02 08:00 (first seen, and a milestone); Invite 09:00; Report 12:00 → activated after 14,400 s.
 *   u3: page 06-03 00:00; Report 01:00; Invite 06-04 00:00; Invite 06-05 00:00:01, one second past the
 *       window → not activated; the window ended before `to` → not pending. Report completed.
 *   u4: page 06-04 12:00 and nothing else.
 *   u5: first seen 05-31 23:00 (week of 05-25, before the range): in no cohort.
 *   u6: page 06-13 12:00; Report 13:00; Invite 06-14 10:00 and 23:00 → activated after 35 h = 126,000 s
 *       (its window runs past `to`, but it is activated, so not pending).
 *   u7: page 06-14 08:00; Report 09:00; Invite 10:00; Invite 06-15 00:00:00.000 — the first instant after
 *       `to`, not counted → one Invite only; window ends 06-16 08:00, after `to` → pending.
 *   u8: page 06-09 10:00; one Invite 06-10 → not activated, window over → not pending.
 *   u9: page 06-12 23:00; window ends 06-14 23:00, before the end of `to` → not pending.
 */
async function fixture(t: TestServer) {
  await sendBatch(t, [
    group("u1", "cA"),
    group("u2", "cA"),
    group("u3", "cB"),
    group("u6", "cD"),
    page("u1", "2026-06-01T10:00:00"),
    track("u1", "Report", "2026-06-01T11:00:00"),
    track("u1", "Invite", "2026-06-02T09:00:00"),
    track("u1", "Invite", "2026-06-03T10:00:00"),
    track("u2", "Invite", "2026-06-02T08:00:00"),
    track("u2", "Invite", "2026-06-02T09:00:00"),
    track("u2", "Report", "2026-06-02T12:00:00"),
    page("u3", "2026-06-03T00:00:00"),
    track("u3", "Report", "2026-06-03T01:00:00"),
    track("u3", "Invite", "2026-06-04T00:00:00"),
    track("u3", "Invite", "2026-06-05T00:00:01"),
    page("u4", "2026-06-04T12:00:00"),
    page("u5", "2026-05-31T23:00:00"),
    track("u5", "Report", "2026-06-01T01:00:00"),
    track("u5", "Invite", "2026-06-01T02:00:00"),
    track("u5", "Invite", "2026-06-01T03:00:00"),
    page("u6", "2026-06-13T12:00:00"),
    track("u6", "Report", "2026-06-13T13:00:00"),
    track("u6", "Invite", "2026-06-14T10:00:00"),
    track("u6", "Invite", "2026-06-14T23:00:00"),
    page("u7", "2026-06-14T08:00:00", "cC"),
    track("u7", "Report", "2026-06-14T09:00:00", "cC"),
    track("u7", "Invite", "2026-06-14T10:00:00", "cC"),
    track("u7", "Invite", "2026-06-15T00:00:00", "cC"),
    page("u8", "2026-06-09T10:00:00"),
    track("u8", "Invite", "2026-06-10T10:00:00"),
    page("u9", "2026-06-12T23:00:00"),
  ]);
}
const milestones = [{ event: "Invite", minCount: 2 }, { event: "Report" }];
const body = { milestones, windowDays: 2, from: "2026-06-01", to: "2026-06-14" };

describe("activation", () => {
  it("counts users per weekly cohort", async () => {
    const t = await start();
    await fixture(t);
    const a = await activation(t, { ...body, level: "user" });
    expect([a.level, a.period]).toEqual(["user", "week"]);
    expect(table(a)).toEqual([
      // W1 {u1, u2, u3, u4}: activated u1, u2; Invite×2 by u1, u2; Report by u1, u2, u3;
      // median of {172,800, 14,400} = 93,600.
      ["2026-06-01", 4, 2, 0, 2 / 4, [2, 3], 93600],
      // W2 {u6, u7, u8, u9}: activated u6; pending u7; rate 1 / (4 − 1); Invite×2 by u6; Report by u6, u7.
      ["2026-06-08", 4, 1, 1, 1 / 3, [1, 2], 126000],
    ]);
    // minCount defaults to 1, and each milestone is reported with its own.
    expect(a.cohorts[0]?.milestones).toEqual([
      { event: "Invite", minCount: 2, completed: 2 },
      { event: "Report", minCount: 1, completed: 3 },
    ]);
  });

  it("gives a null rate when every entity of a cohort is pending", async () => {
    const t = await start();
    await fixture(t);
    const a = await activation(t, { ...body, from: "2026-06-13", period: "day" });
    expect(table(a)).toEqual([
      // 06-13 {u6}: activated.
      ["2026-06-13", 1, 1, 0, 1, [1, 1], 126000],
      // 06-14 {u7}: pending; rate 0 / (1 − 1) → null; no activation, no median.
      ["2026-06-14", 1, 0, 1, null, [0, 1], null],
    ]);
  });

  it("counts activity up to the end of `to` only", async () => {
    const t = await start();
    await fixture(t);
    // Ending a day later (end 06-16 00:00), u7's Invite at 06-15 00:00 counts: it is u7's second Invite, so
    // u7 is activated then, 16 h = 57,600 s after first seen. Nobody is pending: u8's and u9's windows
    // ended before, u6 and u7 are activated. Nobody is first seen on 06-15: no third cohort.
    const a = await activation(t, { ...body, to: "2026-06-15" });
    expect(table(a)).toEqual([
      ["2026-06-01", 4, 2, 0, 2 / 4, [2, 3], 93600],
      // W2: activated {u6, u7}; Invite×2 {u6, u7}; Report {u6, u7}; median (57,600 + 126,000) / 2 = 91,800.
      ["2026-06-08", 4, 2, 0, 2 / 4, [2, 2], 91800],
    ]);
  });

  it("counts companies by attribution", async () => {
    const t = await start();
    await fixture(t);
    /*
     * cA (u1, u2): first seen 06-01 10:00; Report 06-01 11:00; Invites 06-02 08:00 (u2), 09:00 (u1 and u2),
     *   06-03 10:00 → the second Invite is at 06-02 09:00 → activated then, 23 h = 82,800 s.
     * cB (u3): as u3, not activated, not pending, Report completed.
     * cC (u7's context): first seen 06-14 08:00, pending, Report completed.
     * cD (u6): activated after 126,000 s.
     * W1 {cA, cB}: activated 1, rate 1/2, Invite×2 {cA}, Report {cA, cB}.
     * W2 {cC, cD}: activated 1, pending 1, rate 1 / (2 − 1) = 1, Invite×2 {cD}, Report {cC, cD}.
     */
    const a = await activation(t, { ...body, level: "company" });
    expect(a.level).toBe("company");
    expect(table(a)).toEqual([
      ["2026-06-01", 2, 1, 0, 1 / 2, [1, 2], 82800],
      ["2026-06-08", 2, 1, 1, 1, [1, 2], 126000],
    ]);
  });

  it("answers 400 naming the bad parameter", async () => {
    const t = await start();
    const cases: [Record<string, unknown>, string][] = [
      [{ ...body, milestones: [] }, "milestones"],
      [{ ...body, milestones: undefined }, "milestones"],
      [{ ...body, milestones: "Invite" }, "milestones"],
      [{ ...body, milestones: ["Invite"] }, "milestones/0"],
      [{ ...body, milestones: [{ event: "Invite" }, { minCount: 2 }] }, "milestones/1/event"],
      [{ ...body, milestones: [{ event: "Invite", minCount: 0 }] }, "milestones/0/minCount"],
      [{ ...body, windowDays: 0 }, "windowDays"],
      [{ ...body, period: "year" }, "period"],
      [{ ...body, level: "account" }, "level"],
      [{ ...body, from: "2026-06-15" }, "from"],
      [{ ...body, to: "2026-13-01" }, "to"],
    ];
    for (const [params, parameter] of cases) await expectBadParameter(t, "POST", "activation", params, parameter);
  });
});
