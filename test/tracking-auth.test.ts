import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer, WRITE_KEY } from "./helpers/server.js";
import { events, send, uid } from "./helpers/tracking.js";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.close());

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

/** The ways the June and Segment clients put a write key in the Authorization header. */
const headerForms: [string, (key: string) => string][] = [
  ['Basic base64("key:")', (key) => `Basic ${b64(`${key}:`)}`],
  ['Basic base64("key")', (key) => `Basic ${b64(key)}`],
  ["Basic key", (key) => `Basic ${key}`],
];

function track(extra: Record<string, unknown> = {}) {
  return { userId: "auth-user", event: "Authenticated", messageId: uid("auth"), ...extra };
}

async function postTrack(route: string, body: Record<string, unknown>, authorization?: string) {
  return send(t.url, route, {
    headers: { "content-type": "application/json", ...(authorization === undefined ? {} : { authorization }) },
    body: JSON.stringify(body),
  });
}

async function storedCount(messageId: unknown) {
  return (await events(t.url, { messageId: String(messageId) })).length;
}

describe("write key in the Authorization header", () => {
  it.each(headerForms)("%s is accepted on single and batch routes", async (_label, form) => {
    const single = track();
    const res = await postTrack("/v1/track", single, form(WRITE_KEY));
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ status: 200, success: true, accepted: 1 });
    expect(await storedCount(single.messageId)).toBe(1);

    const item = { type: "track", ...track() };
    const batch = await postTrack("/sdk/batch", { batch: [item] }, form(WRITE_KEY));
    expect(batch.status).toBe(200);
    expect(await storedCount(item.messageId)).toBe(1);
  });

  it.each(headerForms)("%s with an unknown key is a 401 and stores nothing", async (_label, form) => {
    const body = track();
    const res = await postTrack("/v1/track", body, form("wk_unknown_key_0123456789abcdef"));
    expect(res.status).toBe(401);
    expect(res.json).toMatchObject({ success: false, code: "unauthorized", message: expect.any(String) });
    expect(await storedCount(body.messageId)).toBe(0);
  });

  it("an Authorization header that is not Basic key material is a 401", async () => {
    for (const authorization of ["Basic", "Basic ", `Digest ${WRITE_KEY}`, b64(`${WRITE_KEY}:`)]) {
      const res = await postTrack("/v1/track", track(), authorization);
      expect(res.status, authorization).toBe(401);
    }
  });
});

describe("write key in the body", () => {
  it("is accepted on a single call", async () => {
    const body = track({ writeKey: WRITE_KEY });
    const res = await postTrack("/v1/track", body);
    expect(res.status).toBe(200);
    expect(await storedCount(body.messageId)).toBe(1);
  });

  it.each(["/sdk/b", "/v1/b", "/v1/batch", "/sdk/batch"])("is accepted on %s", async (route) => {
    const item = { type: "track", ...track() };
    const res = await postTrack(route, { writeKey: WRITE_KEY, batch: [item] });
    expect(res.status).toBe(200);
    expect(await storedCount(item.messageId)).toBe(1);
  });

  it("an unknown key in the body is a 401", async () => {
    const body = track({ writeKey: "wk_unknown" });
    const res = await postTrack("/v1/track", body);
    expect(res.status).toBe(401);
    expect(res.json).toMatchObject({ code: "unauthorized" });
    expect(await storedCount(body.messageId)).toBe(0);
  });

  it("the body's writeKey is not stored with the message", async () => {
    const body = track({ writeKey: WRITE_KEY });
    await postTrack("/v1/track", body);
    const [stored] = await events(t.url, { messageId: body.messageId });
    expect(JSON.stringify(stored)).not.toContain(WRITE_KEY);
  });
});

describe("missing key", () => {
  it.each(["/v1/track", "/v1/batch", "/sdk/track", "/sdk/b", "/api/track"])(
    "%s without any key is a 401",
    async (route) => {
      const item = track();
      const body = route.endsWith("b") || route.endsWith("batch") ? { batch: [{ type: "track", ...item }] } : item;
      const res = await postTrack(route, body);
      expect(res.status).toBe(401);
      expect(res.json).toMatchObject({ success: false, code: "unauthorized", message: expect.stringContaining("key") });
      expect(await storedCount(item.messageId)).toBe(0);
    },
  );
});

describe("header and body disagree", () => {
  it("a valid header wins over a wrong body key", async () => {
    const body = track({ writeKey: "wk_wrong" });
    const res = await postTrack("/v1/track", body, headerForms[0]?.[1](WRITE_KEY));
    expect(res.status).toBe(200);
    expect(await storedCount(body.messageId)).toBe(1);
  });

  it("a wrong header wins over a valid body key", async () => {
    const body = track({ writeKey: WRITE_KEY });
    const res = await postTrack("/v1/track", body, headerForms[0]?.[1]("wk_wrong"));
    expect(res.status).toBe(401);
    expect(await storedCount(body.messageId)).toBe(0);
  });
});

describe("GET /api/validate-write-key", () => {
  const validate = (authorization?: string) =>
    send(t.url, "/api/validate-write-key", {
      method: "GET",
      headers: authorization === undefined ? {} : { authorization },
    });

  it.each(headerForms)("accepts %s", async (_label, form) => {
    const res = await validate(form(WRITE_KEY));
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ status: 200, success: true });
  });

  it.each(headerForms)("refuses %s with an unknown key", async (_label, form) => {
    const res = await validate(form("wk_unknown"));
    expect(res.status).toBe(401);
    expect(res.json).toMatchObject({ code: "unauthorized", message: expect.any(String) });
  });

  it("refuses a request without a key", async () => {
    const res = await validate();
    expect(res.status).toBe(401);
    expect(res.json).toMatchObject({ code: "unauthorized" });
  });
});
