import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { describe, expect, it } from "vitest";
import { DATABASE_FILE } from "../src/storage/duckdb/engine.js";
import { MAX_TIMELINE_RANGES, timelineBoundQuery, timelineRanges } from "../src/storage/duckdb/queries.js";
import type { EventQuery, EventRecord, StoredMessage } from "../src/storage/types.js";
import { enginesClosedAfterEach, storedMessage } from "./helpers/engine.js";

/**
 * Timelines read only part of the messages: a user's, the spans of time its message_days rows give
 * (or, with too many spans, the messages at or after a bound); a company's, the messages at or after
 * a bound worked out from the activity tables. The pages must be exactly those of a plain scan
 * (checked against the fixture filtered and sorted here), and the spans and bounds those worked out
 * by hand.
 */
const WS = "ws";
const engines = enginesClosedAfterEach("solstice-timeline");
const at = (day: number, hour: number) =>
  Date.parse(`2026-03-${String(day).padStart(2, "0")}T${String(hour).padStart(2, "0")}:00:00.000Z`);

let seq = 0;
function message(fields: Partial<StoredMessage> & Pick<StoredMessage, "type" | "timestamp">): StoredMessage {
  return storedMessage({ workspaceId: WS, messageId: `m${String(++seq).padStart(3, "0")}`, ...fields });
}

/**
 * u1: a page as visitor a1 on 03-01 09:00, linked to u1 by the identify at 09:30; two tracks a day,
 * 10:00 and 11:00, from 03-01 to 03-10; a group call joining acme on 03-05 12:00. u2: a track every day
 * at 10:30, with context.groupId acme on 03-03 and 03-07 only. u3: a track every day at 10:45, no
 * company. Activity rows of u1 per day: 2 events, first 10:00, last 11:00; and a1's row on 03-01 (1).
 */
function fixture(): StoredMessage[] {
  seq = 0;
  const out: StoredMessage[] = [
    message({ type: "page", anonymousId: "a1", name: "Home", timestamp: at(1, 9) }),
    message({ type: "identify", anonymousId: "a1", userId: "u1", timestamp: at(1, 9) + 1_800_000 }),
    message({ type: "group", userId: "u1", groupId: "acme", timestamp: at(5, 12), traits: { name: "Acme" } }),
  ];
  for (let day = 1; day <= 10; day++) {
    out.push(message({ type: "track", userId: "u1", event: "Opened", timestamp: at(day, 10) }));
    out.push(message({ type: "track", userId: "u1", event: "Saved", timestamp: at(day, 11) }));
    out.push(
      message({
        type: "track",
        userId: "u2",
        event: "Opened",
        timestamp: at(day, 10) + 1_800_000,
        contextGroupId: day === 3 || day === 7 ? "acme" : null,
      }),
    );
    out.push(message({ type: "track", userId: "u3", event: "Opened", timestamp: at(day, 10) + 2_700_000 }));
  }
  return out;
}

/** Newest first, as the API orders them: by timestamp, then messageId. */
const newestFirst = (a: StoredMessage, b: StoredMessage) =>
  b.timestamp - a.timestamp || (a.messageId < b.messageId ? 1 : -1);

/** Every page of a timeline, following the cursor as the API's clients do. */
async function allPages(read: (q: EventQuery) => Promise<EventRecord[]>, query: EventQuery): Promise<string[]> {
  const ids: string[] = [];
  let after: EventQuery["after"];
  for (;;) {
    const page = await read({ ...query, after });
    ids.push(...page.map((e) => e.messageId));
    if (page.length < query.limit) return ids;
    const last = page[page.length - 1] as EventRecord;
    after = { timestamp: Date.parse(last.timestamp), messageId: last.messageId };
  }
}

describe("timelines read from a bound", () => {
  it("pages through a user's and a company's messages exactly as a plain scan would", async () => {
    const messages = fixture();
    const { engine } = await engines.open();
    await engine.write(messages);
    const read = (q: EventQuery) => engine.readEvents(q);
    // u1's: its own messages and a1's (linked). acme's: its group call, u2's two events with
    // context.groupId acme, and every activity event of its member u1 (a1's page included).
    const u1 = messages.filter((m) => m.userId === "u1" || (m.userId === null && m.anonymousId === "a1"));
    const acme = messages.filter(
      (m) =>
        m.groupId === "acme" ||
        m.contextGroupId === "acme" ||
        (m.type !== "group" && m.type !== "identify" && (m.userId === "u1" || m.anonymousId === "a1")),
    );
    expect(u1).toHaveLength(23);
    expect(acme).toHaveLength(24);
    for (const limit of [1, 3, 5, 100]) {
      expect(await allPages(read, { workspaceId: WS, userId: "u1", limit })).toEqual(
        [...u1].sort(newestFirst).map((m) => m.messageId),
      );
      expect(await allPages(read, { workspaceId: WS, companyId: "acme", limit })).toEqual(
        [...acme].sort(newestFirst).map((m) => m.messageId),
      );
    }
  });

  it("bounds the scan at the earliest first event of the newest activity rows that hold a page", async () => {
    const messages = fixture();
    const { engine, dataDir } = await engines.open();
    await engine.write(messages);
    await engines.close(engine);
    const instance = await DuckDBInstance.create(path.join(dataDir, DATABASE_FILE), { access_mode: "READ_ONLY" });
    const connection = await instance.connect();
    const bound = async (query: EventQuery, anonymousIds?: string[]): Promise<string | null> => {
      const sql = timelineBoundQuery(query, anonymousIds);
      if (sql === null) return "none";
      const found = (await connection.runAndReadAll(sql.sql, sql.params)).getRows()[0]?.[0];
      return found === null || found === undefined ? null : new Date(Number(found) / 1000).toISOString();
    };
    try {
      // Five events: the rows of 03-10, 03-09 and 03-08 (2 each) are the first to hold five; the
      // earliest of them starts 03-08 10:00.
      expect(await bound({ workspaceId: WS, userId: "u1", limit: 5 })).toBe("2026-03-08T10:00:00.000Z");
      // After 03-08 11:00: only rows ending before it count, 03-07, 03-06 and 03-05.
      const after = { timestamp: at(8, 11), messageId: "zzz" };
      expect(await bound({ workspaceId: WS, userId: "u1", limit: 5, after })).toBe("2026-03-05T10:00:00.000Z");
      // 21 activity events in all (20 tracks and a1's page): 21 fit, 22 do not, and there is no bound.
      expect(await bound({ workspaceId: WS, userId: "u1", limit: 21 })).toBe("2026-03-01T09:00:00.000Z");
      expect(await bound({ workspaceId: WS, userId: "u1", limit: 22 })).toBeNull();
      // The same with u1's anonymousIds given as a list, as the engine does; without a1, 20 events.
      expect(await bound({ workspaceId: WS, userId: "u1", limit: 21 }, ["a1"])).toBe("2026-03-01T09:00:00.000Z");
      expect(await bound({ workspaceId: WS, userId: "u1", limit: 5 }, ["a1"])).toBe("2026-03-08T10:00:00.000Z");
      expect(await bound({ workspaceId: WS, userId: "u1", limit: 20 }, [])).toBe("2026-03-01T10:00:00.000Z");
      expect(await bound({ workspaceId: WS, userId: "u1", limit: 21 }, [])).toBeNull();
      // acme: u1's rows (2 a day) and u2's on 03-07 (10:30) and 03-03. Three events: 03-10 (2) and
      // 03-09 (2) hold four, starting 03-09 10:00.
      expect(await bound({ workspaceId: WS, companyId: "acme", limit: 3 })).toBe("2026-03-09T10:00:00.000Z");
      // 8 events: 03-10, 03-09, 03-08 (6), then u1's 03-07 row (ends 11:00) before u2's (10:30): 8.
      expect(await bound({ workspaceId: WS, companyId: "acme", limit: 8 })).toBe("2026-03-07T10:00:00.000Z");
      // Any other filter may leave out activity the bound counts on: no bound.
      expect(await bound({ workspaceId: WS, userId: "u1", event: "Opened", limit: 5 })).toBe("none");
      expect(await bound({ workspaceId: WS, limit: 5 })).toBe("none");
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
  });
});

/** A user's message_days row: `messages` between `first` and `last` (day and hour of March 2026, UTC). */
const dayRow = (messages: number, first: [number, number], last: [number, number]) => ({
  messages,
  first: BigInt(at(...first)) * 1000n,
  last: BigInt(at(...last)) * 1000n,
});
const iso = (us: bigint) => new Date(Number(us / 1000n)).toISOString().slice(5, 16);

describe("a user's timeline read span by span", () => {
  /**
   * u1's message_days rows in the fixture: a1 on 03-01 (the page, 09:00); u1 on 03-01 (the identify at
   * 09:30 and two tracks, to 11:00); two tracks a day 10:00-11:00 from 03-02 to 03-10, and the group
   * call at 12:00 on 03-05.
   */
  const rows = [
    dayRow(1, [1, 9], [1, 9]),
    { ...dayRow(3, [1, 9], [1, 11]), first: BigInt(at(1, 9) + 1_800_000) * 1000n },
    ...[2, 3, 4, 5, 6, 7, 8, 9, 10].map((d) => dayRow(d === 5 ? 3 : 2, [d, 10], [d, d === 5 ? 12 : 11])),
  ];
  const spans = (limit: number, after?: EventQuery["after"]) => {
    const found = timelineRanges(rows, limit, after);
    return "ranges" in found
      ? found.ranges.map(([lo, hi]) => `${iso(lo)}..${iso(hi)}`)
      : `since ${found.since === null ? null : iso(found.since)}`;
  };

  it("scans the days that hold a page, from the earliest first message of the newest rows that hold it", () => {
    // Five messages: 03-10, 03-09 and 03-08 hold six, from 03-08 10:00; three spans a day apart.
    expect(spans(5)).toEqual(["03-08T10:00..03-08T11:00", "03-09T10:00..03-09T11:00", "03-10T10:00..03-10T11:00"]);
    // After 03-08 11:00: the rows wholly before it, 03-07, 03-06 and 03-05 (3), hold seven from
    // 03-05 10:00; 03-08's row reaches the cursor and is scanned up to it.
    expect(spans(5, { timestamp: at(8, 11), messageId: "zzz" })).toEqual([
      "03-05T10:00..03-05T12:00",
      "03-06T10:00..03-06T11:00",
      "03-07T10:00..03-07T11:00",
      "03-08T10:00..03-08T11:00",
    ]);
    // 23 messages in all: a page of 30 needs every row. a1's page at 09:00 and u1's 09:30-11:00 are
    // half an hour apart, one span; ten spans, one a day.
    const all = spans(30);
    expect(all).toHaveLength(10);
    expect(all[0]).toBe("03-01T09:00..03-01T11:00");
    // Past the first message, nothing is left to scan.
    expect(spans(5, { timestamp: at(1, 9) - 1, messageId: "a" })).toEqual([]);
  });

  it("gives a bound instead when the page's days are too many to scan one by one", () => {
    // One message a day for twice as many days as spans are scanned one by one.
    const many = Array.from({ length: 2 * MAX_TIMELINE_RANGES }, (_, i) => dayRow(1, [i + 1, 10], [i + 1, 10]));
    const day = (d: number) => `since ${iso(BigInt(at(d, 10)) * 1000n)}`;
    // A page of as many messages as spans are allowed fits in that many days: spans.
    expect(timelineRanges(many, MAX_TIMELINE_RANGES)).toMatchObject({ ranges: expect.any(Array) });
    // One more day is too many: the bound of the newest rows that hold the page instead.
    const found = timelineRanges(many, MAX_TIMELINE_RANGES + 1);
    expect("since" in found && found.since !== null ? `since ${iso(found.since)}` : found).toBe(
      day(2 * MAX_TIMELINE_RANGES - MAX_TIMELINE_RANGES),
    );
    // A page larger than all the messages: no bound at all.
    expect(timelineRanges(many, 100)).toEqual({ since: null });
  });

  it("pages through generated users exactly as a plain scan would, before and after a compaction", async () => {
    // A fixed pseudo-random history: users with 0 to 2 anonymousIds each (linked to them by an
    // identify, never claimed by another user), whose messages of every type fall on a few to many of
    // 60 days, sent in commits of 37 messages, so that message_days holds several rows per day. Pages
    // of 1 and 7 are read span by span, and those of 50 of the busier users in one scan (too many spans).
    let state = 7;
    const random = () => {
      state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
      return state / 2_147_483_648;
    };
    seq = 0;
    const messages: StoredMessage[] = [];
    const users = Array.from({ length: 8 }, (_, u) => ({
      id: `u${u}`,
      anonymous: Array.from({ length: u % 3 }, (_, a) => `a${u}-${a}`),
      days: Array.from({ length: [1, 3, 8, 20, 40][u % 5] as number }, () => 1 + Math.floor(random() * 60)),
    }));
    // One of four hours a day: messages of one user often share a timestamp, and a page often ends
    // between two of them.
    const when = (day: number) => Date.UTC(2026, 2, 1) + day * 86_400_000 + Math.floor(random() * 4) * 3_600_000;
    for (const user of users) {
      for (const anon of user.anonymous) {
        messages.push(message({ type: "page", anonymousId: anon, name: "Home", timestamp: when(0) }));
        messages.push(message({ type: "identify", anonymousId: anon, userId: user.id, timestamp: when(0) }));
        messages.push(message({ type: "track", anonymousId: anon, event: "Later", timestamp: when(59) }));
      }
      for (const day of user.days) {
        const type = (["track", "page", "identify", "group", "alias"] as const)[Math.floor(random() * 5)] ?? "track";
        messages.push(
          message({
            type,
            userId: user.id,
            event: type === "track" ? "Opened" : null,
            groupId: type === "group" ? "acme" : null,
            previousId: type === "alias" ? `old-${user.id}` : null,
            timestamp: when(day),
          }),
        );
      }
    }
    const { engine } = await engines.open({ idleCompactionMessages: 1_000_000 });
    const shuffled = [...messages].sort(() => random() - 0.5);
    for (let i = 0; i < shuffled.length; i += 37) await engine.write(shuffled.slice(i, i + 37));
    const read = (q: EventQuery) => engine.readEvents(q);
    const check = async () => {
      for (const user of users) {
        const expected = messages
          .filter((m) => m.userId === user.id || (m.userId === null && user.anonymous.includes(m.anonymousId ?? "")))
          .sort(newestFirst)
          .map((m) => m.messageId);
        for (const limit of [1, 7, 50]) {
          expect(await allPages(read, { workspaceId: WS, userId: user.id, limit })).toEqual(expected);
        }
      }
    };
    await check();
    await engine.compact();
    await check();
  });

  it("erases a user's message_days rows with the user", async () => {
    const { engine, dataDir } = await engines.open();
    await engine.write(fixture());
    await engine.requestDeletion(WS, {
      id: "d1",
      userId: "u1",
      state: "requested",
      requestedAt: new Date(at(11, 0)).toISOString(),
      startedAt: null,
      finishedAt: null,
      messagesDeleted: null,
    });
    await engine.runDeletion(WS, "d1");
    expect(await engine.readEvents({ workspaceId: WS, userId: "u1", limit: 10 })).toEqual([]);
    await engines.close(engine);
    const instance = await DuckDBInstance.create(path.join(dataDir, DATABASE_FILE), { access_mode: "READ_ONLY" });
    const connection = await instance.connect();
    try {
      const left = (
        await connection.runAndReadAll("SELECT DISTINCT actor_id FROM message_days ORDER BY actor_id")
      ).getRows();
      // u1 and a1 are gone; u2 and u3 stay.
      expect(left).toEqual([["u2"], ["u3"]]);
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
  });
});
