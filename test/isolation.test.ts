import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sessionCookieName } from "../src/server/sessions.js";
import type { WorkspaceRecord, WorkspaceStats } from "../src/storage/types.js";
import {
  call,
  type Dataset,
  items,
  leakedBeyondAsked,
  monthAgo,
  startTwoWorkspaces,
  stopTwoWorkspaces,
  type TwoWorkspaces,
  today,
} from "./helpers/isolation.js";
import { basicAuth, post, SECRET_KEY, type TestServer, WRITE_KEY } from "./helpers/server.js";
import { uid } from "./helpers/tracking.js";

/**
 * Two workspaces on one server. Every read and admin route is tried with every credential that is
 * not workspace A's secret key: each is refused, or (workspace B's own secret key) answers for B
 * alone, and no answer carries anything of A's.
 */

describe("workspace isolation", () => {
  let f: TwoWorkspaces;
  let t: TestServer;
  let beta: WorkspaceRecord;
  let alphaId: string;
  let adminToken: string;
  let A: Dataset;
  let B: Dataset;
  let shared: string;
  let alphaSavedId: string;
  let alphaDeletionId: string;
  const leaked = (text: string) => f.leaked(text);
  const routes = () => f.routes();

  beforeAll(async () => {
    f = await startTwoWorkspaces();
    ({ t, beta, alphaId, adminToken, A, B, shared, alphaSavedId, alphaDeletionId } = f);
  });

  afterAll(() => stopTwoWorkspaces(f));

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
    ["A's secret key as the session cookie", () => ({ cookie: `${sessionCookieName(false)}=${SECRET_KEY}` })],
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
      const found = leakedBeyondAsked(f, r, res);
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
