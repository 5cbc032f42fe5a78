import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { post, startTestServer, type TestServer, tempDataDir } from "./helpers/server.js";
import { events, stats, uid } from "./helpers/tracking.js";

describe("duplicates", () => {
  const dataDir = tempDataDir("solstice-dedup");
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer(dataDir);
  });
  afterAll(() => t.close());

  // What this file has sent so far, counted by hand, to check the stats against.
  const sent = { messages: 0, events: 0, duplicates: 0 };

  it("starts from empty counts", async () => {
    expect(await stats(t.url)).toEqual({ messages: 0, events: 0, duplicates: 0 });
  });

  it("the same messageId twice in one batch is stored once, the first one", async () => {
    const messageId = uid("twice-in-batch");
    const res = await post(t.url, "/v1/batch", {
      batch: [
        { type: "track", userId: "d-user", event: "First", messageId },
        { type: "track", userId: "d-user", event: "Second", messageId },
        { type: "identify", userId: "d-user", traits: {}, messageId: uid("other") },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 200, success: true, received: 3, accepted: 2, duplicates: 1, errors: [] });
    expect((await events(t.url, { messageId })).map((e) => e.event)).toEqual(["First"]);
    sent.messages += 2;
    sent.events += 1;
    sent.duplicates += 1;
    expect(await stats(t.url)).toEqual(sent);
  });

  it("the same messageId in two batches is stored once", async () => {
    const messageId = uid("two-batches");
    const first = await post(t.url, "/v1/batch", {
      batch: [{ type: "page", anonymousId: "d-anon", name: "Home", messageId }],
    });
    expect(first.body).toMatchObject({ received: 1, accepted: 1, duplicates: 0 });
    const fresh = uid("fresh");
    const second = await post(t.url, "/v1/batch", {
      batch: [
        { type: "page", anonymousId: "d-anon", name: "Home again", messageId },
        { type: "page", anonymousId: "d-anon", name: "Docs", messageId: fresh },
      ],
    });
    expect(second.body).toEqual({ status: 200, success: true, received: 2, accepted: 1, duplicates: 1, errors: [] });
    expect((await events(t.url, { messageId })).map((e) => e.name)).toEqual(["Home"]);
    expect((await events(t.url, { messageId: fresh })).length).toBe(1);
    sent.messages += 2;
    sent.events += 2;
    sent.duplicates += 1;
    expect(await stats(t.url)).toEqual(sent);
  });

  it("the same messageId on single calls, across routes and types, is stored once", async () => {
    const messageId = uid("single");
    const a = await post(t.url, "/v1/track", { userId: "d-user", event: "Once", messageId });
    const b = await post(t.url, "/sdk/track", { userId: "d-user", event: "Once", messageId });
    const c = await post(t.url, "/v1/identify", { userId: "d-user", messageId });
    expect(a.body).toMatchObject({ accepted: 1, duplicates: 0 });
    expect(b.body).toMatchObject({ status: 200, success: true, accepted: 0, duplicates: 1 });
    expect(c.body).toMatchObject({ accepted: 0, duplicates: 1 });
    expect((await events(t.url, { messageId })).map((e) => e.type)).toEqual(["track"]);
    sent.messages += 1;
    sent.events += 1;
    sent.duplicates += 2;
    expect(await stats(t.url)).toEqual(sent);
  });

  it("concurrent requests with the same messageId store it once", async () => {
    const messageId = uid("race");
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        post(t.url, "/v1/batch", { batch: [{ type: "track", userId: "d-user", event: `Race ${i}`, messageId }] }),
      ),
    );
    const accepted = results.reduce((n, r) => n + Number(r.body.accepted), 0);
    const duplicates = results.reduce((n, r) => n + Number(r.body.duplicates), 0);
    expect([accepted, duplicates]).toEqual([1, 7]);
    expect((await events(t.url, { messageId })).length).toBe(1);
    sent.messages += 1;
    sent.events += 1;
    sent.duplicates += 7;
  });

  it("messageIds differing only in case or by whitespace are different messages", async () => {
    const base = uid("Case");
    const ids = [base, base.toLowerCase(), ` ${base}`];
    const res = await post(t.url, "/v1/batch", {
      batch: ids.map((messageId) => ({ type: "track", userId: "d-user", event: "Case", messageId })),
    });
    expect(res.body).toMatchObject({ accepted: 3, duplicates: 0 });
    sent.messages += 3;
    sent.events += 3;
  });

  it("a messageId stored before a restart is still a duplicate after it, and the counts survive", async () => {
    const messageId = uid("restart");
    const before = await post(t.url, "/v1/track", { userId: "d-user", event: "Before Restart", messageId });
    expect(before.body).toMatchObject({ accepted: 1, duplicates: 0 });
    sent.messages += 1;
    sent.events += 1;
    expect(await stats(t.url)).toEqual(sent);

    await t.close();
    t = await startTestServer(dataDir);

    expect(await stats(t.url)).toEqual(sent);
    const fresh = uid("after-restart");
    const after = await post(t.url, "/v1/batch", {
      batch: [
        { type: "track", userId: "d-user", event: "After Restart", messageId },
        { type: "track", userId: "d-user", event: "After Restart", messageId: fresh },
      ],
    });
    expect(after.body).toEqual({ status: 200, success: true, received: 2, accepted: 1, duplicates: 1, errors: [] });
    expect((await events(t.url, { messageId })).map((e) => e.event)).toEqual(["Before Restart"]);
    sent.messages += 1;
    sent.events += 1;
    sent.duplicates += 1;
    expect(await stats(t.url)).toEqual(sent);

    await t.close();
    t = await startTestServer(dataDir);
    expect(await stats(t.url)).toEqual(sent);
    const again = await post(t.url, "/v1/track", { userId: "d-user", event: "Again", messageId: fresh });
    expect(again.body).toMatchObject({ accepted: 0, duplicates: 1 });
    sent.duplicates += 1;
    expect(await stats(t.url)).toEqual(sent);
  });
});
