import { afterEach, expect } from "vitest";
import { post, putSettings, startTestServer, type TestServer, tempDataDir } from "./server.js";

/**
 * Servers for tests that each start their own. The function returned starts one on a fresh data
 * directory (or `dataDir`), with its clock fixed at `now` (or reading `clock`); every server it
 * started and that is still open is closed after each test. Call it at the top of a file or of a
 * describe block, where it registers that afterEach hook.
 */
export function serversClosedAfterEach(now: number) {
  let open: TestServer[] = [];
  afterEach(async () => {
    for (const s of open) await s.close();
    open = [];
  });
  return async (options: { dataDir?: string; clock?: () => number } = {}): Promise<TestServer> => {
    const started = await startTestServer(options.dataDir ?? tempDataDir(), { now: options.clock ?? (() => now) });
    const t: TestServer = {
      ...started,
      close: async () => {
        open = open.filter((s) => s !== t);
        await started.close();
      },
    };
    open.push(t);
    return t;
  };
}

/** Sends one batch to the Tracking API and expects it taken whole: a 200 and no errors. */
export async function sendBatch(t: { url: string }, batch: readonly object[]): Promise<void> {
  const res = await post(t.url, "/v1/batch", { batch });
  expect(res.status).toBe(200);
  expect(res.body.errors).toEqual([]);
}

/** Changes the workspace settings (time zone, system events) and expects a 200. */
export async function setSettings(t: { url: string }, settings: object): Promise<void> {
  expect((await putSettings(t.url, settings)).status).toBe(200);
}
