import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EventRecord } from "../src/storage/types.js";
import { post, startTestServer, type TestServer } from "./helpers/server.js";
import { events, uid } from "./helpers/tracking.js";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.close());

const ms = (iso: string) => new Date(iso).getTime();

async function one(messageId: string): Promise<EventRecord> {
  const found = await events(t.url, { messageId });
  expect(found.length).toBe(1);
  return found[0] as EventRecord;
}

describe("receivedAt", () => {
  it("is one server time per request, within the request's round trip", async () => {
    const ids = [uid("r1"), uid("r2"), uid("r3")];
    const before = Date.now();
    const res = await post(t.url, "/v1/batch", {
      batch: ids.map((messageId) => ({ type: "track", userId: "n-user", event: "Received", messageId })),
    });
    const after = Date.now();
    expect(res.status).toBe(200);
    const stored = await Promise.all(ids.map(one));
    const received = new Set(stored.map((e) => e.receivedAt));
    expect(received.size).toBe(1);
    const at = ms(stored[0]?.receivedAt as string);
    expect(at).toBeGreaterThanOrEqual(before);
    expect(at).toBeLessThanOrEqual(after);
  });
});

describe("timestamp", () => {
  const T = "2024-03-01T10:00:00.000Z";

  it("is corrected for clock skew with the message's sentAt", async () => {
    const messageId = uid("skew");
    // The client's clock says it sent the message 10 s after it happened.
    await post(t.url, "/v1/track", {
      userId: "n-user",
      event: "Skewed",
      timestamp: T,
      sentAt: "2024-03-01T10:00:10.000Z",
      messageId,
    });
    const stored = await one(messageId);
    expect(ms(stored.timestamp)).toBe(ms(stored.receivedAt) - 10_000);
    expect(stored.originalTimestamp).toBe(T);
    expect(stored.sentAt).toBe("2024-03-01T10:00:10.000Z");
  });

  it("is corrected with the batch's sentAt when the message has none, its own winning", async () => {
    const [fromBatch, own] = [uid("batch-sent"), uid("own-sent")];
    await post(t.url, "/v1/batch", {
      sentAt: "2024-03-01T10:01:30.000Z",
      batch: [
        { type: "track", userId: "n-user", event: "Skewed", timestamp: T, messageId: fromBatch },
        {
          type: "track",
          userId: "n-user",
          event: "Skewed",
          timestamp: T,
          sentAt: "2024-03-01T10:00:05.000Z",
          messageId: own,
        },
      ],
    });
    const a = await one(fromBatch);
    expect(ms(a.timestamp)).toBe(ms(a.receivedAt) - 90_000);
    expect(a.originalTimestamp).toBe(T);
    const b = await one(own);
    expect(ms(b.timestamp)).toBe(ms(b.receivedAt) - 5_000);
    expect(b.receivedAt).toBe(a.receivedAt);
  });

  it("a sentAt earlier than the timestamp moves it forward", async () => {
    const messageId = uid("early-sent");
    await post(t.url, "/v1/track", {
      userId: "n-user",
      event: "Skewed",
      timestamp: T,
      sentAt: "2024-03-01T09:59:58.500Z",
      messageId,
    });
    const stored = await one(messageId);
    expect(ms(stored.timestamp)).toBe(ms(stored.receivedAt) + 1_500);
  });

  it("is the client's timestamp as sent when there is no sentAt", async () => {
    const messageId = uid("no-sent");
    await post(t.url, "/v1/track", { userId: "n-user", event: "Plain", timestamp: T, messageId });
    const stored = await one(messageId);
    expect(stored.timestamp).toBe(T);
    expect(stored.originalTimestamp).toBe(T);
    expect(stored.sentAt).toBeNull();
  });

  it("is not corrected by a sentAt that cannot be parsed", async () => {
    const messageId = uid("bad-sent");
    await post(t.url, "/v1/track", { userId: "n-user", event: "Plain", timestamp: T, sentAt: "soon", messageId });
    const stored = await one(messageId);
    expect(stored.timestamp).toBe(T);
    expect(stored.sentAt).toBeNull();
  });

  it("keeps its instant whatever the zone offset it was sent in", async () => {
    const messageId = uid("offset");
    await post(t.url, "/v1/track", {
      userId: "n-user",
      event: "Zoned",
      timestamp: "2024-03-01T12:00:00.250+02:00",
      messageId,
    });
    expect((await one(messageId)).timestamp).toBe("2024-03-01T10:00:00.250Z");
  });

  it("is receivedAt when the message has none", async () => {
    const messageId = uid("no-timestamp");
    await post(t.url, "/v1/track", { userId: "n-user", event: "Now", sentAt: "2024-03-01T10:00:10.000Z", messageId });
    const stored = await one(messageId);
    expect(stored.timestamp).toBe(stored.receivedAt);
    expect(stored.originalTimestamp).toBeNull();
  });

  it("comes from RudderStack's originalTimestamp when timestamp is absent", async () => {
    const [corrected, plain, both] = [uid("rs-corrected"), uid("rs-plain"), uid("rs-both")];
    await post(t.url, "/v1/batch", {
      batch: [
        {
          type: "track",
          userId: "n-user",
          event: "Rudder",
          originalTimestamp: "2024-02-01T08:00:00.000Z",
          sentAt: "2024-02-01T08:00:03.000Z",
          messageId: corrected,
        },
        {
          type: "track",
          userId: "n-user",
          event: "Rudder",
          originalTimestamp: "2024-02-01T08:00:00.000Z",
          messageId: plain,
        },
        {
          type: "track",
          userId: "n-user",
          event: "Rudder",
          timestamp: T,
          originalTimestamp: "2024-02-01T08:00:00.000Z",
          messageId: both,
        },
      ],
    });
    const a = await one(corrected);
    expect(ms(a.timestamp)).toBe(ms(a.receivedAt) - 3_000);
    expect(a.originalTimestamp).toBe("2024-02-01T08:00:00.000Z");
    const b = await one(plain);
    expect(b.timestamp).toBe("2024-02-01T08:00:00.000Z");
    expect(b.originalTimestamp).toBe("2024-02-01T08:00:00.000Z");
    const c = await one(both);
    expect(c.timestamp).toBe(T);
    expect(c.originalTimestamp).toBe(T);
  });

  it("a sentAt absurdly far from the timestamp leaves the message readable", async () => {
    // The difference is larger than the whole range of dates; correcting by it would leave no date at all.
    const messageId = uid("far-sent");
    const res = await post(t.url, "/v1/track", {
      userId: "n-user",
      event: "Far",
      timestamp: "9999-12-31T00:00:00.000Z",
      sentAt: "-271821-04-20T00:00:00.000Z",
      messageId,
    });
    expect(res.status).toBe(200);
    const stored = await one(messageId);
    expect(stored.timestamp).toBe("9999-12-31T00:00:00.000Z");
    expect(stored.originalTimestamp).toBe("9999-12-31T00:00:00.000Z");
  });
});

describe("messageId", () => {
  it("is assigned when missing, a different one to each message", async () => {
    const userId = uid("no-id-user");
    const message = { type: "track", userId, event: "Same", timestamp: "2024-01-01T00:00:00.000Z" };
    const res = await post(t.url, "/v1/batch", { batch: [message, message] });
    expect(res.body).toMatchObject({ received: 2, accepted: 2, duplicates: 0 });
    await post(t.url, "/v1/track", { userId, event: "Same" });
    const stored = await events(t.url, { userId });
    expect(stored.length).toBe(3);
    const ids = stored.map((e) => e.messageId);
    for (const id of ids) expect(id).toMatch(/\S/);
    expect(new Set(ids).size).toBe(3);
  });

  it("is kept as sent when present", async () => {
    const messageId = uid("kept-id");
    await post(t.url, "/v1/page", { anonymousId: "a", name: "Docs", messageId });
    expect((await one(messageId)).messageId).toBe(messageId);
  });
});

describe("batch context and integrations", () => {
  it("are merged under each message's own, the message winning per key", async () => {
    const [withOwn, withoutOwn] = [uid("merge-own"), uid("merge-none")];
    await post(t.url, "/v1/batch", {
      context: { library: { name: "batch-lib", version: "1.0" }, ip: "203.0.113.9", locale: "en-US" },
      integrations: { All: false, Mixpanel: true },
      batch: [
        {
          type: "track",
          userId: "n-user",
          event: "Merged",
          context: { locale: "fr-FR", page: { path: "/pricing" } },
          integrations: { Mixpanel: false, Amplitude: true },
          messageId: withOwn,
        },
        { type: "identify", userId: "n-user", traits: { plan: "pro" }, messageId: withoutOwn },
      ],
    });
    const a = await one(withOwn);
    expect(a.context).toEqual({
      library: { name: "batch-lib", version: "1.0" },
      ip: "203.0.113.9",
      locale: "fr-FR",
      page: { path: "/pricing" },
    });
    expect(a.integrations).toEqual({ All: false, Mixpanel: false, Amplitude: true });
    const b = await one(withoutOwn);
    expect(b.context).toEqual({ library: { name: "batch-lib", version: "1.0" }, ip: "203.0.113.9", locale: "en-US" });
    expect(b.integrations).toEqual({ All: false, Mixpanel: true });
  });

  it("a message's context.groupId may come from the batch", async () => {
    const groupId = uid("batch-group");
    const messageId = uid("ctx-group");
    await post(t.url, "/v1/batch", {
      context: { groupId },
      batch: [{ type: "track", userId: "n-user", event: "In Group", messageId }],
    });
    expect((await events(t.url, { groupId })).map((e) => e.messageId)).toEqual([messageId]);
  });
});

describe("identify email", () => {
  it("June's top-level email is stored before traits.email", async () => {
    const [both, traitsOnly, topOnly, none] = [uid("both"), uid("traits"), uid("top"), uid("none")];
    await post(t.url, "/v1/batch", {
      batch: [
        {
          type: "identify",
          userId: "mail-1",
          email: "top@example.com",
          traits: { email: "trait@example.com" },
          messageId: both,
        },
        { type: "identify", userId: "mail-2", traits: { email: "trait@example.com" }, messageId: traitsOnly },
        { type: "identify", userId: "mail-3", email: "top@example.com", messageId: topOnly },
        { type: "identify", userId: "mail-4", traits: { name: "No Mail" }, messageId: none },
      ],
    });
    const a = await one(both);
    expect(a.email).toBe("top@example.com");
    expect(a.traits).toEqual({ email: "trait@example.com" });
    expect((await one(traitsOnly)).email).toBe("trait@example.com");
    expect((await one(topOnly)).email).toBe("top@example.com");
    expect((await one(none)).email).toBeNull();
  });

  it("is read on June's /sdk/identify too", async () => {
    const messageId = uid("sdk-mail");
    await post(t.url, "/sdk/identify", { userId: "mail-5", email: "sdk@example.com", messageId });
    expect((await one(messageId)).email).toBe("sdk@example.com");
  });
});

describe("stored fields", () => {
  it("properties, traits and context come back as sent", async () => {
    const properties = {
      plan: "Pro ✨",
      seats: 12,
      ratio: 0.25,
      flags: [true, false, null],
      nested: { a: { b: ["x", { c: "日本語" }] } },
      empty: {},
    };
    const trackId = uid("props");
    await post(t.url, "/v1/track", {
      userId: "n-user",
      event: "Shaped",
      properties,
      context: { app: { name: "web" } },
      messageId: trackId,
    });
    const a = await one(trackId);
    expect(a.properties).toEqual({
      plan: "Pro ✨",
      seats: 12,
      ratio: 0.25,
      flags: [true, false, null],
      nested: { a: { b: ["x", { c: "日本語" }] } },
      empty: {},
    });
    expect(a.context).toEqual({ app: { name: "web" } });
    expect(a.traits).toBeNull();

    const groupId = uid("g");
    const groupMessage = uid("group-traits");
    await post(t.url, "/v1/group", {
      anonymousId: "anon-g",
      groupId,
      traits: { name: "Acme", employees: 120, industry: "Tools" },
      messageId: groupMessage,
    });
    const g = await one(groupMessage);
    expect(g).toMatchObject({ type: "group", groupId, anonymousId: "anon-g", userId: null });
    expect(g.traits).toEqual({ name: "Acme", employees: 120, industry: "Tools" });
  });
});
