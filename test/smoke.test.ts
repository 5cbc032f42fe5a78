import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { post, query, startTestServer, type TestServer } from "./helpers/server.js";

describe("server", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t.close());

  it("stores a track call and reads it back", async () => {
    const res = await post(t.url, "/v1/track", { userId: "u1", event: "Signed Up", messageId: "smoke-1" });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ success: true, accepted: 1, duplicates: 0 });
    const { events } = await query<{ events: { messageId: string; event: string }[] }>(
      t.url,
      "/api/v1/events?messageId=smoke-1",
    );
    expect(events.map((e) => [e.messageId, e.event])).toEqual([["smoke-1", "Signed Up"]]);
  });
});
