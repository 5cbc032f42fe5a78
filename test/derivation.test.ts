import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { describe, expect, it } from "vitest";
import { ACTIVITY_TABLES } from "../src/storage/duckdb/commit-sql.js";
import { DATABASE_FILE } from "../src/storage/duckdb/engine.js";
import type { StoredMessage } from "../src/storage/types.js";
import { enginesClosedAfterEach, storedMessage } from "./helpers/engine.js";

/**
 * The derivation takes on the commits not yet derived in slices of whole commits, at most
 * maxDeriveMessages each (a commit at least), the oldest first: at run time when a read asks, and at
 * start-up for what was stored and not derived.
 */
const WS = "ws";
const NOW = Date.parse("2026-03-31T12:00:00Z");
const engines = enginesClosedAfterEach("solstice-derivation");

let n = 0;
/** A commit's worth of track calls by u1, one a minute from 2026-03-02 09:00 on. */
function commit(size: number): StoredMessage[] {
  return Array.from({ length: size }, () => {
    n++;
    return storedMessage({
      workspaceId: WS,
      messageId: `d${n}`,
      type: "track",
      event: "Derived",
      userId: "u1",
      timestamp: Date.parse("2026-03-02T09:00:00Z") + n * 60_000,
      receivedAt: NOW,
    });
  });
}

describe("derivation in slices", () => {
  it("derives waiting commits oldest first in slices of whole commits, at run time and at start-up", async () => {
    n = 0;
    const slices: number[] = [];
    const options = {
      maxDeriveMessages: 25,
      // No derivation until a read asks for one: the five commits wait together.
      deriveDelayMs: 600_000,
      onDerive: (info: { messages: number; error?: unknown }) => {
        if (info.error === undefined) slices.push(info.messages);
      },
    };
    const { engine, dataDir } = await engines.open(options);
    for (let i = 0; i < 5; i++) await engine.write(commit(10));
    expect(engine.underivedMessages).toBe(50);
    // Five commits of 10 with slices of at most 25 messages: 10 + 10, 10 + 10, 10.
    expect((await engine.user(WS, "u1"))?.events).toBe(50);
    expect(slices).toEqual([20, 20, 10]);
    expect(engine.underivedMessages).toBe(0);
    for (let i = 0; i < 3; i++) await engine.write(commit(10));
    await engines.close(engine);

    // As after a crash before any derivation: no derived row, and no commit recorded as derived.
    const instance = await DuckDBInstance.create(path.join(dataDir, DATABASE_FILE));
    const connection = await instance.connect();
    for (const table of [
      ...ACTIVITY_TABLES,
      "identity_links",
      "memberships",
      "traits",
      "track_events",
      "message_days",
    ]) {
      await connection.run(`DELETE FROM ${table}`);
    }
    await connection.run("UPDATE derived_through SET seq = 0");
    connection.closeSync();
    instance.closeSync();

    slices.length = 0;
    const reopened = (await engines.open({ ...options, dataDir })).engine;
    // Eight commits of 10, derived at start-up two by two.
    expect(slices).toEqual([20, 20, 20, 20]);
    expect((await reopened.user(WS, "u1"))?.events).toBe(80);
    const timeline = await reopened.readEvents({ workspaceId: WS, userId: "u1", limit: 100 });
    expect(timeline.map((e) => e.messageId)).toEqual(Array.from({ length: 80 }, (_, i) => `d${80 - i}`));
  });
});
