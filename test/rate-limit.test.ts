import fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WorkspaceRecord } from "../src/storage/types.js";
import { basicAuth, SECRET_KEY, type TestServer, WRITE_KEY } from "./helpers/server.js";
import { type RawResponse, send, uid } from "./helpers/tracking.js";
import { startWithWorkspaces } from "./helpers/workspaces.js";

/** Requests per second per write key. */
const LIMIT = 5;

/**
 * The per-write-key rate limit: over it, a 429 JSON error with Retry-After and nothing stored; one key's
 * traffic leaves another's alone; the forms a key can be sent in share its allowance; and the limit
 * lifts once the window has passed.
 */
describe("rate limits", () => {
  let t: TestServer;
  let beta: WorkspaceRecord;

  beforeAll(async () => {
    const started = await startWithWorkspaces(["beta"], { env: { SOLSTICE_RATE_LIMIT: String(LIMIT) } });
    t = started.t;
    beta = started.workspaces[0] as WorkspaceRecord;
  });

  afterAll(async () => {
    await t?.close();
    if (t) fs.rmSync(t.dataDir, { recursive: true, force: true });
  });

  /** A track call with its own messageId, authorised by `headers` (or by `writeKey` in the body). */
  async function track(
    headers: Record<string, string>,
    writeKey?: string,
  ): Promise<RawResponse & { messageId: string }> {
    const messageId = uid("rate");
    const body = { userId: "rate-user", event: "Rate Limited", messageId, ...(writeKey ? { writeKey } : {}) };
    const res = await send(t.url, "/v1/track", {
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });
    return { ...res, messageId };
  }

  async function storedIds(secretKey: string): Promise<Set<string>> {
    const res = await fetch(`${t.url}/api/v1/events?limit=1000`, { headers: { authorization: `Bearer ${secretKey}` } });
    const page = (await res.json()) as { events: { messageId: string }[] };
    return new Set(page.events.map((e) => e.messageId));
  }

  /** Waits out the current window of every key. */
  const nextWindow = () => new Promise((resolve) => setTimeout(resolve, 1100));

  it("answers over the limit with a 429 JSON error and Retry-After, storing nothing of it", async () => {
    await nextWindow();
    const burst = await Promise.all(Array.from({ length: 3 * LIMIT }, () => track({ authorization: basicAuth() })));
    const limited = burst.filter((r) => r.status === 429);
    const passed = burst.filter((r) => r.status === 200);
    expect(limited.length + passed.length).toBe(burst.length);
    // A burst of a few milliseconds may straddle two windows at most.
    expect(passed.length).toBeGreaterThanOrEqual(LIMIT);
    expect(passed.length).toBeLessThanOrEqual(2 * LIMIT);
    for (const res of limited) {
      expect(res.json).toMatchObject({ status: 429, code: "rate_limited", message: expect.any(String) });
      const retryAfter = Number(res.headers.get("retry-after"));
      expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 2).toBe(true);
    }
    const stored = await storedIds(SECRET_KEY);
    expect(limited.filter((r) => stored.has(r.messageId))).toEqual([]);
    expect(passed.filter((r) => !stored.has(r.messageId))).toEqual([]);
  });

  it("limits each write key on its own: another workspace's key is not slowed by the first one's traffic", async () => {
    await nextWindow();
    const [alpha, other] = await Promise.all([
      Promise.all(Array.from({ length: 4 * LIMIT }, () => track({ authorization: basicAuth() }))),
      Promise.all(Array.from({ length: LIMIT }, () => track({ authorization: basicAuth(beta.writeKey) }))),
    ]);
    expect(alpha.filter((r) => r.status === 429).length).toBeGreaterThanOrEqual(2 * LIMIT);
    expect(other.map((r) => r.status)).toEqual(Array(LIMIT).fill(200));
    const stored = await storedIds(beta.secretKey);
    expect(other.filter((r) => !stored.has(r.messageId))).toEqual([]);
  });

  it("counts a key once whichever form it comes in: Basic encoded or not, Bearer, or in the body", async () => {
    await nextWindow();
    // Use up the key's allowance in its usual form, then, in the same window, try the others.
    const usual = await Promise.all(Array.from({ length: LIMIT + 1 }, () => track({ authorization: basicAuth() })));
    expect(usual.filter((r) => r.status === 429).length).toBeGreaterThanOrEqual(1);
    const others = await Promise.all([
      track({ authorization: `Basic ${WRITE_KEY}` }),
      track({ authorization: `Basic ${Buffer.from(`${WRITE_KEY}:password`).toString("base64")}` }),
      track({ authorization: `bearer ${WRITE_KEY}` }),
      track({}, WRITE_KEY),
    ]);
    expect(others.map((r) => r.status)).toEqual([429, 429, 429, 429]);
  });

  it("lifts the limit once the window has passed", async () => {
    await nextWindow();
    const burst = await Promise.all(Array.from({ length: 2 * LIMIT }, () => track({ authorization: basicAuth() })));
    const limited = burst.find((r) => r.status === 429);
    expect(limited).toBeDefined();
    const wait = Number(limited?.headers.get("retry-after")) * 1000;
    await new Promise((resolve) => setTimeout(resolve, wait + 50));
    const after = await Promise.all(Array.from({ length: LIMIT }, () => track({ authorization: basicAuth() })));
    expect(after.map((r) => r.status)).toEqual(Array(LIMIT).fill(200));
  });
});
