import pino from "pino";
import { describe, expect, it } from "vitest";
import { DeletionRunner } from "../src/server/deletions.js";
import type { DuckDBEngine } from "../src/storage/duckdb/engine.js";
import type { DeletionRequest, StorageEngine, StoredMessage } from "../src/storage/types.js";
import { enginesClosedAfterEach, storedMessage } from "./helpers/engine.js";
import { eventually } from "./helpers/wait.js";

/**
 * A deletion that fails is tried again while the server runs. The deletions run on the real DuckDB
 * engine; only their first attempts are made to fail, standing in for a transient failure such as the
 * full disk that test/disk-full.test.ts produces for real (and that needs root to set up).
 */
const WS = "ws";
const engines = enginesClosedAfterEach("solstice-deletion");

const message = (messageId: string, userId: string): StoredMessage =>
  storedMessage({
    workspaceId: WS,
    messageId,
    type: "track",
    event: "Opened",
    userId,
    timestamp: Date.parse("2026-03-02T10:00:00Z"),
  });

async function engineWithData(): Promise<DuckDBEngine> {
  const { engine } = await engines.open();
  await engine.write([message("a1", "alice"), message("a2", "alice"), message("b1", "bob")]);
  return engine;
}

async function request(engine: DuckDBEngine, id: string, userId: string): Promise<void> {
  const deletion: DeletionRequest = {
    id,
    userId,
    state: "requested",
    requestedAt: new Date().toISOString(),
    startedAt: null,
    finishedAt: null,
    messagesDeleted: null,
  };
  await engine.requestDeletion(WS, deletion);
}

/** The engine, with runDeletion failing its first `failures` calls. */
function failingFirst(engine: DuckDBEngine, failures: number): { storage: StorageEngine; calls: () => number } {
  let calls = 0;
  const storage = Object.create(engine) as StorageEngine;
  storage.runDeletion = async (workspaceId, requestId) => {
    calls++;
    if (calls <= failures) throw new Error("storage run deletion failed: No space left on device");
    return engine.runDeletion(workspaceId, requestId);
  };
  return { storage, calls: () => calls };
}

describe("deletion retries", () => {
  it("tries a failed deletion again, after 10, then 20 ms, until it finishes", async () => {
    const engine = await engineWithData();
    await request(engine, "d1", "alice");
    const { storage, calls } = failingFirst(engine, 2);
    const runner = new DeletionRunner(storage, pino({ level: "silent" }), { firstMs: 10, maxMs: 1000 });
    const started = Date.now();
    runner.schedule(WS, "d1");
    await eventually("the deletion to finish", async () => (await engine.deletionRequests(WS, "finished"))[0]);
    // Two failures, then the attempt that erased Alice's two messages; the waits were 10 + 20 ms at least.
    expect(calls()).toBe(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(30);
    expect((await engine.deletionRequests(WS, "finished"))[0]).toMatchObject({ userId: "alice", messagesDeleted: 2 });
    expect(await engine.stats(WS)).toMatchObject({ messages: 1 });
    await runner.stop();
  });

  it("tries every failed request again, and stops trying when stopped", async () => {
    const engine = await engineWithData();
    await request(engine, "d1", "alice");
    await request(engine, "d2", "bob");
    const { storage, calls } = failingFirst(engine, 1_000_000);
    const runner = new DeletionRunner(storage, pino({ level: "silent" }), { firstMs: 5, maxMs: 5 });
    runner.schedule(WS, "d1");
    runner.schedule(WS, "d2");
    await eventually("a few retries", async () => (calls() >= 6 ? true : undefined));
    await runner.stop();
    const stoppedAt = calls();
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Nothing runs after stop(); both requests are still open, for the next start to resume.
    expect(calls()).toBe(stoppedAt);
    expect((await engine.deletionRequests(WS)).map((d) => [d.id, d.state])).toEqual([
      ["d1", "requested"],
      ["d2", "requested"],
    ]);
    expect(await engine.stats(WS)).toMatchObject({ messages: 3 });

    // The next start's runner, with the storage working again, finishes both.
    const next = new DeletionRunner(engine, pino({ level: "silent" }));
    await next.resume([WS]);
    await next.idle();
    expect((await engine.deletionRequests(WS, "finished")).map((d) => d.id)).toEqual(["d1", "d2"]);
    expect(await engine.stats(WS)).toMatchObject({ messages: 0 });
  });
});
