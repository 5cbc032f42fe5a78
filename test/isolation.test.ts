import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPORTS } from "../src/reports/definitions.js";
import type { WorkspaceRecord, WorkspaceStats } from "../src/storage/types.js";
import { basicAuth, post, SECRET_KEY, type TestServer, WRITE_KEY } from "./helpers/server.js";
import { send, uid } from "./helpers/tracking.js";
import { startWithWorkspaces } from "./helpers/workspaces.js";

/**
 * Two workspaces on one server. Every read and admin route is tried with every credential that is
 * not workspace A's secret key: each is refused, or (workspace B's own secret key) answers for B
 * alone, and no answer carries anything of A's.
 */

interface Sent {
  status: number;
  text: string;
  json: Record<string, unknown> | undefined;
}

/** Any request with the given credentials; a body is sent as JSON. */
function call(url: string, method: string, route: string, headers: Record<string, string>, body?: unknown) {
  return send(url, route, {
    method,
    headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

/** The list under `key` of an answer; empty when there is none. */
function items<T>(sent: Sent, key: string): T[] {
  const value = sent.json?.[key];
  return Array.isArray(value) ? (value as T[]) : [];
}

const today = new Date().toISOString().slice(0, 10);
const monthAgo = new Date(Date.now() - 30 * 86_400_000).toISOString().slice(0, 10);

/** One workspace's data: ids, names and values that appear nowhere else. */
function dataset(label: string) {
  const u = uid(label);
  return {
    user: `${u}-user`,
    anonymous: `${u}-anon`,
    email: `${u}@example.com`,
    event: `${u} Secret Event`,
    otherEvent: `${u} Other Event`,
    group: `${u}-company`,
    company: `${u} Corp`,
    trait: `${u}-trait-value`,
    property: `${u}-property-value`,
    savedName: `${u} Saved Report`,
    systemEvent: `${u} System Event`,
    deletedUser: `${u}-gone`,
    messageIds: [`${u}-m1`, `${u}-m2`, `${u}-m3`, `${u}-m4`],
  };
}
type Dataset = ReturnType<typeof dataset>;

function batchOf(d: Dataset, sharedMessageId: string) {
  return {
    batch: [
      {
        type: "identify",
        userId: d.user,
        anonymousId: d.anonymous,
        messageId: d.messageIds[0],
        traits: { email: d.email, plan: d.trait },
      },
      { type: "group", userId: d.user, groupId: d.group, messageId: d.messageIds[1], traits: { name: d.company } },
      {
        type: "track",
        userId: d.user,
        event: d.event,
        messageId: d.messageIds[2],
        properties: { secret: d.property },
        context: { groupId: d.group },
      },
      { type: "track", userId: d.user, event: d.otherEvent, messageId: d.messageIds[3] },
      { type: "track", anonymousId: d.anonymous, event: d.event, messageId: sharedMessageId },
    ],
  };
}

describe("workspace isolation", () => {
  let t: TestServer;
  let beta: WorkspaceRecord;
  let alphaId: string;
  let adminToken: string;
  const A = dataset("alpha");
  const B = dataset("beta");
  /** The same messageId sent to both workspaces: de-duplication is per workspace. */
  const shared = uid("shared");
  let alphaSavedId: string;
  let alphaDeletionId: string;

  /** Everything of A's that must never show in an answer to anyone but A. */
  const alphaMarkers = () => [
    ...Object.values(A).flat(),
    WRITE_KEY,
    SECRET_KEY,
    alphaId,
    alphaSavedId,
    alphaDeletionId,
    adminToken,
  ];
  const leaked = (text: string) => alphaMarkers().filter((m) => m !== "" && text.includes(m));

  beforeAll(async () => {
    const started = await startWithWorkspaces(["beta"]);
    t = started.t;
    beta = started.workspaces[0] as WorkspaceRecord;
    alphaId = (await t.server.storage.listWorkspaces()).find((w) => w.name === "default")?.id as string;
    adminToken = fs.readFileSync(path.join(t.dataDir, "admin.token"), "utf8").trim();

    const toA = await post(t.url, "/v1/batch", batchOf(A, shared));
    expect(toA.body).toMatchObject({ accepted: 5, duplicates: 0 });
    const toB = await post(t.url, "/v1/batch", batchOf(B, shared), { authorization: basicAuth(beta.writeKey) });
    expect(toB.body).toMatchObject({ accepted: 5, duplicates: 0 });

    const alpha = { authorization: `Bearer ${SECRET_KEY}` };
    const saved = await call(t.url, "POST", "/api/v1/saved-reports", alpha, {
      name: A.savedName,
      report: "active",
      params: { from: monthAgo, to: today },
    });
    expect(saved.status).toBe(201);
    alphaSavedId = saved.json?.id as string;
    const deletion = await call(t.url, "POST", "/api/v1/deletion-requests", alpha, { userId: A.deletedUser });
    expect(deletion.status).toBe(202);
    alphaDeletionId = deletion.json?.id as string;
    const settings = await call(t.url, "PUT", "/api/v1/settings", alpha, { systemEvents: [A.systemEvent] });
    expect(settings.status).toBe(200);
  });

  afterAll(async () => {
    await t?.close();
    if (t) fs.rmSync(t.dataDir, { recursive: true, force: true });
  });

  /**
   * Every read and admin route, as workspace B would ask about its own data or A's ids, with the status
   * B's own secret key gets: A's resources are not found, the rest answers for B.
   */
  function routes(): { method: string; route: string; body?: unknown; beta: number }[] {
    const reportParams = {
      from: monthAgo,
      to: today,
      event: B.event,
      steps: [B.event, B.otherEvent],
      milestones: [{ event: B.event, minCount: 1 }],
    };
    const query = new URLSearchParams({ from: monthAgo, to: today, event: B.event }).toString();
    const reports = Object.entries(REPORTS).flatMap(([name, report]) =>
      (["GET", "POST"] as const).map((method) => ({
        method,
        route: method === "GET" ? `/api/v1/reports/${name}?${query}` : `/api/v1/reports/${name}`,
        ...(method === "POST" ? { body: reportParams } : {}),
        beta: report.method === method ? 200 : 405,
      })),
    );
    const id = encodeURIComponent;
    return [
      { method: "GET", route: "/api/v1/events", beta: 200 },
      { method: "GET", route: "/api/v1/events?format=csv", beta: 200 },
      { method: "GET", route: `/api/v1/events?userId=${id(A.user)}`, beta: 200 },
      { method: "GET", route: `/api/v1/events?anonymousId=${id(A.anonymous)}`, beta: 200 },
      { method: "GET", route: `/api/v1/events?groupId=${id(A.group)}`, beta: 200 },
      { method: "GET", route: `/api/v1/events?event=${id(A.event)}`, beta: 200 },
      { method: "GET", route: `/api/v1/events?messageId=${id(A.messageIds[2] as string)}`, beta: 200 },
      { method: "GET", route: "/api/v1/stats", beta: 200 },
      { method: "GET", route: `/api/v1/users/${id(A.user)}`, beta: 404 },
      { method: "GET", route: `/api/v1/users/${id(A.anonymous)}`, beta: 404 },
      { method: "GET", route: `/api/v1/users/${id(A.user)}?format=csv`, beta: 404 },
      { method: "GET", route: "/api/v1/companies", beta: 200 },
      { method: "GET", route: "/api/v1/companies?format=csv", beta: 200 },
      { method: "GET", route: `/api/v1/companies?q=${id(A.company)}`, beta: 200 },
      { method: "GET", route: `/api/v1/companies/${id(A.group)}`, beta: 404 },
      ...reports,
      { method: "GET", route: "/api/v1/settings", beta: 200 },
      { method: "PUT", route: "/api/v1/settings", body: { systemEvents: [B.systemEvent] }, beta: 200 },
      { method: "GET", route: "/api/v1/saved-reports", beta: 200 },
      { method: "GET", route: "/api/v1/saved-reports?format=csv", beta: 200 },
      {
        method: "POST",
        route: "/api/v1/saved-reports",
        body: { name: B.savedName, report: "active", params: { from: monthAgo, to: today } },
        beta: 201,
      },
      { method: "GET", route: `/api/v1/saved-reports/${alphaSavedId}/result`, beta: 404 },
      { method: "DELETE", route: `/api/v1/saved-reports/${alphaSavedId}`, beta: 404 },
      { method: "GET", route: "/api/v1/deletion-requests", beta: 200 },
      { method: "POST", route: "/api/v1/deletion-requests", body: { userId: A.user }, beta: 202 },
    ];
  }

  /** Credentials that read nothing: each must be refused on every route. */
  const REFUSED: [string, () => Record<string, string>][] = [
    ["A's write key as Basic", () => ({ authorization: basicAuth(WRITE_KEY) })],
    ["A's write key as Bearer", () => ({ authorization: `Bearer ${WRITE_KEY}` })],
    ["B's write key as Bearer", () => ({ authorization: `Bearer ${beta.writeKey}` })],
    ["no key", () => ({})],
    [
      "a forged cookie",
      () => ({ cookie: `session=${SECRET_KEY}; secretKey=${SECRET_KEY}; workspace=${alphaId}; admin=true` }),
    ],
    ["a garbage bearer", () => ({ authorization: "Bearer garbage-token-0123456789" })],
    ["a bearer of 8 KB", () => ({ authorization: `Bearer ${"s".repeat(8192)}` })],
    ["A's secret key as Basic", () => ({ authorization: basicAuth(SECRET_KEY) })],
    ["A's secret key with no scheme", () => ({ authorization: SECRET_KEY })],
    ["A's secret key twice", () => ({ authorization: `Bearer ${SECRET_KEY} ${SECRET_KEY}` })],
    ["A's secret key cut short", () => ({ authorization: `Bearer ${SECRET_KEY.slice(0, -1)}` })],
    ["A's secret key in another header", () => ({ "x-api-key": SECRET_KEY, "x-secret-key": SECRET_KEY })],
    ["the admin token", () => ({ authorization: `Bearer ${adminToken}` })],
  ];

  it("refuses every credential that is not a secret key, on every route, leaking nothing", async () => {
    const problems: string[] = [];
    let tried = 0;
    const all = [
      ...routes(),
      { method: "POST", route: "/api/v1/workspace/rotate-keys", body: {}, beta: 200 },
      { method: "POST", route: "/admin/backup", body: { path: path.join(t.dataDir, "never.duckdb") }, beta: 401 },
    ];
    for (const [name, headers] of REFUSED) {
      for (const r of all) {
        // The admin token is the backup's own credential.
        if (name === "the admin token" && r.route === "/admin/backup") continue;
        tried++;
        const res = await call(t.url, r.method, r.route, headers(), r.body);
        const where = `${name}: ${r.method} ${r.route.slice(0, 60)}`;
        if (res.status !== 401 && res.status !== 404) problems.push(`${where}: status ${res.status}`);
        if (typeof res.json?.code !== "string" || typeof res.json?.message !== "string") {
          problems.push(`${where}: not a JSON error: ${res.text.slice(0, 100)}`);
        }
        const found = leaked(res.text);
        if (found.length > 0) problems.push(`${where}: leaks ${found.join(", ")}`);
      }
    }
    expect(problems).toEqual([]);
    expect(tried).toBeGreaterThan(400);
    expect(fs.existsSync(path.join(t.dataDir, "never.duckdb"))).toBe(false);
    // The check can see A's data where it is: A's own key reads it.
    const own = await call(t.url, "GET", "/api/v1/events", { authorization: `Bearer ${SECRET_KEY}` });
    expect(leaked(own.text)).toEqual(expect.arrayContaining([A.user, A.event, A.trait, A.property]));
  });

  it("answers B's secret key for B alone, on every route, and finds none of A's ids", async () => {
    const beta = { authorization: `Bearer ${betaSecret()}` };
    const problems: string[] = [];
    for (const r of routes()) {
      const res = await call(t.url, r.method, r.route, beta, r.body);
      const where = `${r.method} ${r.route.slice(0, 60)}`;
      // An id the request names may come back in its answer ("no user with userId ..."): that is no leak.
      const asked = decodeURIComponent(r.route) + JSON.stringify(r.body ?? null);
      const found = leaked(res.text).filter((m) => !asked.includes(m));
      if (found.length > 0) problems.push(`${where}: leaks ${found.join(", ")}`);
      if (res.status !== r.beta)
        problems.push(`${where}: status ${res.status}, not ${r.beta}: ${res.text.slice(0, 120)}`);
    }
    expect(problems).toEqual([]);

    // B's reads hold B's data, every message of it, and nothing else.
    const events = await call(t.url, "GET", "/api/v1/events", beta);
    const rows = events.json?.events as { messageId: string; userId: string | null }[];
    expect(rows.map((e) => e.messageId).sort()).toEqual([...B.messageIds, shared].sort());
    const stats = (await call(t.url, "GET", "/api/v1/stats", beta)).json as unknown as WorkspaceStats;
    expect(stats).toEqual({ messages: 5, events: 3, duplicates: 0 });
    expect((await call(t.url, "GET", `/api/v1/users/${encodeURIComponent(B.user)}`, beta)).json).toMatchObject({
      id: B.user,
      email: B.email,
      traits: { plan: B.trait },
    });
    const companies = (await call(t.url, "GET", "/api/v1/companies", beta)).json?.companies as { id: string }[];
    expect(companies.map((c) => c.id)).toEqual([B.group]);
    const funnel = await call(t.url, "POST", "/api/v1/reports/funnel", beta, {
      from: monthAgo,
      to: today,
      steps: [B.event, B.otherEvent],
    });
    expect(funnel.status).toBe(200);
    expect(items<{ event: string }>(funnel, "steps").map((s) => s.event)).toEqual([B.event, B.otherEvent]);
  });

  it("left A's data, settings, saved reports and keys as they were", async () => {
    // B asked for A's user to be deleted: once its request has run, in B, A's user is still there.
    const beta = { authorization: `Bearer ${betaSecret()}` };
    const deadline = Date.now() + 5000;
    for (;;) {
      const list = (await call(t.url, "GET", "/api/v1/deletion-requests", beta)).json?.deletionRequests as {
        state: string;
      }[];
      expect(list.length).toBe(1);
      if (list.every((d) => d.state === "finished") || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const alpha = { authorization: `Bearer ${SECRET_KEY}` };
    const events = await call(t.url, "GET", "/api/v1/events", alpha);
    expect(
      items<{ messageId: string }>(events, "events")
        .map((e) => e.messageId)
        .sort(),
    ).toEqual([...A.messageIds, shared].sort());
    expect((await call(t.url, "GET", "/api/v1/stats", alpha)).json).toEqual({ messages: 5, events: 3, duplicates: 0 });
    expect((await call(t.url, "GET", `/api/v1/users/${encodeURIComponent(A.user)}`, alpha)).status).toBe(200);
    expect((await call(t.url, "GET", "/api/v1/settings", alpha)).json).toMatchObject({ systemEvents: [A.systemEvent] });
    const saved = (await call(t.url, "GET", "/api/v1/saved-reports", alpha)).json?.savedReports as { id: string }[];
    expect(saved.map((s) => s.id)).toEqual([alphaSavedId]);
    const deletions = (await call(t.url, "GET", "/api/v1/deletion-requests", alpha)).json?.deletionRequests as {
      id: string;
    }[];
    expect(deletions.map((d) => d.id)).toEqual([alphaDeletionId]);
    // A's write key still writes to A, and only there.
    const more = await post(t.url, "/v1/track", { userId: A.user, event: A.event, messageId: uid("alpha-more") });
    expect(more.body).toMatchObject({ accepted: 1 });
  });

  it("keeps a secret key from writing, and B's rotation from touching A's keys", async () => {
    const asWrite = await post(
      t.url,
      "/v1/track",
      { userId: "x", event: "y" },
      { authorization: basicAuth(SECRET_KEY) },
    );
    expect(asWrite.status).toBe(401);
    const validate = await call(t.url, "GET", "/api/validate-write-key", { authorization: `Bearer ${betaSecret()}` });
    expect(validate.status).toBe(401);

    const rotated = await call(
      t.url,
      "POST",
      "/api/v1/workspace/rotate-keys",
      {
        authorization: `Bearer ${betaSecret()}`,
      },
      { graceHours: 0 },
    );
    expect(rotated.status).toBe(200);
    expect(leaked(rotated.text)).toEqual([]);
    expect(rotated.json?.writeKey).not.toBe(beta.writeKey);
    // A's keys are untouched; B's old ones stop at once.
    expect((await call(t.url, "GET", "/api/v1/stats", { authorization: `Bearer ${SECRET_KEY}` })).status).toBe(200);
    expect((await call(t.url, "GET", "/api/v1/stats", { authorization: `Bearer ${beta.secretKey}` })).status).toBe(401);
    const oldWrite = await post(
      t.url,
      "/v1/track",
      { userId: "x", event: "y" },
      { authorization: basicAuth(beta.writeKey) },
    );
    expect(oldWrite.status).toBe(401);
    const newSecret = rotated.json?.secretKey as string;
    expect((await call(t.url, "GET", "/api/v1/stats", { authorization: `Bearer ${newSecret}` })).json).toMatchObject({
      messages: 5,
    });
  });

  function betaSecret(): string {
    return beta.secretKey;
  }
});
