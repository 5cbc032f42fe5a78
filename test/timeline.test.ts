import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { describe, expect, it } from "vitest";
import { DATABASE_FILE } from "../src/storage/duckdb/engine.js";
import { timelineBoundQuery } from "../src/storage/duckdb/queries.js";
import type { EventQuery, EventRecord, StoredMessage } from "../src/storage/types.js";
import { enginesClosedAfterEach, storedMessage } from "./helpers/engine.js";

/**
 * Timelines read only the messages at or after a bound worked out from the activity tables. The pages
 * must be exactly those of a plain scan (checked against the fixture filtered and sorted here), and
 * the bound must be the one worked out by hand.
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
