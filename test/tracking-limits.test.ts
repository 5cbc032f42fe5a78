import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { basicAuth, post, startTestServer, type TestServer } from "./helpers/server.js";
import { events, send, stats, uid } from "./helpers/tracking.js";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.close());

const MESSAGE_BYTES = 32_768;
const REQUEST_BYTES = 512_000;
const BATCH_MESSAGES = 2_500;
const DEPTH = 64;

const bytesOf = (value: unknown) => Buffer.byteLength(JSON.stringify(value), "utf8");

/** A track message whose JSON is exactly `size` bytes, padded with a property of ASCII letters. */
function trackOfSize(size: number, fields: Record<string, unknown> = {}): Record<string, unknown> {
  const message = { userId: "limit-user", event: "Padded", messageId: uid("pad"), ...fields, properties: { pad: "" } };
  const pad = size - bytesOf(message);
  if (pad < 0) throw new Error(`a message cannot be as small as ${size} bytes`);
  message.properties.pad = "x".repeat(pad);
  return message;
}

/** `depth` objects nested in one another: 1 is `{}`, 2 is `{"a":{}}`. */
function nested(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = {};
  for (let i = 1; i < depth; i++) value = { a: value };
  return value;
}

/** Nesting depth of parsed JSON, counting objects and arrays; a simple recursive reference. */
function depthOf(value: unknown): number {
  if (typeof value !== "object" || value === null) return 0;
  const children = Array.isArray(value) ? value : Object.values(value);
  return 1 + Math.max(0, ...children.map(depthOf));
}

/**
 * A batch body whose JSON is exactly `size` bytes: `count` padded track messages, each under the
 * message limit, the last one taking up the remainder.
 */
function batchBodyOfSize(size: number, count: number): string {
  const items = Array.from({ length: count }, () => ({
    type: "track",
    userId: "limit-user",
    event: "Bulk",
    messageId: uid("bulk"),
    properties: { pad: "" },
  }));
  const share = Math.floor((size - bytesOf({ batch: items })) / count);
  for (const item of items) item.properties.pad = "y".repeat(share);
  const last = items[count - 1];
  if (!last) throw new Error("no items");
  last.properties.pad += "y".repeat(size - bytesOf({ batch: items }));
  const body = JSON.stringify({ batch: items });
  if (Buffer.byteLength(body) !== size) throw new Error("batch body has the wrong size");
  for (const item of items) if (bytesOf(item) > MESSAGE_BYTES) throw new Error("an item is over the message limit");
  return body;
}

describe("message size", () => {
  it("a single message of exactly 32,768 bytes is stored", async () => {
    const message = trackOfSize(MESSAGE_BYTES);
    expect(bytesOf(message)).toBe(32_768);
    const res = await post(t.url, "/v1/track", message);
    expect(res.status).toBe(200);
    expect((await events(t.url, { messageId: String(message.messageId) })).length).toBe(1);
  });

  it("a single message of 32,769 bytes is a 400 naming the limit", async () => {
    const message = trackOfSize(MESSAGE_BYTES + 1);
    expect(bytesOf(message)).toBe(32_769);
    const res = await post(t.url, "/v1/track", message);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ success: false, code: "message_too_large" });
    expect(res.body.message).toContain("32768");
    expect((await events(t.url, { messageId: String(message.messageId) })).length).toBe(0);
  });

  it("counts bytes, not characters", async () => {
    // 'é' is two bytes of UTF-8, so these messages are shorter in characters than in bytes.
    const within = trackOfSize(MESSAGE_BYTES, { name: "é".repeat(100) });
    expect(bytesOf(within)).toBe(32_768);
    expect((await post(t.url, "/v1/track", within)).status).toBe(200);

    const over = trackOfSize(MESSAGE_BYTES + 1, { name: "é".repeat(100) });
    expect(bytesOf(over)).toBe(32_769);
    expect(JSON.stringify(over).length).toBeLessThan(32_768);
    const single = await post(t.url, "/v1/track", over);
    expect(single.status).toBe(400);
    expect(single.body).toMatchObject({ code: "message_too_large" });

    const small = { type: "track", userId: "limit-user", event: "Small", messageId: uid("small") };
    const overItem = trackOfSize(MESSAGE_BYTES + 1, { type: "track", name: "é".repeat(100) });
    const batch = await post(t.url, "/v1/batch", { batch: [small, overItem] });
    expect(batch.status).toBe(200);
    expect(batch.body).toMatchObject({ accepted: 1, errors: [{ index: 1, code: "message_too_large" }] });
  });

  it("in a batch, a message over 32 KB is refused on its own and the rest is kept", async () => {
    const big = trackOfSize(MESSAGE_BYTES + 1, { type: "track" });
    expect(bytesOf(big)).toBe(32_769);
    const exact = trackOfSize(MESSAGE_BYTES, { type: "track" });
    expect(bytesOf(exact)).toBe(32_768);
    const small = { type: "track", userId: "limit-user", event: "Small", messageId: uid("small") };
    const res = await post(t.url, "/v1/batch", { batch: [small, big, exact] });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ success: true, received: 3, accepted: 2, duplicates: 0 });
    const errors = res.body.errors as { index: number; code: string; message: string }[];
    expect(errors).toEqual([{ index: 1, code: "message_too_large", message: expect.stringMatching(/^\/batch\/1: /) }]);
    expect(errors[0]?.message).toContain("32768");
    for (const [message, count] of [
      [small, 1],
      [big, 0],
      [exact, 1],
    ] as const) {
      expect((await events(t.url, { messageId: String(message.messageId) })).length).toBe(count);
    }
  });
});

describe("request size", () => {
  it("a request of exactly 512,000 bytes is accepted", async () => {
    const body = batchBodyOfSize(REQUEST_BYTES, 16);
    const res = await post(t.url, "/v1/batch", body);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ received: 16, accepted: 16, errors: [] });
  });

  it("a request of 512,001 bytes is a 400 naming the limit", async () => {
    const body = batchBodyOfSize(REQUEST_BYTES + 1, 16);
    const before = await stats(t.url);
    const res = await post(t.url, "/v1/batch", body);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ success: false, code: "request_too_large" });
    expect(res.body.message).toContain("512000");
    expect((await stats(t.url)).messages).toBe(before.messages);
  });

  it("a gzip request is held to the limit after decompression", async () => {
    const headers = { authorization: basicAuth(), "content-type": "application/json", "content-encoding": "gzip" };
    const exact = await send(t.url, "/v1/batch", { headers, body: gzipSync(batchBodyOfSize(REQUEST_BYTES, 16)) });
    expect(exact.status).toBe(200);
    expect(exact.json).toMatchObject({ accepted: 16 });

    const over = gzipSync(batchBodyOfSize(REQUEST_BYTES + 1, 16));
    expect(over.length).toBeLessThan(REQUEST_BYTES);
    const res = await send(t.url, "/v1/batch", { headers, body: over });
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ code: "request_too_large", message: expect.stringContaining("512000") });
  });

  it("a gzip bomb stops at the limit", async () => {
    // 20 MB of whitespace inside valid JSON compresses to about 20 KB.
    const inflated = Buffer.concat([Buffer.from('{"batch":['), Buffer.alloc(20_000_000, 0x20), Buffer.from("]}")]);
    const body = gzipSync(inflated);
    const res = await send(t.url, "/v1/batch", {
      headers: { authorization: basicAuth(), "content-type": "application/json", "content-encoding": "gzip" },
      body,
    });
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ code: "request_too_large" });
    // The server is still up and answering.
    expect((await send(t.url, "/healthz", { method: "GET" })).status).toBe(200);
  });
});

describe("messages per batch", () => {
  const items = (count: number, tag: string) =>
    Array.from({ length: count }, (_, i) => ({
      type: "track",
      userId: "limit-user",
      event: tag,
      messageId: `${tag}-${i}`,
    }));

  it("a batch of 2,500 messages is accepted", async () => {
    const tag = uid("full");
    const before = await stats(t.url);
    const res = await post(t.url, "/v1/batch", { batch: items(BATCH_MESSAGES, tag) });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ received: 2500, accepted: 2500, duplicates: 0, errors: [] });
    expect((await stats(t.url)).messages - before.messages).toBe(2500);
  });

  it("a batch of 2,501 messages is a 400 naming the limit", async () => {
    const tag = uid("overfull");
    const res = await post(t.url, "/v1/batch", { batch: items(BATCH_MESSAGES + 1, tag) });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ success: false, code: "invalid_request" });
    expect(res.body.message).toMatch(/^\/batch: /);
    expect(res.body.message).toContain("2500");
    expect(await events(t.url, { event: tag })).toEqual([]);
  });

  it("an empty batch is a 400", async () => {
    const res = await post(t.url, "/v1/batch", { batch: [] });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: "invalid_request", message: "/batch: must not be empty" });
  });

  it("a batch request without a batch array is a 400", async () => {
    const missing = await post(t.url, "/v1/batch", { sentAt: new Date().toISOString() });
    expect(missing.status).toBe(400);
    expect(missing.body).toMatchObject({ code: "invalid_request", message: "/batch: required" });
    const notArray = await post(t.url, "/v1/batch", { batch: { type: "track" } });
    expect(notArray.status).toBe(400);
    expect(notArray.body).toMatchObject({ code: "invalid_request", message: "/batch: must be array" });
  });
});

describe("nesting depth", () => {
  it("JSON nested 64 levels deep is accepted", async () => {
    const message = { userId: "limit-user", event: "Deep", messageId: uid("deep"), properties: nested(DEPTH - 1) };
    expect(depthOf(message)).toBe(64);
    const res = await post(t.url, "/v1/track", message);
    expect(res.status).toBe(200);
    const [stored] = await events(t.url, { messageId: message.messageId });
    expect(stored?.properties).toEqual(nested(DEPTH - 1));
  });

  it("JSON nested 65 levels deep is a 400 naming the limit", async () => {
    const message = { userId: "limit-user", event: "Deep", messageId: uid("deep"), properties: nested(DEPTH) };
    expect(depthOf(message)).toBe(65);
    const res = await post(t.url, "/v1/track", message);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ success: false, code: "too_deep" });
    expect(res.body.message).toContain("64");
  });

  it("arrays count as levels, in a batch too", async () => {
    let deepArray: unknown = [];
    // The body, the batch array, the item and its properties are four levels above this 60-deep chain.
    for (let i = 1; i < DEPTH - 4; i++) deepArray = [deepArray];
    const item = { type: "track", userId: "limit-user", event: "Deep", messageId: uid("deep-array") };
    const within = { batch: [{ ...item, properties: { list: deepArray } }] };
    expect(depthOf(within)).toBe(64);
    expect((await post(t.url, "/v1/batch", within)).status).toBe(200);

    const over = { batch: [{ ...item, messageId: uid("deep-array"), properties: { list: [deepArray] } }] };
    expect(depthOf(over)).toBe(65);
    const res = await post(t.url, "/v1/batch", over);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: "too_deep" });
  });

  it("brackets inside strings do not count", async () => {
    const text = `${"[{".repeat(100)}\\"${"}]".repeat(100)}`;
    const message = { userId: "limit-user", event: text, messageId: uid("brackets"), properties: { text } };
    const res = await post(t.url, "/v1/track", message);
    expect(res.status).toBe(200);
    const [stored] = await events(t.url, { messageId: message.messageId });
    expect(stored?.event).toBe(text);
  });
});
