/**
 * Overload soak: the real server in a child process, fed by more concurrent batch senders than it can
 * commit, for a long while. It must shed the excess with 503 and Retry-After, keep its memory bounded,
 * and store exactly what it acknowledged.
 *
 *   npm run soak                    # ten minutes
 *   SOAK_SECONDS=60 npm run soak    # a quick check
 *
 * Environment:
 *   SOAK_SECONDS          duration of the overload (default 600)
 *   SOAK_SENDERS          concurrent senders, each with one batch in flight (default 64)
 *   SOAK_BATCH            messages per batch (default 100)
 *   SOAK_MAX_QUEUED_ROWS  the server's SOLSTICE_MAX_QUEUED_ROWS (default 5000)
 *   SOAK_FROM_SOURCES=1   run the server from src/ with tsx instead of building dist/ first
 *   SOAK_LOG_LEVEL        the server's SOLSTICE_LOG_LEVEL (default warn: an access line per request
 *                         would cost the server more than the requests)
 *
 * Memory: some of it grows with what is stored, by design. The de-duplication index holds a hash per
 * message (in a table that doubles); DuckDB's buffer pool keeps the blocks it wrote at a checkpoint,
 * about the size of the database file, until its memory_limit. The RSS is also shown without these two
 * ("w/o data"). DuckDB also keeps what was committed since its last checkpoint in memory, until the
 * write-ahead log reaches the checkpoint threshold (256 MB): the RSS climbs in a sawtooth whose first
 * tooth may take minutes; the WAL size shows where it is. What must not grow is the rest: the queue,
 * the requests in flight, the buffers. The verdict compares the peak without the data over the first
 * third of the run with the one over the last third, once the first third has seen a checkpoint; a
 * shorter run is not judged.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileSize, freePort, sleep } from "./common.js";
import { environmentOnly } from "./usage.js";

environmentOnly(import.meta.filename);

const ROOT = path.resolve(import.meta.dirname, "..");
const HOST = "127.0.0.1";
const WRITE_KEY = "wk_soak_write_key_0123456789abcdef";
const SECRET_KEY = "sk_soak_secret_key_0123456789abcdef";
const MB = 1024 * 1024;

function positive(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return n;
}

const SECONDS = positive("SOAK_SECONDS", 600);
const SENDERS = positive("SOAK_SENDERS", 64);
const BATCH = positive("SOAK_BATCH", 100);
const MAX_QUEUED_ROWS = positive("SOAK_MAX_QUEUED_ROWS", 5000);
const FROM_SOURCES = ["1", "true"].includes(process.env.SOAK_FROM_SOURCES ?? "");
const LOG_LEVEL = process.env.SOAK_LOG_LEVEL ?? "warn";

const mb = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;
const int = (n: number) => Math.round(n).toLocaleString("en-US");
const pct = (n: number) => `${(n * 100).toFixed(1)}%`;

/** Resident memory of a process, from /proc (Linux). */
function rssBytes(pid: number): number | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

/**
 * Bytes of the server's de-duplication table after `count` messages, as HashSet128 sizes it: a
 * power-of-two number of 16-byte slots, at least 1024 at start, doubled beyond 70% full.
 */
function dedupBytes(count: number): number {
  let capacity = 1024;
  while ((count + 1) * 10 > capacity * 7) capacity *= 2;
  return capacity * 16;
}

/** RSS less what grows with the data by design: the de-duplication index and the cached database blocks. */
function withoutData(second: Second): number {
  return (second.rss ?? 0) - dedupBytes(second.ackedSoFar) - second.dbBytes;
}

interface Server {
  child: ChildProcess;
  pid: number;
  url: string;
  port: number;
  exited: Promise<number | string | null>;
}

/** The server of this run, so that a failure or an interrupt does not leave it running. */
let running: ChildProcess | undefined;

async function startServer(dataDir: string): Promise<Server> {
  const port = await freePort(HOST);
  const entry = FROM_SOURCES ? ["--import", "tsx", "src/cli/main.ts"] : ["dist/cli/main.js"];
  const child = spawn(
    process.execPath,
    [...entry, "serve", "--port", String(port), "--host", HOST, "--data", dataDir],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        SOLSTICE_WRITE_KEY: WRITE_KEY,
        SOLSTICE_SECRET_KEY: SECRET_KEY,
        SOLSTICE_LOG_LEVEL: LOG_LEVEL,
        SOLSTICE_MAX_QUEUED_ROWS: String(MAX_QUEUED_ROWS),
        SOLSTICE_RATE_LIMIT: "0",
      },
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  running = child;
  if (child.pid === undefined) throw new Error("the server did not start");
  const exited = new Promise<number | string | null>((resolve) =>
    child.on("exit", (code, signal) => resolve(code ?? signal)),
  );
  const url = `http://${HOST}:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error("the server exited during start-up");
    try {
      const res = await fetch(`${url}/healthz`);
      await res.arrayBuffer();
      if (res.status === 200) return { child, pid: child.pid, url, port, exited };
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error("the server did not answer /healthz within 60 s");
    }
    await sleep(100);
  }
}

/** A batch body with a slot in every messageId, filled per request: making the load must cost little. */
const SLOT = "@@@@@@@@@@";
function batchTemplate(sender: number): string {
  const events = ["Report Created", "Dashboard Viewed", "Invite Sent", "Search Performed", "File Uploaded"];
  return JSON.stringify({
    batch: Array.from({ length: BATCH }, (_, k) => ({
      type: "track",
      messageId: `${SLOT}-${k}`,
      userId: `soak-user-${sender}-${k % 20}`,
      event: events[k % events.length],
      properties: { plan: k % 3 === 0 ? "pro" : "free", index: k, path: `/app/projects/${k % 50}` },
      context: { groupId: `soak-co-${sender % 16}`, library: { name: "soak", version: "1.0.0" } },
      timestamp: new Date(Date.UTC(2025, 0, 1) + k * 1000).toISOString(),
    })),
  });
}

interface Second {
  rss: number | undefined;
  ok: number;
  overloaded: number;
  other: number;
  network: number;
  accepted: number;
  queueDepth: number | undefined;
  walBytes: number;
  dbBytes: number;
  /** Messages acknowledged from the start up to this second. */
  ackedSoFar: number;
}

class Totals {
  requests = 0;
  ok = 0;
  overloaded = 0;
  overloadedWithoutRetryAfter = 0;
  other = new Map<number, number>();
  network = 0;
  acked = 0;
  /** Messages of requests that got no answer: stored or not, nobody knows. */
  unknown = 0;
  okLatencies: number[] = [];
  current: Omit<Second, "rss" | "queueDepth" | "ackedSoFar" | "walBytes" | "dbBytes"> = this.fresh();

  fresh() {
    return { ok: 0, overloaded: 0, other: 0, network: 0, accepted: 0 };
  }
}

function postBatch(
  agent: http.Agent,
  port: number,
  body: string,
): Promise<{ status: number; retryAfter?: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: HOST,
        port,
        method: "POST",
        path: "/v1/batch",
        agent,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString("base64")}`,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const retryAfter = res.headers["retry-after"];
          resolve({
            status: res.statusCode ?? 0,
            ...(typeof retryAfter === "string" ? { retryAfter } : {}),
            text: Buffer.concat(chunks).toString("utf8"),
          });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function metric(url: string, name: string): Promise<number | undefined> {
  try {
    const res = await fetch(`${url}/metrics`);
    const text = await res.text();
    const line = text.split("\n").find((l) => l.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.slice(name.length + 1));
  } catch {
    return undefined;
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

async function main(): Promise<number> {
  if (!FROM_SOURCES) {
    process.stdout.write("building dist/ (npm run build)…\n");
    const build = spawnSync("npm", ["run", "build"], { cwd: ROOT, stdio: "inherit" });
    if (build.status !== 0) throw new Error("npm run build failed; or run with SOAK_FROM_SOURCES=1");
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "solstice-soak-"));
  const server = await startServer(dataDir);
  process.stdout.write(
    `soak: ${SECONDS} s, ${SENDERS} senders × ${BATCH} messages per batch, SOLSTICE_MAX_QUEUED_ROWS=${MAX_QUEUED_ROWS}, ` +
      `server pid ${server.pid} from ${FROM_SOURCES ? "src/ (tsx)" : "dist/"}, data in ${dataDir}\n`,
  );
  const startRss = rssBytes(server.pid) ?? 0;
  process.stdout.write(`RSS after start-up: ${mb(startRss)}\n\n`);

  const totals = new Totals();
  const seconds: Second[] = [];
  const agent = new http.Agent({ keepAlive: true, maxSockets: SENDERS });
  let requestNumber = 0;
  let stopping = false;
  const started = performance.now();

  const sender = async (index: number) => {
    const template = batchTemplate(index);
    while (!stopping) {
      const body = template.replaceAll(SLOT, (requestNumber++).toString(36).padStart(SLOT.length, "0"));
      const sentAt = performance.now();
      totals.requests++;
      try {
        const res = await postBatch(agent, server.port, body);
        if (res.status === 200) {
          const accepted = (JSON.parse(res.text) as { accepted: number }).accepted;
          totals.ok++;
          totals.acked += accepted;
          totals.current.ok++;
          totals.current.accepted += accepted;
          totals.okLatencies.push(performance.now() - sentAt);
        } else if (res.status === 503) {
          totals.overloaded++;
          totals.current.overloaded++;
          if (res.retryAfter === undefined || !/^\d+$/.test(res.retryAfter)) totals.overloadedWithoutRetryAfter++;
        } else {
          totals.other.set(res.status, (totals.other.get(res.status) ?? 0) + 1);
          totals.current.other++;
          if (totals.other.get(res.status) === 1) {
            process.stdout.write(`unexpected ${res.status}: ${res.text.slice(0, 300)}\n`);
          }
        }
      } catch {
        totals.network++;
        totals.unknown += BATCH;
        totals.current.network++;
        await sleep(50);
      }
    }
  };
  const senders = Array.from({ length: SENDERS }, (_, i) => sender(i));

  process.stdout.write("   t  RSS MB   w/o data   200/s  503/s  other  msgs/s  queue  WAL MB  DB MB\n");
  const database = path.join(dataDir, "solstice.duckdb");
  const deadline = started + SECONDS * 1000;
  for (let t = 1; performance.now() < deadline; t++) {
    await sleep(Math.max(0, started + t * 1000 - performance.now()));
    const second: Second = {
      ...totals.current,
      rss: rssBytes(server.pid),
      queueDepth: await metric(server.url, "solstice_writer_queue_depth"),
      ackedSoFar: totals.acked,
      walBytes: fileSize(`${database}.wal`),
      dbBytes: fileSize(database),
    };
    totals.current = totals.fresh();
    seconds.push(second);
    if (t <= 5 || t % 10 === 0 || performance.now() >= deadline) {
      const rest = second.rss === undefined ? Number.NaN : withoutData(second);
      process.stdout.write(
        `${String(t).padStart(4)}  ${(second.rss === undefined ? "n/a" : (second.rss / MB).toFixed(0)).padStart(6)}` +
          `  ${(rest / MB).toFixed(0).padStart(9)}  ${String(second.ok).padStart(6)}  ${String(second.overloaded).padStart(5)}` +
          `  ${String(second.other + second.network).padStart(5)}  ${int(second.accepted).padStart(6)}` +
          `  ${String(second.queueDepth ?? "n/a").padStart(5)}  ${(second.walBytes / MB).toFixed(0).padStart(6)}` +
          `  ${(second.dbBytes / MB).toFixed(0).padStart(5)}\n`,
      );
    }
  }
  stopping = true;
  await Promise.all(senders);
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();

  // Everything answered; the writer has nothing left to commit for these requests.
  const statsRes = await fetch(`${server.url}/api/v1/stats`, { headers: { authorization: `Bearer ${SECRET_KEY}` } });
  const stats = (await statsRes.json()) as { messages: number; duplicates: number };
  const finalRss = rssBytes(server.pid) ?? Number.NaN;

  const signalled = performance.now();
  server.child.kill("SIGTERM");
  const exit = await Promise.race([server.exited, sleep(30_000).then(() => "timeout" as const)]);
  const shutdownMs = performance.now() - signalled;
  if (exit === "timeout") server.child.kill("SIGKILL");
  fs.rmSync(dataDir, { recursive: true, force: true });

  const rss = seconds.map((s) => s.rss ?? 0);
  const rest = seconds.map(withoutData);
  const third = Math.max(1, Math.floor(seconds.length / 3));
  const max = (list: number[]) => list.reduce((a, b) => Math.max(a, b), 0);
  const firstRss = max(rss.slice(0, third));
  const lastRss = max(rss.slice(-third));
  const firstRest = max(rest.slice(0, third));
  const lastRest = max(rest.slice(-third));
  // A checkpoint shows as the WAL shrinking; before the first one, the memory has not reached its plateau.
  const checkpoints = seconds.flatMap((s, i) => (i > 0 && s.walBytes < (seconds[i - 1]?.walBytes ?? 0) ? [i] : []));
  const judged = checkpoints.length > 0 && (checkpoints[0] ?? Number.POSITIVE_INFINITY) < third;
  // Bounded: what is not the de-duplication index peaks no higher late in the run than early, give or
  // take a tenth and 32 MB for the allocator and DuckDB's caches settling.
  const stable = lastRest <= firstRest * 1.1 + 32 * MB;
  const verdict = !judged
    ? `not judged: ${checkpoints.length === 0 ? "no checkpoint" : "no checkpoint in the first third"} (WAL peaked at ${mb(max(seconds.map((s) => s.walBytes)))}); run longer`
    : stable
      ? "yes"
      : "NO";
  const answered = totals.ok + totals.overloaded + [...totals.other.values()].reduce((a, b) => a + b, 0);
  const latencies = totals.okLatencies.sort((a, b) => a - b);
  const storedOk = stats.messages >= totals.acked && stats.messages <= totals.acked + totals.unknown;

  const lines = [
    "",
    `duration                ${elapsed.toFixed(1)} s`,
    `requests                ${int(totals.requests)} (${int(totals.requests / elapsed)}/s)`,
    `  200                   ${int(totals.ok)}`,
    `  503                   ${int(totals.overloaded)} (${pct(totals.overloaded / Math.max(1, answered))} of answers), ${int(totals.overloadedWithoutRetryAfter)} without a Retry-After in seconds`,
    `  other statuses        ${totals.other.size === 0 ? "none" : [...totals.other].map(([s, n]) => `${s}×${n}`).join(", ")}`,
    `  no answer             ${int(totals.network)}`,
    `acknowledged            ${int(totals.acked)} messages (${int(totals.acked / elapsed)}/s)`,
    `latency of 200s         p50 ${percentile(latencies, 0.5).toFixed(0)} ms, p99 ${percentile(latencies, 0.99).toFixed(0)} ms`,
    `stored (GET /stats)     ${int(stats.messages)}, duplicates ${int(stats.duplicates)}: ${stats.messages === totals.acked ? "equal to acknowledged" : storedOk ? `acknowledged + ${int(stats.messages - totals.acked)} of unanswered requests` : "MISMATCH"}`,
    `RSS                     start ${mb(startRss)}, peak ${mb(max(rss))}, final ${mb(finalRss)}`,
    `RSS peak, first third   ${mb(firstRss)} (${mb(firstRest)} without the data)`,
    `RSS peak, last third    ${mb(lastRss)} (${mb(lastRest)} without the data: de-duplication index est. ${mb(dedupBytes(totals.acked))}, database file ${mb(seconds.at(-1)?.dbBytes ?? 0)})`,
    `checkpoints             ${checkpoints.length === 0 ? "none" : checkpoints.map((i) => `${i + 1} s`).join(", ")}`,
    `memory stabilised       ${verdict}`,
    `shutdown on SIGTERM     ${exit === "timeout" ? "did not exit within 30 s" : `exit ${exit} in ${shutdownMs.toFixed(0)} ms`}`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  const failed =
    !storedOk || (judged && !stable) || totals.other.size > 0 || totals.overloadedWithoutRetryAfter > 0 || exit !== 0;
  return failed ? 1 : 0;
}

process.on("SIGINT", () => {
  running?.kill("SIGKILL");
  process.exit(130);
});

main().then(
  (code) => process.exit(code),
  (err) => {
    running?.kill("SIGKILL");
    process.stderr.write(`soak: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
