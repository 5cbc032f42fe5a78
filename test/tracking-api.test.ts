import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { basicAuth, post, SECRET_KEY, startTestServer, type TestServer, WRITE_KEY } from "./helpers/server.js";
import { events, send, stats, uid } from "./helpers/tracking.js";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.close());

const TIMESTAMP_FORMAT = "must be an ISO 8601 date-time string, such as 2024-05-01T12:00:00.000Z";

/** A minimal valid message of each type, for a given user. */
function minimal(type: string, userId: string, messageId: string): Record<string, unknown> {
  switch (type) {
    case "track":
      return { userId, messageId, event: "Route Checked" };
    case "identify":
      return { userId, messageId, traits: { plan: "pro" } };
    case "group":
      return { userId, messageId, groupId: `${userId}-group` };
    case "page":
      return { userId, messageId, name: "Home" };
    case "screen":
      return { userId, messageId, name: "Settings" };
    case "alias":
      return { userId, messageId, previousId: `${userId}-previous` };
    default:
      throw new Error(`no minimal message for ${type}`);
  }
}

describe("routes", () => {
  const singles: [string, string][] = [
    ["/sdk/track", "track"],
    ["/sdk/identify", "identify"],
    ["/sdk/group", "group"],
    ["/sdk/page", "page"],
    ["/sdk/screen", "screen"],
    ["/sdk/alias", "alias"],
    ["/api/track", "track"],
    ["/api/identify", "identify"],
    ["/api/group", "group"],
    ["/api/page", "page"],
    ["/v1/track", "track"],
    ["/v1/identify", "identify"],
    ["/v1/group", "group"],
    ["/v1/page", "page"],
    ["/v1/screen", "screen"],
    ["/v1/alias", "alias"],
    ["/v1/t", "track"],
    ["/v1/i", "identify"],
    ["/v1/g", "group"],
    ["/v1/p", "page"],
    ["/v1/s", "screen"],
    ["/v1/a", "alias"],
  ];

  it.each(singles)("POST %s stores one %s message", async (route, type) => {
    const userId = uid("route-user");
    const messageId = uid("route");
    const res = await post(t.url, route, minimal(type, userId, messageId));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 200, success: true, received: 1, accepted: 1, duplicates: 0, errors: [] });
    const stored = await events(t.url, { messageId });
    expect(stored.map((e) => [e.messageId, e.type, e.userId])).toEqual([[messageId, type, userId]]);
  });

  it.each(["/sdk/batch", "/v1/batch", "/v1/b"])("POST %s stores each message of the batch", async (route) => {
    const userId = uid("batch-user");
    const ids = [uid("batch-a"), uid("batch-b")];
    const res = await post(t.url, route, {
      batch: [
        { type: "track", userId, event: "Batched", messageId: ids[0] },
        { type: "identify", userId, traits: { name: "Ada" }, messageId: ids[1] },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 200, success: true, received: 2, accepted: 2, duplicates: 0, errors: [] });
    const stored = await events(t.url, { userId });
    expect(stored.map((e) => [e.messageId, e.type]).sort()).toEqual(
      [
        [ids[0], "track"],
        [ids[1], "identify"],
      ].sort(),
    );
  });

  it("POST /sdk/b takes the write key from the body", async () => {
    const messageId = uid("sdk-b");
    const res = await send(t.url, "/sdk/b", {
      headers: { "content-type": "text/plain" },
      body: JSON.stringify({
        writeKey: WRITE_KEY,
        batch: [{ type: "track", anonymousId: "a1", event: "B", messageId }],
      }),
    });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ status: 200, success: true, received: 1, accepted: 1 });
    expect((await events(t.url, { messageId })).length).toBe(1);
  });

  it.each(["/sdk/m", "/v1/m"])("POST %s accepts telemetry without a key and stores nothing", async (route) => {
    const before = await stats(t.url);
    const res = await send(t.url, route, {
      headers: { "content-type": "text/plain" },
      body: JSON.stringify({ series: [{ type: "Counter", metric: "analytics_js.invoke", value: 1, tags: {} }] }),
    });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ status: 200, success: true });
    expect(await stats(t.url)).toEqual(before);
  });

  it("GET /api/validate-write-key answers 200 for the write key and 401 otherwise", async () => {
    const ok = await send(t.url, "/api/validate-write-key", { method: "GET", headers: { authorization: basicAuth() } });
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ status: 200, success: true });
    const bad = await send(t.url, "/api/validate-write-key", {
      method: "GET",
      headers: { authorization: basicAuth("wk_not_a_key") },
    });
    expect(bad.status).toBe(401);
    expect(bad.json).toMatchObject({ code: "unauthorized" });
  });

  it("an unknown route is a 404 JSON error", async () => {
    const res = await post(t.url, "/v1/nothing-here", { userId: "u", event: "e" });
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ code: "not_found", message: expect.stringContaining("/v1/nothing-here") });
  });

  it("GET /healthz is 200", async () => {
    const res = await send(t.url, "/healthz", { method: "GET" });
    expect(res.status).toBe(200);
  });
});

describe("CORS", () => {
  it.each(["/v1/batch", "/v1/track", "/v1/t", "/sdk/batch", "/sdk/track", "/api/track", "/v1/m"])(
    "OPTIONS %s allows POST with Authorization and Content-Type from any origin",
    async (route) => {
      const res = await send(t.url, route, {
        method: "OPTIONS",
        headers: {
          origin: "https://app.example.com",
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization,content-type",
        },
      });
      expect(res.status).toBeGreaterThanOrEqual(200);
      expect(res.status).toBeLessThan(300);
      expect(res.headers.get("access-control-allow-origin")).toBe("*");
      const methods = (res.headers.get("access-control-allow-methods") ?? "").toLowerCase().split(/\s*,\s*/);
      expect(methods).toContain("post");
      const allowed = (res.headers.get("access-control-allow-headers") ?? "").toLowerCase().split(/\s*,\s*/);
      expect(allowed).toEqual(expect.arrayContaining(["authorization", "content-type"]));
    },
  );

  it("answers a bare OPTIONS, without preflight headers, 204 with the allowed methods", async () => {
    for (const route of ["/v1/batch", "/sdk/track", "/api/v1/events"]) {
      const res = await send(t.url, route, { method: "OPTIONS" });
      expect(res.status).toBe(204);
      const methods = (res.headers.get("access-control-allow-methods") ?? "").toLowerCase().split(/\s*,\s*/);
      expect(methods).toContain("post");
      expect(res.text).toBe("");
    }
  });

  it("responses, errors included, carry Access-Control-Allow-Origin", async () => {
    const origin = { origin: "https://app.example.com" };
    const ok = await post(t.url, "/v1/track", { userId: "u", event: "Cors", messageId: uid("cors") }, origin);
    expect(ok.status).toBe(200);
    const okRaw = await send(t.url, "/v1/track", {
      headers: { ...origin, authorization: basicAuth(), "content-type": "text/plain" },
      body: JSON.stringify({ userId: "u", event: "Cors" }),
    });
    expect(okRaw.headers.get("access-control-allow-origin")).toBe("*");
    const denied = await send(t.url, "/v1/track", {
      headers: { ...origin, "content-type": "application/json" },
      body: JSON.stringify({ userId: "u", event: "Cors" }),
    });
    expect(denied.status).toBe(401);
    expect(denied.headers.get("access-control-allow-origin")).toBe("*");
  });
});

describe("request bodies", () => {
  const track = () => ({ userId: "body-user", event: "Body Read", messageId: uid("body") });

  it.each(["application/json", "application/json; charset=utf-8", "text/plain", "text/plain;charset=UTF-8"])(
    "reads JSON sent as %s",
    async (contentType) => {
      const message = track();
      const res = await send(t.url, "/v1/track", {
        headers: { authorization: basicAuth(), "content-type": contentType },
        body: JSON.stringify(message),
      });
      expect(res.status).toBe(200);
      expect((await events(t.url, { messageId: message.messageId })).length).toBe(1);
    },
  );

  it("reads JSON sent without a Content-Type", async () => {
    const message = track();
    const res = await send(t.url, "/v1/track", {
      headers: { authorization: basicAuth() },
      body: new TextEncoder().encode(JSON.stringify(message)),
    });
    expect(res.status).toBe(200);
    expect((await events(t.url, { messageId: message.messageId })).length).toBe(1);
  });

  it("refuses a body that is not JSON with a 400 JSON error", async () => {
    const res = await send(t.url, "/v1/track", {
      headers: { authorization: basicAuth(), "content-type": "text/plain" },
      body: "event=Signed+Up&userId=u1",
    });
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ code: "invalid_json", message: expect.stringContaining("not valid JSON") });
  });

  it("refuses an empty body with a 400 JSON error", async () => {
    const res = await send(t.url, "/v1/track", {
      headers: { authorization: basicAuth(), "content-type": "application/json" },
      body: "",
    });
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ code: "invalid_json", message: expect.any(String) });
  });

  it("refuses a JSON body that is not an object", async () => {
    const single = await post(t.url, "/v1/track", "[1,2,3]");
    expect(single.status).toBe(400);
    expect(single.body).toMatchObject({ code: "invalid_message", message: "/: must be object" });
    const batch = await post(t.url, "/v1/batch", "null");
    expect(batch.status).toBe(400);
    expect(batch.body).toMatchObject({ code: "invalid_request", message: "/: must be object" });
  });

  it("reads gzip-compressed bodies", async () => {
    const message = track();
    const single = await send(t.url, "/v1/track", {
      headers: { authorization: basicAuth(), "content-type": "application/json", "content-encoding": "gzip" },
      body: gzipSync(JSON.stringify(message)),
    });
    expect(single.status).toBe(200);
    const ids = [uid("gz-a"), uid("gz-b")];
    const batch = await send(t.url, "/v1/batch", {
      headers: { authorization: basicAuth(), "content-type": "application/json", "content-encoding": "gzip" },
      body: gzipSync(JSON.stringify({ batch: ids.map((messageId) => ({ type: "track", ...track(), messageId })) })),
    });
    expect(batch.status).toBe(200);
    expect(batch.json).toMatchObject({ received: 2, accepted: 2 });
    for (const messageId of [message.messageId, ...ids]) {
      expect((await events(t.url, { messageId })).length).toBe(1);
    }
  });

  it("refuses a body that claims gzip but is not", async () => {
    const res = await send(t.url, "/v1/track", {
      headers: { authorization: basicAuth(), "content-type": "application/json", "content-encoding": "gzip" },
      body: JSON.stringify(track()),
    });
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ code: "invalid_encoding", message: expect.stringContaining("gzip") });
  });

  it("refuses an unsupported Content-Encoding with a JSON error", async () => {
    const res = await send(t.url, "/v1/track", {
      headers: { authorization: basicAuth(), "content-type": "application/json", "content-encoding": "br" },
      body: JSON.stringify(track()),
    });
    expect(res.status).toBe(415);
    expect(res.json).toMatchObject({ code: "unsupported_encoding", message: expect.stringContaining("br") });
  });
});

describe("schema rules", () => {
  /** Posts one message to its single route; expects a 400 with exactly this message. */
  async function refusedSingle(route: string, body: unknown, message: string) {
    const res = await post(t.url, route, body);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ success: false, code: "invalid_message", message });
  }

  /** Posts [a valid track, the item]; expects the item refused at index 1 and the track kept. */
  async function refusedInBatch(item: unknown, message: string) {
    const kept = uid("kept");
    const res = await post(t.url, "/v1/batch", {
      batch: [{ type: "track", userId: "schema-user", event: "Kept", messageId: kept }, item],
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      status: 200,
      success: true,
      received: 2,
      accepted: 1,
      duplicates: 0,
      errors: [{ index: 1, code: "invalid_message", message }],
    });
    expect((await events(t.url, { messageId: kept })).length).toBe(1);
  }

  it("group without groupId", async () => {
    await refusedSingle("/v1/group", { userId: "u1", traits: { name: "Acme" } }, "/groupId: required");
    await refusedSingle("/sdk/group", { userId: "u1" }, "/groupId: required");
  });

  it("group without groupId, in a batch", async () => {
    await refusedInBatch({ type: "group", userId: "u1", traits: { name: "Acme" } }, "/batch/1/groupId: required");
  });

  it("group with neither userId nor anonymousId", async () => {
    await refusedSingle("/v1/group", { groupId: "acme" }, "/: userId or anonymousId is required");
    await refusedInBatch({ type: "group", groupId: "acme" }, "/batch/1: userId or anonymousId is required");
  });

  it("group with a non-integer employees trait", async () => {
    const path = "/traits/employees: must be integer";
    await refusedSingle("/v1/group", { userId: "u1", groupId: "acme", traits: { employees: "50" } }, path);
    await refusedSingle("/v1/group", { userId: "u1", groupId: "acme", traits: { employees: 12.5 } }, path);
    await refusedInBatch(
      { type: "group", userId: "u1", groupId: "acme", traits: { employees: "many" } },
      "/batch/1/traits/employees: must be integer",
    );
    const ok = await post(t.url, "/v1/group", { userId: "u1", groupId: "acme", traits: { employees: 50 } });
    expect(ok.status).toBe(200);
  });

  it("group with a timestamp that is not a date-time", async () => {
    await refusedSingle(
      "/v1/group",
      { userId: "u1", groupId: "acme", timestamp: "yesterday" },
      `/timestamp: ${TIMESTAMP_FORMAT}`,
    );
    await refusedInBatch(
      { type: "group", userId: "u1", groupId: "acme", timestamp: "yesterday" },
      `/batch/1/timestamp: ${TIMESTAMP_FORMAT}`,
    );
  });

  it("group with a messageId that is not a string", async () => {
    // June's group schema says nothing of messageId; the server must still refuse one it cannot store.
    await refusedSingle(
      "/v1/group",
      { userId: "u1", groupId: "acme", messageId: 123 },
      "/messageId: must be a string of 1 to 100 characters",
    );
    await refusedInBatch(
      { type: "group", userId: "u1", groupId: "acme", messageId: { id: 1 } },
      "/batch/1/messageId: must be a string of 1 to 100 characters",
    );
    const after = uid("after-bad-group");
    const res = await post(t.url, "/v1/track", { userId: "u1", event: "Still Writing", messageId: after });
    expect(res.status).toBe(200);
  });

  it("track without event", async () => {
    await refusedSingle("/v1/track", { userId: "u1", properties: { a: 1 } }, "/event: required");
    await refusedInBatch({ type: "track", userId: "u1" }, "/batch/1/event: required");
  });

  it("alias without previousId", async () => {
    await refusedSingle("/v1/alias", { userId: "u1" }, "/previousId: required");
    await refusedInBatch({ type: "alias", userId: "u1" }, "/batch/1/previousId: required");
  });

  it("a batch item without type", async () => {
    await refusedInBatch({ userId: "u1", event: "No Type" }, "/batch/1/type: required");
    await refusedInBatch(
      { type: "purchase", userId: "u1", event: "Bad Type" },
      "/batch/1/type: must be one of track, identify, group, page, screen, alias",
    );
  });

  it("userId: null counts as absent", async () => {
    const anonymousId = uid("anon");
    const messageId = uid("null-user");
    const res = await post(t.url, "/v1/track", { userId: null, anonymousId, event: "Anonymous", messageId });
    expect(res.status).toBe(200);
    const [stored] = await events(t.url, { messageId });
    expect(stored).toMatchObject({ userId: null, anonymousId });
    await refusedSingle("/v1/track", { userId: null, event: "Nobody" }, "/: userId or anonymousId is required");
    await refusedSingle(
      "/v1/group",
      { userId: null, anonymousId: null, groupId: "acme" },
      "/: userId or anonymousId is required",
    );
  });

  it("a batch whose every item is refused is a 400 listing each error", async () => {
    const res = await post(t.url, "/v1/batch", {
      batch: [
        { type: "track", userId: "u1" },
        { type: "group", userId: "u1" },
      ],
    });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({
      success: false,
      code: "invalid_message",
      message: "/batch/0/event: required",
      errors: [
        { index: 0, code: "invalid_message", message: "/batch/0/event: required" },
        { index: 1, code: "invalid_message", message: "/batch/1/groupId: required" },
      ],
    });
  });
});

describe("read API", () => {
  interface Page {
    events: { messageId: string; timestamp: string }[];
    nextCursor: string | null;
  }

  async function get(route: string, authorization = `Bearer ${SECRET_KEY}`) {
    return send(t.url, route, { method: "GET", headers: { authorization } });
  }

  it("filters by type", async () => {
    const userId = uid("type-user");
    await post(t.url, "/v1/batch", {
      batch: [
        { type: "track", userId, event: "A" },
        { type: "identify", userId, traits: {} },
        { type: "page", userId, name: "Home" },
        { type: "track", userId, event: "B" },
      ],
    });
    expect((await events(t.url, { userId, type: "track" })).map((e) => e.event).sort()).toEqual(["A", "B"]);
    expect((await events(t.url, { userId, type: "identify" })).map((e) => e.type)).toEqual(["identify"]);
    expect((await events(t.url, { userId, type: "screen" })).length).toBe(0);
  });

  it("filters by userId, including anonymous messages linked to the user", async () => {
    const userId = uid("linked-user");
    const [anon, aliased, stranger] = [uid("anon"), uid("aliased"), uid("stranger")];
    const ids = {
      anonymousBefore: uid("anon-before"),
      identify: uid("identify"),
      direct: uid("direct"),
      aliasedAnon: uid("aliased-anon"),
      alias: uid("alias"),
      strangers: uid("strangers"),
    };
    await post(t.url, "/v1/batch", {
      batch: [
        { type: "track", anonymousId: anon, event: "Visited", messageId: ids.anonymousBefore },
        { type: "identify", userId, anonymousId: anon, traits: {}, messageId: ids.identify },
        { type: "track", userId, event: "Signed In", messageId: ids.direct },
        { type: "page", anonymousId: aliased, name: "Pricing", messageId: ids.aliasedAnon },
        { type: "alias", userId, previousId: aliased, messageId: ids.alias },
        { type: "track", anonymousId: stranger, event: "Visited", messageId: ids.strangers },
      ],
    });
    const found = (await events(t.url, { userId })).map((e) => e.messageId).sort();
    expect(found).toEqual([ids.anonymousBefore, ids.identify, ids.direct, ids.aliasedAnon, ids.alias].sort());
  });

  it("filters by anonymousId", async () => {
    const anonymousId = uid("anon-filter");
    const mine = [uid("mine-1"), uid("mine-2")];
    await post(t.url, "/v1/batch", {
      batch: [
        { type: "track", anonymousId, event: "X", messageId: mine[0] },
        { type: "track", anonymousId: uid("other"), event: "X" },
        { type: "page", anonymousId, userId: uid("someone"), messageId: mine[1] },
      ],
    });
    expect((await events(t.url, { anonymousId })).map((e) => e.messageId).sort()).toEqual([...mine].sort());
  });

  it("filters by groupId: the group call and events whose context names the group", async () => {
    const groupId = uid("group");
    const ids = { group: uid("g-call"), inContext: uid("g-ctx"), elsewhere: uid("g-else"), plain: uid("g-plain") };
    await post(t.url, "/v1/batch", {
      batch: [
        { type: "group", userId: "g-user", groupId, traits: { name: "Acme" }, messageId: ids.group },
        { type: "track", userId: "g-user", event: "Used", context: { groupId }, messageId: ids.inContext },
        { type: "track", userId: "g-user", event: "Used", context: { groupId: "other" }, messageId: ids.elsewhere },
        { type: "track", userId: "g-user", event: "Used", messageId: ids.plain },
      ],
    });
    const found = await events(t.url, { groupId });
    expect(found.map((e) => [e.messageId, e.groupId]).sort()).toEqual(
      [
        [ids.group, groupId],
        [ids.inContext, groupId],
      ].sort(),
    );
  });

  it("filters by event and by messageId", async () => {
    const event = uid("Event");
    const ids = [uid("ev-1"), uid("ev-2"), uid("ev-3")] as const;
    await post(t.url, "/v1/batch", {
      batch: [
        { type: "track", userId: "e-user", event, messageId: ids[0] },
        { type: "track", userId: "e-user", event: `${event} (other)`, messageId: ids[1] },
        { type: "track", userId: "e-user", event, messageId: ids[2] },
      ],
    });
    expect((await events(t.url, { event })).map((e) => e.messageId).sort()).toEqual([ids[0], ids[2]].sort());
    expect((await events(t.url, { messageId: ids[1] })).map((e) => e.event)).toEqual([`${event} (other)`]);
    expect(await events(t.url, { messageId: uid("never-sent") })).toEqual([]);
  });

  it("returns events newest first", async () => {
    const event = uid("Ordered");
    const times = ["2024-01-02T00:00:00.000Z", "2024-01-05T00:00:00.000Z", "2024-01-01T00:00:00.000Z"];
    await post(t.url, "/v1/batch", {
      batch: times.map((timestamp, i) => ({
        type: "track",
        userId: "o",
        event,
        timestamp,
        messageId: `${event}-${i}`,
      })),
    });
    const found = await events(t.url, { event });
    expect(found.map((e) => e.timestamp)).toEqual([
      "2024-01-05T00:00:00.000Z",
      "2024-01-02T00:00:00.000Z",
      "2024-01-01T00:00:00.000Z",
    ]);
  });

  it("pages with limit and cursor, losing and repeating no row", async () => {
    const event = uid("Paged");
    // Ten messages share the request's receivedAt (no timestamp) so the order among them rests on messageId.
    const items: { messageId: string; timestamp?: string }[] = [];
    for (let i = 0; i < 10; i++) items.push({ messageId: `${event}-same-${String(i).padStart(2, "0")}` });
    for (let i = 0; i < 13; i++) {
      items.push({
        messageId: `${event}-dated-${String(i).padStart(2, "0")}`,
        timestamp: new Date(Date.UTC(2023, 5, 1 + (i % 5), 12)).toISOString(),
      });
    }
    const res = await post(t.url, "/v1/batch", {
      batch: items.map((item) => ({ type: "track", userId: "p", event, ...item })),
    });
    expect(res.body).toMatchObject({ accepted: 23 });

    // Newest first: the undated ones (received now) first, then by timestamp; ties by messageId, descending.
    const key = (item: { messageId: string; timestamp?: string }) => item.timestamp ?? "9999";
    const expected = [...items]
      .sort((a, b) => (key(a) !== key(b) ? (key(a) < key(b) ? 1 : -1) : a.messageId < b.messageId ? 1 : -1))
      .map((item) => item.messageId);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const params = new URLSearchParams({ event, limit: "4", ...(cursor ? { cursor } : {}) });
      const page = (await get(`/api/v1/events?${params}`)).json as unknown as Page;
      expect(page.events.length).toBeLessThanOrEqual(4);
      seen.push(...page.events.map((e) => e.messageId));
      cursor = page.nextCursor;
      pages++;
    } while (cursor !== null && pages < 20);
    expect(pages).toBe(6);
    expect(seen).toEqual(expected);
  });

  it("refuses the write key and a missing key with 401", async () => {
    for (const authorization of [`Bearer ${WRITE_KEY}`, basicAuth(), basicAuth(SECRET_KEY), ""]) {
      for (const route of ["/api/v1/events", "/api/v1/stats"]) {
        const res = await get(route, authorization);
        expect(res.status).toBe(401);
        expect(res.json).toMatchObject({ code: "unauthorized", message: expect.any(String) });
      }
    }
  });

  it.each([
    ["limit=0", "limit"],
    ["limit=1001", "limit"],
    ["limit=-5", "limit"],
    ["limit=2.5", "limit"],
    ["limit=ten", "limit"],
    ["limit=", "limit"],
    ["limit=5&limit=6", "limit"],
    ["type=purchase", "type"],
    ["cursor=not-a-cursor", "cursor"],
    [`cursor=${Buffer.from('{"a":1}').toString("base64url")}`, "cursor"],
    [`cursor=${Buffer.from('[1e20,"x"]').toString("base64url")}`, "cursor"],
    [`cursor=${Buffer.from('[1e16,"x"]').toString("base64url")}`, "cursor"],
  ])("refuses %s with 400", async (params, name) => {
    const res = await get(`/api/v1/events?${params}`);
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({
      code: "invalid_parameter",
      message: expect.stringMatching(new RegExp(`^${name}: `)),
    });
  });
});

describe("responses", () => {
  it("errors are JSON with code and message, whatever the status", async () => {
    const cases = [
      await send(t.url, "/v1/track", { headers: { "content-type": "application/json" }, body: "{}" }),
      await send(t.url, "/v1/track", { headers: { authorization: basicAuth() }, body: "{not json" }),
      await send(t.url, "/v1/nowhere", { method: "GET" }),
    ];
    expect(cases.map((c) => c.status)).toEqual([401, 400, 404]);
    for (const c of cases) {
      expect(c.headers.get("content-type")).toMatch(/^application\/json/);
      expect(c.json).toMatchObject({ success: false, code: expect.any(String), message: expect.any(String) });
    }
  });
});
