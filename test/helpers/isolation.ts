import fs from "node:fs";
import path from "node:path";
import { expect } from "vitest";
import { REPORTS } from "../../src/reports/definitions.js";
import type { WorkspaceRecord } from "../../src/storage/types.js";
import { basicAuth, post, SECRET_KEY, type TestServer, WRITE_KEY } from "./server.js";
import { type RawResponse, send, uid } from "./tracking.js";
import { startWithWorkspaces } from "./workspaces.js";

/**
 * Two workspaces on one server, A (the default workspace, the test keys) and B, each holding data
 * whose ids, names and values appear nowhere else; and every read and admin route of the query API,
 * as B would ask about its own data or about A's ids.
 */

/** A query API request with a JSON body, if any, and nothing else added. */
export function call(
  url: string,
  method: string,
  route: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<RawResponse> {
  return send(url, route, {
    method,
    headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

/** The list under `key` of an answer; empty when there is none. */
export function items<T>(sent: RawResponse, key: string): T[] {
  const value = sent.json?.[key];
  return Array.isArray(value) ? (value as T[]) : [];
}

export const today = new Date().toISOString().slice(0, 10);
export const monthAgo = new Date(Date.now() - 30 * 86_400_000).toISOString().slice(0, 10);

/** One workspace's data: ids, names and values that appear nowhere else. */
export function dataset(label: string) {
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
export type Dataset = ReturnType<typeof dataset>;

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

export interface Route {
  method: string;
  route: string;
  body?: unknown;
  /** The status B's own secret key gets. */
  beta: number;
}

export interface TwoWorkspaces {
  t: TestServer;
  beta: WorkspaceRecord;
  alphaId: string;
  adminToken: string;
  A: Dataset;
  B: Dataset;
  /** The same messageId sent to both workspaces: de-duplication is per workspace. */
  shared: string;
  alphaSavedId: string;
  alphaDeletionId: string;
  /** The things of A's that `text` shows: none may show in an answer to anyone but A. */
  leaked(text: string): string[];
  /**
   * Every read and admin route, as workspace B would ask about its own data or A's ids, with the
   * status B's own secret key gets: A's resources are not found, the rest answers for B.
   */
  routes(): Route[];
}

/**
 * Starts the server with A and B, sends each its data, and gives A a saved report, a deletion request
 * and settings. `now` is the server's clock.
 */
export async function startTwoWorkspaces(options: { now?: () => number } = {}): Promise<TwoWorkspaces> {
  const started = await startWithWorkspaces(["beta"], options);
  const t = started.t;
  const beta = started.workspaces[0] as WorkspaceRecord;
  const alphaId = (await t.server.storage.listWorkspaces()).find((w) => w.name === "default")?.id as string;
  const adminToken = fs.readFileSync(path.join(t.dataDir, "admin.token"), "utf8").trim();
  const A = dataset("alpha");
  const B = dataset("beta");
  const shared = uid("shared");

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
  const alphaSavedId = saved.json?.id as string;
  const deletion = await call(t.url, "POST", "/api/v1/deletion-requests", alpha, { userId: A.deletedUser });
  expect(deletion.status).toBe(202);
  const alphaDeletionId = deletion.json?.id as string;
  const settings = await call(t.url, "PUT", "/api/v1/settings", alpha, { systemEvents: [A.systemEvent] });
  expect(settings.status).toBe(200);

  const markers = [
    ...Object.values(A).flat(),
    WRITE_KEY,
    SECRET_KEY,
    alphaId,
    alphaSavedId,
    alphaDeletionId,
    adminToken,
  ].filter((m) => m !== "");

  function routes(): Route[] {
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

  return {
    t,
    beta,
    alphaId,
    adminToken,
    A,
    B,
    shared,
    alphaSavedId,
    alphaDeletionId,
    leaked: (text) => markers.filter((m) => text.includes(m)),
    routes,
  };
}

/** Whatever of A's an answer to B shows, but for the ids B's request itself named (echoed in "no user ..."). */
export function leakedBeyondAsked(f: TwoWorkspaces, r: Route, answer: RawResponse): string[] {
  const asked = decodeURIComponent(r.route) + JSON.stringify(r.body ?? null);
  return f.leaked(answer.text).filter((m) => !asked.includes(m));
}

/** Stops the server and removes its data. */
export async function stopTwoWorkspaces(f: TwoWorkspaces | undefined): Promise<void> {
  await f?.t.close();
  if (f) fs.rmSync(f.t.dataDir, { recursive: true, force: true });
}
