import { createHash, randomBytes, randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config/index.js";
import { WORKSPACE_HEADER } from "../src/server/auth.js";
import { cookieValue, sessionCookieName } from "../src/server/sessions.js";
import { DATABASE_FILE } from "../src/storage/duckdb/engine.js";
import type { WorkspaceRecord } from "../src/storage/types.js";
import {
  call,
  items,
  leakedBeyondAsked,
  type Route,
  startTwoWorkspaces,
  stopTwoWorkspaces,
  type TwoWorkspaces,
} from "./helpers/isolation.js";
import { post, SECRET_KEY, startTestServer, type TestServer } from "./helpers/server.js";
import type { RawResponse } from "./helpers/tracking.js";
import { startWithWorkspaces } from "./helpers/workspaces.js";

/**
 * Dashboard sessions on the two workspaces of the isolation test (A, the default workspace, and B),
 * with B's session as the one asking: it reads what B's own secret key reads, and A's workspace through
 * it is not found, whether named by parameter or header. Forged, expired and revoked cookies open nothing.
 */

const DAY_MS = 86_400_000;
const COOKIE = sessionCookieName(false);

/** The Set-Cookie of an answer: the cookie to send back, the token, and the attributes. */
function setCookieOf(res: RawResponse) {
  const header = res.headers.get("set-cookie") ?? "";
  const [pair = "", ...attributes] = header.split(";").map((part) => part.trim());
  const eq = pair.indexOf("=");
  return { header, name: pair.slice(0, eq), token: pair.slice(eq + 1), cookie: pair, attributes };
}

/** A route with one more query parameter. */
function withParam(route: string, name: string, value: string): string {
  return `${route}${route.includes("?") ? "&" : "?"}${name}=${encodeURIComponent(value)}`;
}

/** Logs in with a secret key, carrying a session cookie when given. */
async function login(url: string, secretKey: unknown, cookie?: string) {
  const res = await call(url, "POST", "/api/v1/sessions", cookie === undefined ? {} : { cookie }, { secretKey });
  return { res, ...setCookieOf(res) };
}

describe("dashboard sessions", () => {
  let f: TwoWorkspaces;
  let beta: WorkspaceRecord;
  /** Added to the server's clock. */
  let clockOffset = 0;

  beforeAll(async () => {
    f = await startTwoWorkspaces({ now: () => Date.now() + clockOffset });
    beta = f.beta;
  });

  afterAll(() => stopTwoWorkspaces(f));

  /** The rotation route, which the shared list leaves out: its answer holds new keys. */
  const rotation: Route = {
    method: "POST",
    route: "/api/v1/workspace/rotate-keys",
    body: { graceHours: 0 },
    beta: 200,
  };

  it("logs in with a secret key: 201, the workspace, and an opaque HttpOnly SameSite=Strict cookie", async () => {
    const before = Date.now();
    const first = await login(f.t.url, beta.secretKey);
    expect(first.res.status).toBe(201);
    expect(first.res.json?.workspaces).toEqual([{ id: beta.id, name: "beta" }]);
    const expiresAt = Date.parse(first.res.json?.expiresAt as string);
    expect(expiresAt).toBeGreaterThanOrEqual(before + 7 * DAY_MS - 1000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 7 * DAY_MS + 1000);

    expect(first.name).toBe("solstice_session");
    // 43 base64url characters: 256 random bits.
    expect(first.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(first.attributes.sort()).toEqual(["HttpOnly", "Max-Age=604800", "Path=/", "SameSite=Strict"]);
    expect(first.header).not.toContain(beta.secretKey);

    const second = await login(f.t.url, beta.secretKey);
    expect(second.token).not.toBe(first.token);
    for (const { cookie } of [first, second]) {
      const current = await call(f.t.url, "GET", "/api/v1/sessions/current", { cookie });
      expect(current.status).toBe(200);
      expect(current.json?.workspaces).toEqual([{ id: beta.id, name: "beta" }]);
    }
  });

  it("refuses a wrong key with 401 and a bad body with 400 naming secretKey, setting no cookie", async () => {
    const refused: [unknown, number][] = [
      [`sk_${"x".repeat(32)}`, 401],
      [beta.writeKey, 401],
      [`${SECRET_KEY}x`, 401],
      [SECRET_KEY.slice(0, -1), 401],
      [undefined, 400],
      [42, 400],
      ["", 400],
      [[SECRET_KEY], 400],
      [{ secretKey: SECRET_KEY }, 400],
    ];
    for (const [secretKey, status] of refused) {
      const { res, header } = await login(f.t.url, secretKey);
      expect([JSON.stringify(secretKey), res.status]).toEqual([JSON.stringify(secretKey), status]);
      expect(res.json?.message).toMatch(/^secretKey: /);
      expect(header).toBe("");
    }
    const notObject = await call(f.t.url, "POST", "/api/v1/sessions", {}, [SECRET_KEY]);
    expect(notObject.status).toBe(400);
    expect(notObject.json?.message).toContain("secretKey");
    // A form posted from another site cannot send JSON.
    const plain = await fetch(`${f.t.url}/api/v1/sessions`, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: JSON.stringify({ secretKey: SECRET_KEY }),
    });
    expect(plain.status).toBe(415);
    expect(plain.headers.get("set-cookie")).toBeNull();
    expect(((await plain.json()) as { code: string }).code).toBe("unsupported_media_type");
  });

  it("reads B's routes through B's session as B's secret key does, and finds A's workspace through it nowhere", async () => {
    const { cookie } = await login(f.t.url, beta.secretKey);
    const problems: string[] = [];
    const check = (where: string, res: RawResponse, status: number, found: string[]) => {
      if (res.status !== status)
        problems.push(`${where}: status ${res.status}, not ${status}: ${res.text.slice(0, 120)}`);
      if (found.length > 0) problems.push(`${where}: leaks ${found.join(", ")}`);
    };
    let notFound: string | undefined;
    for (const r of f.routes()) {
      const where = `${r.method} ${r.route.slice(0, 60)}`;
      // B's own workspace, the session's only one: by default, and named.
      const write: Record<string, string> = r.method === "GET" ? {} : { [WORKSPACE_HEADER]: beta.id };
      const own = await call(f.t.url, r.method, r.route, { cookie, ...write }, r.body);
      check(`own ${where}`, own, r.beta, leakedBeyondAsked(f, r, own));
      if (r.method === "GET") {
        const named = await call(f.t.url, r.method, withParam(r.route, "workspace", beta.id), { cookie }, r.body);
        check(`named ${where}`, named, r.beta, leakedBeyondAsked(f, r, named));
      }
    }
    for (const r of [...f.routes(), rotation]) {
      const where = `${r.method} ${r.route.slice(0, 60)}`;
      // A's workspace, by parameter and by header: not found, and the answer names nothing of A's.
      const byParam = await call(f.t.url, r.method, withParam(r.route, "workspace", f.alphaId), { cookie }, r.body);
      check(`?workspace=A ${where}`, byParam, 404, f.leaked(byParam.text));
      const byHeader = await call(f.t.url, r.method, r.route, { cookie, [WORKSPACE_HEADER]: f.alphaId }, r.body);
      check(`header A ${where}`, byHeader, 404, f.leaked(byHeader.text));
      // The same answer as for a workspace that does not exist: it tells nothing about A.
      const unknown = await call(f.t.url, r.method, r.route, { cookie, [WORKSPACE_HEADER]: randomUUID() }, r.body);
      for (const res of [byParam, byHeader, unknown]) {
        notFound ??= res.text;
        if (res.text !== notFound) problems.push(`${where}: answers ${res.text.slice(0, 120)}`);
      }
    }
    expect(problems).toEqual([]);
    expect(JSON.parse(notFound as string)).toMatchObject({ status: 404, code: "not_found" });

    // B's session reads B's data, every message of it.
    const events = await call(f.t.url, "GET", "/api/v1/events", { cookie });
    expect(items<{ messageId: string }>(events, "events").map((e) => e.messageId)).toEqual(
      expect.arrayContaining(f.B.messageIds),
    );
    // The session saw nothing of A's: A's data and keys are as they were.
    const alpha = { authorization: `Bearer ${SECRET_KEY}` };
    expect((await call(f.t.url, "GET", "/api/v1/stats", alpha)).json).toMatchObject({ messages: 5 });
    const saved = await call(f.t.url, "GET", "/api/v1/saved-reports", alpha);
    expect(items<{ id: string }>(saved, "savedReports").map((s) => s.id)).toEqual([f.alphaSavedId]);
  });

  it("holds A and B after logging in to each, reads either as chosen, and asks which when none is", async () => {
    const first = await login(f.t.url, beta.secretKey);
    const both = await login(f.t.url, SECRET_KEY, first.cookie);
    expect(both.res.status).toBe(201);
    expect(both.res.json?.workspaces).toEqual([
      { id: beta.id, name: "beta" },
      { id: f.alphaId, name: "default" },
    ]);
    // The session is renewed under a new token; the old one opens nothing any more.
    expect(both.token).not.toBe(first.token);
    expect((await call(f.t.url, "GET", "/api/v1/sessions/current", { cookie: first.cookie })).status).toBe(401);
    const cookie = both.cookie;
    expect((await call(f.t.url, "GET", "/api/v1/sessions/current", { cookie })).json?.workspaces).toHaveLength(2);

    const messageIds = (res: RawResponse) =>
      items<{ messageId: string }>(res, "events")
        .map((e) => e.messageId)
        .sort();
    const ofA = await call(f.t.url, "GET", `/api/v1/events?workspace=${f.alphaId}`, { cookie });
    expect(messageIds(ofA)).toEqual([...f.A.messageIds, f.shared].sort());
    const ofB = await call(f.t.url, "GET", "/api/v1/events", { cookie, [WORKSPACE_HEADER]: beta.id });
    expect(messageIds(ofB)).toEqual(expect.arrayContaining([...f.B.messageIds, f.shared]));
    expect(messageIds(ofB)).not.toEqual(expect.arrayContaining(f.A.messageIds.slice(0, 1)));

    const unchosen = await call(f.t.url, "GET", "/api/v1/stats", { cookie });
    expect(unchosen.status).toBe(400);
    expect(unchosen.json).toMatchObject({ code: "invalid_parameter", parameter: "workspace" });
    expect(unchosen.json?.message).toMatch(/^workspace: /);
    const disagreeing = await call(f.t.url, "GET", `/api/v1/stats?workspace=${f.alphaId}`, {
      cookie,
      [WORKSPACE_HEADER]: beta.id,
    });
    expect(disagreeing.status).toBe(400);
    expect(disagreeing.json?.message).toMatch(/^workspace: /);

    // Writes go to the workspace the header names.
    const inA = { cookie, [WORKSPACE_HEADER]: f.alphaId };
    const saved = await call(f.t.url, "POST", "/api/v1/saved-reports", inA, {
      name: "from the dashboard",
      report: "active",
      params: { from: "2026-01-01", to: "2026-01-31" },
    });
    expect(saved.status).toBe(201);
    const alpha = { authorization: `Bearer ${SECRET_KEY}` };
    const listed = async () =>
      items<{ id: string }>(await call(f.t.url, "GET", "/api/v1/saved-reports", alpha), "savedReports").map(
        (s) => s.id,
      );
    expect(await listed()).toContain(saved.json?.id);
    const deleted = await call(f.t.url, "DELETE", `/api/v1/saved-reports/${saved.json?.id}`, inA);
    expect(deleted.status).toBe(204);
    expect(await listed()).toEqual([f.alphaSavedId]);

    // Logging in to a workspace the session holds adds nothing.
    const again = await login(f.t.url, SECRET_KEY, cookie);
    expect(again.res.json?.workspaces).toEqual(both.res.json?.workspaces);
  });

  it("answers 401 to forged, altered, expired and logged-out cookies on every route, leaking nothing", async () => {
    const live = await login(f.t.url, beta.secretKey);
    const middle = live.token.length >> 1;
    const altered = `${live.token.slice(0, middle)}${live.token[middle] === "A" ? "B" : "A"}${live.token.slice(middle + 1)}`;
    const expired = await login(f.t.url, beta.secretKey);
    const loggedOut = await login(f.t.url, beta.secretKey);
    const logout = await call(f.t.url, "DELETE", "/api/v1/sessions/current", { cookie: loggedOut.cookie });
    expect(logout.status).toBe(204);
    expect(setCookieOf(logout).cookie).toBe(`${COOKIE}=`);
    expect(setCookieOf(logout).attributes).toContain("Max-Age=0");

    const forged: [string, string, number][] = [
      ["a random token", `${COOKIE}=${randomBytes(32).toString("base64url")}`, 0],
      ["A's secret key as the token", `${COOKIE}=${SECRET_KEY}`, 0],
      ["B's secret key as the token", `${COOKIE}=${beta.secretKey}`, 0],
      ["a live token with one character changed", `${COOKIE}=${altered}`, 0],
      ["a live token cut short", `${COOKIE}=${live.token.slice(0, -1)}`, 0],
      ["a live token under another name", `${sessionCookieName(true)}=${live.token}`, 0],
      ["an expired session", expired.cookie, 7 * DAY_MS + 60_000],
      ["a logged-out session", loggedOut.cookie, 0],
    ];
    const routes = [
      ...f.routes(),
      rotation,
      { method: "GET", route: "/api/v1/sessions/current", beta: 200 },
      { method: "DELETE", route: "/api/v1/sessions/current", beta: 204 },
    ];
    const markersOfB = [...Object.values(f.B).flat(), beta.id, beta.secretKey, beta.writeKey];
    const problems: string[] = [];
    let tried = 0;
    try {
      for (const [name, cookie, offset] of forged) {
        clockOffset = offset;
        for (const r of routes) {
          for (const headers of [{ cookie }, { cookie, [WORKSPACE_HEADER]: beta.id }] as Record<string, string>[]) {
            tried++;
            const res = await call(f.t.url, r.method, r.route, headers, r.body);
            const where = `${name}: ${r.method} ${r.route.slice(0, 60)}`;
            if (res.status !== 401) problems.push(`${where}: status ${res.status}`);
            if (typeof res.json?.code !== "string" || typeof res.json?.message !== "string") {
              problems.push(`${where}: not a JSON error: ${res.text.slice(0, 100)}`);
            }
            const found = [...f.leaked(res.text), ...markersOfB.filter((m) => res.text.includes(m))];
            if (found.length > 0) problems.push(`${where}: leaks ${found.join(", ")}`);
          }
        }
      }
    } finally {
      clockOffset = 0;
    }
    expect(problems).toEqual([]);
    expect(tried).toBeGreaterThan(600);
    // The live session was never touched by its forgeries, and the expired one lived out its week.
    expect((await call(f.t.url, "GET", "/api/v1/stats", { cookie: live.cookie })).status).toBe(200);
    expect((await call(f.t.url, "GET", "/api/v1/stats", { cookie: expired.cookie })).status).toBe(200);
  });

  it("refuses writes made with a cookie but no X-Solstice-Workspace header, and changes nothing", async () => {
    const { cookie } = await login(f.t.url, beta.secretKey);
    const key = { authorization: `Bearer ${beta.secretKey}` };
    const read = (route: string) => call(f.t.url, "GET", route, key);
    // Deletion requests run in the background: their ids, not their states, are what a write would change.
    const state = async () => [
      (await read("/api/v1/settings")).text,
      (await read("/api/v1/stats")).text,
      items<{ id: string }>(await read("/api/v1/saved-reports"), "savedReports").map((s) => s.id),
      items<{ id: string }>(await read("/api/v1/deletion-requests"), "deletionRequests").map((d) => d.id),
    ];
    const before = await state();
    const problems: string[] = [];
    for (const r of [...f.routes(), rotation].filter((r) => r.method !== "GET")) {
      for (const route of [r.route, withParam(r.route, "workspace", beta.id)]) {
        const res = await call(f.t.url, r.method, route, { cookie }, r.body);
        if (res.status !== 403 || res.json?.code !== "workspace_header_required") {
          problems.push(`${r.method} ${route.slice(0, 60)}: ${res.status} ${res.text.slice(0, 120)}`);
        }
      }
    }
    expect(problems).toEqual([]);
    expect(await state()).toEqual(before);
    // The keys were not rotated.
    expect((await call(f.t.url, "GET", "/api/v1/stats", key)).status).toBe(200);
  });

  it("never opens the Tracking API or the backup with a session", async () => {
    const { cookie } = await login(f.t.url, SECRET_KEY);
    const tracked = await post(
      f.t.url,
      "/v1/track",
      { userId: "u", event: "e" },
      { authorization: "", cookie, [WORKSPACE_HEADER]: f.alphaId },
    );
    expect(tracked.status).toBe(401);
    const validate = await call(f.t.url, "GET", "/api/validate-write-key", { cookie });
    expect(validate.status).toBe(401);
    const backup = await call(
      f.t.url,
      "POST",
      "/admin/backup",
      { cookie, [WORKSPACE_HEADER]: f.alphaId },
      { path: path.join(f.t.dataDir, "never.duckdb") },
    );
    expect(backup.status).toBe(401);
    expect(fs.existsSync(path.join(f.t.dataDir, "never.duckdb"))).toBe(false);
  });
});

describe("sessions in the database", () => {
  let t: TestServer | undefined;
  let dataDir: string;

  afterAll(async () => {
    await t?.close();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it("keeps only the token's hash, survives a restart, and loses a workspace whose secret key changes", async () => {
    const env = { SOLSTICE_SECURE_COOKIES: "true", SOLSTICE_SESSION_DAYS: "2" };
    const started = await startWithWorkspaces(["beta"], { env });
    t = started.t;
    dataDir = t.dataDir;
    const beta = started.workspaces[0] as WorkspaceRecord;
    const alphaId = (await t.server.storage.listWorkspaces()).find((w) => w.name === "default")?.id as string;

    const first = await login(t.url, SECRET_KEY);
    expect(first.name).toBe("__Host-solstice_session");
    expect(first.attributes.sort()).toEqual(["HttpOnly", "Max-Age=172800", "Path=/", "SameSite=Strict", "Secure"]);
    const both = await login(t.url, beta.secretKey, first.cookie);
    expect(both.res.json?.workspaces).toHaveLength(2);
    const cookie = both.cookie;

    // On disk: one session, known by the SHA-256 of its token; no token anywhere in the data directory.
    await t.close();
    t = undefined;
    for (const file of fs.readdirSync(dataDir)) {
      const bytes = fs.readFileSync(path.join(dataDir, file));
      for (const token of [first.token, both.token]) expect(bytes.includes(token)).toBe(false);
    }
    const instance = await DuckDBInstance.create(path.join(dataDir, DATABASE_FILE));
    try {
      const connection = await instance.connect();
      const result = await connection.runAndReadAll(
        `SELECT token_hash, to_json(workspace_ids) AS workspace_ids, epoch_ms(expires_at) - epoch_ms(created_at) AS lifetime
         FROM sessions`,
      );
      expect(result.columnNames()).toEqual(["token_hash", "workspace_ids", "lifetime"]);
      const rows = result.getRowObjects();
      expect(rows).toEqual([
        {
          token_hash: createHash("sha256").update(both.token).digest("hex"),
          workspace_ids: JSON.stringify([alphaId, beta.id]),
          lifetime: expect.any(BigInt),
        },
      ]);
      // From the first login to two days after the second.
      expect(Number(rows[0]?.lifetime)).toBeGreaterThanOrEqual(2 * DAY_MS);
      expect(Number(rows[0]?.lifetime)).toBeLessThan(2 * DAY_MS + 60_000);
      const columns = await connection.runAndReadAll(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'sessions' ORDER BY ordinal_position",
      );
      expect(columns.getRows().flat()).toEqual(["token_hash", "workspace_ids", "created_at", "expires_at"]);
      connection.closeSync();
    } finally {
      instance.closeSync();
    }

    // After a restart the session still reads both workspaces.
    t = await startTestServer(dataDir, { env });
    expect((await call(t.url, "GET", "/api/v1/sessions/current", { cookie })).json?.workspaces).toEqual([
      { id: alphaId, name: "default" },
      { id: beta.id, name: "beta" },
    ]);
    expect((await call(t.url, "GET", "/api/v1/stats", { cookie, [WORKSPACE_HEADER]: beta.id })).status).toBe(200);

    // New keys for B take B out of every session, the one that asked included, at once.
    const inB = { cookie, [WORKSPACE_HEADER]: beta.id };
    const rotated = await call(t.url, "POST", "/api/v1/workspace/rotate-keys", inB, { graceHours: 0 });
    expect(rotated.status).toBe(200);
    expect((await call(t.url, "GET", "/api/v1/stats", inB)).status).toBe(404);
    expect((await call(t.url, "GET", "/api/v1/sessions/current", { cookie })).json?.workspaces).toEqual([
      { id: alphaId, name: "default" },
    ]);
    expect((await login(t.url, beta.secretKey, cookie)).res.status).toBe(401);
    const back = await login(t.url, rotated.json?.secretKey, cookie);
    expect(back.res.json?.workspaces).toHaveLength(2);

    // Logging out clears the cookie and revokes the session, also across a restart.
    const out = await call(t.url, "DELETE", "/api/v1/sessions/current", { cookie: back.cookie });
    expect(out.status).toBe(204);
    expect(setCookieOf(out).header).toBe(
      "__Host-solstice_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0; Secure",
    );
    expect((await call(t.url, "GET", "/api/v1/sessions/current", { cookie: back.cookie })).status).toBe(401);
    await t.close();
    t = await startTestServer(dataDir, { env });
    expect((await call(t.url, "GET", "/api/v1/stats", { cookie: back.cookie })).status).toBe(401);

    // A new secret key from the environment takes the default workspace out of the sessions as rotation does.
    const again = await login(t.url, SECRET_KEY);
    const twice = await login(t.url, rotated.json?.secretKey, again.cookie);
    expect(twice.res.json?.workspaces).toHaveLength(2);
    await t.close();
    t = await startTestServer(dataDir, { env: { ...env, SOLSTICE_SECRET_KEY: `${SECRET_KEY}-changed` } });
    expect((await call(t.url, "GET", "/api/v1/sessions/current", { cookie: twice.cookie })).json?.workspaces).toEqual([
      { id: beta.id, name: "beta" },
    ]);
  });
});

describe("session settings and cookies", () => {
  it("reads the session lifetime and the Secure flag from the environment", () => {
    const base = { data: "/tmp/solstice-config" };
    expect(loadConfig(base, {})).toMatchObject({ sessionDays: 7, secureCookies: false });
    expect(loadConfig(base, { SOLSTICE_SESSION_DAYS: "30", SOLSTICE_SECURE_COOKIES: "true" })).toMatchObject({
      sessionDays: 30,
      secureCookies: true,
    });
    expect(() => loadConfig(base, { SOLSTICE_SECURE_COOKIES: "yes" })).toThrow(ConfigError);
    expect(() => loadConfig(base, { SOLSTICE_SECURE_COOKIES: "yes" })).toThrow(/SOLSTICE_SECURE_COOKIES/);
    expect(() => loadConfig(base, { SOLSTICE_SESSION_DAYS: "0" })).toThrow(/SOLSTICE_SESSION_DAYS/);
    expect(() => loadConfig(base, { SOLSTICE_SESSION_DAYS: "1.5" })).toThrow(ConfigError);
  });

  it("finds a cookie by its exact name in a Cookie header", () => {
    expect(cookieValue(undefined, COOKIE)).toBeUndefined();
    expect(cookieValue("", COOKIE)).toBeUndefined();
    expect(cookieValue(`a=1; ${COOKIE}=tok; b=2`, COOKIE)).toBe("tok");
    expect(cookieValue(`${COOKIE}="tok"`, COOKIE)).toBe("tok");
    expect(cookieValue(`${COOKIE}=first;${COOKIE}=second`, COOKIE)).toBe("first");
    expect(cookieValue(`x${COOKIE}=no; ${COOKIE}x=no`, COOKIE)).toBeUndefined();
    expect(cookieValue(`${COOKIE}`, COOKIE)).toBeUndefined();
    expect(cookieValue(`${COOKIE}=a=b`, COOKIE)).toBe("a=b");
  });
});
