import { execFileSync } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DuckDBEngine } from "../src/storage/duckdb/engine.js";
import { StorageError } from "../src/storage/errors.js";
import type { StoredMessage } from "../src/storage/types.js";
import { storedMessage } from "./helpers/engine.js";
import { basicAuth, SECRET_KEY, startTestServer, type TestServer } from "./helpers/server.js";
import { events, type RawResponse, send, stats } from "./helpers/tracking.js";

/**
 * A real full disk: the data directory is a small tmpfs of its own, filled to the last byte by a
 * filler file while the server runs. Ingestion must answer 503 with Retry-After (never a 500, never
 * hang), readiness must say 503, and once the filler is deleted the server must take events again
 * by itself, with every acknowledged message stored exactly once, also after a restart.
 */

/** Room for an empty database and more than the 64 MiB the server wants free before it reports ready. */
const TMPFS_SIZE = "96m";
/** How long the server may take to recover once space is back. */
const RECOVERY_MS = 30_000;
/** The bound on any answer while the disk is full. */
const ANSWER_WITHIN_MS = 5_000;

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "solstice-disk-full-"));
const filler = path.join(dataDir, "filler");
const backupTarget = path.join(os.tmpdir(), `solstice-disk-full-backup-${randomUUID()}.duckdb`);

/** Mounts the tmpfs on the data directory; the reason it could not, or null. */
function mountTmpfs(): string | null {
  let reason = "mounting a tmpfs needs root";
  if (process.getuid?.() === 0) {
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", `size=${TMPFS_SIZE}`, "tmpfs", dataDir], { stdio: "pipe" });
      return null;
    } catch (err) {
      const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
      reason = `mounting a tmpfs needs root and tmpfs support: ${stderr || (err as Error).message}`;
    }
  }
  fs.rmdirSync(dataDir);
  return reason;
}

let mounted = false;
function unmount(): void {
  if (mounted) {
    try {
      execFileSync("umount", [dataDir], { stdio: "pipe" });
    } catch {
      // Still busy (a file left open by a failed test): detach it now, freed once the last user goes.
      execFileSync("umount", ["-l", dataDir], { stdio: "pipe" });
    }
    mounted = false;
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.rmSync(backupTarget, { force: true });
}

const skipReason = mountTmpfs();
mounted = skipReason === null;
if (skipReason) console.warn(`disk-full tests skipped: ${skipReason}`);
// The last resort when the tests did not run to afterAll.
process.once("exit", unmount);

let t: TestServer | undefined;
afterAll(async () => {
  await t?.close().catch(() => undefined);
  unmount();
});

/** Writes the filler file until the filesystem has no byte left, then gives back `leave` bytes. */
function fillDisk(leave = 0): void {
  const fd = fs.openSync(filler, "w");
  try {
    for (const size of [1 << 20, 4096, 512]) {
      const chunk = Buffer.alloc(size, 1);
      try {
        for (;;) fs.writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  const free = fs.statfsSync(dataDir);
  expect(free.bavail * free.bsize).toBeLessThan(4096);
  if (leave > 0) fs.truncateSync(filler, fs.statSync(filler).size - leave);
}

function freeDisk(): void {
  fs.rmSync(filler);
}

const RUN = randomUUID().slice(0, 8);
/** One user for everything sent here, so that their timeline is every message stored. */
const USER = `disk-full-${RUN}`;
let seq = 0;
const newId = () => `disk-full-${RUN}-${++seq}`;

/** Incompressible, so that a message never fits in the slack of a block already allocated. */
const padding = () => randomBytes(1024).toString("base64");

/** Messages that got 200, and those answered 503 (sent again once the disk has room). */
const acknowledged = new Set<string>();
const refused = new Map<string, Sent>();

interface Sent {
  route: string;
  body: Record<string, unknown>;
  ids: string[];
}

function batch(n: number, ids: string[] = Array.from({ length: n }, newId)): Sent {
  const messages = ids.map((messageId) => ({
    type: "track",
    userId: USER,
    event: "Disk Tested",
    messageId,
    properties: { padding: padding() },
  }));
  return { route: "/v1/batch", body: { batch: messages }, ids };
}

function single(route: string, messageId = newId()): Sent {
  const body = { userId: USER, event: "Disk Tested", messageId, properties: { padding: padding() + padding() } };
  return { route, body, ids: [messageId] };
}

/** Every kind of Tracking API request: a batch under two routes, and single calls under three. */
function traffic(): Sent[] {
  const sdkBatch = batch(10);
  return [batch(20), { ...sdkBatch, route: "/sdk/batch" }, single("/sdk/track"), single("/v1/track"), single("/v1/t")];
}

async function deliver(sent: Sent): Promise<RawResponse> {
  const res = await send(t?.url ?? "", sent.route, {
    headers: { "content-type": "application/json", authorization: basicAuth() },
    body: JSON.stringify(sent.body),
  });
  if (res.status === 200) {
    for (const id of sent.ids) {
      acknowledged.add(id);
      refused.delete(id);
    }
  } else {
    for (const id of sent.ids) if (!acknowledged.has(id)) refused.set(id, sent);
  }
  return res;
}

async function status(route: string): Promise<number> {
  return (await fetch(`${t?.url}${route}`, { signal: AbortSignal.timeout(ANSWER_WITHIN_MS) })).status;
}

/** The answer every request must get while the disk is full: 503, JSON, Retry-After, promptly. */
async function expectUnavailable(sent: Sent): Promise<void> {
  const started = Date.now();
  const res = await deliver(sent);
  expect(Date.now() - started).toBeLessThan(ANSWER_WITHIN_MS);
  expect(res.status, `${sent.route}: ${res.text}`).toBe(503);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  expect(res.json).toMatchObject({ success: false, status: 503, code: "storage_unavailable" });
  expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
}

/** Waits for readiness and for a new message to be stored, without any restart. */
async function expectRecovery(): Promise<number> {
  const started = Date.now();
  for (;;) {
    const ready = await status("/readyz");
    if (ready === 200 && (await deliver(single("/v1/track"))).status === 200) return Date.now() - started;
    if (Date.now() - started > RECOVERY_MS) throw new Error(`not recovered in ${RECOVERY_MS} ms (readyz ${ready})`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Sends again every message that was answered 503; each must now be stored. */
async function resendRefused(): Promise<void> {
  const requests = new Set(refused.values());
  expect(requests.size).toBeGreaterThan(0);
  for (const sent of requests) {
    const res = await deliver(sent);
    expect(res.status, res.text).toBe(200);
    // A message whose commit failed was not remembered as stored: its retry is not a duplicate.
    expect(res.json).toMatchObject({ accepted: sent.ids.length, duplicates: 0 });
  }
  expect(refused.size).toBe(0);
}

/** Every acknowledged message is stored exactly once, and nothing else is. */
async function expectStoredOnce(): Promise<void> {
  const stored = (await events(t?.url ?? "", { userId: USER })).map((e) => e.messageId);
  expect(stored.length).toBeLessThan(1000);
  expect(stored.length).toBe(new Set(stored).size);
  expect(new Set(stored)).toEqual(acknowledged);
  expect((await stats(t?.url ?? "")).messages).toBe(acknowledged.size);
}

function metric(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return Number(line?.split(" ")[1]);
}

describe.skipIf(!mounted)(`a full disk${skipReason ? ` (skipped: ${skipReason})` : ""}`, () => {
  it("takes events while the disk has room", async () => {
    t = await startTestServer(dataDir);
    for (const sent of traffic()) expect((await deliver(sent)).status).toBe(200);
    expect(await status("/readyz")).toBe(200);
    await expectStoredOnce();
  });

  it("answers 503 with Retry-After, and readiness 503, while the disk is full", async () => {
    fillDisk();
    for (const sent of traffic()) await expectUnavailable(sent);
    // Again, now that the writer has failed: still answered, still 503.
    for (const sent of traffic()) await expectUnavailable(sent);
    expect(await status("/readyz")).toBe(503);
    expect(await status("/healthz")).toBe(200);
    const metrics = await (await fetch(`${t?.url}/metrics`)).text();
    expect(metric(metrics, "solstice_commit_failures_total")).toBeGreaterThanOrEqual(2);
  });

  it("recovers by itself once space is freed, and stores what it refused when it is sent again", async () => {
    freeDisk();
    expect(await expectRecovery()).toBeLessThan(RECOVERY_MS);
    expect(await status("/readyz")).toBe(200);
    await resendRefused();
    for (const sent of traffic()) expect((await deliver(sent)).status).toBe(200);
    await expectStoredOnce();
  });

  it("reopens by itself a database that a checkpoint on the full disk invalidated", async () => {
    // Enough new data that folding it into the database file needs new blocks.
    for (let i = 0; i < 10; i++) expect((await deliver(batch(20))).status).toBe(200);
    // A read of the events waits for their derivation: the backup's checkpoint is what meets the full disk.
    const events = await send(t?.url ?? "", "/api/v1/events?limit=1", {
      method: "GET",
      headers: { authorization: `Bearer ${SECRET_KEY}` },
    });
    expect(events.status, events.text).toBe(200);
    fillDisk();
    // A backup checkpoints the database first; on a full disk the checkpoint fails and DuckDB
    // invalidates the whole database, reads included, until it is opened again.
    const token = fs.readFileSync(path.join(dataDir, "admin.token"), "utf8").trim();
    const backup = await send(t?.url ?? "", "/admin/backup", {
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ path: backupTarget }),
    });
    expect(backup.status, backup.text).toBe(503);
    expect(backup.headers.get("retry-after")).not.toBeNull();
    for (const sent of traffic()) await expectUnavailable(sent);
    expect(await status("/readyz")).toBe(503);
    const read = await send(t?.url ?? "", "/api/v1/stats", {
      method: "GET",
      headers: { authorization: `Bearer ${SECRET_KEY}` },
    });
    expect(read.status, read.text).toBe(503);
    expect(read.headers.get("retry-after")).not.toBeNull();

    const reopensBefore = metric(await (await fetch(`${t?.url}/metrics`)).text(), "solstice_database_reopens_total");
    freeDisk();
    expect(await expectRecovery()).toBeLessThan(RECOVERY_MS);
    const reopensAfter = metric(await (await fetch(`${t?.url}/metrics`)).text(), "solstice_database_reopens_total");
    expect(reopensAfter).toBe(reopensBefore + 1);
    await resendRefused();
    // An acknowledged message sent again is a duplicate: the reopened database knows every messageId.
    const again = batch(0, [...acknowledged].slice(0, 5));
    expect((await deliver(again)).json).toMatchObject({ accepted: 0, duplicates: 5 });
    await expectStoredOnce();
  });

  it("keeps every acknowledged message across a restart", async () => {
    await t?.close();
    t = await startTestServer(dataDir);
    expect(await status("/readyz")).toBe(200);
    await expectStoredOnce();
    expect((await deliver(single("/sdk/track"))).status).toBe(200);
    await expectStoredOnce();
  });
});

describe.skipIf(!mounted)(`a commit on a nearly full disk${skipReason ? ` (skipped: ${skipReason})` : ""}`, () => {
  it("is durable although the checkpoint after it failed: its retry is a duplicate, once reopened", async () => {
    await t?.close();
    t = undefined;
    const reopened: string[] = [];
    // A small checkpoint threshold makes commits fold the write-ahead log into the file often; with
    // a little room left, the log still takes a commit when the checkpoint after it no longer fits.
    const engine = new DuckDBEngine({
      dataDir: path.join(dataDir, "engine"),
      maxQueuedRows: 10_000,
      maxCommitRows: 1_000,
      checkpointThreshold: "256KB",
      // No derivation until a read asks for one: the commits must be what meets the full disk here, and
      // a derivation's commit folding the log into the file would invalidate the database first.
      deriveDelayMs: 600_000,
      onProgress: (message) => {
        if (message.startsWith("reopened")) reopened.push(message);
      },
    });
    await engine.open();
    try {
      fillDisk(2 * 1024 * 1024);
      let sent = 0;
      const message = (): StoredMessage =>
        storedMessage({
          workspaceId: "ws",
          messageId: `m-${++sent}`,
          type: "track",
          event: "Disk Tested",
          userId: USER,
          timestamp: Date.now(),
          properties: { padding: padding() },
          context: {},
        });
      let stored = 0;
      let failed: StoredMessage[] = [];
      while (failed.length === 0) {
        const rows = Array.from({ length: 20 }, message);
        try {
          await engine.write(rows);
          stored += rows.length;
        } catch (err) {
          expect(err).toBeInstanceOf(StorageError);
          failed = rows;
        }
        expect(sent).toBeLessThan(10_000);
      }
      expect((await engine.health()).writable).toBe(false);
      await expect(engine.stats("ws")).rejects.toThrow(/invalidated/);

      freeDisk();
      const deadline = Date.now() + RECOVERY_MS;
      while (!(await engine.health()).writable) {
        expect(Date.now()).toBeLessThan(deadline);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(reopened).toHaveLength(1);
      expect(await engine.write(failed)).toEqual(failed.map(() => "duplicate"));
      expect((await engine.stats("ws")).messages).toBe(stored + failed.length);
      const ids = (await engine.readEvents({ workspaceId: "ws", limit: 10_000 })).map((e) => e.messageId);
      expect(ids).toHaveLength(stored + failed.length);
      expect(new Set(ids).size).toBe(ids.length);
    } finally {
      await engine.close();
    }
  });
});
