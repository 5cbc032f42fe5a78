import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { describe, expect, it } from "vitest";
import { DATABASE_FILE, DuckDBEngine } from "../src/storage/duckdb/engine.js";
import type { StoredMessage } from "../src/storage/types.js";
import { enginesClosedAfterEach, storedMessage } from "./helpers/engine.js";

/**
 * Each commit adds one identity link per anonymousId, one membership per group and actor, and one
 * row per trait of an entity: the winner among the commit's messages. The same messages, committed
 * together or one by one, give the same profiles.
 */
const WS = "ws";
const NOW = Date.parse("2026-03-31T12:00:00Z");
const at = (day: number, seconds = 0) => Date.parse(`2026-03-0${day}T10:00:0${seconds}.000Z`);

const engines = enginesClosedAfterEach("solstice-reduction");

let seq = 0;
function message(fields: Partial<StoredMessage> & Pick<StoredMessage, "type" | "timestamp">): StoredMessage {
  return storedMessage({
    workspaceId: WS,
    messageId: `m${String(++seq).padStart(3, "0")}`,
    receivedAt: at(9),
    ...fields,
  });
}

/**
 * A browser that sends both ids with every event, identifies and groups on every page, and a second
 * user who later claims the same anonymousId. Worked out: a1's first link is m002 (03-01, u1) — the
 * identify at the same instant, m003, loses the tie on messageId — so a1 is u1's; u1 joined acme by
 * m005 (03-02), the first of its group calls; acme's plan is "team" (03-05, the latest), its name
 * "Acme"; u1's email is the latest identify's, "new@u1.test" (03-04).
 */
function browserSession(): StoredMessage[] {
  seq = 0;
  return [
    message({ type: "page", anonymousId: "a1", name: "Home", timestamp: at(1) }),
    message({ type: "track", anonymousId: "a1", userId: "u1", event: "Opened", timestamp: at(1, 5) }),
    message({
      type: "identify",
      anonymousId: "a1",
      userId: "u1",
      timestamp: at(1, 5),
      traits: { email: "old@u1.test" },
    }),
    message({ type: "track", anonymousId: "a1", userId: "u1", event: "Opened", timestamp: at(2) }),
    message({
      type: "group",
      userId: "u1",
      groupId: "acme",
      timestamp: at(2, 1),
      traits: { name: "Acme", plan: "free" },
    }),
    message({ type: "group", userId: "u1", groupId: "acme", timestamp: at(3), traits: { plan: "pro" } }),
    message({ type: "identify", anonymousId: "a1", userId: "u1", timestamp: at(4), traits: { email: "new@u1.test" } }),
    message({ type: "track", anonymousId: "a1", userId: "u1", event: "Shared", timestamp: at(4, 1) }),
    message({
      type: "group",
      anonymousId: "a1",
      userId: "u1",
      groupId: "acme",
      timestamp: at(5),
      traits: { plan: "team" },
    }),
    message({ type: "identify", anonymousId: "a1", userId: "u2", timestamp: at(6) }),
    message({ type: "track", anonymousId: "a1", userId: "u2", event: "Opened", timestamp: at(6, 1) }),
  ];
}

async function open(): Promise<DuckDBEngine> {
  return (await engines.open()).engine;
}

/** Rows of the derived tables, read from the file once `engine` is closed. */
async function rowCounts(engine: DuckDBEngine, dataDir: string): Promise<Record<string, number>> {
  await engines.close(engine);
  const instance = await DuckDBInstance.create(path.join(dataDir, DATABASE_FILE), { access_mode: "READ_ONLY" });
  const connection = await instance.connect();
  const counts: Record<string, number> = {};
  for (const table of ["identity_links", "memberships", "traits", "actor_summary", "activity_days", "event_times"]) {
    const result = await connection.runAndReadAll(`SELECT count(*) FROM ${table}`);
    counts[table] = Number(result.getRows()[0]?.[0]);
  }
  connection.closeSync();
  instance.closeSync();
  return counts;
}

describe("rows a commit adds to the identity tables", () => {
  it("keeps one winner per key within a commit, and answers as when every message is its own commit", async () => {
    const together = await open();
    expect(await together.write(browserSession())).toEqual(Array(11).fill("stored"));
    const apart = await open();
    for (const m of browserSession()) expect(await apart.write([m])).toEqual(["stored"]);

    const u1 = await together.user(WS, "u1");
    expect(u1?.anonymousIds).toEqual([
      { anonymousId: "a1", linkedBy: { messageId: "m002", at: "2026-03-01T10:00:05.000Z" } },
    ]);
    expect(u1?.companies).toEqual([
      { id: "acme", name: "Acme", joinedBy: { messageId: "m005", at: "2026-03-02T10:00:01.000Z" } },
    ]);
    expect(u1?.email).toBe("new@u1.test");
    const acme = await together.company(WS, "acme", NOW);
    expect(acme?.traits).toEqual({ name: "Acme", plan: "team" });
    expect(acme?.traitsSetBy).toEqual({
      name: { messageId: "m005", at: "2026-03-02T10:00:01.000Z" },
      plan: { messageId: "m009", at: "2026-03-05T10:00:00.000Z" },
    });

    for (const id of ["u1", "u2", "a1"]) expect(await together.user(WS, id)).toEqual(await apart.user(WS, id));
    expect(await together.company(WS, "acme", NOW)).toEqual(await apart.company(WS, "acme", NOW));
    const timeline = async (e: DuckDBEngine) =>
      (await e.readEvents({ workspaceId: WS, userId: "u1", limit: 100 })).map((r) => r.messageId);
    expect(await timeline(together)).toEqual(await timeline(apart));

    // One commit: a1 → u1 once (of 8 messages carrying both ids, u2's included); acme's member u1
    // once (of 3 group calls, each with a userId); traits: u1's email, acme's name and plan.
    const { engine, dataDir } = await engines.open();
    await engine.write(browserSession());
    expect(await rowCounts(engine, dataDir)).toMatchObject({ identity_links: 1, memberships: 1, traits: 3 });
  });
});

describe("compaction when writes pause", () => {
  it("folds the rows that each commit added per actor into one, without changing an answer", async () => {
    const messages = browserSession();
    const run = async (idle: boolean) => {
      // Idle: a pause of 50 ms compacts whatever is pending, so the last pause leaves every row folded
      // even when a slow step between two writes made a pause (and a compaction) of its own.
      const { engine, dataDir } = await engines.open(
        idle ? { idleCompactionMs: 50, idleCompactionMessages: 1 } : { idleCompactionMessages: 1_000_000 },
      );
      for (const m of messages) {
        await engine.write([m]);
        // A read waits for the derivation: each commit is derived on its own, as when writes come one at a time.
        await engine.user(WS, "u1");
      }
      // Long enough for a pause of 50 ms to be noticed and the compaction to run.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const answers = {
        u1: await engine.user(WS, "u1"),
        u2: await engine.user(WS, "u2"),
        acme: await engine.company(WS, "acme", NOW),
        events: await engine.readEvents({ workspaceId: WS, userId: "u1", limit: 100 }),
      };
      return { answers, rows: await rowCounts(engine, dataDir) };
    };
    const idle = await run(true);
    const busy = await run(false);
    expect(idle.answers).toEqual(busy.answers);
    // One commit per message. Activity: a1's page (03-01), u1's tracks on 03-01, 03-02 and 03-04, u2's
    // on 03-06: five summary rows and five day rows. Links: the 8 messages carrying both ids. Compacted:
    // one summary row per actor (a1, u1, u2), the same five days, and a1's first link only.
    expect(busy.rows).toMatchObject({ actor_summary: 5, activity_days: 5, identity_links: 8 });
    expect(idle.rows).toMatchObject({ actor_summary: 3, activity_days: 5, identity_links: 1 });
  });
});

describe("compaction beside the commits", () => {
  /**
   * 200 users over 20 days: each user's anonymousId is linked by an identify on day 1, the user joins
   * one of 10 companies, and tracks twice a day on the days where (user + day) % 3 is 0, every other
   * one with the company as context.groupId. `part` 0 is the first 10 days, 1 the last 10.
   */
  function history(part: number): StoredMessage[] {
    const out: StoredMessage[] = [];
    const day = (d: number, h: number) => Date.UTC(2026, 2, 1 + d, h);
    for (let u = 0; u < 200; u++) {
      const user = `u${u}`;
      const company = `c${u % 10}`;
      if (part === 0) {
        out.push(message({ type: "identify", userId: user, anonymousId: `a${u}`, timestamp: day(0, 8) }));
        out.push(message({ type: "group", userId: user, groupId: company, timestamp: day(0, 9), traits: { n: u } }));
      }
      for (let d = part * 10; d < part * 10 + 10; d++) {
        if ((u + d) % 3 !== 0) continue;
        for (const h of [10, 11]) {
          const anonymous = h === 10 && d % 2 === 0;
          out.push(
            message({
              type: "track",
              event: h === 10 ? "Opened" : "Saved",
              userId: anonymous ? null : user,
              anonymousId: `a${u}`,
              contextGroupId: d % 2 === 0 ? company : null,
              timestamp: day(d, h),
            }),
          );
        }
      }
    }
    return out;
  }

  const answers = async (engine: DuckDBEngine) => ({
    stats: await engine.stats(WS),
    users: await Promise.all(["u0", "u17", "u199"].map((id) => engine.user(WS, id))),
    companies: await Promise.all(["c0", "c7"].map((id) => engine.company(WS, id, Date.UTC(2026, 2, 25)))),
    active: await engine.reports.active({
      workspaceId: WS,
      level: "company",
      includeAnonymous: false,
      timeZone: "UTC",
      interval: "day",
      from: Date.UTC(2026, 2, 1) / 86_400_000,
      to: Date.UTC(2026, 2, 20) / 86_400_000,
      rolling: true,
    }),
    // Funnels read each actor's times per event, whose lists from both parts the compaction merges;
    // the second adds a step repeated, which takes a later message than the first.
    funnels: await Promise.all(
      (["user", "company"] as const).flatMap((level) =>
        [
          ["Opened", "Saved"],
          ["Opened", "Saved", "Opened"],
        ].map((steps) =>
          engine.reports.funnel({
            workspaceId: WS,
            level,
            includeAnonymous: false,
            timeZone: "UTC",
            steps,
            windowSeconds: 3 * 86_400,
            from: Date.UTC(2026, 2, 1) / 86_400_000,
            to: Date.UTC(2026, 2, 20) / 86_400_000,
          }),
        ),
      ),
    ),
    // Weekly, over ranges that cut the week of Monday 03-09 (03-01 is a Sunday) after its Tuesday,
    // the last day of the first part: that week's rows come from both parts, and the compaction
    // merges their days.
    weekly: await Promise.all(
      (["user", "company"] as const).flatMap((level) =>
        [
          [4, 10],
          [11, 20],
        ].map(([from, to]) =>
          engine.reports.active({
            workspaceId: WS,
            level,
            includeAnonymous: false,
            timeZone: "UTC",
            interval: "week",
            from: Date.UTC(2026, 2, from as number) / 86_400_000,
            to: Date.UTC(2026, 2, to as number) / 86_400_000,
            rolling: false,
          }),
        ),
      ),
    ),
  });

  it("keeps what is committed while it runs, and answers as without it", async () => {
    seq = 0;
    const first = history(0);
    const second = history(1);
    // A slice of the track event times per event: the compaction merges them event by event.
    const { engine, dataDir } = await engines.open({ idleCompactionMessages: 1_000_000, eventTimesSlice: 1 });
    await engine.write(first);
    let committedMeanwhile = 0;
    let compacting = true;
    const compaction = engine.compact().finally(() => {
      compacting = false;
    });
    // The later part, 20 messages a commit, while the compaction runs.
    for (let i = 0; i < second.length; i += 20) {
      await engine.write(second.slice(i, i + 20));
      if (compacting) committedMeanwhile++;
    }
    await compaction;
    // Commits went on during the compaction instead of waiting for it.
    expect(committedMeanwhile).toBeGreaterThan(0);

    const { engine: reference } = await engines.open({ idleCompactionMessages: 1_000_000 });
    await reference.write([...first, ...second]);
    const expected = await answers(reference);
    expect(expected.stats.messages).toBe(first.length + second.length);
    expect(await answers(engine)).toEqual(expected);

    // A second compaction folds the later rows too: one row per actor and company (the rows with a
    // context.groupId and those without), one link per anonymousId, one membership per user.
    await engine.compact();
    expect(await answers(engine)).toEqual(expected);
    const rows = await rowCounts(engine, dataDir);
    expect(rows).toMatchObject({ identity_links: 200, memberships: 200 });
    // Every user is active on both day parities within 20 days, as itself and as its anonymousId (the
    // 10:00 track on even days): actor × context rows are user/null, user/company, anon/company.
    expect(rows.actor_summary).toBe(600);
    // Per user and event: Opened as the anonymousId with the company (even days) and as the user
    // without (odd days); Saved as the user, with the company and without.
    expect(rows.event_times).toBe(800);
  });

  it("is stopped by close(), and the database it leaves answers as before", async () => {
    seq = 0;
    const all = [...history(0), ...history(1)];
    const { engine, dataDir } = await engines.open({ idleCompactionMessages: 1_000_000 });
    await engine.write(all);
    const expected = await answers(engine);
    const compaction = engine.compact().catch((err: unknown) => err);
    await engines.close(engine);
    // Settled, not left hanging: done, or refused because the engine closed.
    await compaction;
    const reopened = new DuckDBEngine({ dataDir, maxQueuedRows: 1000, maxCommitRows: 1000 });
    await reopened.open();
    try {
      expect(await answers(reopened)).toEqual(expected);
    } finally {
      await reopened.close();
    }
  });
});
