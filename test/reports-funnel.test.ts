import { DuckDBInstance } from "@duckdb/node-api";
import { describe, expect, it } from "vitest";
import { REPORTS } from "../src/reports/definitions.js";
import type { Report } from "../src/reports/report.js";
import { CREATE_COMMIT_TABLES } from "../src/storage/duckdb/commit-sql.js";
import { migrate } from "../src/storage/duckdb/migrations.js";
import { rebuildActivity } from "../src/storage/duckdb/rebuild.js";
import { DuckDBReports } from "../src/storage/duckdb/reports.js";
import { sendBatch, serversClosedAfterEach, setSettings } from "./helpers/fixtures.js";
import { messageBuilders, sender, user } from "./helpers/messages.js";
import { expectBadParameter, postReport } from "./helpers/reports.js";
import { SECRET_KEY, type TestServer } from "./helpers/server.js";

/**
 * Funnels on hand-worked fixtures. For each entity and each step-1 occurrence in [from, to], step
 * k+1 is the earliest occurrence of its event at or after step k's time and at most windowDays ×
 * 86,400 s after that step-1 occurrence (inclusive); one message satisfies one step at most; the
 * entity's depth is the best over its step-1 occurrences. The median gap of step k uses, per entity,
 * the earliest step-1 occurrence reaching its depth; DuckDB's median of an even number of values is
 * the mean of the two middle ones, and the report keeps that definition.
 */
const NOW = Date.parse("2027-01-01T00:00:00Z");

interface Funnel {
  level: string;
  steps: {
    event: string;
    count: number;
    conversionFromPrevious: number | null;
    conversionFromStart: number | null;
    medianSecondsFromPrevious: number | null;
  }[];
}

const start = serversClosedAfterEach(NOW);

/** Track calls numbered m0001, m0002…; group calls g1, g2… */
const messages = messageBuilders((type, n) => (type === "track" ? `m${String(n).padStart(4, "0")}` : `g${n}`));
/** A track call at an ISO instant (seconds precision, UTC); `id` overrides the messageId. */
function track(who: string, event: string, at: string, extra: { context?: object; id?: string } = {}) {
  return messages.track(sender(who), event, `${at}.000Z`, {
    ...(extra.id === undefined ? {} : { messageId: extra.id }),
    ...(extra.context ? { context: extra.context } : {}),
  });
}
const group = (userId: string, groupId: string) => messages.group(user(userId), groupId, "2026-03-01T00:00:00.000Z");

const funnel = (t: TestServer, body: Record<string, unknown>) => postReport<Funnel>(t, "funnel", body);
/** [count, conversionFromPrevious, conversionFromStart, medianSecondsFromPrevious] per step. */
const rows = (f: Funnel) =>
  f.steps.map((s) => [s.count, s.conversionFromPrevious, s.conversionFromStart, s.medianSecondsFromPrevious]);

describe("funnel at user level", () => {
  /*
   * Steps A → B → C, windowDays 1 (86,400 s), range 2026-04-01 .. 2026-04-03.
   *   u1: A 04-01 10:00:00; B at the same second (its messageId sorts before A's), B again at 10:30;
   *       C 04-02 10:00:00, exactly 86,400 s after A → depth 3; gaps B−A 0 (the B at the same
   *       second is the next one), C−B 86,400.
   *   u2: A 04-01 12:00:00; B 13:00:00; C 04-02 12:00:01, one second past the window → depth 2; gap 3,600.
   *   u3: B 04-01 09:00 then A 10:00: the B came first, no B after → depth 1.
   *   u4: A 03-31 23:00 (before `from`), B, C on 04-01: no step-1 occurrence in the range → not counted.
   *   u5: A 04-03 20:00 (last day); B 04-04 08:00 and C 04-04 20:00:00 (after `to`, inside the window,
   *       C exactly 86,400 s after A) → depth 3; gaps 43,200 and 43,200.
   *   u6: A 04-01 08:00, B 09:00; A 04-02 08:00, B 08:30, C 09:00. From the first A the earliest C
   *       (04-02 09:00) is 25 h later → depth 2; from the second A → depth 3 (gaps 1,800 and 1,800),
   *       and that is the earliest step-1 occurrence reaching depth 3.
   *   u7: A 04-05, after `to` → not counted.
   * Counts: A {u1,u2,u3,u5,u6} = 5; B {u1,u2,u5,u6} = 4; C {u1,u5,u6} = 3.
   * Median B−A over {0, 3,600, 43,200, 1,800} = (1,800 + 3,600) / 2 = 2,700.
   * Median C−B over {86,400, 43,200, 1,800} = 43,200.
   */
  async function fixture(t: TestServer) {
    await sendBatch(t, [
      track("u1", "A", "2026-04-01T10:00:00", { id: "u1-2" }),
      track("u1", "B", "2026-04-01T10:00:00", { id: "u1-1" }),
      track("u1", "B", "2026-04-01T10:30:00"),
      track("u1", "C", "2026-04-02T10:00:00"),
      track("u2", "A", "2026-04-01T12:00:00"),
      track("u2", "B", "2026-04-01T13:00:00"),
      track("u2", "C", "2026-04-02T12:00:01"),
      track("u3", "B", "2026-04-01T09:00:00"),
      track("u3", "A", "2026-04-01T10:00:00"),
      track("u4", "A", "2026-03-31T23:00:00"),
      track("u4", "B", "2026-04-01T01:00:00"),
      track("u4", "C", "2026-04-01T02:00:00"),
      track("u5", "A", "2026-04-03T20:00:00"),
      track("u5", "B", "2026-04-04T08:00:00"),
      track("u5", "C", "2026-04-04T20:00:00"),
      track("u6", "A", "2026-04-01T08:00:00"),
      track("u6", "B", "2026-04-01T09:00:00"),
      track("u6", "A", "2026-04-02T08:00:00"),
      track("u6", "B", "2026-04-02T08:30:00"),
      track("u6", "C", "2026-04-02T09:00:00"),
      track("u7", "A", "2026-04-05T10:00:00"),
      track("u7", "B", "2026-04-05T11:00:00"),
    ]);
  }

  it("walks each step-1 occurrence within the window and keeps the best", async () => {
    const t = await start();
    await fixture(t);
    const f = await funnel(t, {
      level: "user",
      steps: ["A", "B", "C"],
      windowDays: 1,
      from: "2026-04-01",
      to: "2026-04-03",
    });
    expect(f.level).toBe("user");
    expect(f.steps.map((s) => s.event)).toEqual(["A", "B", "C"]);
    expect(rows(f)).toEqual([
      [5, 1, 1, null],
      [4, 4 / 5, 4 / 5, 2700],
      [3, 3 / 4, 3 / 5, 43200],
    ]);
  });

  it("widens with the window: two days let u2's late C in", async () => {
    const t = await start();
    await fixture(t);
    // windowDays 2: u2's C (86,401 s after A) now counts: gap C−B = 04-02 12:00:01 − 04-01 13:00 = 82,801 s.
    // u6's first A now reaches C too (04-02 09:00 is 25 h after it): depth 3 from the first A, which
    // is now the earliest step-1 occurrence reaching depth 3: gaps B−A 3,600, C−B = 04-02 09:00 − 04-01 09:00 = 86,400.
    // B: {u1 0, u2 3,600, u5 43,200, u6 3,600} → sorted 0, 3,600, 3,600, 43,200 → median 3,600.
    // C: {u1 86,400, u2 82,801, u5 43,200, u6 86,400} → sorted 43,200, 82,801, 86,400, 86,400 → (82,801 + 86,400) / 2 = 84,600.5.
    const f = await funnel(t, { steps: ["A", "B", "C"], windowDays: 2, from: "2026-04-01", to: "2026-04-03" });
    expect(rows(f)).toEqual([
      [5, 1, 1, null],
      [4, 4 / 5, 4 / 5, 3600],
      [4, 1, 4 / 5, 84600.5],
    ]);
  });

  it("gives null conversions for 0/0", async () => {
    const t = await start();
    await fixture(t);
    // Nobody did X in the range: every count is 0, conversions after step 1 are 0/0.
    const f = await funnel(t, { steps: ["X", "A"], from: "2026-04-01", to: "2026-04-03" });
    expect(rows(f)).toEqual([
      [0, 1, 1, null],
      [0, null, null, null],
    ]);
  });
});

describe("funnel with repeated steps", () => {
  /*
   * Range 2026-04-01 .. 2026-04-01, default window (14 days).
   *   u1: A 10:00.                 u2: A 10:00, A 10:05.       u3: two A messages at the same instant.
   *   u4: A 10:00, B 10:01, A 10:02.                           u5: A 10:00, B 10:01.
   * Steps A → A (one message cannot be both steps):
   *   u1 depth 1; u2 depth 2 (gap 300); u3 depth 2 (gap 0); u4 depth 2 (gap 120); u5 depth 1.
   *   Counts [5, 3]; median over {300, 0, 120} = 120.
   * Steps A → B → A:
   *   u1, u2, u3: no B → depth 1 (u2's second A cannot stand in for the missing B).
   *   u4: depth 3, gaps 60 and 60.  u5: depth 2, gap 60.
   * Counts: A {u1..u5} = 5; B {u4, u5} = 2; A {u4} = 1.
   */
  async function fixture(t: TestServer) {
    await sendBatch(t, [
      track("u1", "A", "2026-04-01T10:00:00"),
      track("u2", "A", "2026-04-01T10:00:00"),
      track("u2", "A", "2026-04-01T10:05:00"),
      track("u3", "A", "2026-04-01T10:00:00"),
      track("u3", "A", "2026-04-01T10:00:00"),
      track("u4", "A", "2026-04-01T10:00:00"),
      track("u4", "B", "2026-04-01T10:01:00"),
      track("u4", "A", "2026-04-01T10:02:00"),
      track("u5", "A", "2026-04-01T10:00:00"),
      track("u5", "B", "2026-04-01T10:01:00"),
    ]);
  }

  it("lets one message satisfy one step only", async () => {
    const t = await start();
    await fixture(t);
    const f = await funnel(t, { steps: ["A", "A"], from: "2026-04-01", to: "2026-04-01" });
    expect(rows(f)).toEqual([
      [5, 1, 1, null],
      [3, 3 / 5, 3 / 5, 120],
    ]);
  });

  it("does not skip a step that was never reached", async () => {
    const t = await start();
    await fixture(t);
    const f = await funnel(t, { steps: ["A", "B", "A"], from: "2026-04-01", to: "2026-04-01" });
    expect(rows(f)).toEqual([
      [5, 1, 1, null],
      // B: u4 (60), u5 (60) → median 60.
      [2, 2 / 5, 2 / 5, 60],
      // A again: u4 only (60).
      [1, 1 / 2, 1 / 5, 60],
    ]);
  });
});

describe("funnel steps that were not reached", () => {
  /*
   * Steps A → B → C, windowDays 1, range 2026-04-01 .. 2026-04-01, on the storage engine directly:
   * a funnel must stay right on large inputs too (an ASOF join in DuckDB once matched a NULL bound to
   * the entity's first row there), and this many messages would be slow through the API (the test
   * fills the tables that funnels read as a rebuild does). Per block of five users:
   *   2 users: C 09:00, A 10:00, C 11:00, no B at all                       → depth 1
   *   2 users: A 10:00, B 04-03 10:00 (after the window), C 04-03 11:00     → depth 1
   *   1 user:  A 10:00, B 10:30, C 11:00                                    → depth 3, gaps 1,800 and 1,800
   * A step after one that was not reached is not reached either.
   */
  it("does not count a later step when an earlier one was not reached", async () => {
    const users = 25_000;
    const instance = await DuckDBInstance.create(":memory:");
    const connection = await instance.connect();
    try {
      await connection.run("SET TimeZone = 'UTC'");
      await migrate(connection);
      await connection.run(`
        INSERT INTO messages (workspace_id, message_id, type, event, user_id, timestamp, received_at)
        SELECT 'ws', 'm' || i || '-' || k, 'track', e, 'u' || i, TIMESTAMPTZ '2026-04-01 00:00:00' + t, TIMESTAMPTZ '2026-04-01 00:00:00' + t
        FROM range(${users}) r(i), (VALUES
          (0, 'C', INTERVAL 9 HOUR), (0, 'A', INTERVAL 10 HOUR), (0, 'C', INTERVAL 11 HOUR),
          (1, 'A', INTERVAL 10 HOUR), (1, 'B', INTERVAL 58 HOUR), (1, 'C', INTERVAL 59 HOUR),
          (2, 'A', INTERVAL 10 HOUR), (2, 'B', INTERVAL 630 MINUTE), (2, 'C', INTERVAL 11 HOUR)
        ) s(kind, e, t), range(3) n(k)
        WHERE kind = CASE WHEN i % 5 < 2 THEN 0 WHEN i % 5 < 4 THEN 1 ELSE 2 END
          AND k = CASE WHEN e = 'C' AND t = INTERVAL 9 HOUR THEN 0 WHEN e = 'A' THEN 1 ELSE 2 END`);
      // The tables that funnels read, as a rebuild fills them from the stored messages.
      for (const statement of CREATE_COMMIT_TABLES) await connection.run(statement);
      await rebuildActivity(connection, "ws");
      const context = { workspaceId: "ws", timeZone: "UTC", systemEvents: [], now: NOW };
      const report = REPORTS.funnel as Report;
      const body = { steps: ["A", "B", "C"], windowDays: 1, from: "2026-04-01", to: "2026-04-01" };
      const f = (await report.run(new DuckDBReports(() => connection), report.plan(body, context))) as Funnel;
      expect(rows(f)).toEqual([
        [users, 1, 1, null],
        [users / 5, 0.2, 0.2, 1800],
        [users / 5, 1, 0.2, 1800],
      ]);
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
  });
});

describe("funnel at company level", () => {
  /*
   * Memberships: uX ∈ {c1, c2}; uY ∈ {c2}. Steps A → B, range 2026-04-01 .. 2026-04-01.
   *   uX A 10:00, no context        → c1, c2
   *   uY B 11:00, no context        → c2        (c2: A 10:00 → B 11:00, gap 3,600: events of all its users)
   *   uX B 12:00, context c3        → c3 only   (c1 never gets a B; c3 has no A: not counted)
   *   v1 (a visitor) A 09:00, B 09:20, context c4 → c4, gap 1,200
   * Companies: A {c1, c2, c4} = 3; B {c2, c4} = 2; median (1,200 + 3,600) / 2 = 2,400.
   * Users on the same data: uX A 10:00 → B 12:00 (gap 7,200); uY has no A; v1 is a visitor: [1, 1].
   */
  it("counts companies by attribution, and users on the same data", async () => {
    const t = await start();
    await sendBatch(t, [
      group("uX", "c1"),
      group("uX", "c2"),
      group("uY", "c2"),
      track("uX", "A", "2026-04-01T10:00:00"),
      track("uY", "B", "2026-04-01T11:00:00"),
      track("uX", "B", "2026-04-01T12:00:00", { context: { groupId: "c3" } }),
      track("v1", "A", "2026-04-01T09:00:00", { context: { groupId: "c4" } }),
      track("v1", "B", "2026-04-01T09:20:00", { context: { groupId: "c4" } }),
    ]);
    const body = { steps: ["A", "B"], from: "2026-04-01", to: "2026-04-01" };
    const companies = await funnel(t, { ...body, level: "company" });
    expect(companies.level).toBe("company");
    expect(rows(companies)).toEqual([
      [3, 1, 1, null],
      [2, 2 / 3, 2 / 3, 2400],
    ]);
    expect(rows(await funnel(t, { ...body, level: "user" }))).toEqual([
      [1, 1, 1, null],
      [1, 1, 1, 7200],
    ]);
  });
});

describe("funnel in the workspace's time zone", () => {
  /*
   * u1: A 2026-04-04T05:00Z (UTC 04-04; America/Los_Angeles, UTC−7 in April, 04-03 22:00), B an hour later.
   * Range 04-01 .. 04-03: in UTC the A is after `to`; in Los Angeles it is on the last day of the range.
   */
  it("uses local days for the range", async () => {
    const t = await start();
    await sendBatch(t, [track("u1", "A", "2026-04-04T05:00:00"), track("u1", "B", "2026-04-04T06:00:00")]);
    const body = { steps: ["A", "B"], from: "2026-04-01", to: "2026-04-03" };
    expect(rows(await funnel(t, body))).toEqual([
      [0, 1, 1, null],
      [0, null, null, null],
    ]);
    await setSettings(t, { timeZone: "America/Los_Angeles" });
    expect(rows(await funnel(t, body))).toEqual([
      [1, 1, 1, null],
      [1, 1, 1, 3600],
    ]);
  });
});

describe("funnel parameters", () => {
  it("answers 400 naming the bad parameter", async () => {
    const t = await start();
    const base = { steps: ["A", "B"], from: "2026-04-01", to: "2026-04-03" };
    const cases: [Record<string, unknown>, string][] = [
      [{ ...base, steps: ["A"] }, "steps"],
      [{ ...base, steps: [] }, "steps"],
      [{ ...base, steps: "A,B" }, "steps"],
      [{ ...base, steps: ["A", ""] }, "steps"],
      [{ from: base.from, to: base.to }, "steps"],
      [{ ...base, windowDays: 0 }, "windowDays"],
      [{ ...base, windowDays: 1.5 }, "windowDays"],
      [{ ...base, level: "team" }, "level"],
      [{ ...base, from: "2026-04-31" }, "from"],
      [{ ...base, to: "2026-03-31" }, "from"],
    ];
    for (const [body, parameter] of cases) await expectBadParameter(t, "POST", "funnel", body, parameter);
    // The funnel takes its steps in a JSON body: GET is refused, not misread.
    const get = await fetch(`${t.url}/api/v1/reports/funnel?steps=A&steps=B&from=2026-04-01&to=2026-04-03`, {
      headers: { authorization: `Bearer ${SECRET_KEY}` },
    });
    expect(get.status).toBe(405);
  });
});
