import { describe, expect, it } from "vitest";
import { sendBatch, serversClosedAfterEach } from "./helpers/fixtures.js";
import { messageBuilders, sender, user } from "./helpers/messages.js";
import { expectBadParameter, getReport } from "./helpers/reports.js";
import type { TestServer } from "./helpers/server.js";

/**
 * The feature report on a hand-worked fixture: active = entities with activity in [from, to];
 * used / adopted = at least 1 / adoptionThreshold uses of the event in the range; returned = uses in
 * at least two different Monday-start weeks (only uses inside the range count, weeks cut by the
 * range included); top lists each entity's count and last use; the weekly series is labelled by Monday.
 */
const NOW = Date.parse("2027-01-01T00:00:00Z");

interface Feature {
  level: string;
  event: string;
  active: number;
  used: number;
  adopted: number;
  returned: number;
  adoptionRate: number | null;
  top: { id: string; name: string | null; count: number; lastSeen: string }[];
  series: { period: string; used: number }[];
}

const start = serversClosedAfterEach(NOW);

const messages = messageBuilders();
/** A track call; `at` is a day (10:00 UTC) or an instant without its zone (UTC). */
function track(who: string, event: string, at: string, context?: object) {
  const timestamp = at.length === 10 ? `${at}T10:00:00.000Z` : `${at}.000Z`;
  return messages.track(sender(who), event, timestamp, context ? { context } : {});
}

function feature(t: TestServer, params: Record<string, string>): Promise<Feature> {
  return getReport<Feature>(t, "feature", { event: "Export", ...params });
}

/*
 * Range 2026-05-06 (Wed) .. 2026-05-24 (Sun). Weeks: 05-04 (cut: 05-06..05-10), 05-11, 05-18.
 * Memberships: u1 ∈ {cA}; u2 ∈ {cA, cB}; u3 ∈ {cB, cD}; u4, u5, u6 ∈ none.
 *   u1: Export 05-06, 05-07, 05-12                      → 3 uses, weeks 05-04 and 05-11
 *   u2: Export 05-19 10:00 and 11:00                    → 2 uses, week 05-18
 *   u3: a page on 05-15                                 → active, never used
 *   u4: Export 05-03 and 05-05 (before `from`), 05-20 with context cC → 1 use in the range, week 05-18
 *   u5: Export 05-10, 05-24 23:59:59, 05-25 01:00 (after `to`) → 2 uses, weeks 05-04 and 05-18
 *   u6: Export 05-10 (Sunday), 05-11 (Monday)          → 2 uses, weeks 05-04 and 05-11
 *   v1: a visitor, Export ×5 on 05-12, context cV      → no user; company cV
 */
async function fixture(t: TestServer) {
  const group = (userId: string, groupId: string, traits?: object) =>
    messages.group(user(userId), groupId, "2026-05-01T09:00:00.000Z", traits ? { traits } : {});
  await sendBatch(t, [
    group("u1", "cA", { name: "Acme" }),
    group("u2", "cA"),
    group("u2", "cB"),
    group("u3", "cB"),
    group("u3", "cD"),
    { type: "identify", userId: "u1", traits: { name: "Ada" }, timestamp: "2026-05-01T09:00:00.000Z", messageId: "i1" },
    { type: "identify", userId: "u2", traits: { email: "u2@example.com" }, timestamp: "2026-05-01T09:00:00.000Z" },
    track("u1", "Export", "2026-05-06"),
    track("u1", "Export", "2026-05-07"),
    track("u1", "Export", "2026-05-12"),
    track("u2", "Export", "2026-05-19T10:00:00"),
    track("u2", "Export", "2026-05-19T11:00:00"),
    { type: "page", userId: "u3", name: "Settings", timestamp: "2026-05-15T10:00:00.000Z", messageId: "p1" },
    track("u4", "Export", "2026-05-03"),
    track("u4", "Export", "2026-05-05"),
    track("u4", "Export", "2026-05-20", { groupId: "cC" }),
    track("u5", "Export", "2026-05-10"),
    track("u5", "Export", "2026-05-24T23:59:59"),
    track("u5", "Export", "2026-05-25T01:00:00"),
    track("u6", "Export", "2026-05-10"),
    track("u6", "Export", "2026-05-11"),
    ...Array.from({ length: 5 }, () => track("v1", "Export", "2026-05-12", { groupId: "cV" })),
  ]);
}
const range = { from: "2026-05-06", to: "2026-05-24" };

/** Top rows ordered by count, then id, so that ties do not depend on the engine's order. */
const byCount = (top: Feature["top"]) => [...top].sort((a, b) => b.count - a.count || a.id.localeCompare(b.id));

describe("feature report", () => {
  it("counts users", async () => {
    const t = await start();
    await fixture(t);
    const f = await feature(t, range);
    expect([f.level, f.event]).toEqual(["user", "Export"]);
    // active {u1..u6} = 6 (u4 is active through its 05-20 use); used {u1, u2, u4, u5, u6} = 5;
    // adopted (≥ 3 uses) {u1} = 1; returned {u1, u5, u6} = 3 (u4's other weeks are before `from`).
    expect([f.active, f.used, f.adopted, f.returned, f.adoptionRate]).toEqual([6, 5, 1, 3, 5 / 6]);
    // Counts never increase down the list.
    expect(f.top.map((r) => r.count)).toEqual([...f.top.map((r) => r.count)].sort((a, b) => b - a));
    expect(byCount(f.top)).toEqual([
      { id: "u1", name: "Ada", count: 3, lastSeen: "2026-05-12T10:00:00.000Z" },
      { id: "u2", name: "u2@example.com", count: 2, lastSeen: "2026-05-19T11:00:00.000Z" },
      // u5's 05-25 use is after `to`: its last use in the range is 05-24 23:59:59.
      { id: "u5", name: null, count: 2, lastSeen: "2026-05-24T23:59:59.000Z" },
      { id: "u6", name: null, count: 2, lastSeen: "2026-05-11T10:00:00.000Z" },
      { id: "u4", name: null, count: 1, lastSeen: "2026-05-20T10:00:00.000Z" },
    ]);
    expect(f.series).toEqual([
      // 05-06..05-10: u1, u5, u6.
      { period: "2026-05-04", used: 3 },
      // 05-11..05-17: u1 (05-12), u6 (05-11).
      { period: "2026-05-11", used: 2 },
      // 05-18..05-24: u2, u4, u5.
      { period: "2026-05-18", used: 3 },
    ]);
  });

  it("applies adoptionThreshold", async () => {
    const t = await start();
    await fixture(t);
    // ≥ 2 uses: u1 (3), u2, u5, u6 (2 each) = 4; u4 has 1.
    expect((await feature(t, { ...range, adoptionThreshold: "2" })).adopted).toBe(4);
    // ≥ 4 uses: nobody.
    expect((await feature(t, { ...range, adoptionThreshold: "4" })).adopted).toBe(0);
  });

  it("counts companies by attribution", async () => {
    const t = await start();
    await fixture(t);
    /*
     * cA: u1's 3 uses + u2's 2 = 5, weeks 05-04, 05-11, 05-18, last 05-19 11:00.
     * cB: u2's 2 uses (05-19); also u3's page → active.  cD: u3's page only → active, not used.
     * cC: u4's 05-20 use (its context) = 1.  cV: the visitor's 5 uses (its context), week 05-11.
     * u4's uses before `from` carry no context and u4 has no company; u5, u6 have none either.
     * active {cA, cB, cC, cD, cV} = 5; used {cA, cB, cC, cV} = 4; adopted (≥ 3) {cA, cV} = 2;
     * returned {cA} = 1; adoptionRate 4/5.
     */
    const f = await feature(t, { ...range, level: "company" });
    expect(f.level).toBe("company");
    expect([f.active, f.used, f.adopted, f.returned, f.adoptionRate]).toEqual([5, 4, 2, 1, 4 / 5]);
    expect(byCount(f.top)).toEqual([
      { id: "cA", name: "Acme", count: 5, lastSeen: "2026-05-19T11:00:00.000Z" },
      { id: "cV", name: null, count: 5, lastSeen: "2026-05-12T10:00:00.000Z" },
      { id: "cB", name: null, count: 2, lastSeen: "2026-05-19T11:00:00.000Z" },
      { id: "cC", name: null, count: 1, lastSeen: "2026-05-20T10:00:00.000Z" },
    ]);
    expect(f.series).toEqual([
      // 05-06..05-10: cA (u1). u5 and u6 have no company.
      { period: "2026-05-04", used: 1 },
      // 05-11..05-17: cA (u1's 05-12), cV.
      { period: "2026-05-11", used: 2 },
      // 05-18..05-24: cA and cB (u2), cC (u4).
      { period: "2026-05-18", used: 3 },
    ]);
  });

  it("gives a null adoption rate when nobody is active, and zero weeks", async () => {
    const t = await start();
    await fixture(t);
    // 2026-06-01 .. 2026-06-03: nothing happened; one week, labelled by its Monday.
    const f = await feature(t, { from: "2026-06-01", to: "2026-06-03" });
    expect([f.active, f.used, f.adopted, f.returned, f.adoptionRate, f.top]).toEqual([0, 0, 0, 0, null, []]);
    expect(f.series).toEqual([{ period: "2026-06-01", used: 0 }]);
  });

  it("answers 400 naming the bad parameter", async () => {
    const t = await start();
    const cases: [Record<string, string>, string][] = [
      [{ from: "2026-05-06", to: "2026-05-24" }, "event"],
      [{ event: "Export", from: "2026-05-06", to: "2026-05-24", adoptionThreshold: "0" }, "adoptionThreshold"],
      [{ event: "Export", from: "2026-05-06", to: "2026-05-24", level: "org" }, "level"],
      [{ event: "Export", from: "2026-05-06" }, "to"],
      [{ event: "Export", from: "May 6", to: "2026-05-24" }, "from"],
    ];
    for (const [params, parameter] of cases) await expectBadParameter(t, "GET", "feature", params, parameter);
  });
});
