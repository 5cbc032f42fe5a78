import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { describe, expect, it } from "vitest";
import { DATABASE_FILE } from "../src/storage/duckdb/engine.js";
import type { QuarantineListener } from "../src/storage/duckdb/writer.js";
import type { StoredMessage } from "../src/storage/types.js";
import { enginesClosedAfterEach, storedMessage } from "./helpers/engine.js";
import { post, query, SECRET_KEY, startTestServer, type TestServer, tempDataDir } from "./helpers/server.js";

/**
 * A message that the derivation cannot take on is left out of the derived tables, so that every
 * other message's profiles and reports stay readable, and is tried again at each start.
 *
 * No such message is known (validation keeps out what the derivation could not read), so a real
 * DuckDB failure stands in for one: a CHECK constraint on the traits table that refuses the trait
 * key "poison". Taking the constraint away afterwards stands in for a version that derives it.
 */
const WS = "ws";
const NOW = Date.parse("2026-03-31T12:00:00Z");
const at = (day: number) => Date.parse(`2026-03-${String(day).padStart(2, "0")}T10:00:00Z`);
const engines = enginesClosedAfterEach("solstice-quarantine");

function message(
  fields: Partial<StoredMessage> & Pick<StoredMessage, "messageId" | "type" | "timestamp">,
): StoredMessage {
  return storedMessage({ workspaceId: WS, receivedAt: NOW, ...fields });
}

/**
 * Four commits. u2's identify (q2) and u4's (q7) set the refused key; everything else derives. Worked
 * out: u1 has plan "pro" (q1) and one event; u2 has no traits (q2 is left out whole, its plan "free"
 * too) and one event (q3), and is acme's member (q4), acme named "Acme"; u3 has plan "team" and one
 * event; u4 has no traits and one event (q8).
 */
const COMMITS: StoredMessage[][] = [
  [
    message({ messageId: "q1", type: "identify", userId: "u1", timestamp: at(1), traits: { plan: "pro" } }),
    message({ messageId: "t1", type: "track", userId: "u1", event: "Opened", timestamp: at(2) }),
  ],
  [
    message({ messageId: "q2", type: "identify", userId: "u2", timestamp: at(3), traits: { plan: "free", poison: 1 } }),
    message({ messageId: "q3", type: "track", userId: "u2", event: "Opened", timestamp: at(4) }),
    message({
      messageId: "q4",
      type: "group",
      userId: "u2",
      groupId: "acme",
      timestamp: at(5),
      traits: { name: "Acme" },
    }),
  ],
  [
    message({ messageId: "q5", type: "identify", userId: "u3", timestamp: at(6), traits: { plan: "team" } }),
    message({ messageId: "t3", type: "track", userId: "u3", event: "Opened", timestamp: at(7) }),
  ],
  [
    message({ messageId: "q7", type: "identify", userId: "u4", timestamp: at(8), traits: { poison: 2 } }),
    message({ messageId: "q8", type: "track", userId: "u4", event: "Opened", timestamp: at(9) }),
  ],
];

/** Rewrites the traits table of the closed database in `dataDir`, with or without the CHECK constraint. */
async function refusePoison(dataDir: string, refuse: boolean): Promise<void> {
  const instance = await DuckDBInstance.create(path.join(dataDir, DATABASE_FILE));
  const connection = await instance.connect();
  try {
    const [row] = (
      await connection.runAndReadAll("SELECT sql FROM duckdb_tables() WHERE table_name = 'traits'")
    ).getRows();
    const ddl = String(row?.[0]);
    const refusal = /,\s*CHECK\s*\(\("key" != 'poison'\)\)/;
    const created = refuse ? ddl.replace(/\);\s*$/, ", CHECK (key <> 'poison'));") : ddl.replace(refusal, "");
    // The table changes: the constraint is added, or found and taken away.
    expect(refusal.test(ddl)).toBe(!refuse);
    await connection.run("ALTER TABLE traits RENAME TO traits_before");
    await connection.run(created);
    await connection.run("INSERT INTO traits SELECT * FROM traits_before");
    await connection.run("DROP TABLE traits_before");
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/**
 * An engine on a database whose traits table refuses the key "poison", with COMMITS written, and
 * what its quarantine listener heard; `options` open it again. With `deriveDelayMs`, the commits
 * wait for a read to derive them, all three at once.
 */
async function poisonedEngine(deriveDelayMs?: number) {
  const first = await engines.open();
  await engines.close(first.engine);
  const { dataDir } = first;
  await refusePoison(dataDir, true);
  const heard: Parameters<QuarantineListener>[0][] = [];
  const onQuarantine: QuarantineListener = (info) => heard.push(info);
  const failures = { count: 0 };
  const onDerive = (info: { error?: unknown }) => {
    if (info.error !== undefined) failures.count++;
  };
  const options = { dataDir, onQuarantine, onDerive, ...(deriveDelayMs === undefined ? {} : { deriveDelayMs }) };
  const { engine } = await engines.open(options);
  for (const commit of COMMITS) await engine.write(commit);
  return { engine, dataDir, heard, failures, options };
}

async function traitsOf(engine: Awaited<ReturnType<typeof engines.open>>["engine"], userId: string) {
  return (await engine.user(WS, userId))?.traits;
}

describe("quarantine of a message the derivation cannot take on", () => {
  it("leaves the messages out, derives the rest, and derives them at a start where they derive", async () => {
    // The four commits wait for one derivation, which fails.
    const { engine, dataDir, heard, failures, options } = await poisonedEngine(600_000);

    expect(await traitsOf(engine, "u1")).toEqual({ plan: "pro" });
    expect(heard).toMatchObject([
      { message: { workspaceId: WS, messageId: "q2" } },
      { message: { workspaceId: WS, messageId: "q7" } },
    ]);
    expect(JSON.stringify(heard[0])).toContain("CHECK constraint");
    // Both found by the trials after the one failure, and the derivation without them succeeded.
    expect(failures.count).toBe(1);
    expect(engine.quarantinedMessages).toBe(2);
    const u2 = await engine.user(WS, "u2");
    expect(u2?.traits).toEqual({});
    expect(u2?.events).toBe(1);
    expect(await traitsOf(engine, "u3")).toEqual({ plan: "team" });
    expect(await traitsOf(engine, "u4")).toEqual({});
    expect((await engine.user(WS, "u4"))?.events).toBe(1);
    const acme = await engine.company(WS, "acme", NOW);
    expect(acme?.name).toBe("Acme");
    expect(acme?.members.map((m) => m.userId)).toEqual(["u2"]);
    // Stored all the same: the message is kept, only the derived tables lack it.
    expect((await engine.readEvents({ workspaceId: WS, messageId: "q2", limit: 10 })).map((e) => e.messageId)).toEqual([
      "q2",
    ]);
    expect(await engine.stats(WS)).toMatchObject({ messages: 9 });
    const listed = await engine.quarantined(WS);
    expect(listed.map((q) => q.messageId).sort()).toEqual(["q2", "q7"]);
    expect(listed[0]?.error).toMatch(/^Constraint Error: CHECK constraint failed/);
    expect(await engine.quarantined("another")).toEqual([]);

    // A start with the same failure: tried again, still quarantined.
    await engines.close(engine);
    heard.length = 0;
    const again = (await engines.open(options)).engine;
    expect(heard).toEqual([{ released: 0, remaining: 2 }]);
    expect(again.quarantinedMessages).toBe(2);
    expect(await traitsOf(again, "u2")).toEqual({});

    // A start where it derives: taken on, and out of the quarantine.
    await engines.close(again);
    await refusePoison(dataDir, false);
    heard.length = 0;
    const fixed = (await engines.open(options)).engine;
    expect(heard).toEqual([{ released: 2, remaining: 0 }]);
    expect(fixed.quarantinedMessages).toBe(0);
    expect(await traitsOf(fixed, "u2")).toEqual({ plan: "free", poison: 1 });
    expect(await traitsOf(fixed, "u4")).toEqual({ poison: 2 });
    expect((await fixed.user(WS, "u2"))?.events).toBe(1);
    await engines.close(fixed);
    heard.length = 0;
    const later = (await engines.open(options)).engine;
    expect(heard).toEqual([]);
    expect(await traitsOf(later, "u2")).toEqual({ plan: "free", poison: 1 });
  });

  it("quarantines at start-up what a derivation left underived, and opens", async () => {
    const { engine, heard, options } = await poisonedEngine(600_000);
    // Closing derives what is left once; it fails, and the commits stay underived.
    await engines.close(engine);
    expect(heard).toEqual([]);

    const reopened = (await engines.open(options)).engine;
    expect(heard).toMatchObject([{ message: { messageId: "q2" } }, { message: { messageId: "q7" } }]);
    expect(reopened.underivedMessages).toBe(0);
    expect(await traitsOf(reopened, "u1")).toEqual({ plan: "pro" });
    expect(await traitsOf(reopened, "u2")).toEqual({});
    expect(await traitsOf(reopened, "u3")).toEqual({ plan: "team" });
  });

  it("erases a quarantined message with its user, and only theirs", async () => {
    const { engine, heard, options } = await poisonedEngine();
    expect(await traitsOf(engine, "u1")).toEqual({ plan: "pro" });
    expect(engine.quarantinedMessages).toBe(2);

    await engine.requestDeletion(WS, {
      id: "d1",
      userId: "u2",
      state: "requested",
      requestedAt: new Date(NOW).toISOString(),
      startedAt: null,
      finishedAt: null,
      messagesDeleted: null,
    });
    // u2's identify (quarantined), track and group call.
    expect((await engine.runDeletion(WS, "d1")).messagesDeleted).toBe(3);
    expect(engine.quarantinedMessages).toBe(1);
    await engines.close(engine);
    heard.length = 0;
    const reopened = (await engines.open(options)).engine;
    // u4's is left to try again, and still fails.
    expect(heard).toEqual([{ released: 0, remaining: 1 }]);
    expect(reopened.quarantinedMessages).toBe(1);
    expect(await reopened.user(WS, "u2")).toBeNull();
  });

  it("quarantines nothing for a failure that is the database's, not a message's", async () => {
    const first = await engines.open();
    await engines.close(first.engine);
    const { dataDir } = first;
    const rename = async (from: string, to: string) => {
      const instance = await DuckDBInstance.create(path.join(dataDir, DATABASE_FILE));
      const connection = await instance.connect();
      await connection.run(`ALTER TABLE ${from} RENAME TO ${to}`);
      connection.closeSync();
      instance.closeSync();
    };
    // Every derivation fails with a Catalog Error: each message would fail alone too.
    await rename("event_weeks", "event_weeks_away");
    const heard: Parameters<QuarantineListener>[0][] = [];
    const options = { dataDir, onQuarantine: (info: Parameters<QuarantineListener>[0]) => heard.push(info) };
    const { engine } = await engines.open(options);
    for (const commit of COMMITS) await engine.write(commit);
    await expect(engine.user(WS, "u1")).rejects.toThrow(/event_weeks/);
    expect(heard).toEqual([]);
    expect(engine.quarantinedMessages).toBe(0);
    await engines.close(engine);

    // With the table back, the next start derives everything, the poison-free messages of COMMITS alike.
    await rename("event_weeks_away", "event_weeks");
    const reopened = (await engines.open(options)).engine;
    expect(heard).toEqual([]);
    expect(await traitsOf(reopened, "u2")).toEqual({ plan: "free", poison: 1 });
    expect((await reopened.user(WS, "u4"))?.events).toBe(1);
  });

  it("lists a workspace's quarantined messages over HTTP, as JSON and CSV", async () => {
    const dataDir = tempDataDir("solstice-quarantine");
    let server: TestServer = await startTestServer(dataDir);
    await server.close();
    await refusePoison(dataDir, true);
    server = await startTestServer(dataDir);
    try {
      const batch = [
        { type: "identify", userId: "u9", messageId: "m-poison", traits: { poison: true } },
        { type: "track", userId: "u9", event: "Opened", messageId: "m-track" },
      ];
      expect((await post(server.url, "/v1/batch", { batch })).status).toBe(200);
      // The profile waits for the derivation, which quarantines the identify and derives the track.
      const user = await query<{ events: number; traits: object }>(server.url, "/api/v1/users/u9");
      expect(user).toMatchObject({ events: 1, traits: {} });
      const { messages } = await query<{ messages: { messageId: string; error: string; quarantinedAt: string }[] }>(
        server.url,
        "/api/v1/quarantined-messages",
      );
      expect(messages.map((m) => m.messageId)).toEqual(["m-poison"]);
      expect(messages[0]?.error).toContain("CHECK constraint failed");
      expect(Date.parse(messages[0]?.quarantinedAt ?? "")).toBeGreaterThan(Date.now() - 60_000);
      const csv = await fetch(`${server.url}/api/v1/quarantined-messages?format=csv`, {
        headers: { authorization: `Bearer ${SECRET_KEY}` },
      });
      expect(csv.status).toBe(200);
      const [header, row, ...rest] = (await csv.text()).trim().split("\n");
      expect(header).toBe("messageId,quarantinedAt,error");
      expect(row?.startsWith("m-poison,")).toBe(true);
      expect(rest).toEqual([]);
      const anonymous = await fetch(`${server.url}/api/v1/quarantined-messages`);
      expect(anonymous.status).toBe(401);
    } finally {
      await server.close();
    }
  });
});
