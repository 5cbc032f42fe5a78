import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { post, query, startTestServer, type TestServer } from "./helpers/server.js";

/**
 * Pages through lists while other requests keep changing them: each company's lastSeen moves as
 * events arrive, and new events land in the timeline. Every row present when paging began must come
 * back exactly once.
 */
describe("pagination under concurrent writes", () => {
  let t: TestServer;
  const companies = Array.from({ length: 40 }, (_, i) => `co-${String(i).padStart(2, "0")}`);
  const start = Date.parse("2026-03-01T00:00:00Z");

  beforeAll(async () => {
    t = await startTestServer();
    const batch = companies.flatMap((id, i) => [
      { type: "group", userId: `u-${id}`, groupId: id, traits: { name: id }, timestamp: new Date(start).toISOString() },
      { type: "track", userId: `u-${id}`, event: "Opened", timestamp: new Date(start + i * 60_000).toISOString() },
    ]);
    expect((await post(t.url, "/v1/batch", { batch })).status).toBe(200);
  });
  afterAll(() => t.close());

  it("returns every company once while events reorder them by lastSeen", async () => {
    type Page = { companies: { id: string }[]; nextCursor: string | null };
    const seen: string[] = [];
    let cursor: string | null = null;
    let bump = 0;
    do {
      const page: Page = await query<Page>(
        t.url,
        `/api/v1/companies?sort=lastSeen&limit=7${cursor ? `&cursor=${cursor}` : ""}`,
      );
      seen.push(...page.companies.map((c) => c.id));
      cursor = page.nextCursor;
      // Move companies not yet returned to the top, and one already returned back down: a naive
      // offset or keyset cursor would skip or repeat them.
      const unseen = companies.filter((c) => !seen.includes(c)).slice(0, 3);
      const batch = unseen.map((id) => ({
        type: "track",
        userId: `u-${id}`,
        event: "Opened",
        timestamp: new Date(start + 10 * 86_400_000 + bump++ * 1000).toISOString(),
      }));
      if (batch.length > 0) expect((await post(t.url, "/v1/batch", { batch })).status).toBe(200);
    } while (cursor);
    expect(seen.length).toBe(companies.length);
    expect([...seen].sort()).toEqual(companies);
    // The changes were real: a fresh first page now starts with a company moved up while paging.
    const fresh = await query<Page>(t.url, "/api/v1/companies?sort=lastSeen&limit=1");
    expect(fresh.companies[0]?.id).not.toBe(seen[0]);
  });

  it("returns every event once while new events arrive", async () => {
    type Page = { events: { messageId: string }[]; nextCursor: string | null };
    const before = await query<Page>(t.url, "/api/v1/events?limit=1000&type=track");
    const expected = before.events.map((e) => e.messageId).sort();
    const seen: string[] = [];
    let cursor: string | null = null;
    let n = 0;
    do {
      const page: Page = await query<Page>(
        t.url,
        `/api/v1/events?type=track&limit=9${cursor ? `&cursor=${cursor}` : ""}`,
      );
      seen.push(...page.events.map((e) => e.messageId));
      cursor = page.nextCursor;
      // One newer than everything and one in the middle of what is still to come.
      const batch = [
        {
          type: "track",
          userId: "late",
          event: "Opened",
          messageId: `new-${n++}`,
          timestamp: new Date().toISOString(),
        },
        {
          type: "track",
          userId: "late",
          event: "Opened",
          messageId: `mid-${n++}`,
          timestamp: new Date(start + 5 * 86_400_000).toISOString(),
        },
      ];
      expect((await post(t.url, "/v1/batch", { batch })).status).toBe(200);
    } while (cursor);
    const original = seen.filter((id) => expected.includes(id));
    expect(original.sort()).toEqual(expected);
    expect(new Set(seen).size).toBe(seen.length);
  });
});
