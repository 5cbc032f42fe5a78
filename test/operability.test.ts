import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config/index.js";
import { type RunningServer, startServer } from "../src/server/start.js";
import type { DuckDBEngine } from "../src/storage/duckdb/engine.js";
import {
  basicAuth,
  type ChildServer,
  freePort,
  post,
  query,
  SECRET_KEY,
  spawnServer,
  startTestServer,
  type TestServer,
  tempDataDir,
  WRITE_KEY,
} from "./helpers/server.js";
import { events, send, stats } from "./helpers/tracking.js";
import { eventually } from "./helpers/wait.js";

const ROOT = path.resolve(import.meta.dirname, "..");

/** Every data directory, server and process made here, so that afterAll can clean up whatever failed. */
const dirs: string[] = [];
const servers: { close(): Promise<void> }[] = [];
const children: ChildServer[] = [];

afterAll(async () => {
  for (const child of children)
    if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill("SIGKILL");
  for (const s of servers) await s.close().catch(() => undefined);
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = tempDataDir("solstice-ops");
  dirs.push(dir);
  return dir;
}

async function testServer(dir = dataDir(), options: { now?: () => number } = {}): Promise<TestServer> {
  const t = await startTestServer(dir, options);
  servers.push(t);
  return t;
}

/** A server that configures no keys, so that the stored ones (rotated or not) are the ones in force. */
async function serverWithStoredKeys(dir: string, options: { now?: () => number } = {}): Promise<RunningServer> {
  const config = loadConfig({ port: "0", host: "127.0.0.1", data: dir }, {});
  const server = await startServer(config, pino({ level: "silent" }), options);
  servers.push(server);
  return server;
}

async function spawned(dir: string, env: Record<string, string> = {}): Promise<ChildServer> {
  const child = await spawnServer(dir, await freePort(), env);
  children.push(child);
  return child;
}

/** The environment of a child process, without the keys this test process may have been given. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, SOLSTICE_LOG_LEVEL: "warn" };
  delete env.SOLSTICE_WRITE_KEY;
  delete env.SOLSTICE_SECRET_KEY;
  delete env.SOLSTICE_DATA_DIR;
  delete env.SOLSTICE_PORT;
  return env;
}

/** Runs the CLI from the sources as its own process. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
      cwd: ROOT,
      env: cleanEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

function keysIn(output: string): { writeKey: string; secretKey: string } {
  const writeKey = /write key:\s+(\S+)/.exec(output)?.[1];
  const secretKey = /secret key:\s+(\S+)/.exec(output)?.[1];
  if (!writeKey || !secretKey) throw new Error(`no keys in the output:\n${output}`);
  return { writeKey, secretKey };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A POST to a tracking route with a given write key; the status and the JSON answer. */
async function track(url: string, writeKey: string, body: Record<string, unknown>) {
  const res = await send(url, "/v1/track", {
    headers: { "content-type": "application/json", authorization: basicAuth(writeKey) },
    body: JSON.stringify({ userId: "key-user", event: "Key Used", ...body }),
  });
  return res.status;
}

/** The status of a query API GET with a given secret key. */
async function status(url: string, route: string, secretKey = SECRET_KEY): Promise<number> {
  const res = await fetch(`${url}${route}`, { headers: { authorization: `Bearer ${secretKey}` } });
  await res.arrayBuffer();
  return res.status;
}

async function secretPost(url: string, route: string, body: unknown, secretKey = SECRET_KEY) {
  return send(url, route, {
    headers: { "content-type": "application/json", authorization: `Bearer ${secretKey}` },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

function batchBody(ids: readonly string[], user = "load-user") {
  return JSON.stringify({
    batch: ids.map((messageId, i) => ({
      type: "track",
      messageId,
      userId: `${user}-${i % 7}`,
      event: "Load Tested",
      context: i % 3 === 0 ? { groupId: `load-co-${i % 5}` } : undefined,
      properties: { i },
    })),
  });
}

/**
 * Clients sending batches of new messages until stopped, each with one request in flight; they record
 * what was sent and what was acknowledged (200), and every other answer by status.
 */
function startSenders(url: string, clients: number, batch: number, label = randomUUID().slice(0, 8)) {
  const sent = new Set<string>();
  const acked = new Set<string>();
  const statuses = new Map<number | string, number>();
  let stopped = false;
  const count = (key: number | string) => statuses.set(key, (statuses.get(key) ?? 0) + 1);
  const loops = Array.from({ length: clients }, async (_, c) => {
    for (let i = 0; !stopped; i++) {
      const ids = Array.from({ length: batch }, (_, k) => `${label}-${c}-${i}-${k}`);
      for (const id of ids) sent.add(id);
      try {
        const res = await fetch(`${url}/v1/batch`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: basicAuth() },
          body: batchBody(ids, `${label}-${c}`),
        });
        await res.arrayBuffer();
        count(res.status);
        if (res.status === 200) for (const id of ids) acked.add(id);
      } catch {
        count("network");
        // Refused or reset: the server is going away; do not spin on it.
        await sleep(20);
      }
    }
  });
  return {
    sent,
    acked,
    statuses,
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

/** Every messageId stored in the default workspace, read page by page. */
async function storedIds(url: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const params = new URLSearchParams({ limit: "1000" });
    if (cursor) params.set("cursor", cursor);
    const page: { events: { messageId: string }[]; nextCursor: string | null } = await query(
      url,
      `/api/v1/events?${params}`,
    );
    for (const e of page.events) ids.push(e.messageId);
    cursor = page.nextCursor;
  } while (cursor);
  return ids;
}

/** One sample of the Prometheus text: the value of `name` with exactly these labels, or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const found = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    const wanted = Object.entries(labels);
    if (Object.keys(found).length === wanted.length && wanted.every(([k, v]) => found[k] === v)) return Number(m[3]);
  }
  return undefined;
}

async function metricsText(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
}

describe("health, readiness and metrics", () => {
  it("answers /healthz and /readyz on a healthy server", async () => {
    const t = await testServer();
    const health = await send(t.url, "/healthz", { method: "GET" });
    expect(health.status).toBe(200);
    expect(health.json).toEqual({ status: "ok" });
    const ready = await send(t.url, "/readyz", { method: "GET" });
    expect(ready.status).toBe(200);
    expect(ready.json).toMatchObject({ status: "ready", writable: true });
    expect(ready.json?.freeBytes).toBeGreaterThan(0);
  });

  it("exposes Prometheus counters that move exactly with the traffic", async () => {
    const t = await testServer();
    const before = await metricsText(t.url);
    // Every line is a comment or a sample; each metric says its type.
    for (const line of before.split("\n")) {
      if (line === "") continue;
      expect(line).toMatch(/^(# (HELP|TYPE) \S+ .*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? \S+)$/);
    }
    expect(before).toContain("# TYPE solstice_messages_total counter");
    expect(before).toContain("# TYPE solstice_messages_stored_total counter");
    expect(before).toContain("# TYPE solstice_writer_queue_depth gauge");
    expect(before).toContain("# TYPE solstice_commit_duration_seconds histogram");
    expect(before).toContain("# TYPE solstice_report_duration_seconds histogram");
    expect(sample(before, "solstice_messages_stored_total")).toBe(0);
    expect(sample(before, "solstice_writer_queue_depth")).toBe(0);
    expect(sample(before, "solstice_commit_duration_seconds_count")).toBe(0);

    // A batch of four good messages and one without its event name.
    const batch = {
      batch: [
        ...[1, 2, 3, 4].map((n) => ({ type: "track", userId: "m1", event: "Metered", messageId: `metrics-${n}` })),
        { type: "track", userId: "m1", messageId: "metrics-bad" },
      ],
    };
    expect((await post(t.url, "/v1/batch", batch)).body).toMatchObject({ accepted: 4, duplicates: 0 });
    // The same batch again: four duplicates, and the bad message refused again.
    expect((await post(t.url, "/v1/batch", batch)).body).toMatchObject({ accepted: 0, duplicates: 4 });
    // A good single call, a refused single call, and a batch whose every message is refused.
    expect((await post(t.url, "/v1/identify", { userId: "m1", messageId: "metrics-5" })).status).toBe(200);
    expect((await post(t.url, "/v1/track", { userId: "m1", messageId: "metrics-6" })).status).toBe(400);
    const allBad = { batch: [{ type: "track", userId: "m1" }, { type: "nope" }] };
    expect((await post(t.url, "/v1/batch", allBad)).status).toBe(400);
    // A batch over the limit of 2,500 messages is refused whole, every message in it.
    const tooMany = { batch: Array.from({ length: 2501 }, () => ({ type: "track", userId: "m1", event: "E" })) };
    expect((await post(t.url, "/v1/batch", tooMany)).status).toBe(400);

    const after = await metricsText(t.url);
    expect(sample(after, "solstice_messages_total", { outcome: "accepted" })).toBe(5);
    expect(sample(after, "solstice_messages_total", { outcome: "duplicate" })).toBe(4);
    expect(sample(after, "solstice_messages_total", { outcome: "rejected" })).toBe(5 + 2501);
    expect(sample(after, "solstice_messages_stored_total")).toBe(5);
    expect(sample(after, "solstice_writer_queue_depth")).toBe(0);
    expect(sample(after, "solstice_commit_duration_seconds_count")).toBeGreaterThan(0);
    expect(sample(after, "solstice_commit_duration_seconds_sum")).toBeGreaterThan(0);
    expect(sample(after, "solstice_commit_rows_count")).toBeGreaterThan(0);
    expect(sample(after, "solstice_commit_failures_total")).toBe(0);
    expect(await stats(t.url)).toEqual({ messages: 5, events: 4, duplicates: 4 });

    expect(sample(after, "solstice_report_duration_seconds_count", { report: "active" })).toBeUndefined();
    await query(t.url, "/api/v1/reports/active?from=2024-03-01&to=2024-03-31");
    const reported = await metricsText(t.url);
    // The report waited for the derivation of every stored message.
    expect(sample(reported, "solstice_messages_derived_total")).toBe(5);
    expect(sample(reported, "solstice_underived_messages")).toBe(0);
    expect(sample(reported, "solstice_quarantined_messages")).toBe(0);
    expect(sample(reported, "solstice_derivation_duration_seconds_count")).toBeGreaterThan(0);
    expect(sample(reported, "solstice_derivation_failures_total")).toBe(0);
    expect(sample(reported, "solstice_report_duration_seconds_count", { report: "active" })).toBe(1);
    expect(sample(reported, "solstice_report_duration_seconds_sum", { report: "active" })).toBeGreaterThan(0);
    expect(sample(reported, "solstice_report_duration_seconds_bucket", { report: "active", le: "+Inf" })).toBe(1);

    // No compaction yet (five messages are far from a tenth of the data, or from an idle one); then one
    // of the whole tables, as maintenance asks for.
    expect(sample(reported, "solstice_compaction_duration_seconds_count", { rewrite: "full" })).toBeUndefined();
    await (t.server.storage as DuckDBEngine).compact();
    const compacted = await metricsText(t.url);
    expect(sample(compacted, "solstice_compaction_duration_seconds_count", { rewrite: "full" })).toBe(1);
    expect(sample(compacted, "solstice_compaction_duration_seconds_count", { rewrite: "recent" })).toBeUndefined();
    expect(sample(compacted, "solstice_compaction_failures_total")).toBe(0);
    expect(sample(compacted, "solstice_commit_failures_total")).toBe(0);
  });
});

describe("graceful shutdown", () => {
  it("on SIGTERM stops accepting, commits what it acknowledged and exits 0", async () => {
    const dir = dataDir();
    const server = await spawned(dir);
    const load = startSenders(server.url, 8, 20);
    await eventually("acknowledged messages", async () => (load.acked.size >= 1000 ? true : undefined));

    const signalled = Date.now();
    server.child.kill("SIGTERM");
    const exit = await server.exited;
    const took = Date.now() - signalled;
    await load.stop();
    expect(exit).toBe(0);
    expect(took).toBeLessThan(10_000);
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
    // Whatever a client saw during the shutdown was an acknowledgement, a 503 or a refused connection.
    for (const key of load.statuses.keys()) expect([200, 503, "network"]).toContain(key);

    const again = await spawned(dir);
    const stored = await storedIds(again.url);
    const storedSet = new Set(stored);
    expect(stored.length).toBe(storedSet.size);
    const lost = [...load.acked].filter((id) => !storedSet.has(id));
    expect(lost).toEqual([]);
    const phantom = stored.filter((id) => !load.sent.has(id));
    expect(phantom).toEqual([]);
    expect((await stats(again.url)).messages).toBe(stored.length);
    again.child.kill("SIGTERM");
    expect(await again.exited).toBe(0);
  });
});

interface CopyFigures {
  messages: number;
  hashes: number;
  perWorkspace: { workspace: string; messages: number; counted: number; events: number; countedEvents: number }[];
}

/** Opens a copy of the database and reads what must agree in a consistent one. */
async function inspectCopy(file: string): Promise<CopyFigures> {
  const instance = await DuckDBInstance.create(file);
  const connection = await instance.connect();
  try {
    const one = async (sql: string) => Number((await connection.runAndReadAll(sql)).getRows()[0]?.[0]);
    const perWorkspace = (
      await connection.runAndReadAll(
        `WITH m AS (SELECT workspace_id, count(*) AS n, count(*) FILTER (WHERE type IN ('track', 'page', 'screen')) AS e
                    FROM messages GROUP BY workspace_id),
              c AS (SELECT workspace_id, sum(messages) AS n, sum(events) AS e FROM workspace_counters GROUP BY workspace_id)
         SELECT coalesce(m.workspace_id, c.workspace_id) AS workspace, coalesce(m.n, 0) AS messages,
           coalesce(c.n, 0) AS counted, coalesce(m.e, 0) AS events, coalesce(c.e, 0) AS counted_events
         FROM m FULL JOIN c USING (workspace_id) ORDER BY workspace`,
      )
    )
      .getRowObjects()
      .map((r) => ({
        workspace: String(r.workspace),
        messages: Number(r.messages),
        counted: Number(r.counted),
        events: Number(r.events),
        countedEvents: Number(r.counted_events),
      }));
    return {
      messages: await one("SELECT count(*) FROM messages"),
      hashes: await one("SELECT count(*) FROM message_hashes"),
      perWorkspace,
    };
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

function expectConsistent(figures: CopyFigures): void {
  expect(figures.hashes).toBe(figures.messages);
  for (const w of figures.perWorkspace) {
    expect(w.counted, `messages counted in workspace ${w.workspace}`).toBe(w.messages);
    expect(w.countedEvents, `events counted in workspace ${w.workspace}`).toBe(w.events);
  }
}

describe("backup", () => {
  it("copies a serving database while clients write and read, and the copy serves as it is", async () => {
    const t = await testServer();
    const port = new URL(t.url).port;
    const load = startSenders(t.url, 4, 25);
    let reading = true;
    // Reports and reads keep read transactions open while the backup checkpoints.
    const reader = (async () => {
      while (reading) {
        await query(t.url, "/api/v1/stats");
        await query(t.url, "/api/v1/reports/active?level=company&from=2020-01-01&to=2030-01-01&interval=month");
      }
    })();
    await eventually("acknowledged messages", async () => (load.acked.size >= 500 ? true : undefined));

    const target = path.join(dataDir(), "copy.duckdb");
    const ackedBefore = load.acked.size;
    const run = await cli(["backup", target, "--data", t.dataDir, "--port", port]);
    const ackedAtEnd = load.acked.size;
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("asking the server");
    expect(run.stdout).toContain(`backup written to ${target}`);
    // The clients kept going through the backup.
    expect(load.acked.size).toBeGreaterThanOrEqual(ackedAtEnd);
    await sleep(200);
    await load.stop();
    reading = false;
    await reader;
    expect([...load.statuses.keys()]).toEqual([200]);

    const figures = await inspectCopy(target);
    expectConsistent(figures);
    // Everything acknowledged before the backup began is in the copy: the checkpoint folded it in.
    expect(figures.messages).toBeGreaterThanOrEqual(ackedBefore);
    const live = await stats(t.url);
    expect(live.messages).toBe(load.acked.size);
    expect(figures.messages).toBeLessThanOrEqual(live.messages);

    // The copy is a data directory's database as it is.
    const restoredDir = dataDir();
    fs.copyFileSync(target, path.join(restoredDir, "solstice.duckdb"));
    const restored = await testServer(restoredDir);
    expect((await stats(restored.url)).messages).toBe(figures.messages);
    const ids = await storedIds(restored.url);
    expect(ids.length).toBe(figures.messages);
    expect(ids.every((id) => load.sent.has(id))).toBe(true);
    // Its de-duplication knows what it holds, and it takes new messages.
    const some = ids.slice(0, 10);
    const resent = await post(restored.url, "/v1/batch", JSON.parse(batchBody(some)));
    expect(resent.body).toMatchObject({ accepted: 0, duplicates: 10 });
    expect((await post(restored.url, "/v1/track", { userId: "r", event: "After Restore" })).status).toBe(200);
  });

  it("copies a stopped server's database directly and refuses to overwrite a file", async () => {
    const dir = dataDir();
    const t = await testServer(dir);
    const ids = Array.from({ length: 30 }, (_, i) => `stopped-${i}`);
    expect((await post(t.url, "/v1/batch", JSON.parse(batchBody(ids)))).body).toMatchObject({ accepted: 30 });
    await t.close();

    const target = path.join(dataDir(), "stopped.duckdb");
    const run = await cli(["backup", target, "--data", dir]);
    expect(run.code).toBe(0);
    expect(run.stdout).not.toContain("asking the server");
    const figures = await inspectCopy(target);
    expectConsistent(figures);
    expect(figures.messages).toBe(30);

    const size = fs.statSync(target).size;
    const refused = await cli(["backup", target, "--data", dir]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("already exists");
    expect(fs.statSync(target).size).toBe(size);
  });

  it("asks for the admin token and an absolute, new path over HTTP", async () => {
    const t = await testServer();
    const token = fs.readFileSync(path.join(t.dataDir, "admin.token"), "utf8").trim();
    const backup = (body: unknown, auth?: string) =>
      send(t.url, "/admin/backup", {
        headers: { "content-type": "application/json", ...(auth ? { authorization: auth } : {}) },
        body: JSON.stringify(body),
      });
    const target = path.join(dataDir(), "http.duckdb");
    expect((await backup({ path: target })).status).toBe(401);
    expect((await backup({ path: target }, `Bearer ${SECRET_KEY}`)).status).toBe(401);
    expect((await backup({ path: "relative.duckdb" }, `Bearer ${token}`)).status).toBe(400);
    expect((await backup({ path: target }, `Bearer ${token}`)).status).toBe(200);
    const again = await backup({ path: target }, `Bearer ${token}`);
    expect(again.status).toBe(400);
    expect(again.json?.message).toContain("already exists");
    expectConsistent(await inspectCopy(target));
  });
});

describe("key rotation", () => {
  it("over HTTP: new keys at once, the old secret key never, the old write key for the grace period", async () => {
    let clock = Date.parse("2025-01-10T12:00:00.000Z");
    const dir = dataDir();
    // Keys set in the environment come back at every start, so a rotation of them is refused.
    const configured = await testServer(dir, { now: () => clock });
    const refused = await secretPost(configured.url, "/api/v1/workspace/rotate-keys", { graceHours: 1 }, SECRET_KEY);
    expect(refused.status).toBe(409);
    await configured.close();
    servers.splice(servers.indexOf(configured), 1);
    const t = await serverWithStoredKeys(dir, { now: () => clock });
    const rotate = (body: unknown, key = SECRET_KEY) => secretPost(t.url, "/api/v1/workspace/rotate-keys", body, key);

    expect((await rotate({ graceHours: -1 })).status).toBe(400);
    expect((await rotate({ graceHours: "24" })).status).toBe(400);
    expect((await rotate({ graceHours: 1 }, "sk_not_a_key")).status).toBe(401);

    const res = await rotate({ graceHours: 1 });
    expect(res.status).toBe(200);
    const keys = res.json as { writeKey: string; secretKey: string; previousWriteKeyValidUntil: string };
    expect(keys.writeKey).toMatch(/^wk_/);
    expect(keys.secretKey).toMatch(/^sk_/);
    expect(keys.writeKey).not.toBe(WRITE_KEY);
    expect(keys.previousWriteKeyValidUntil).toBe("2025-01-10T13:00:00.000Z");

    expect(await status(t.url, "/api/v1/stats", SECRET_KEY)).toBe(401);
    expect(await status(t.url, "/api/v1/stats", keys.secretKey)).toBe(200);
    expect(await track(t.url, keys.writeKey, { messageId: "rot-new-1" })).toBe(200);
    expect(await track(t.url, WRITE_KEY, { messageId: "rot-old-1" })).toBe(200);
    clock += 3600_000 - 1;
    expect(await track(t.url, WRITE_KEY, { messageId: "rot-old-2" })).toBe(200);
    clock += 1;
    expect(await track(t.url, WRITE_KEY, { messageId: "rot-old-3" })).toBe(401);
    expect(await track(t.url, keys.writeKey, { messageId: "rot-new-2" })).toBe(200);
    // The old secret key cannot rotate again either.
    expect((await rotate({ graceHours: 1 })).status).toBe(401);
    expect(await query(t.url, "/api/v1/stats", keys.secretKey)).toMatchObject({ messages: 4 });

    // With no grace, the replaced write key stops at once.
    const now = await rotate({ graceHours: 0 }, keys.secretKey);
    expect(now.status).toBe(200);
    const next = now.json as { writeKey: string; secretKey: string; previousWriteKeyValidUntil: string | null };
    expect(next.previousWriteKeyValidUntil).toBeNull();
    expect(await track(t.url, keys.writeKey, { messageId: "rot-new-3" })).toBe(401);
    expect(await track(t.url, next.writeKey, { messageId: "rot-next-1" })).toBe(200);
    expect(await status(t.url, "/api/v1/stats", keys.secretKey)).toBe(401);
    expect(await status(t.url, "/api/v1/stats", next.secretKey)).toBe(200);
  });

  it("over HTTP: rotated keys and the grace period survive a restart", async () => {
    const dir = dataDir();
    let clock = Date.parse("2025-02-01T00:00:00.000Z");
    const now = () => clock;
    const first = await serverWithStoredKeys(dir, { now });
    const [workspace] = await first.storage.listWorkspaces();
    if (!workspace) throw new Error("no default workspace");
    const res = await secretPost(first.url, "/api/v1/workspace/rotate-keys", { graceHours: 2 }, workspace.secretKey);
    expect(res.status).toBe(200);
    const keys = res.json as { writeKey: string; secretKey: string };
    // The CLI opens the database itself, so it refuses while a server holds it.
    const busy = await cli(["workspace", "rotate-keys", "default", "--data", dir]);
    expect(busy.code).toBe(2);
    expect(busy.stderr).toContain("in use by a running server");
    await first.close();

    clock += 3600_000;
    const second = await serverWithStoredKeys(dir, { now });
    expect(await track(second.url, workspace.writeKey, { messageId: "persist-old" })).toBe(200);
    expect(await track(second.url, keys.writeKey, { messageId: "persist-new" })).toBe(200);
    expect(await status(second.url, "/api/v1/stats", workspace.secretKey)).toBe(401);
    expect(await status(second.url, "/api/v1/stats", keys.secretKey)).toBe(200);
    await second.close();

    clock += 3600_000;
    const third = await serverWithStoredKeys(dir, { now });
    expect(await track(third.url, workspace.writeKey, { messageId: "persist-old-late" })).toBe(401);
    expect(await track(third.url, keys.writeKey, { messageId: "persist-new-late" })).toBe(200);
    expect(await query(third.url, "/api/v1/stats", keys.secretKey)).toMatchObject({ messages: 3 });
    await third.close();
  });

  it("from the CLI on a stopped server: the next start takes the new keys and the old write key", async () => {
    const dir = dataDir();
    const t = await testServer(dir);
    expect(await track(t.url, WRITE_KEY, { messageId: "cli-before" })).toBe(200);
    await t.close();

    const run = await cli(["workspace", "rotate-keys", "default", "--grace-hours", "1", "--data", dir]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const keys = keysIn(run.stdout);
    expect(keys.writeKey).not.toBe(WRITE_KEY);
    expect(keys.secretKey).not.toBe(SECRET_KEY);
    expect(run.stdout).toMatch(/the old write key works until \d{4}-\d\d-\d\dT/);

    for (let start = 0; start < 2; start++) {
      const server = await serverWithStoredKeys(dir);
      expect(await track(server.url, WRITE_KEY, { messageId: `cli-old-${start}` })).toBe(200);
      expect(await track(server.url, keys.writeKey, { messageId: `cli-new-${start}` })).toBe(200);
      expect(await status(server.url, "/api/v1/stats", SECRET_KEY)).toBe(401);
      expect(await query(server.url, "/api/v1/stats", keys.secretKey)).toMatchObject({ messages: 1 + 2 * (start + 1) });
      await server.close();
    }
    const listed = await cli(["workspace", "list", "--data", dir]);
    expect(listed.code).toBe(0);
    expect(keysIn(listed.stdout)).toEqual(keys);
  });
});

const at = (day: number, hour: number, minute = 0) => new Date(Date.UTC(2024, 2, 4 + day, hour, minute)).toISOString();

/**
 * Three users over four weeks from Monday 2024-03-04 (day 0). Alice is erased: she browsed under two
 * anonymousIds (one linked by identify, one by alias), joined acme and initech, and used the product on
 * days 0, 1, 8 and 15. Bob (acme) is active on days 0, 7 and 21; Carol (globex) on days 2, 3 and 14.
 */
const ALICE = [
  { type: "page", messageId: "a1", anonymousId: "anon-a", name: "Pricing", timestamp: at(0, 10) },
  { type: "track", messageId: "a2", anonymousId: "anon-a", event: "Viewed Signup", timestamp: at(0, 10, 5) },
  {
    type: "identify",
    messageId: "a3",
    userId: "alice",
    anonymousId: "anon-a",
    traits: { name: "Alice", email: "alice@acme.test" },
    timestamp: at(0, 10, 10),
  },
  { type: "group", messageId: "a4", userId: "alice", groupId: "acme", timestamp: at(0, 10, 11) },
  {
    type: "track",
    messageId: "a5",
    userId: "alice",
    event: "Signed Up",
    context: { groupId: "acme" },
    timestamp: at(0, 10, 12),
  },
  { type: "track", messageId: "a6", userId: "alice", event: "Report Created", timestamp: at(0, 10, 20) },
  { type: "page", messageId: "a7", anonymousId: "anon-a2", name: "Docs", timestamp: at(1, 7) },
  { type: "alias", messageId: "a8", userId: "alice", previousId: "anon-a2", timestamp: at(1, 8) },
  {
    type: "group",
    messageId: "a9",
    userId: "alice",
    groupId: "initech",
    traits: { name: "Initech" },
    timestamp: at(1, 8, 30),
  },
  { type: "track", messageId: "a10", userId: "alice", event: "Report Created", timestamp: at(1, 9) },
  { type: "track", messageId: "a11", userId: "alice", event: "Report Created", timestamp: at(8, 9) },
  { type: "track", messageId: "a12", userId: "alice", event: "Report Shared", timestamp: at(15, 9) },
];
const OTHERS = [
  {
    type: "identify",
    messageId: "b1",
    userId: "bob",
    anonymousId: "anon-b",
    traits: { name: "Bob", email: "bob@acme.test" },
    timestamp: at(0, 11),
  },
  { type: "group", messageId: "b2", userId: "bob", groupId: "acme", traits: { name: "Acme" }, timestamp: at(0, 11, 1) },
  { type: "track", messageId: "b3", userId: "bob", event: "Signed Up", timestamp: at(0, 11, 2) },
  { type: "track", messageId: "b4", userId: "bob", event: "Report Created", timestamp: at(7, 11) },
  { type: "track", messageId: "b5", userId: "bob", event: "Report Created", timestamp: at(21, 11) },
  { type: "identify", messageId: "c1", userId: "carol", traits: { name: "Carol" }, timestamp: at(2, 12) },
  {
    type: "group",
    messageId: "c2",
    userId: "carol",
    groupId: "globex",
    traits: { name: "Globex" },
    timestamp: at(2, 12, 1),
  },
  { type: "track", messageId: "c3", userId: "carol", event: "Signed Up", timestamp: at(2, 12, 2) },
  { type: "track", messageId: "c4", userId: "carol", event: "Report Created", timestamp: at(2, 12, 10) },
  { type: "track", messageId: "c5", userId: "carol", event: "Report Created", timestamp: at(3, 12) },
  { type: "track", messageId: "c6", userId: "carol", event: "Report Created", timestamp: at(14, 12) },
];
const ACTIVE = new Set(["track", "page", "screen"]);

const RANGE = "from=2024-03-04&to=2024-03-31";
const WEEKS = ["2024-03-04", "2024-03-11", "2024-03-18", "2024-03-25"];
const FUNNEL = { steps: ["Signed Up", "Report Created"], windowDays: 14, from: "2024-03-04", to: "2024-03-31" };
const ACTIVATION = {
  milestones: [{ event: "Report Created", minCount: 2 }],
  windowDays: 14,
  period: "week",
  from: "2024-03-04",
  to: "2024-03-31",
};

/** Every report at a level, with parameters that cover the four weeks. */
async function allReports(url: string, level: "user" | "company") {
  const get = (route: string) => query<Record<string, unknown>>(url, `/api/v1/reports/${route}&level=${level}`);
  const postReport = async (name: string, body: object) => {
    const res = await secretPost(url, `/api/v1/reports/${name}`, { ...body, level });
    if (res.status !== 200) throw new Error(`${name}: ${res.status} ${res.text}`);
    return res.json as Record<string, unknown>;
  };
  return {
    activeDaily: await get(`active?${RANGE}&interval=day`),
    active: await get(`active?${RANGE}&interval=week`),
    new: await get(`new?${RANGE}&interval=week`),
    retention: await get(`retention?${RANGE}&period=week&periods=4`),
    retentionUnbounded: await get(`retention?${RANGE}&period=week&periods=4&mode=unbounded`),
    funnel: await postReport("funnel", FUNNEL),
    feature: await get(`feature?${RANGE}&event=Report%20Created&adoptionThreshold=3`),
    activation: await postReport("activation", ACTIVATION),
    lifecycle: await get(`lifecycle?${RANGE}&period=week`),
    power: await get("power?days=28&date=2024-03-31"),
    slipping: await get("slipping?inactiveDays=7&date=2024-03-31"),
    ...(level === "user" ? { visitors: await get(`active?${RANGE}&interval=week&includeAnonymous=true`) } : {}),
  };
}

type Reports = Awaited<ReturnType<typeof allReports>>;

/**
 * What every report must say about Bob and Carol alone, worked out by hand from the data above. At
 * company level acme has only Bob left and globex only Carol, so the figures are the same with the
 * companies' ids and names.
 */
function expectRemaining(r: Reports, level: "user" | "company") {
  const [b, c] = level === "user" ? ["bob", "carol"] : ["acme", "globex"];
  const [bName, cName] = level === "user" ? ["Bob", "Carol"] : ["Acme", "Globex"];
  const series = (counts: number[]) => counts.map((count, i) => ({ period: WEEKS[i], count }));
  // Weeks: Bob 0, 1, 3; Carol 0 (twice), 2.
  expect(r.active).toEqual({ level, interval: "week", series: series([2, 1, 1, 1]) });
  if (r.visitors) expect(r.visitors).toEqual(r.active);
  expect(r.new).toEqual({ level, interval: "week", series: series([2, 0, 0, 0]) });
  expect(r.retention).toEqual({
    level,
    period: "week",
    mode: "bounded",
    cohorts: [{ period: WEEKS[0], size: 2, counts: [2, 1, 1, 1], rates: [1, 0.5, 0.5, 0.5] }],
  });
  // Unbounded: returned at offset k or later. Bob's last return is offset 3, Carol's offset 2.
  expect(r.retentionUnbounded).toMatchObject({
    cohorts: [{ period: WEEKS[0], size: 2, counts: [2, 2, 2, 1], rates: [1, 1, 1, 0.5] }],
  });
  // Bob: Signed Up day 0 11:02, Report Created day 7 11:00; Carol: 12:02 then 12:10 on day 2.
  expect(r.funnel).toEqual({
    level,
    steps: [
      {
        event: "Signed Up",
        count: 2,
        conversionFromPrevious: 1,
        conversionFromStart: 1,
        medianSecondsFromPrevious: null,
      },
      {
        event: "Report Created",
        count: 2,
        conversionFromPrevious: 1,
        conversionFromStart: 1,
        medianSecondsFromPrevious: (7 * 86_400 - 120 + 480) / 2,
      },
    ],
  });
  // Report Created: Bob twice (weeks 1, 3), Carol three times (weeks 0, 0, 2).
  expect(r.feature).toEqual({
    level,
    event: "Report Created",
    active: 2,
    used: 2,
    adopted: 1,
    returned: 2,
    adoptionRate: 1,
    top: [
      { id: c, name: cName, count: 3, lastSeen: at(14, 12) },
      { id: b, name: bName, count: 2, lastSeen: at(21, 11) },
    ],
    series: WEEKS.map((period) => ({ period, used: 1 })),
  });
  // Carol's second Report Created comes 23 h 58 min after her first activity; Bob's second is 21 days after his.
  expect(r.activation).toEqual({
    level,
    period: "week",
    cohorts: [
      {
        period: WEEKS[0],
        size: 2,
        activated: 1,
        pending: 0,
        rate: 0.5,
        milestones: [{ event: "Report Created", minCount: 2, completed: 1 }],
        medianSecondsToActivate: 86_400 - 120,
      },
    ],
  });
  expect(r.lifecycle).toEqual({
    level,
    period: "week",
    series: [
      { period: WEEKS[0], new: 2, returning: 0, resurrecting: 0, dormant: 0 },
      { period: WEEKS[1], new: 0, returning: 1, resurrecting: 0, dormant: -1 },
      { period: WEEKS[2], new: 0, returning: 0, resurrecting: 1, dormant: -1 },
      { period: WEEKS[3], new: 0, returning: 0, resurrecting: 1, dormant: -1 },
    ],
  });
  expect(r.power).toEqual({
    level,
    days: 28,
    date: "2024-03-31",
    histogram: Array.from({ length: 28 }, (_, i) => ({ activeDays: i + 1, entities: i + 1 === 3 ? 2 : 0 })),
    top: [
      { id: b, name: bName, activeDays: 3 },
      { id: c, name: cName, activeDays: 3 },
    ],
  });
  // Inactive for 7 days before 2024-03-31: Carol (last seen day 14); Bob was seen on day 21.
  expect(r.slipping).toEqual({
    level,
    entities: [{ id: c, name: cName, lastSeen: at(14, 12), activeDaysInPrior30: 3 }],
  });
  const ids = JSON.stringify(r);
  for (const gone of ["alice", "anon-a", "Alice", "initech", "Initech"]) expect(ids).not.toContain(`"${gone}"`);
}

async function sendAll(url: string, messages: readonly object[]) {
  const res = await post(url, "/v1/batch", { batch: messages });
  expect(res.status).toBe(200);
  return res.body;
}

describe("deletion requests", () => {
  it("erases a user everywhere, and only them, and keeps their messageIds known", async () => {
    // A week after the last message: every company's last 90 days hold all of them.
    const now = () => Date.parse("2024-04-01T12:00:00.000Z");
    const [t, control] = await Promise.all([testServer(dataDir(), { now }), testServer(dataDir(), { now })]);
    expect(await sendAll(t.url, [...ALICE, ...OTHERS])).toMatchObject({ accepted: 23, duplicates: 0 });
    expect(await sendAll(control.url, OTHERS)).toMatchObject({ accepted: 11 });
    const activity = (list: { type: string }[]) => list.filter((m) => ACTIVE.has(m.type)).length;
    expect(await stats(t.url)).toEqual({ messages: 23, events: activity([...ALICE, ...OTHERS]), duplicates: 0 });

    // Alice is in the reports before.
    const before = { user: await allReports(t.url, "user"), company: await allReports(t.url, "company") };
    expect((before.user.power as { top: unknown[] }).top).toEqual([
      { id: "alice", name: "Alice", activeDays: 4 },
      { id: "bob", name: "Bob", activeDays: 3 },
      { id: "carol", name: "Carol", activeDays: 3 },
    ]);
    expect((before.user.active as { series: { count: number }[] }).series.map((s) => s.count)).toEqual([3, 2, 2, 1]);
    expect((before.company.power as { top: { id: string; activeDays: number }[] }).top).toEqual([
      { id: "acme", name: "Acme", activeDays: 6 },
      { id: "initech", name: "Initech", activeDays: 4 },
      { id: "globex", name: "Globex", activeDays: 3 },
    ]);
    const bobBefore = await query(t.url, "/api/v1/users/bob");
    const carolBefore = await query(t.url, "/api/v1/users/carol");
    const othersBefore = await events(t.url, {});
    const acmeBefore = await query<{ members: unknown[]; topEvents: unknown[] }>(t.url, "/api/v1/companies/acme");
    expect(acmeBefore.members).toHaveLength(2);
    // Acme's track events: Alice's a2 (as anon-a), a5, a6, a10, a11 and a12; Bob's b3, b4 and b5.
    expect(acmeBefore.topEvents).toEqual([
      { event: "Report Created", count: 5 },
      { event: "Signed Up", count: 2 },
      { event: "Report Shared", count: 1 },
      { event: "Viewed Signup", count: 1 },
    ]);
    const statsBefore = await stats(t.url);

    const res = await secretPost(t.url, "/api/v1/deletion-requests", { userId: "alice" });
    expect(res.status).toBe(202);
    const request = res.json as { id: string; userId: string; state: string };
    expect(request).toMatchObject({ userId: "alice", state: "requested", messagesDeleted: null });

    const finished = await eventually("the deletion to finish", async () => {
      const list = await query<{ deletionRequests: { id: string; state: string; messagesDeleted: number }[] }>(
        t.url,
        "/api/v1/deletion-requests?state=finished",
      );
      return list.deletionRequests.find((d) => d.id === request.id);
    });
    // Alice's nine messages with her userId, and three sent under anon-a and anon-a2 before she was known.
    expect(finished).toMatchObject({ userId: "alice", state: "finished", messagesDeleted: 12 });
    expect(typeof (finished as { finishedAt?: unknown }).finishedAt).toBe("string");
    const all = await query<{ deletionRequests: unknown[] }>(t.url, "/api/v1/deletion-requests");
    expect(all.deletionRequests).toHaveLength(1);
    expect(
      (await query<{ deletionRequests: unknown[] }>(t.url, "/api/v1/deletion-requests?state=requested"))
        .deletionRequests,
    ).toEqual([]);

    // Gone: profile, events, links, memberships, traits; the counts drop by what was erased.
    for (const id of ["alice", "anon-a", "anon-a2"]) expect(await status(t.url, `/api/v1/users/${id}`)).toBe(404);
    expect(await events(t.url, { userId: "alice" })).toEqual([]);
    expect(await events(t.url, { anonymousId: "anon-a" })).toEqual([]);
    expect(await events(t.url, { anonymousId: "anon-a2" })).toEqual([]);
    for (const m of ALICE) expect(await events(t.url, { messageId: m.messageId })).toEqual([]);
    expect(await stats(t.url)).toEqual({
      messages: statsBefore.messages - 12,
      events: statsBefore.events - activity(ALICE),
      duplicates: 0,
    });
    const acme = await query<{ users: number; members: { userId: string }[]; traits: unknown }>(
      t.url,
      "/api/v1/companies/acme",
    );
    expect(acme.members.map((m) => m.userId)).toEqual(["bob"]);
    // The whole profile, top events included, is what a server that never saw Alice gives.
    expect(acme).toEqual(await query(control.url, "/api/v1/companies/acme"));
    expect(acme.users).toBe(1);
    expect(acme.traits).toEqual({ name: "Acme" });
    const initech = await send(t.url, "/api/v1/companies/initech", {
      method: "GET",
      headers: { authorization: `Bearer ${SECRET_KEY}` },
    });
    if (initech.status === 200) expect(initech.json).toMatchObject({ users: 0, members: [], events: 0 });
    else expect(initech.status).toBe(404);

    // The others are untouched.
    expect(await query(t.url, "/api/v1/users/bob")).toEqual(bobBefore);
    expect(await query(t.url, "/api/v1/users/carol")).toEqual(carolBefore);
    const aliceIds = new Set(ALICE.map((m) => m.messageId));
    expect(await events(t.url, {})).toEqual(othersBefore.filter((e) => !aliceIds.has(e.messageId)));

    // Every report gives the figures of Bob and Carol alone, as a server that never saw Alice does.
    for (const level of ["user", "company"] as const) {
      const after = await allReports(t.url, level);
      expectRemaining(after, level);
      expect(after).toEqual(await allReports(control.url, level));
    }

    // A client retrying Alice's messages does not bring them back.
    expect(await sendAll(t.url, ALICE)).toMatchObject({ accepted: 0, duplicates: 12 });
    expect(await stats(t.url)).toEqual({ messages: 11, events: activity(OTHERS), duplicates: 12 });
    expect(await status(t.url, "/api/v1/users/alice")).toBe(404);
    expectRemaining(await allReports(t.url, "user"), "user");
  });

  it("after compaction, brings back the company traits and links that the erased user's messages had displaced", async () => {
    const day = (d: number) => `2026-03-0${d}T10:00:00.000Z`;
    // Dana's group call sets acme's plan after Bob's, so "pro" wins; Dana's identify links anon-x
    // before Bob's does, so anon-x is Dana's. Compaction then keeps only those winners.
    const dana = [
      { type: "group", userId: "dana", groupId: "acme", traits: { plan: "pro" }, timestamp: day(2), messageId: "d-g" },
      { type: "identify", userId: "dana", anonymousId: "anon-x", timestamp: day(2), messageId: "d-i" },
      { type: "track", anonymousId: "anon-x", event: "Opened", timestamp: day(1), messageId: "d-t" },
    ];
    const others = [
      {
        type: "group",
        userId: "bob",
        groupId: "acme",
        traits: { name: "Acme", plan: "free" },
        timestamp: day(1),
        messageId: "b-g",
      },
      { type: "identify", userId: "bob", anonymousId: "anon-x", timestamp: day(3), messageId: "b-i" },
      { type: "track", userId: "bob", event: "Opened", timestamp: day(4), messageId: "b-t" },
    ];
    const [t, control] = await Promise.all([testServer(), testServer()]);
    expect(await sendAll(t.url, [...dana, ...others])).toMatchObject({ accepted: 6 });
    expect(await sendAll(control.url, others)).toMatchObject({ accepted: 3 });
    expect((await query<{ traits: unknown }>(t.url, "/api/v1/companies/acme")).traits).toEqual({
      name: "Acme",
      plan: "pro",
    });
    await (t.server.storage as DuckDBEngine).compact();

    const res = await secretPost(t.url, "/api/v1/deletion-requests", { userId: "dana" });
    expect(res.status).toBe(202);
    const id = (res.json as { id: string }).id;
    await eventually("the deletion to finish", async () => {
      const list = await query<{ deletionRequests: { id: string }[] }>(
        t.url,
        "/api/v1/deletion-requests?state=finished",
      );
      return list.deletionRequests.find((d) => d.id === id);
    });

    // As on a server that never saw Dana: Bob's plan, and anon-x linked to Bob by his identify.
    const acme = await query<{ traits: unknown; traitsSetBy: unknown }>(t.url, "/api/v1/companies/acme");
    expect(acme.traits).toEqual({ name: "Acme", plan: "free" });
    expect(acme).toEqual(await query(control.url, "/api/v1/companies/acme"));
    const bob = await query<{ anonymousIds: { anonymousId: string; linkedBy: { messageId: string } }[] }>(
      t.url,
      "/api/v1/users/bob",
    );
    expect(bob.anonymousIds.map((a) => [a.anonymousId, a.linkedBy.messageId])).toEqual([["anon-x", "b-i"]]);
    expect(bob).toEqual(await query(control.url, "/api/v1/users/bob"));
    expect(await query(t.url, "/api/v1/users/anon-x")).toEqual(await query(control.url, "/api/v1/users/anon-x"));
  });

  it("refuses bad requests and unknown states, and erases nothing of an unknown user", async () => {
    const t = await testServer();
    for (const body of [{}, { userId: "" }, { userId: 7 }, { userId: null }, "[]", "null"]) {
      const res = await secretPost(t.url, "/api/v1/deletion-requests", body);
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    expect((await secretPost(t.url, "/api/v1/deletion-requests", { userId: "x" }, "sk_wrong")).status).toBe(401);
    expect(await status(t.url, "/api/v1/deletion-requests?state=done")).toBe(400);
    expect(await status(t.url, "/api/v1/deletion-requests?state=")).toBe(400);
    expect(await status(t.url, "/api/v1/deletion-requests", "sk_wrong")).toBe(401);
    expect(await query(t.url, "/api/v1/deletion-requests")).toEqual({ deletionRequests: [] });

    // A user nobody has heard of is erased too: nothing.
    await sendAll(t.url, [{ type: "track", messageId: "kept", userId: "frank", event: "Stayed" }]);
    const res = await secretPost(t.url, "/api/v1/deletion-requests", { userId: "nobody" });
    expect(res.status).toBe(202);
    const id = (res.json as { id: string }).id;
    const done = await eventually("the deletion to finish", async () => {
      const list = await query<{ deletionRequests: { id: string }[] }>(
        t.url,
        "/api/v1/deletion-requests?state=finished",
      );
      return list.deletionRequests.find((d) => d.id === id);
    });
    expect(done).toMatchObject({ userId: "nobody", messagesDeleted: 0 });
    expect(await stats(t.url)).toEqual({ messages: 1, events: 1, duplicates: 0 });
  });

  it("carries out at the next start a request left unfinished", async () => {
    const dir = dataDir();
    const t = await testServer(dir);
    const dave = [
      { type: "identify", messageId: "d1", userId: "dave", anonymousId: "anon-d", timestamp: at(0, 9) },
      { type: "page", messageId: "d2", anonymousId: "anon-d", timestamp: at(0, 8) },
      { type: "track", messageId: "d3", userId: "dave", event: "Opened", timestamp: at(0, 10) },
      { type: "track", messageId: "e1", userId: "erin", event: "Opened", timestamp: at(0, 10) },
    ];
    await sendAll(t.url, dave);
    const [workspace] = await t.server.storage.listWorkspaces();
    if (!workspace) throw new Error("no default workspace");
    // Recorded as the route records it, but never scheduled: as if the server stopped right after.
    const id = randomUUID();
    await t.server.storage.requestDeletion(workspace.id, {
      id,
      userId: "dave",
      state: "requested",
      requestedAt: new Date().toISOString(),
      startedAt: null,
      finishedAt: null,
      messagesDeleted: null,
    });
    await t.close();

    const again = await testServer(dir);
    const done = await eventually("the resumed deletion", async () => {
      const list = await query<{ deletionRequests: { id: string; messagesDeleted: number }[] }>(
        again.url,
        "/api/v1/deletion-requests?state=finished",
      );
      return list.deletionRequests.find((d) => d.id === id);
    });
    expect(done).toMatchObject({ userId: "dave", state: "finished", messagesDeleted: 3 });
    expect(await status(again.url, "/api/v1/users/dave")).toBe(404);
    expect(await stats(again.url)).toEqual({ messages: 1, events: 1, duplicates: 0 });
    expect((await events(again.url, {})).map((e) => e.messageId)).toEqual(["e1"]);
  });
});
