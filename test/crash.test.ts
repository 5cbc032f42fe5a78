import fs from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { crashSeed, postBatch, runCrashLoop, ServerProcesses, type Stats } from "./crash/loop.js";
import { post, query, tempDataDir } from "./helpers/server.js";

/**
 * SIGKILL the server while clients are writing, restart it on the same data, and check the promise
 * of a 200: what was acknowledged is stored, exactly once, and stays de-duplicated across restarts.
 */
describe("crash safety", () => {
  const processes = new ServerProcesses();
  const dirs: string[] = [];
  const dataDir = () => {
    const dir = tempDataDir("solstice-crash");
    dirs.push(dir);
    return dir;
  };

  afterAll(async () => {
    await processes.killAll();
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("loses and duplicates nothing acknowledged across three SIGKILLs", async () => {
    const report = await runCrashLoop({
      dataDir: dataDir(),
      cycles: 3,
      seed: crashSeed(process.env.SOLSTICE_CRASH_SEED),
      clients: 8,
      maxBatch: 50,
      killAfterMs: [100, 2000],
      processes,
    });
    expect(report.cycles.flatMap((c) => c.problems)).toEqual([]);
    expect(report.totals).toMatchObject({ cycles: 3, lost: 0, duplicated: 0, phantom: 0 });
    for (const cycle of report.cycles) expect(cycle.killedBy).toBe("SIGKILL");
    expect(report.totals.acknowledged).toBeGreaterThan(0);
  }, 120_000);

  it("counts a message acknowledged before a SIGKILL as a duplicate when it is resent after the restart", async () => {
    const dir = dataDir();
    let server = await processes.start(dir);
    const ids = Array.from({ length: 40 }, (_, i) => `restart-dup-${i}`);
    const first = await postBatch(server.url, ids);
    expect(first).toEqual({ status: 200, accepted: 40, duplicates: 0 });
    const single = await post(server.url, "/v1/track", {
      userId: "u1",
      event: "Single",
      messageId: "restart-dup-single",
    });
    expect(single.body).toMatchObject({ status: 200, accepted: 1, duplicates: 0 });

    expect(await processes.kill(server)).toBe("SIGKILL");
    server = await processes.start(dir);

    // All of the batch again, then half of it with as many new messages, then the single call.
    expect(await postBatch(server.url, ids)).toEqual({ status: 200, accepted: 0, duplicates: 40 });
    const mixed = [...ids.slice(0, 20), ...Array.from({ length: 20 }, (_, i) => `restart-new-${i}`)];
    expect(await postBatch(server.url, mixed)).toEqual({ status: 200, accepted: 20, duplicates: 20 });
    const again = await post(server.url, "/v1/track", {
      userId: "u1",
      event: "Single",
      messageId: "restart-dup-single",
    });
    expect(again.body).toMatchObject({ status: 200, accepted: 0, duplicates: 1 });

    expect(await query<Stats>(server.url, "/api/v1/stats")).toMatchObject({ messages: 61, duplicates: 61 });
    const { events } = await query<{ events: unknown[] }>(server.url, "/api/v1/events?messageId=restart-dup-0");
    expect(events).toHaveLength(1);

    // The duplicate counts are durable too: they survive another SIGKILL.
    await processes.kill(server);
    server = await processes.start(dir);
    expect(await query<Stats>(server.url, "/api/v1/stats")).toMatchObject({ messages: 61, duplicates: 61 });
    await processes.kill(server);
  });
});
