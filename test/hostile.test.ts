import { randomUUID } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import zlib from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MESSAGE_TYPES, type MessageType, type WorkspaceStats } from "../src/storage/types.js";
import { TRACKING_ROUTES } from "../src/tracking/routes.js";
import { MESSAGE_SCHEMAS } from "../src/tracking/schemas.js";
import { type Answer, bytewise, exchange, type RawRequest, requestBytes } from "./helpers/raw-http.js";
import {
  basicAuth,
  type ChildServer,
  freePort,
  SECRET_KEY,
  spawnServer,
  tempDataDir,
  WRITE_KEY,
} from "./helpers/server.js";

/**
 * The adversarial layer over the Tracking API contract: hundreds of bad requests, generated from
 * tables, sent over raw connections to a server in its own process. Every one must be answered
 * within a bound with a 4xx JSON error (or, for a partly bad batch, a 200 listing the bad messages),
 * the process must survive them all, and nothing from a refused request may be stored.
 */

/** Short, so that slow and stalled clients are cut off within the test's time. */
const REQUEST_TIMEOUT_MS = 3000;
const ANSWER_WITHIN_MS = 5000;
const RUN = randomUUID().slice(0, 8);

let seq = 0;
const newId = (label: string) => `hostile-${RUN}-${label}-${++seq}`;

interface Case {
  category: string;
  name: string;
  bytes: Buffer;
  /** refused: a 4xx JSON error. partial: a 200 batch answer with per-message errors. */
  expect: "refused" | "partial";
  /** messageIds in the request that must not be stored. */
  refusedIds: string[];
  /** messageIds of a partial batch's good messages, which must be stored. */
  storedIds?: string[];
  /** Text the error must contain: the field it is about. */
  names?: string;
}

const cases: Case[] = [];

function add(
  category: string,
  name: string,
  request: RawRequest,
  extra: Partial<Omit<Case, "category" | "name" | "bytes">> = {},
): void {
  const headers = { authorization: basicAuth(), ...request.headers };
  cases.push({
    category,
    name,
    bytes: requestBytes({ ...request, headers }),
    expect: "refused",
    refusedIds: [],
    ...extra,
  });
}

function addRaw(category: string, name: string, bytes: Buffer, refusedIds: string[] = []): void {
  cases.push({ category, name, bytes, expect: "refused", refusedIds });
}

const track = (id: string, extra: Record<string, unknown> = {}) => ({
  userId: `${RUN}-user`,
  event: "Hostile Event",
  messageId: id,
  ...extra,
});

/** A message of each type that would be stored as it is. */
function valid(type: MessageType, id: string): Record<string, unknown> {
  const common = { userId: `${RUN}-user`, messageId: id };
  switch (type) {
    case "track":
      return { ...common, event: "Hostile Event" };
    case "identify":
      return { ...common, traits: { plan: "free" } };
    case "group":
      return { ...common, groupId: `${RUN}-group` };
    case "page":
    case "screen":
      return { ...common, name: "Home" };
    case "alias":
      return { ...common, previousId: `${RUN}-previous` };
  }
}

const SINGLE_ROUTES = new Map<MessageType, string[]>(
  MESSAGE_TYPES.map((type) => [
    type,
    [...TRACKING_ROUTES].filter(([, r]) => r.kind === "single" && r.type === type).map(([path]) => path),
  ]),
);
let rotation = 0;
/** The single-call routes of a type in turn, so that every path of the API gets its share. */
const routeFor = (type: MessageType) => {
  const routes = SINGLE_ROUTES.get(type) ?? [];
  return routes[rotation++ % routes.length] as string;
};

const deepObject = (depth: number, leaf = "1") => `${'{"a":'.repeat(depth)}${leaf}${"}".repeat(depth)}`;
const deepArray = (depth: number, leaf = "1") => `${"[".repeat(depth)}${leaf}${"]".repeat(depth)}`;

// --- Broken, truncated and non-object JSON --------------------------------------------------------

const BROKEN = [
  "{",
  "}",
  '{"userId":',
  '{"userId":"u","event":"e"',
  '{"userId":"u","event":"e",}',
  "{'userId':'u','event':'e'}",
  '{userId:"u",event:"e"}',
  "undefined",
  "NaN",
  '{"a":01}',
  '{"a":"\u0001"}',
  '{"a":"\\x41"}',
  '"unterminated',
  '{"a":1}}',
  '{"a":1} {"b":2}',
  "[",
  "// comment\n{}",
  '{"a":Infinity}',
  "tru",
  '{"a":1e}',
  "   ",
];
for (const route of ["/v1/track", "/v1/batch", "/sdk/identify"]) {
  for (const [i, body] of BROKEN.entries())
    add("broken JSON", `${route} #${i} ${JSON.stringify(body)}`, { path: route, body });
}
{
  const ids = [newId("trunc"), newId("trunc")];
  const batch = JSON.stringify({
    batch: ids.map((id) => ({ type: "track", ...track(id, { properties: { plan: "pro", seats: 3 } }) })),
  });
  for (const fraction of [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 0.99]) {
    const cut = Math.floor(batch.length * fraction);
    add(
      "truncated JSON",
      `batch cut at ${cut}/${batch.length}`,
      { path: "/v1/batch", body: batch.slice(0, cut) },
      {
        refusedIds: ids,
      },
    );
  }
  const id = newId("trunc");
  const single = JSON.stringify(track(id));
  for (const cut of [1, 10, single.length - 2, single.length - 1]) {
    add(
      "truncated JSON",
      `track cut at ${cut}/${single.length}`,
      { path: "/v1/track", body: single.slice(0, cut) },
      {
        refusedIds: [id],
      },
    );
  }
}
{
  const id = newId("array");
  const NOT_OBJECTS = ["null", "0", "1.5", '"text"', "true", "false", "[]", "[1,2]", JSON.stringify([track(id)])];
  for (const route of ["/v1/track", "/v1/batch", "/sdk/identify"]) {
    for (const body of NOT_OBJECTS) {
      add("JSON not an object", `${route} ${body.slice(0, 30)}`, { path: route, body }, { refusedIds: [id] });
    }
  }
}

// --- Content types ----------------------------------------------------------------------------------

for (const route of ["/v1/track", "/v1/batch"]) {
  const id = newId("ctype");
  const json = JSON.stringify(track(id));
  const bodies: [string, string | null, string | Buffer][] = [
    [
      "multipart",
      "multipart/form-data; boundary=XyZ",
      `--XyZ\r\nContent-Disposition: form-data; name="data"\r\n\r\n${json}\r\n--XyZ--\r\n`,
    ],
    ["form", "application/x-www-form-urlencoded", `userId=u&event=e&messageId=${id}`],
    ["xml", "application/xml", `<track><userId>u</userId><messageId>${id}</messageId></track>`],
    ["plain text", "text/plain", `userId: u, event: e, messageId: ${id}`],
    ["no content type", null, `userId=u&event=e&messageId=${id}`],
    ["UTF-16", "application/json; charset=utf-16le", Buffer.from(json, "utf16le")],
    ["binary", "application/octet-stream", Buffer.from([0xff, 0xfe, 0x00, 0x81, 0x9c, 0xc0, 0xaf])],
  ];
  for (const [name, type, body] of bodies) {
    add(
      "content type",
      `${route} ${name}`,
      { path: route, body, headers: { "content-type": type } },
      { refusedIds: [id] },
    );
  }
}

// --- Sizes, lying lengths and encodings ---------------------------------------------------------------

const gzip = (data: string | Buffer) => zlib.gzipSync(data);
{
  const id = newId("big");
  add(
    "size",
    "single call over 512,000 bytes",
    {
      path: "/v1/track",
      body: JSON.stringify(track(id, { properties: { pad: "x".repeat(520_000) } })),
    },
    { refusedIds: [id] },
  );
  const ids = Array.from({ length: 20 }, () => newId("big"));
  add(
    "size",
    "batch over 512,000 bytes",
    {
      path: "/v1/batch",
      body: JSON.stringify({
        batch: ids.map((i) => ({ type: "track", ...track(i, { properties: { pad: "y".repeat(26_000) } }) })),
      }),
    },
    { refusedIds: ids },
  );

  const small = newId("lie");
  const body = JSON.stringify(track(small));
  add(
    "size",
    "Content-Length over the limit, small body",
    {
      path: "/v1/track",
      body,
      headers: { "content-length": "600000" },
    },
    { refusedIds: [small] },
  );
  add(
    "size",
    "Content-Length shorter than the body",
    { path: "/v1/track", body, headers: { "content-length": "10" } },
    {
      refusedIds: [small],
    },
  );
  for (const length of ["abc", "-5", "1e3", "99999999999999999999", "12, 12"]) {
    add(
      "size",
      `Content-Length ${length}`,
      { path: "/v1/track", body, headers: { "content-length": length } },
      {
        refusedIds: [small],
      },
    );
  }
  addRaw(
    "size",
    "two different Content-Lengths",
    Buffer.from(
      `POST /v1/track HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: ${basicAuth()}\r\nContent-Length: 5\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    ),
    [small],
  );
  addRaw(
    "size",
    "Content-Length and chunked",
    Buffer.from(
      `POST /v1/track HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: ${basicAuth()}\r\nContent-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
    ),
    [small],
  );
  addRaw(
    "size",
    "chunk size that is not hex",
    Buffer.from(
      `POST /v1/track HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: ${basicAuth()}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n${body}\r\n0\r\n\r\n`,
    ),
    [small],
  );
  const chunkedId = newId("chunked");
  const chunked = JSON.stringify(track(chunkedId, { properties: { pad: "z".repeat(600_000) } }));
  let chunks = "";
  for (let i = 0; i < chunked.length; i += 65_536) {
    const part = chunked.slice(i, i + 65_536);
    chunks += `${part.length.toString(16)}\r\n${part}\r\n`;
  }
  addRaw(
    "size",
    "chunked body over the limit, no Content-Length",
    Buffer.from(
      `POST /v1/track HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: ${basicAuth()}\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}0\r\n\r\n`,
    ),
    [chunkedId],
  );
}
{
  const id = newId("bomb");
  const fifty = 50 * 1024 * 1024;
  const gz = { "content-encoding": "gzip" };
  add("encoding", "gzip bomb: 50 MB of zeros", { path: "/v1/track", body: gzip(Buffer.alloc(fifty)), headers: gz });
  const jsonBomb = Buffer.concat([
    Buffer.from(`{"userId":"u","event":"e","messageId":"${id}","properties":{"pad":"`),
    Buffer.alloc(fifty, "0"),
    Buffer.from('"}}'),
  ]);
  add(
    "encoding",
    "gzip bomb shaped as a message",
    { path: "/v1/track", body: gzip(jsonBomb), headers: gz },
    {
      refusedIds: [id],
    },
  );
  add("encoding", "deflate bomb", {
    path: "/v1/batch",
    body: zlib.deflateSync(Buffer.alloc(fifty)),
    headers: { "content-encoding": "deflate" },
  });
  const plain = JSON.stringify(track(id));
  const zipped = gzip(plain);
  const notGzip: [string, Buffer, string][] = [
    ["plain JSON sent as gzip", Buffer.from(plain), "gzip"],
    ["random bytes sent as gzip", Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 97 + 13) % 256)), "gzip"],
    ["truncated gzip", zipped.subarray(0, Math.floor(zipped.length / 2)), "gzip"],
    ["gzip sent as deflate", zipped, "deflate"],
    ["deflate sent as gzip", zlib.deflateSync(plain), "gzip"],
    ["gzip header only", zipped.subarray(0, 10), "x-gzip"],
    ["gzip of broken JSON", gzip('{"userId":'), "gzip"],
    ["gzip of 10,000 levels", gzip(deepObject(10_000)), "gzip"],
  ];
  for (const [name, body, encoding] of notGzip) {
    add("encoding", name, { path: "/v1/track", body, headers: { "content-encoding": encoding } }, { refusedIds: [id] });
  }
  for (const encoding of ["br", "compress", "zstd", "gzip, gzip", "x-unknown", "*", "gzip;q=1"]) {
    add(
      "encoding",
      `Content-Encoding: ${encoding}`,
      {
        path: "/v1/track",
        body: plain,
        headers: { "content-encoding": encoding },
      },
      { refusedIds: [id] },
    );
  }
}

// --- Nesting ------------------------------------------------------------------------------------------

{
  const DEPTH = 10_000;
  const deep: [string, string, string, string[]][] = [];
  const id = () => newId("deep");
  const a = id();
  deep.push(["objects as the whole body", "/v1/track", deepObject(DEPTH), []]);
  deep.push(["arrays as the whole body", "/v1/batch", deepArray(DEPTH), []]);
  deep.push(["openers only", "/v1/track", "[".repeat(DEPTH), []]);
  deep.push([
    "properties",
    "/v1/track",
    `{"userId":"u","event":"e","messageId":"${a}","properties":${deepObject(DEPTH)}}`,
    [a],
  ]);
  const b = id();
  deep.push(["traits", "/v1/identify", `{"userId":"u","messageId":"${b}","traits":${deepArray(DEPTH)}}`, [b]]);
  const c = id();
  deep.push([
    "context",
    "/v1/group",
    `{"userId":"u","groupId":"g","messageId":"${c}","context":{"x":${deepObject(DEPTH)}}}`,
    [c],
  ]);
  const d = id();
  deep.push(["integrations", "/v1/page", `{"userId":"u","messageId":"${d}","integrations":${deepObject(DEPTH)}}`, [d]]);
  const [e, f] = [id(), id()];
  deep.push([
    "a batch item beside a good one",
    "/v1/batch",
    `{"batch":[{"type":"track","userId":"u","event":"ok","messageId":"${e}"},{"type":"track","userId":"u","event":"e","messageId":"${f}","properties":${deepArray(DEPTH, '{"a":1}')}}]}`,
    [e, f],
  ]);
  const g = id();
  deep.push([
    "the batch's shared context",
    "/v1/batch",
    `{"context":${deepObject(DEPTH)},"batch":[{"type":"track","userId":"u","event":"e","messageId":"${g}"}]}`,
    [g],
  ]);
  const h = id();
  deep.push([
    "mixed objects and arrays",
    "/sdk/track",
    `{"userId":"u","event":"e","messageId":"${h}","properties":{"x":${'[{"a":'.repeat(DEPTH / 2)}1${"}]".repeat(DEPTH / 2)}}}`,
    [h],
  ]);
  for (const [name, path, body, refusedIds] of deep) add("nesting 10,000 deep", name, { path, body }, { refusedIds });
}

// --- Wrong types, field by field, from the schemas ----------------------------------------------------

/** Fields that may not be null: clients send null for "absent" on every other one. */
const NOT_NULLABLE = new Set(["event", "groupId", "previousId"]);
const WRONG: Record<string, unknown[]> = {
  string: [42, true, ["x"], { a: "b" }],
  object: ["text", 42, false, ["x"]],
};

interface Property {
  type?: string;
  minLength?: number;
  maxLength?: number;
  format?: string;
}

function wrongValues(field: string, property: Property): unknown[] {
  const values = [...(WRONG[property.type ?? ""] ?? [])];
  if (NOT_NULLABLE.has(field)) values.push(null);
  if (property.minLength) values.push("");
  if (property.maxLength) values.push("m".repeat(property.maxLength + 1));
  if (property.format === "date-time") values.push("not a date", "2024-02-30T25:61:00Z");
  return values;
}

for (const type of MESSAGE_TYPES) {
  const properties = { ...(MESSAGE_SCHEMAS[type].properties as Record<string, Property>) };
  // June's group schema leaves messageId out; the server holds it to the same rule as the others.
  properties.messageId ??= { type: "string", minLength: 1, maxLength: 100 };
  for (const [field, property] of Object.entries(properties)) {
    const values = wrongValues(field, property);
    for (const [i, value] of values.entries()) {
      const id = newId("type");
      const message = { ...valid(type, id), [field]: value };
      const refusedIds = field === "messageId" ? (typeof value === "string" && value !== "" ? [value] : []) : [id];
      add(
        "wrong type",
        `${type}.${field} = ${JSON.stringify(value)?.slice(0, 20)}`,
        {
          path: routeFor(type),
          body: JSON.stringify(message),
        },
        { refusedIds, names: field },
      );
      // The first wrong value of each field again as a batch item, beside a good message.
      if (i === 0) {
        const good = newId("good");
        cases.push({
          category: "partly bad batch",
          name: `${type}.${field} = ${JSON.stringify(value)}`,
          bytes: requestBytes({
            path: "/v1/batch",
            headers: { authorization: basicAuth() },
            body: JSON.stringify({
              batch: [
                { type, ...message },
                { type: "track", ...track(good) },
              ],
            }),
          }),
          expect: "partial",
          refusedIds,
          storedIds: [good],
          names: field,
        });
      }
    }
  }
}
for (const [name, message] of [
  ["track without event", { userId: "u" }],
  ["track without userId or anonymousId", { event: "e" }],
  ["track with null userId and anonymousId", { userId: null, anonymousId: null, event: "e" }],
] as const) {
  const id = newId("missing");
  add(
    "wrong type",
    name,
    { path: "/v1/track", body: JSON.stringify({ ...message, messageId: id }) },
    { refusedIds: [id] },
  );
}
for (const [name, message] of [
  ["group without groupId", { type: "group", userId: "u" }],
  ["alias without previousId", { type: "alias", userId: "u" }],
  ["item without type", { userId: "u", event: "e" }],
  ["item with type 5", { type: 5, userId: "u", event: "e" }],
  ["item with an unknown type", { type: "purchase", userId: "u", event: "e" }],
  ["item with type null", { type: null, userId: "u", event: "e" }],
  ["item that is a string", "track"],
  ["item that is null", null],
] as const) {
  const [bad, good] = [newId("item"), newId("good")];
  const item = typeof message === "object" && message !== null ? { ...message, messageId: bad } : message;
  cases.push({
    category: "partly bad batch",
    name,
    bytes: requestBytes({
      path: "/v1/b",
      headers: { authorization: basicAuth() },
      body: JSON.stringify({ batch: [item, { type: "track", ...track(good) }] }),
    }),
    expect: "partial",
    refusedIds: [bad],
    storedIds: [good],
  });
}
{
  const id = newId("envelope");
  const body = JSON.stringify({ context: { note: "\ud800" }, batch: [{ type: "track", ...track(id) }] });
  add(
    "unpaired surrogate",
    "in the batch's shared context",
    { path: "/v1/batch", body },
    {
      refusedIds: [id],
      names: "/batch/0/context/note:",
    },
  );
}
for (const [field, values] of [
  ["batch", ["x", 5, {}, null, true]],
  ["sentAt", [5, {}, ["x"]]],
  ["context", ["x", 5, ["x"]]],
  ["integrations", ["x", 5]],
  ["writeKey", [5, {}]],
] as const) {
  for (const value of values) {
    const id = newId("envelope");
    const envelope = { batch: [{ type: "track", ...track(id) }], [field]: value };
    add(
      "batch envelope",
      `${field} = ${JSON.stringify(value)}`,
      { path: "/v1/batch", body: JSON.stringify(envelope) },
      {
        refusedIds: [id],
        names: field,
      },
    );
  }
}

// --- Unicode that a database would alter --------------------------------------------------------------

const LONE = ["lone-\ud800", "lone-\udfff-end", "\udc00\ud800"];
const UNSTORABLE: [MessageType, string, (v: string) => Record<string, unknown>][] = [
  ["track", "userId", (v) => ({ userId: v })],
  ["track", "anonymousId", (v) => ({ anonymousId: v })],
  ["track", "event", (v) => ({ event: v })],
  ["track", "messageId", (v) => ({ messageId: v })],
  ["track", "context/groupId", (v) => ({ context: { groupId: v } })],
  ["identify", "email", (v) => ({ email: v })],
  ["identify", "traits/email", (v) => ({ traits: { email: v } })],
  ["identify", "traits", (v) => ({ traits: { [v]: 1 } })],
  ["group", "groupId", (v) => ({ groupId: v })],
  ["group", "traits", (v) => ({ traits: { [v]: "x" } })],
  ["page", "name", (v) => ({ name: v })],
  ["screen", "category", (v) => ({ category: v })],
  ["alias", "previousId", (v) => ({ previousId: v })],
  ["track", "properties/plan", (v) => ({ properties: { plan: v } })],
  ["track", "properties", (v) => ({ properties: { [v]: 1 } })],
  ["page", "properties/tags/1", (v) => ({ properties: { tags: ["ok", v] } })],
  ["screen", "context/page/title", (v) => ({ context: { page: { title: v } } })],
  ["identify", "traits/company/name", (v) => ({ traits: { company: { name: v } } })],
  ["alias", "integrations", (v) => ({ integrations: { [v]: true } })],
  ["track", "", (v) => ({ [v]: "an unknown top-level field" })],
];
for (const [type, field, set] of UNSTORABLE) {
  for (const lone of LONE) {
    const id = newId("surrogate");
    add(
      "unpaired surrogate",
      `${type} ${field} ${JSON.stringify(lone)}`,
      {
        path: routeFor(type),
        body: JSON.stringify({ ...valid(type, id), ...set(lone) }),
      },
      { refusedIds: [id], names: `/${field}:` },
    );
  }
}
for (const [name, bytes] of [
  ["a stray continuation byte", [0x80]],
  ["a truncated sequence", [0xc3, 0x28]],
  ["an encoded surrogate", [0xed, 0xa0, 0x80]],
  ["an overlong slash", [0xc0, 0xaf]],
  ["0xff", [0xff]],
] as const) {
  const id = newId("utf8");
  const body = Buffer.concat([
    Buffer.from(`{"userId":"u-`),
    Buffer.from(bytes),
    Buffer.from(`","event":"e","messageId":"${id}"}`),
  ]);
  add("invalid UTF-8", `userId with ${name}`, { path: "/v1/track", body }, { refusedIds: [id] });
}

// --- Routes and methods ---------------------------------------------------------------------------------

for (const path of TRACKING_ROUTES.keys()) {
  for (const method of ["GET", "PUT", "DELETE", "PATCH"]) {
    const id = newId("method");
    const body =
      method === "GET" ? undefined : JSON.stringify({ ...track(id), batch: [{ type: "track", ...track(id) }] });
    add(
      "wrong method",
      `${method} ${path}`,
      { method, path, ...(body === undefined ? {} : { body }) },
      {
        refusedIds: [id],
      },
    );
  }
}
for (const [method, path] of [
  ["DELETE", "/api/v1/events"],
  ["POST", "/api/v1/events"],
  ["POST", "/api/v1/stats"],
  ["PUT", "/api/v1/stats"],
  ["POST", "/api/v1/users/someone"],
  ["DELETE", "/api/v1/users/someone"],
  ["POST", "/api/v1/companies"],
  ["PATCH", "/api/v1/settings"],
  ["DELETE", "/api/v1/settings"],
  ["PUT", "/api/v1/saved-reports"],
  ["GET", "/api/v1/workspace/rotate-keys"],
  ["GET", "/admin/backup"],
  ["POST", "/healthz"],
  ["DELETE", "/metrics"],
  ["POST", "/api/validate-write-key"],
] as const) {
  add("wrong method", `${method} ${path}`, {
    method,
    path,
    body: "{}",
    headers: { authorization: `Bearer ${SECRET_KEY}` },
  });
}
for (const path of [
  "/v2/track",
  "/v1/track/extra",
  "/v1/trackx",
  "/V1/TRACK",
  "/v1/track%00",
  "/%00",
  "/v1/%2e%2e/admin/backup",
  "/../../etc/passwd",
  `/${"a".repeat(8000)}`,
  "/api/v1/users/%E0%A4%A",
  "/api/v1/users/%",
  `/api/v1/users/${"u".repeat(300)}`,
  "/api/v1/reports/__proto__",
  "/api/v1/reports/constructor",
]) {
  const id = newId("route");
  add("unknown route", path.slice(0, 40), { path, body: JSON.stringify(track(id)) }, { refusedIds: [id] });
}

// --- The query API, with its secret key, given parameters and bodies it must refuse -----------------

{
  const secret = { authorization: `Bearer ${SECRET_KEY}` };
  const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const GETS = [
    "/api/v1/events?limit=0",
    "/api/v1/events?limit=-1",
    "/api/v1/events?limit=1001",
    "/api/v1/events?limit=abc",
    "/api/v1/events?limit=1.5",
    "/api/v1/events?limit=1&limit=2",
    "/api/v1/events?type=__proto__",
    "/api/v1/events?type=constructor",
    "/api/v1/events?type=TRACK",
    "/api/v1/events?userId=",
    "/api/v1/events?userId=a&userId=b",
    "/api/v1/events?cursor=%%%",
    "/api/v1/events?cursor=garbage",
    `/api/v1/events?cursor=${b64url([1e300, "x"])}`,
    `/api/v1/events?cursor=${b64url([8.64e15 + 1, "x"])}`,
    `/api/v1/events?cursor=${b64url([1.5, "x"])}`,
    `/api/v1/events?cursor=${b64url({ __proto__: [1, "x"] })}`,
    `/api/v1/events?cursor=${b64url([1, 2])}`,
    `/api/v1/events?cursor=${"A".repeat(4000)}`,
    "/api/v1/companies?sort=__proto__",
    "/api/v1/companies?sort=users&sort=events",
    "/api/v1/companies?limit=0",
    "/api/v1/companies?cursor=garbage",
    `/api/v1/companies?cursor=${b64url({ s: "__proto__", o: 0, sort: "users", q: null })}`,
    `/api/v1/companies?cursor=${b64url({ s: "constructor", o: -1, sort: "lastSeen", q: null })}`,
    `/api/v1/companies?cursor=${b64url({ s: "x", o: 1e308, sort: "events" })}`,
    "/api/v1/companies/%00nobody",
    "/api/v1/users/__proto__",
    "/api/v1/users/constructor",
    "/api/v1/reports/active?from=garbage&to=2024-01-01",
    "/api/v1/reports/active?from=2024-13-01&to=2024-12-31",
    "/api/v1/reports/active?from=2024-02-30&to=2024-03-01",
    "/api/v1/reports/active?from=2024-01-01&to=2023-01-01",
    "/api/v1/reports/active?from=0001-01-01&to=9999-12-31",
    "/api/v1/reports/active?from=2024-01-01&to=2024-01-31&interval=__proto__",
    "/api/v1/reports/active?from=2024-01-01&to=2024-01-31&level=constructor",
    "/api/v1/reports/active?from=2024-01-01&from=2024-01-02&to=2024-01-31",
    "/api/v1/reports/constructor",
    "/api/v1/reports/__proto__",
    "/api/v1/reports/toString",
    "/api/v1/reports/funnel",
    "/api/v1/saved-reports/nope/result",
    "/api/v1/saved-reports/__proto__/result",
    "/api/v1/deletion-requests?state=nope",
    "/api/v1/deletion-requests?state=__proto__",
  ];
  for (const path of GETS) add("query API", `GET ${path.slice(0, 70)}`, { method: "GET", path, headers: secret });
  const BODIES: [string, string, string][] = [
    ["POST", "/api/v1/reports/funnel", '{"steps":5,"from":"2024-01-01","to":"2024-01-31"}'],
    ["POST", "/api/v1/reports/funnel", '{"steps":[],"from":"2024-01-01","to":"2024-01-31"}'],
    ["POST", "/api/v1/reports/funnel", '{"steps":[1,2],"from":"2024-01-01","to":"2024-01-31"}'],
    [
      "POST",
      "/api/v1/reports/funnel",
      JSON.stringify({ steps: Array(21).fill("e"), from: "2024-01-01", to: "2024-01-31" }),
    ],
    ["POST", "/api/v1/reports/funnel", '{"steps":["a","b"],"windowDays":1e9,"from":"2024-01-01","to":"2024-01-31"}'],
    ["POST", "/api/v1/reports/funnel", '{"steps":["a","\\ud800"],"from":"2024-01-01","to":"2024-01-31"}'],
    ["POST", "/api/v1/reports/funnel", "null"],
    ["POST", "/api/v1/reports/funnel", "[]"],
    ["POST", "/api/v1/reports/funnel", '{"__proto__":{"steps":["a","b"]},"from":"2024-01-01","to":"2024-01-31"}'],
    ["POST", "/api/v1/reports/activation", '{"milestones":[null],"from":"2024-01-01","to":"2024-01-31"}'],
    ["POST", "/api/v1/reports/activation", '{"milestones":"x","from":"2024-01-01","to":"2024-01-31"}'],
    [
      "POST",
      "/api/v1/reports/activation",
      '{"milestones":[{"event":5,"minCount":-1}],"from":"2024-01-01","to":"2024-01-31"}',
    ],
    ["POST", "/api/v1/reports/active", '{"from":"2024-01-01","to":"2024-01-31"}'],
    ["PUT", "/api/v1/settings", '{"timeZone":5}'],
    ["PUT", "/api/v1/settings", '{"timeZone":"Mars/Olympus"}'],
    ["PUT", "/api/v1/settings", '{"timeZone":"__proto__"}'],
    ["PUT", "/api/v1/settings", '{"systemEvents":"Logged In"}'],
    ["PUT", "/api/v1/settings", '{"systemEvents":[1]}'],
    ["PUT", "/api/v1/settings", '{"systemEvents":["\\udc00"]}'],
    ["PUT", "/api/v1/settings", "[]"],
    ["PUT", "/api/v1/settings", '"UTC"'],
    ["PUT", "/api/v1/settings", "null"],
    ["POST", "/api/v1/saved-reports", '{"name":"","report":"active"}'],
    ["POST", "/api/v1/saved-reports", '{"name":5,"report":"active"}'],
    ["POST", "/api/v1/saved-reports", JSON.stringify({ name: "n".repeat(201), report: "active" })],
    ["POST", "/api/v1/saved-reports", '{"name":"x","report":"nope"}'],
    ["POST", "/api/v1/saved-reports", '{"name":"x","report":"constructor"}'],
    ["POST", "/api/v1/saved-reports", '{"name":"x","report":"__proto__"}'],
    ["POST", "/api/v1/saved-reports", '{"name":"x","report":"toString"}'],
    ["POST", "/api/v1/saved-reports", '{"name":"x","report":"active","params":"x"}'],
    ["POST", "/api/v1/saved-reports", '{"name":"x","report":"active","params":[]}'],
    [
      "POST",
      "/api/v1/saved-reports",
      '{"name":"\\ud800","report":"active","params":{"from":"2024-01-01","to":"2024-01-31"}}',
    ],
    ["DELETE", "/api/v1/saved-reports/nope", ""],
    ["DELETE", "/api/v1/saved-reports/__proto__", ""],
    ["POST", "/api/v1/deletion-requests", "{}"],
    ["POST", "/api/v1/deletion-requests", '{"userId":""}'],
    ["POST", "/api/v1/deletion-requests", '{"userId":5}'],
    ["POST", "/api/v1/deletion-requests", '{"userId":null}'],
    ["POST", "/api/v1/deletion-requests", '{"userId":{"$ne":""}}'],
    ["POST", "/api/v1/deletion-requests", '{"userId":["a"]}'],
    ["POST", "/api/v1/deletion-requests", '{"userId":"x\\ud800"}'],
    ["POST", "/api/v1/deletion-requests", '"someone"'],
    ["POST", "/api/v1/workspace/rotate-keys", '{"graceHours":-1}'],
    ["POST", "/api/v1/workspace/rotate-keys", '{"graceHours":"24"}'],
    ["POST", "/api/v1/workspace/rotate-keys", '{"graceHours":1e9}'],
    ["POST", "/api/v1/workspace/rotate-keys", '{"graceHours":8761}'],
  ];
  for (const [method, path, body] of BODIES) {
    add("query API", `${method} ${path} ${body.slice(0, 50)}`, { method, path, body, headers: secret });
  }
}

/** Backups need the admin token, which the server writes into its data directory when it starts. */
function backupCases(adminToken: string): Case[] {
  const headers = { authorization: `Bearer ${adminToken}`, host: "127.0.0.1", connection: "close" };
  return [5, null, "", "relative/backup.duckdb", "/", "/nonexistent-dir/deeper/backup.duckdb", "/dev/null"].map(
    (path) => ({
      category: "query API",
      name: `POST /admin/backup ${JSON.stringify(path)}`,
      bytes: requestBytes({ path: "/admin/backup", headers, body: JSON.stringify({ path }) }),
      expect: "refused" as const,
      refusedIds: [],
    }),
  );
}

// --- Authorization headers that are no key --------------------------------------------------------------

{
  const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");
  const AUTH: [string, string | null, Record<string, string>?][] = [
    ["Basic with invalid base64", "Basic !!!not-base64!!!"],
    ["Basic with an unknown key", `Basic ${b64("nobody:")}`],
    ["Basic without a token", "Basic"],
    ["Basic with two tokens", `Basic ${WRITE_KEY} extra`],
    ["Basic with a unicode key", `Basic ${b64("ключ:")}`],
    ["Basic with raw unicode", "Basic ключ-🔑"],
    ["Basic with a NUL in the key", `Basic ${b64(`${WRITE_KEY}\u0000:`)}`],
    ["Basic with the key upper-cased", `Basic ${b64(`${WRITE_KEY.toUpperCase()}:`)}`],
    ["Basic with the key cut short", `Basic ${b64(`${WRITE_KEY.slice(0, -1)}:`)}`],
    ["Basic with the secret key", `Basic ${b64(`${SECRET_KEY}:`)}`],
    ["Bearer with the secret key", `Bearer ${SECRET_KEY}`],
    ["Bearer with garbage", "Bearer garbage.garbage.garbage"],
    ["Bearer of 8 KB", `Bearer ${"x".repeat(8192)}`],
    ["Basic of 20 KB", `Basic ${"A".repeat(20_000)}`],
    ["Digest", 'Digest username="x", realm="y", nonce="z"'],
    ["a control character", "Basic a\u0001b"],
    ["a header with no scheme", WRITE_KEY.slice(3)],
    ["a cookie instead", null, { cookie: `writeKey=${WRITE_KEY}; session=admin` }],
    ["an API key header instead", null, { "x-api-key": WRITE_KEY }],
  ];
  for (const [name, authorization, headers] of AUTH) {
    const id = newId("auth");
    add(
      "authorization",
      name,
      {
        path: "/v1/track",
        body: JSON.stringify(track(id)),
        headers: { authorization, ...headers },
      },
      { refusedIds: [id] },
    );
  }
  for (const [name, writeKey] of [
    ["a number", 5],
    ["an unknown key", "wk_nobody"],
    ["the secret key", SECRET_KEY],
    ["an empty key", ""],
  ] as const) {
    const id = newId("bodykey");
    add(
      "authorization",
      `writeKey in the body: ${name}`,
      {
        path: "/v1/track",
        body: JSON.stringify(track(id, { writeKey })),
        headers: { authorization: null },
      },
      { refusedIds: [id] },
    );
  }
}

// ---------------------------------------------------------------------------------------------------------

/** Runs `fn` over `items`, `width` at a time, in order of completion. */
async function pool<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

/** What must hold of every error answer. */
function errorProblems(answer: Answer): string[] {
  const problems: string[] = [];
  if (answer.status < 400 || answer.status >= 500) problems.push(`status ${answer.status}`);
  if (typeof answer.json?.code !== "string") problems.push("no code");
  if (typeof answer.json?.message !== "string") problems.push("no message");
  return problems;
}

describe("hostile requests against a server process", () => {
  let server: ChildServer;
  let port: number;
  let dataDir: string;
  let before: WorkspaceStats;
  /** Messages the server acknowledged as stored, to compare with its counts at the end. */
  let accepted = 0;
  const refused = new Set<string>();
  const expectedStored = new Set<string>();

  async function read<T>(route: string): Promise<T> {
    const res = await fetch(`${server.url}${route}`, { headers: { authorization: `Bearer ${SECRET_KEY}` } });
    expect(res.status, route).toBe(200);
    return (await res.json()) as T;
  }

  async function send(body: unknown, path = "/v1/track"): Promise<Answer> {
    const answer = await exchange(
      port,
      requestBytes({
        path,
        headers: { authorization: basicAuth() },
        body: typeof body === "string" ? body : JSON.stringify(body),
      }),
    );
    if (answer.status === 200) accepted += Number(answer.json?.accepted ?? 0);
    return answer;
  }

  async function stored(messageId: string): Promise<Record<string, unknown> | undefined> {
    const page = await read<{ events: Record<string, unknown>[] }>(
      `/api/v1/events?messageId=${encodeURIComponent(messageId)}`,
    );
    return page.events[0];
  }

  beforeAll(async () => {
    dataDir = tempDataDir("solstice-hostile");
    port = await freePort();
    server = await spawnServer(dataDir, port, {
      SOLSTICE_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      SOLSTICE_LOG_LEVEL: "error",
    });
    before = await read<WorkspaceStats>("/api/v1/stats");
  });

  afterAll(async () => {
    if (server && server.child.exitCode === null) {
      server.child.kill("SIGTERM");
      const killer = setTimeout(() => server.child.kill("SIGKILL"), 10_000);
      await server.exited;
      clearTimeout(killer);
    }
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it("answers every case of the corpus with a JSON 4xx, in time", async () => {
    cases.push(...backupCases(fs.readFileSync(path.join(dataDir, "admin.token"), "utf8").trim()));
    const failures: string[] = [];
    const byCategory = new Map<string, number>();
    let handled = 0;
    await pool(cases, 16, async (c) => {
      byCategory.set(c.category, (byCategory.get(c.category) ?? 0) + 1);
      for (const id of c.refusedIds) refused.add(id);
      for (const id of c.storedIds ?? []) expectedStored.add(id);
      let answer: Answer;
      try {
        answer = await exchange(port, c.bytes, { deadlineMs: ANSWER_WITHIN_MS });
      } catch (err) {
        failures.push(`${c.category} / ${c.name}: ${(err as Error).message}`);
        return;
      }
      const problems: string[] = [];
      if (answer.ms > ANSWER_WITHIN_MS) problems.push(`answered in ${Math.round(answer.ms)} ms`);
      if (c.expect === "refused") {
        problems.push(...errorProblems(answer));
        if (c.names && !String(answer.json?.message).includes(c.names)) {
          problems.push(`message does not name ${c.names}`);
        }
      } else {
        const errors = answer.json?.errors as { index?: unknown; code?: unknown; message?: unknown }[] | undefined;
        if (answer.status !== 200) problems.push(`status ${answer.status}, not 200`);
        if (answer.json?.accepted !== 1) problems.push(`accepted ${String(answer.json?.accepted)}`);
        if (errors?.length !== 1 || errors[0]?.index !== 0 || typeof errors[0]?.code !== "string") {
          problems.push(`errors ${JSON.stringify(errors)}`);
        } else if (c.names && !String(errors[0]?.message).includes(c.names)) {
          problems.push(`error does not name ${c.names}`);
        }
        if (answer.status === 200) accepted += Number(answer.json?.accepted ?? 0);
      }
      if (problems.length > 0) {
        failures.push(
          `${c.category} / ${c.name}: ${problems.join(", ")}: ${answer.status} ${answer.text.slice(0, 200)}`,
        );
      } else {
        handled++;
      }
    });
    const summary = [...byCategory].map(([category, n]) => `${category} ${n}`).join(", ");
    console.log(`hostile corpus: ${cases.length} cases tried, ${handled} handled (${summary})`);
    expect(cases.length).toBeGreaterThanOrEqual(200);
    expect(failures).toEqual([]);
    expect(server.child.exitCode).toBeNull();
  }, 40_000);

  it("keeps __proto__, constructor and prototype keys as data, everywhere", async () => {
    const ids = Array.from({ length: 4 }, () => newId("proto"));
    const hostileObject =
      '{"__proto__":{"polluted":"yes","name":"Injected"},"constructor":{"prototype":{"polluted":"yes"}},"prototype":{"polluted":"yes"}}';
    // As JSON text: JSON.stringify of an object literal would set the prototype, not send the key.
    const single = `{"userId":"${RUN}-proto","event":"Proto Event","messageId":"${ids[0]}","__proto__":{"event":"Injected","userId":"admin"},"constructor":{"prototype":{"event":"Injected"}},"properties":${hostileObject},"context":${hostileObject},"integrations":${hostileObject}}`;
    expect((await send(single)).status).toBe(200);
    const batch = `{"__proto__":{"batch":[]},"context":{"__proto__":{"groupId":"injected-group"}},"integrations":${hostileObject},"batch":[{"type":"identify","userId":"${RUN}-proto","messageId":"${ids[1]}","traits":${hostileObject}},{"type":"group","userId":"${RUN}-proto","groupId":"${RUN}-proto-co","messageId":"${ids[2]}","traits":${hostileObject}},{"type":"track","userId":"${RUN}-proto","event":"In Batch","messageId":"${ids[3]}","__proto__":{"type":"alias"}}]}`;
    const answer = await send(batch, "/v1/batch");
    expect(answer.json).toMatchObject({ status: 200, accepted: 3, errors: [] });
    for (const id of ids) expectedStored.add(id);

    const first = await stored(ids[0] as string);
    expect(first).toMatchObject({ type: "track", event: "Proto Event", userId: `${RUN}-proto` });
    for (const field of ["properties", "context", "integrations"]) {
      expect(JSON.stringify(first?.[field])).toBe(hostileObject);
    }
    const identify = await stored(ids[1] as string);
    expect(JSON.stringify(identify?.traits)).toBe(hostileObject);
    // The batch context's __proto__ key is kept as a key of each message's context, never its groupId.
    expect(JSON.stringify(identify?.context)).toBe('{"__proto__":{"groupId":"injected-group"}}');
    expect((await stored(ids[3] as string))?.type).toBe("track");
    const inGroup = await read<{ events: unknown[] }>("/api/v1/events?groupId=injected-group");
    expect(inGroup.events).toEqual([]);

    // Profiles are built key by key from stored traits: the keys come back as keys.
    const user = await read<Record<string, Record<string, unknown>>>(`/api/v1/users/${RUN}-proto`);
    expect(Object.keys(user.traits ?? {}).sort()).toEqual(["__proto__", "constructor", "prototype"]);
    expect(Object.keys(user.traitsSetBy ?? {}).sort()).toEqual(["__proto__", "constructor", "prototype"]);
    expect(user.name).toBeNull();
    const company = await read<Record<string, unknown>>(`/api/v1/companies/${RUN}-proto-co`);
    expect(company.name).toBeNull();
    expect(Object.keys(company.traitsSetBy as object).sort()).toEqual(["__proto__", "constructor", "prototype"]);

    // Settings take their values from the body's own keys only.
    const put = await fetch(`${server.url}/api/v1/settings`, {
      method: "PUT",
      headers: { authorization: `Bearer ${SECRET_KEY}`, "content-type": "application/json" },
      body: '{"__proto__":{"timeZone":"Mars/Olympus","systemEvents":["Injected"]}}',
    });
    expect(put.status).toBe(200);
    expect(await read("/api/v1/settings")).toEqual({ timeZone: "UTC", systemEvents: [] });
    const stats = await read<Record<string, unknown>>("/api/v1/stats");
    expect(Object.keys(stats).sort()).toEqual(["duplicates", "events", "messages"]);
  });

  it("stores NUL and well-formed unicode exactly, beside messages refused for unpaired surrogates", async () => {
    const marker = `${RUN}-nul`;
    const nulUser = `${marker}-user\u0000admin`;
    const [a, b, c, neighbour] = [newId("nul\u0000id"), newId("nul-traits"), newId("astral"), newId("neighbour")];
    const [lone1, lone2] = [newId("lone"), newId("lone")];
    const properties = {
      "key\u0000with-nul": "value\u0000with-nul",
      nested: { "\u0000": ["\u0000", "\ud83d\ude00"] },
    };
    const batch = {
      batch: [
        { type: "track", userId: nulUser, event: "Event\u0000Name", messageId: a, properties },
        {
          type: "identify",
          userId: nulUser,
          messageId: b,
          traits: { "trait\u0000key": "trait\u0000value" },
          context: { note: "\u0000" },
        },
        { type: "track", userId: nulUser, event: "Lone", messageId: lone1, properties: { "lone-\ud800-key": 1 } },
        { type: "track", userId: nulUser, event: "Lone", messageId: lone2, context: { note: ["\udc00"] } },
        { type: "track", userId: `${marker}-😀`, event: "Emoji 🚀", messageId: c, properties: { é: "ü" } },
        { type: "track", userId: `${marker}-plain`, event: "Plain", messageId: neighbour, properties: { n: 1 } },
      ],
    };
    const answer = await send(batch, "/v1/batch");
    expect(answer.json).toMatchObject({
      status: 200,
      accepted: 4,
      errors: [
        { index: 2, code: "invalid_message", message: expect.stringContaining("/batch/2/properties: keys must be") },
        { index: 3, code: "invalid_message", message: expect.stringContaining("/batch/3/context/note/0: must be") },
      ],
    });
    for (const id of [a, b, c, neighbour]) expectedStored.add(id);
    refused.add(lone1);
    refused.add(lone2);

    const first = await stored(a);
    expect(first).toMatchObject({ userId: nulUser, event: "Event\u0000Name", messageId: a });
    expect(first?.properties).toEqual(properties);
    const second = await stored(b);
    expect(second?.traits).toEqual({ "trait\u0000key": "trait\u0000value" });
    expect(second?.context).toEqual({ note: "\u0000" });
    expect(await stored(c)).toMatchObject({ userId: `${marker}-😀`, event: "Emoji 🚀", properties: { é: "ü" } });
    expect(await stored(neighbour)).toMatchObject({ userId: `${marker}-plain`, event: "Plain", properties: { n: 1 } });

    // Filters and profiles find the id with its NUL, and only it.
    const byUser = await read<{ events: { messageId: string }[] }>(
      `/api/v1/events?userId=${encodeURIComponent(nulUser)}`,
    );
    expect(byUser.events.map((e) => e.messageId).sort()).toEqual([a, b].sort());
    const cut = await read<{ events: unknown[] }>(`/api/v1/events?userId=${encodeURIComponent(`${marker}-user`)}`);
    expect(cut.events).toEqual([]);
    const profile = await read<Record<string, unknown>>(`/api/v1/users/${encodeURIComponent(nulUser)}`);
    expect(profile).toMatchObject({ id: nulUser, traits: { "trait\u0000key": "trait\u0000value" } });
  });

  it("cuts off a client that sends a valid body one byte every 200 ms", async () => {
    const [slow, headersOnly] = [newId("drip"), newId("slowloris")];
    refused.add(slow);
    refused.add(headersOnly);
    const body = requestBytes({
      path: "/v1/track",
      headers: { authorization: basicAuth() },
      body: JSON.stringify(track(slow)),
    });
    const split = body.indexOf("\r\n\r\n") + 4;
    const head = requestBytes({
      path: "/v1/track",
      headers: { authorization: basicAuth() },
      body: JSON.stringify(track(headersOnly)),
    });
    const bound = REQUEST_TIMEOUT_MS + ANSWER_WITHIN_MS;
    const [dripped, loris] = await Promise.all([
      // The headers at once, then the body byte by byte.
      exchange(port, [body.subarray(0, split), ...bytewise(body.subarray(split))], { gapMs: 200, deadlineMs: bound }),
      // Headers byte by byte: they never end in time.
      exchange(port, bytewise(head), { gapMs: 200, deadlineMs: bound }),
    ]);
    for (const answer of [dripped, loris]) {
      expect(answer.status).toBe(408);
      expect(answer.json).toMatchObject({ code: "request_timeout", message: expect.any(String) });
      expect(answer.ms).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 100);
      expect(answer.ms).toBeLessThan(bound);
    }
  }, 20_000);

  it("stores a valid body that arrives slowly but within the timeout", async () => {
    const id = newId("drip-ok");
    const bytes = requestBytes({
      path: "/v1/track",
      headers: { authorization: basicAuth() },
      body: JSON.stringify({ userId: "u", event: "e", messageId: id }),
    });
    const split = bytes.indexOf("\r\n\r\n") + 4;
    const body = bytes.subarray(split);
    const gapMs = Math.floor((REQUEST_TIMEOUT_MS * 0.5) / body.length);
    const answer = await exchange(port, [bytes.subarray(0, split), ...bytewise(body)], { gapMs });
    expect(answer.json).toMatchObject({ status: 200, accepted: 1 });
    accepted += 1;
    expectedStored.add(id);
  }, 10_000);

  it("answers promptly with 300 idle connections open", async () => {
    const idle = await Promise.all(
      Array.from(
        { length: 300 },
        () =>
          new Promise<net.Socket>((resolve, reject) => {
            const socket = net.connect(port, "127.0.0.1", () => resolve(socket));
            socket.on("error", reject);
          }),
      ),
    );
    try {
      const ids = Array.from({ length: 10 }, () => newId("with-idle"));
      const answers = await Promise.all(ids.map((id) => send(track(id))));
      for (const answer of answers) {
        expect(answer.json).toMatchObject({ status: 200, accepted: 1 });
        expect(answer.ms).toBeLessThan(1000);
      }
      for (const id of ids) expectedStored.add(id);
      expect(idle.every((socket) => !socket.destroyed)).toBe(true);
    } finally {
      for (const socket of idle) socket.destroy();
    }
  }, 20_000);

  it("is still alive afterwards, and stored nothing from a refused request", async () => {
    expect(server.child.exitCode).toBeNull();
    expect(server.child.signalCode).toBeNull();
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    const id = newId("after");
    const answer = await send(track(id));
    expect(answer.json).toMatchObject({ status: 200, accepted: 1 });
    expectedStored.add(id);

    const ids = new Set<string>();
    let cursor: string | null = null;
    do {
      const page: { events: { messageId: string }[]; nextCursor: string | null } = await read(
        `/api/v1/events?limit=1000${cursor ? `&cursor=${cursor}` : ""}`,
      );
      for (const e of page.events) ids.add(e.messageId);
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect([...refused].filter((id) => ids.has(id))).toEqual([]);
    expect([...expectedStored].filter((id) => !ids.has(id))).toEqual([]);
    const after = await read<WorkspaceStats>("/api/v1/stats");
    expect(after.messages - before.messages).toBe(accepted);
    expect(after.duplicates).toBe(before.duplicates);
  });
});
