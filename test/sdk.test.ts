import { createRequire } from "node:module";
import { Analytics as JuneAnalytics } from "@june-so/analytics-node";
import { Analytics as SegmentAnalytics } from "@segment/analytics-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { EventRecord, WorkspaceStats } from "../src/storage/types.js";
import { basicAuth, query, startTestServer, type TestServer, WRITE_KEY } from "./helpers/server.js";

/** June's client always posts to its cloud; the tests deliver its requests to the local server instead. */
const JUNE_HOST = "https://api.june.so";

/** Both clients set this library name: June's is a thin wrapper over Segment's 1.x client. */
const LIBRARY_NAME = "@segment/analytics-node";

const require = createRequire(import.meta.url);
const versionOf = (resolveFrom: string, pkg: string): string =>
  (createRequire(require.resolve(resolveFrom))(`${pkg}/package.json`) as { version: string }).version;

/** A message as an SDK put it in the batch body. */
interface SentItem {
  type: string;
  messageId: string;
  timestamp: string;
  context: Record<string, unknown>;
  [field: string]: unknown;
}

interface SentBody {
  batch: SentItem[];
  sentAt: string;
  writeKey?: string;
}

/** One HTTP exchange of an SDK with the server, as the SDK's transport saw it. */
interface Exchange {
  /** The URL the SDK addressed. */
  url: string;
  /** The URL the request was delivered to. */
  target: string;
  headers: Record<string, string>;
  body: SentBody;
  /** The server's answer, or "lost" when the test dropped the response after the server handled the request. */
  status: number | "lost";
  response: unknown;
}

interface FetchInit {
  method: string;
  headers: Record<string, string>;
  body: string;
  // biome-ignore lint/suspicious/noExplicitAny: the SDKs type the abort signal as any
  signal: any;
}

interface Transport {
  exchanges: Exchange[];
  fetch: (url: string, init: FetchInit) => Promise<Response>;
}

/**
 * A fetch for the SDKs' `httpClient` option that records every exchange. `loseFirstResponse` lets the
 * server store the first request and then fails it as a network error would, so the SDK retries it.
 */
function transport(serverUrl: string, { loseFirstResponse = false } = {}): Transport {
  const exchanges: Exchange[] = [];
  return {
    exchanges,
    fetch: async (url, init) => {
      const target = url.startsWith(JUNE_HOST) ? serverUrl + url.slice(JUNE_HOST.length) : url;
      const res = await fetch(target, init);
      const response = await res.clone().json();
      const exchange: Exchange = {
        url,
        target,
        headers: init.headers,
        body: JSON.parse(init.body) as SentBody,
        status: res.status,
        response,
      };
      exchanges.push(exchange);
      if (loseFirstResponse && exchanges.length === 1) {
        exchange.status = "lost";
        throw new TypeError("fetch failed");
      }
      return res;
    },
  };
}

type Callback = (err?: unknown, ctx?: { event: { messageId?: string } }) => void;

/** What the tests use of either SDK. */
interface Client {
  identify(params: ReturnType<typeof script>["identify"], callback: Callback): void;
  group(params: ReturnType<typeof script>["group"], callback: Callback): void;
  track(params: ReturnType<typeof script>["track"], callback: Callback): void;
  page(params: ReturnType<typeof script>["page"], callback: Callback): void;
  closeAndFlush(): Promise<void>;
}

interface Sdk {
  name: string;
  /** Prefix of the ids a test sends through this SDK. */
  label: string;
  /** The batch path the SDK posts to. */
  path: string;
  /** context.library.version the SDK sets. */
  libraryVersion: string;
  /** Whether the SDK repeats the write key in the batch body, besides the Basic auth header. */
  writeKeyInBody: boolean;
  /** The X-Retry-Count header the SDK puts on its first retry. */
  retryCountHeader: string | undefined;
  create(serverUrl: string, writeKey: string, fetch: Transport["fetch"], maxRetries: number): Client;
}

const SDKS: Sdk[] = [
  {
    name: "@june-so/analytics-node",
    label: "june",
    path: "/sdk/batch",
    libraryVersion: versionOf("@june-so/analytics-node", "@segment/analytics-node"),
    writeKeyInBody: false,
    retryCountHeader: undefined,
    create: (_serverUrl, writeKey, fetch, maxRetries) =>
      new JuneAnalytics(writeKey, { httpClient: fetch, maxRetries, flushInterval: 60_000 }),
  },
  {
    name: "@segment/analytics-node",
    label: "segment",
    path: "/v1/batch",
    libraryVersion: versionOf("@segment/analytics-node", "@segment/analytics-node"),
    writeKeyInBody: true,
    retryCountHeader: "1",
    create: (serverUrl, writeKey, fetch, maxRetries) =>
      new SegmentAnalytics({ writeKey, host: serverUrl, httpClient: fetch, maxRetries, flushInterval: 60_000 }),
  },
];

/** The calls of a signed-in user of Acme, under ids of its own. */
function script(prefix: string) {
  const userId = `${prefix}-user-1`;
  const anonymousId = `${prefix}-anon-1`;
  return {
    userId,
    anonymousId,
    identify: {
      userId,
      anonymousId,
      traits: { email: `${prefix}@acme.example`, name: "Ada Lovelace", plan: "pro" },
    },
    group: {
      userId,
      groupId: "acme",
      traits: { name: "Acme Inc", industry: "Software", employees: 120, website: "https://acme.example" },
    },
    track: {
      userId,
      event: "Report Created",
      properties: { reportId: "r_42", charts: 3, shared: true, tags: ["q2", "sales"] },
      context: { groupId: "acme" },
      timestamp: new Date("2024-05-01T12:00:00.000Z"),
    },
    page: {
      userId,
      name: "Dashboard",
      category: "App",
      properties: { path: "/dashboard", title: "Dashboard" },
    },
  };
}

type Call = "identify" | "group" | "track" | "page";
const CALLS: readonly Call[] = ["identify", "group", "track", "page"];

/**
 * Makes the script's four calls, then closes and flushes the client. Resolves with each call's
 * messageId, or its delivery error, as the SDK reported them to the call's callback.
 */
async function send(client: Client, s: ReturnType<typeof script>) {
  const results = {} as Record<Call, Promise<{ err: unknown; messageId: string | undefined }>>;
  const callback = (call: Call): Callback => {
    let done!: (value: { err: unknown; messageId: string | undefined }) => void;
    results[call] = new Promise((resolve) => {
      done = resolve;
    });
    return (err, ctx) => done({ err, messageId: ctx?.event.messageId });
  };
  client.identify(s.identify, callback("identify"));
  client.group(s.group, callback("group"));
  client.track(s.track, callback("track"));
  client.page(s.page, callback("page"));
  await client.closeAndFlush();
  const out = {} as Record<Call, { err: unknown; messageId: string | undefined }>;
  for (const call of CALLS) out[call] = await results[call];
  return out;
}

/** The messageIds the SDK reported, after checking that every call was delivered without error. */
function deliveredIds(results: Awaited<ReturnType<typeof send>>): Record<Call, string> {
  const ids = {} as Record<Call, string>;
  for (const call of CALLS) {
    expect(results[call].err, call).toBeUndefined();
    expect(results[call].messageId, call).toMatch(/^node-next-\d+-[0-9a-f-]{36}$/);
    ids[call] = results[call].messageId as string;
  }
  expect(new Set(Object.values(ids)).size).toBe(4);
  return ids;
}

const isIso = (value: string | null) => value !== null && new Date(value).toISOString() === value;

/** A stored event without its four times, which are checked on their own. */
function withoutTimes(e: EventRecord) {
  const { timestamp: _t, originalTimestamp: _o, sentAt: _s, receivedAt: _r, ...rest } = e;
  return rest;
}

describe.each(SDKS)("$name", (sdk) => {
  let t: TestServer;
  beforeEach(async () => {
    t = await startTestServer();
  });
  afterEach(() => t.close());

  it("delivers identify, group, track and page, and every field reads back as sent", async () => {
    const s = script(sdk.label);
    const wire = transport(t.url);
    const ids = deliveredIds(await send(sdk.create(t.url, WRITE_KEY, wire.fetch, 0), s));

    // One batch request, to the SDK's own path, authenticated the way the SDK does it.
    expect(wire.exchanges).toHaveLength(1);
    const [exchange] = wire.exchanges as [Exchange];
    expect(new URL(exchange.target).pathname).toBe(sdk.path);
    expect(exchange.target).toBe(`${t.url}${sdk.path}`);
    if (sdk.path === "/sdk/batch") expect(exchange.url).toBe(`${JUNE_HOST}/sdk/batch`);
    expect(exchange.headers.Authorization).toBe(basicAuth(WRITE_KEY));
    expect(exchange.body.writeKey).toBe(sdk.writeKeyInBody ? WRITE_KEY : undefined);
    expect(exchange.status).toBe(200);
    expect(exchange.response).toEqual({
      status: 200,
      success: true,
      received: 4,
      accepted: 4,
      duplicates: 0,
      errors: [],
    });
    expect(exchange.body.batch.map((m) => [m.type, m.messageId])).toEqual(CALLS.map((c) => [c, ids[c]]));
    const sent = new Map(exchange.body.batch.map((m) => [m.messageId, m]));

    const { events, nextCursor } = await query<{ events: EventRecord[]; nextCursor: string | null }>(
      t.url,
      `/api/v1/events?userId=${s.userId}`,
    );
    expect(nextCursor).toBeNull();
    expect(events.map((e) => e.messageId).sort()).toEqual(Object.values(ids).sort());
    const stored = Object.fromEntries(events.map((e) => [e.type, e])) as Record<Call, EventRecord>;

    const library = { name: LIBRARY_NAME, version: sdk.libraryVersion };
    expect(withoutTimes(stored.identify)).toEqual({
      messageId: ids.identify,
      type: "identify",
      event: null,
      name: null,
      category: null,
      userId: s.userId,
      anonymousId: s.anonymousId,
      groupId: null,
      previousId: null,
      email: s.identify.traits.email,
      properties: null,
      traits: s.identify.traits,
      context: { library },
      integrations: {},
    });
    expect(withoutTimes(stored.group)).toEqual({
      messageId: ids.group,
      type: "group",
      event: null,
      name: null,
      category: null,
      userId: s.userId,
      anonymousId: null,
      groupId: "acme",
      previousId: null,
      email: null,
      properties: null,
      traits: { name: "Acme Inc", industry: "Software", employees: 120, website: "https://acme.example" },
      context: { library },
      integrations: {},
    });
    expect(withoutTimes(stored.track)).toEqual({
      messageId: ids.track,
      type: "track",
      event: "Report Created",
      name: null,
      category: null,
      userId: s.userId,
      anonymousId: null,
      groupId: "acme",
      previousId: null,
      email: null,
      properties: s.track.properties,
      traits: null,
      context: { groupId: "acme", library },
      integrations: {},
    });
    expect(stored.track.originalTimestamp).toBe("2024-05-01T12:00:00.000Z");
    // The SDK copies a page's category into its properties.
    expect(withoutTimes(stored.page)).toEqual({
      messageId: ids.page,
      type: "page",
      event: null,
      name: "Dashboard",
      category: "App",
      userId: s.userId,
      anonymousId: null,
      groupId: null,
      previousId: null,
      email: null,
      properties: { ...s.page.properties, category: "App" },
      traits: null,
      context: { library },
      integrations: {},
    });

    for (const call of CALLS) {
      const e = stored[call];
      const item = sent.get(e.messageId) as SentItem;
      // Stored as the SDK sent it: context whole (the SDK's _metadata is not kept), and its times.
      expect(e.context, call).toEqual(item.context);
      expect(e.originalTimestamp, call).toBe(item.timestamp);
      expect(e.sentAt, call).toBe(exchange.body.sentAt);
      for (const time of [e.timestamp, e.originalTimestamp, e.sentAt, e.receivedAt])
        expect(isIso(time), call).toBe(true);
      // Same clock on both sides: the skew correction only moves the timestamp by the request's transit time.
      const transit = Date.parse(e.receivedAt) - Date.parse(e.sentAt as string);
      expect(transit, call).toBeGreaterThanOrEqual(0);
      expect(Date.parse(e.timestamp), call).toBe(Date.parse(e.originalTimestamp as string) + transit);
    }
    expect(new Set(events.map((e) => e.receivedAt)).size).toBe(1);

    const one = async (route: string) =>
      (await query<{ events: EventRecord[] }>(t.url, route)).events.map((e) => e.messageId);
    for (const call of CALLS) expect(await one(`/api/v1/events?messageId=${ids[call]}`)).toEqual([ids[call]]);
    expect(await one(`/api/v1/events?anonymousId=${s.anonymousId}`)).toEqual([ids.identify]);
    expect((await one("/api/v1/events?groupId=acme")).sort()).toEqual([ids.group, ids.track].sort());
    expect(await one(`/api/v1/events?userId=${s.userId}&type=page`)).toEqual([ids.page]);

    expect(await query<WorkspaceStats>(t.url, "/api/v1/stats")).toEqual({ messages: 4, events: 2, duplicates: 0 });
  });

  it("stores a batch once when the SDK retries it after losing the response", async () => {
    const s = script(`${sdk.label}-retry`);
    const wire = transport(t.url, { loseFirstResponse: true });
    const ids = deliveredIds(await send(sdk.create(t.url, WRITE_KEY, wire.fetch, 2), s));

    expect(wire.exchanges.map((x) => [x.status, x.response])).toEqual([
      ["lost", { status: 200, success: true, received: 4, accepted: 4, duplicates: 0, errors: [] }],
      [200, { status: 200, success: true, received: 4, accepted: 0, duplicates: 4, errors: [] }],
    ]);
    const [first, retry] = wire.exchanges as [Exchange, Exchange];
    expect(retry.body.batch.map((m) => m.messageId)).toEqual(first.body.batch.map((m) => m.messageId));
    expect(first.headers["X-Retry-Count"]).toBeUndefined();
    expect(retry.headers["X-Retry-Count"]).toBe(sdk.retryCountHeader);

    const { events } = await query<{ events: EventRecord[] }>(t.url, `/api/v1/events?userId=${s.userId}`);
    expect(events.map((e) => e.messageId).sort()).toEqual(Object.values(ids).sort());
    // The first delivery is the one kept.
    for (const e of events) expect(e.sentAt).toBe(first.body.sentAt);
    expect(await query<WorkspaceStats>(t.url, "/api/v1/stats")).toEqual({ messages: 4, events: 2, duplicates: 4 });
  });

  it("reports a delivery failure for an unknown write key and stores nothing", async () => {
    const s = script(`${sdk.label}-badkey`);
    const wire = transport(t.url);
    const results = await send(sdk.create(t.url, "wk_unknown_key_0123456789abcdef", wire.fetch, 0), s);

    for (const call of CALLS) expect(String(results[call].err), call).toContain("[401]");
    expect(wire.exchanges.map((x) => x.status)).toEqual([401]);
    expect(wire.exchanges[0]?.response).toMatchObject({ status: 401, success: false });
    expect(await query<WorkspaceStats>(t.url, "/api/v1/stats")).toEqual({ messages: 0, events: 0, duplicates: 0 });
  });
});
