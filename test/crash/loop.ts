import { basicAuth, type ChildServer, freePort, query, spawnServer } from "../helpers/server.js";

/**
 * The crash loop: load the server from concurrent clients, SIGKILL it at a random moment, restart it
 * on the same data directory and check that every acknowledged message survived exactly once, then
 * resend everything and check that only what was missing gets added. Runs a few cycles in `npm test`
 * and as many as asked from `test/crash/run.ts`.
 */

export interface CrashLoopOptions {
  /** Data directory shared by every cycle; the caller creates and removes it. */
  dataDir: string;
  cycles: number;
  /** Seeds every random choice but the scheduler's, so that a failing run can be replayed. */
  seed: number;
  /** Concurrent clients, each with one request in flight. */
  clients?: number;
  /** Messages per batch are drawn from 1 to this. */
  maxBatch?: number;
  /** The kill comes at a random moment in this range after the clients start, in ms. */
  killAfterMs?: readonly [number, number];
  /** Batches of earlier cycles resent with each cycle's own, to check de-duplication across restarts. */
  resendEarlierBatches?: number;
  /**
   * Read back every stored message on every this-many cycles and the last (default 1: always). The
   * other cycles read back their own messages and check the counts, which keeps long runs linear.
   */
  fullCheckEvery?: number;
  /** Tracks the server processes, so that the caller can kill them whatever happens. */
  processes?: ServerProcesses;
  log?: (line: string) => void;
}

export interface CycleReport {
  cycle: number;
  killAfterMs: number;
  /** How the killed process ended: "SIGKILL" unless it died on its own first. */
  killedBy: number | string | null;
  requests: number;
  /** Requests that failed at the connection, or answered something other than 200. */
  unacknowledgedRequests: number;
  sent: number;
  acknowledged: number;
  /** Messages of this cycle found after the restart, acknowledged or not. */
  storedAfterRestart: number;
  /** Of those, the ones whose request was not acknowledged: committed just before the kill. */
  storedUnacknowledged: number;
  /** Acknowledged messages missing after the restart: of any cycle so far on a full check, else of this one. */
  lost: number;
  /** Extra copies of messageIds, after the restart and after the resend. */
  duplicated: number;
  /** Stored messageIds that no client sent. */
  phantom: number;
  resent: number;
  resendAccepted: number;
  resendDuplicates: number;
  /** Messages stored after the resend, as the stats count them: every messageId sent so far. */
  storedAfterResend: number;
  /** What went wrong, in words; empty when the cycle passed. */
  problems: string[];
}

export interface CrashLoopReport {
  seed: number;
  cycles: CycleReport[];
  totals: {
    cycles: number;
    sent: number;
    acknowledged: number;
    /** Not acknowledged, yet committed before the kill: allowed, and resent as duplicates. */
    storedUnacknowledged: number;
    lost: number;
    duplicated: number;
    phantom: number;
    problems: number;
  };
}

/** mulberry32: small, fast, and the same sequence for the same seed on every platform. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seed from the environment variable when set, else a fresh one. */
export function crashSeed(env: string | undefined): number {
  const given = env === undefined || env === "" ? Number.NaN : Number(env);
  return Number.isInteger(given) ? given >>> 0 : Math.floor(Math.random() * 2 ** 32);
}

/**
 * The server processes started for a test. Whatever happens to the test (a failed assertion, a
 * timeout, the worker exiting), `killAll` or the exit hook leaves no server running behind it.
 */
export class ServerProcesses {
  private readonly live = new Set<ChildServer>();
  private readonly onExit = () => {
    for (const server of this.live) server.child.kill("SIGKILL");
  };

  constructor() {
    process.on("exit", this.onExit);
  }

  async start(dataDir: string): Promise<ChildServer> {
    const server = await spawnServer(dataDir, await freePort());
    this.live.add(server);
    void server.exited.then(() => this.live.delete(server));
    return server;
  }

  /** SIGKILL, as the OOM killer would: no shutdown code runs. Resolves once the process is gone. */
  kill(server: ChildServer): Promise<number | string | null> {
    server.child.kill("SIGKILL");
    return server.exited;
  }

  async killAll(): Promise<void> {
    await Promise.all([...this.live].map((server) => this.kill(server)));
    process.off("exit", this.onExit);
  }
}

interface BatchAnswer {
  status: number;
  accepted: number;
  duplicates: number;
}

/** POST /v1/batch of track calls with these messageIds; throws on connection errors. */
/** The users that postBatch spreads a batch's messages over. */
const USERS = 7;

export async function postBatch(
  url: string,
  messageIds: readonly string[],
  event = "Crash Loop",
): Promise<BatchAnswer> {
  const batch = messageIds.map((messageId, i) => ({
    type: "track",
    event,
    userId: `user-${i % USERS}`,
    messageId,
    properties: { i },
  }));
  const res = await fetch(`${url}/v1/batch`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: basicAuth() },
    body: JSON.stringify({ batch }),
  });
  const body = (await res.json()) as Partial<BatchAnswer>;
  return { status: res.status, accepted: Number(body.accepted ?? 0), duplicates: Number(body.duplicates ?? 0) };
}

/**
 * The stored messageIds (of one event name, or all; of one user's timeline, or everyone's), one entry
 * per stored row, paging through GET /api/v1/events.
 */
export async function storedMessageIds(url: string, event?: string, userId?: string): Promise<string[]> {
  const ids: string[] = [];
  const filter =
    (event === undefined ? "" : `&event=${encodeURIComponent(event)}`) +
    (userId === undefined ? "" : `&userId=${encodeURIComponent(userId)}`);
  let cursor: string | null = null;
  do {
    const route: string = `/api/v1/events?limit=1000${filter}${cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`}`;
    const page = await query<{ events: { messageId: string }[]; nextCursor: string | null }>(url, route);
    for (const stored of page.events) ids.push(stored.messageId);
    cursor = page.nextCursor;
  } while (cursor !== null);
  return ids;
}

export interface Stats {
  messages: number;
  events: number;
  duplicates: number;
}

/** Extra copies in a list of ids: its length minus its distinct count. */
function extraCopies(ids: readonly string[]): number {
  return ids.length - new Set(ids).size;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `work` for each item with at most `concurrency` at a time. */
async function eachLimited<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

interface Batch {
  event: string;
  ids: string[];
}

/**
 * Runs the cycles on one data directory and reports what each found. A lost, duplicated or miscounted
 * message is reported in `problems`, not thrown; a server that does not come back after a kill throws.
 */
export async function runCrashLoop(options: CrashLoopOptions): Promise<CrashLoopReport> {
  const clients = options.clients ?? 8;
  const maxBatch = options.maxBatch ?? 50;
  const [killMin, killMax] = options.killAfterMs ?? [300, 2500];
  const resendEarlier = options.resendEarlierBatches ?? 20;
  const fullCheckEvery = options.fullCheckEvery ?? 1;
  const log = options.log ?? ((line: string) => console.log(line));
  const processes = options.processes ?? new ServerProcesses();
  const random = seededRandom(options.seed);
  log(
    `crash loop: seed ${options.seed} (set SOLSTICE_CRASH_SEED=${options.seed} to replay), data in ${options.dataDir}`,
  );

  const sentAll = new Set<string>();
  const acknowledgedAll = new Set<string>();
  const batchesAll: Batch[] = [];
  // Duplicates the stats must show: the load sends each messageId once, so only resends add to them.
  let expectedDuplicates = 0;
  const reports: CycleReport[] = [];

  let server = await processes.start(options.dataDir);
  try {
    for (let cycle = 1; cycle <= options.cycles; cycle++) {
      const problems: string[] = [];
      const killAfterMs = Math.round(killMin + random() * (killMax - killMin));
      const clientSeeds = Array.from({ length: clients }, () => Math.floor(random() * 2 ** 32));
      const tag = `s${options.seed}-c${cycle}`;
      // Each cycle sends its own event name, so that a partial check can read back just this cycle.
      const event = `Crash Loop ${cycle}`;
      const full = cycle % fullCheckEvery === 0 || cycle === options.cycles;
      // Every earlier message was stored once when the previous cycle ended, or a problem was reported.
      const storedEarlier = sentAll.size;

      // Load, then kill.
      const batches: Batch[] = [];
      const sent = new Set<string>();
      const acknowledged = new Set<string>();
      let requests = 0;
      let unacknowledgedRequests = 0;
      let stopped = false;
      const client = async (k: number) => {
        const rand = seededRandom(clientSeeds[k] as number);
        let seq = 0;
        while (!stopped) {
          const n = 1 + Math.floor(rand() * maxBatch);
          const ids = Array.from({ length: n }, () => `${tag}-k${k}-${seq++}`);
          batches.push({ event, ids });
          for (const id of ids) sent.add(id);
          requests++;
          let answer: BatchAnswer;
          try {
            answer = await postBatch(server.url, ids, event);
          } catch {
            // Refused, reset or cut short by the kill: not acknowledged, so the client may resend.
            unacknowledgedRequests++;
            continue;
          }
          if (answer.status !== 200) {
            unacknowledgedRequests++;
            continue;
          }
          if (answer.accepted !== n || answer.duplicates !== 0) {
            problems.push(
              `a batch of ${n} new messages answered accepted ${answer.accepted}, duplicates ${answer.duplicates}`,
            );
          }
          for (const id of ids) acknowledged.add(id);
        }
      };
      const load = Promise.all(Array.from({ length: clients }, (_, k) => client(k)));
      await sleep(killAfterMs);
      stopped = true;
      const killedBy = await processes.kill(server);
      await load;
      for (const id of sent) sentAll.add(id);
      for (const id of acknowledged) acknowledgedAll.add(id);
      if (killedBy !== "SIGKILL") problems.push(`the server ended with ${killedBy} before the kill`);

      // Restart on the same data and check what survived: everything, or this cycle's messages and the counts.
      server = await processes.start(options.dataDir);
      const statsBefore = await query<Stats>(server.url, "/api/v1/stats");
      const before = await storedMessageIds(server.url, full ? undefined : event);
      const found = new Set(before);
      const wasStored = (id: string) => found.has(id) || (!full && !sent.has(id));
      const lostIds = [...(full ? acknowledgedAll : acknowledged)].filter((id) => !found.has(id));
      const phantomIds = [...found].filter((id) => !(full ? sentAll : sent).has(id));
      let duplicated = extraCopies(before);
      let storedAfterRestart = 0;
      let storedUnacknowledged = 0;
      for (const id of sent) {
        if (!found.has(id)) continue;
        storedAfterRestart++;
        if (!acknowledged.has(id)) storedUnacknowledged++;
      }
      if (lostIds.length > 0)
        problems.push(`lost ${lostIds.length} acknowledged messages, e.g. ${lostIds.slice(0, 3)}`);
      if (duplicated > 0) problems.push(`${duplicated} duplicate rows after the restart`);
      if (phantomIds.length > 0) problems.push(`${phantomIds.length} stored messageIds were never sent`);
      // A user's timeline is read through message_days, a derived table: what was stored before the
      // kill and not yet derived is derived at the restart, so the users' timelines hold every row.
      const timelines: string[] = [];
      for (let u = 0; u < USERS; u++)
        timelines.push(...(await storedMessageIds(server.url, full ? undefined : event, `user-${u}`)));
      if (timelines.length !== before.length || timelines.some((id) => !found.has(id))) {
        problems.push(
          `the users' timelines hold ${timelines.length} messages after the restart; ${before.length} are stored`,
        );
      }
      // Their profiles count events from the activity tables, derived likewise; the stats count them as
      // they are stored.
      let profiled = 0;
      for (let u = 0; u < USERS; u++) {
        profiled += (await query<{ events: number }>(server.url, `/api/v1/users/user-${u}`)).events;
      }
      if (profiled !== statsBefore.events) {
        problems.push(
          `the users' profiles count ${profiled} events after the restart; the stats ${statsBefore.events}`,
        );
      }
      if (
        statsBefore.messages !== storedEarlier + storedAfterRestart ||
        (full && statsBefore.messages !== before.length)
      ) {
        problems.push(
          `stats count ${statsBefore.messages} messages after the restart; want ${storedEarlier} earlier + ${storedAfterRestart} of this cycle` +
            (full ? `, and ${before.length} rows are stored` : ""),
        );
      }

      // Resend everything this cycle sent, acknowledged or not, and a sample of earlier batches.
      const earlier = batchesAll.slice();
      const resend = batches.slice();
      for (let i = 0; i < resendEarlier && earlier.length > 0; i++) {
        resend.push(...earlier.splice(Math.floor(random() * earlier.length), 1));
      }
      let resent = 0;
      let wantAccepted = 0;
      for (const batch of resend) {
        resent += batch.ids.length;
        for (const id of batch.ids) if (!wasStored(id)) wantAccepted++;
      }
      const wantDuplicates = resent - wantAccepted;
      let resendAccepted = 0;
      let resendDuplicates = 0;
      await eachLimited(resend, clients, async (batch) => {
        const answer = await postBatch(server.url, batch.ids, batch.event);
        if (answer.status !== 200) problems.push(`a resent batch answered ${answer.status}`);
        resendAccepted += answer.accepted;
        resendDuplicates += answer.duplicates;
      });
      expectedDuplicates += wantDuplicates;
      batchesAll.push(...batches);
      if (resendAccepted !== wantAccepted || resendDuplicates !== wantDuplicates) {
        problems.push(
          `resending ${resent} messages (${wantDuplicates} stored): accepted ${resendAccepted} (want ${wantAccepted}), duplicates ${resendDuplicates} (want ${wantDuplicates})`,
        );
      }

      const after = await storedMessageIds(server.url, full ? undefined : event);
      const storedAfter = new Set(after);
      const duplicatedAfter = extraCopies(after);
      duplicated += duplicatedAfter;
      const missing = [...(full ? sentAll : sent)].filter((id) => !storedAfter.has(id));
      const statsAfter = await query<Stats>(server.url, "/api/v1/stats");
      if (duplicatedAfter > 0) problems.push(`${duplicatedAfter} duplicate rows after the resend`);
      if (missing.length > 0) problems.push(`${missing.length} sent messages still missing after the resend`);
      if (full && after.length !== sentAll.size) {
        problems.push(`${after.length} rows stored after the resend; ${sentAll.size} distinct messageIds were sent`);
      }
      if (statsAfter.messages !== sentAll.size || statsAfter.duplicates !== expectedDuplicates) {
        problems.push(
          `stats after the resend: ${statsAfter.messages} messages, ${statsAfter.duplicates} duplicates; want ${sentAll.size} and ${expectedDuplicates}`,
        );
      }

      const report: CycleReport = {
        cycle,
        killAfterMs,
        killedBy,
        requests,
        unacknowledgedRequests,
        sent: sent.size,
        acknowledged: acknowledged.size,
        storedAfterRestart,
        storedUnacknowledged,
        lost: lostIds.length,
        duplicated,
        phantom: phantomIds.length,
        resent,
        resendAccepted,
        resendDuplicates,
        storedAfterResend: statsAfter.messages,
        problems,
      };
      reports.push(report);
      log(
        `cycle ${cycle}${full ? "" : " (partial check)"}: killed after ${killAfterMs} ms; sent ${report.sent} in ${requests} requests, ` +
          `acknowledged ${report.acknowledged}, stored after restart ${storedAfterRestart}; ` +
          `lost ${report.lost}, duplicated ${duplicated}; resent ${resent}: accepted ${resendAccepted}, ` +
          `duplicates ${resendDuplicates}; stored ${statsAfter.messages}${problems.length ? `; PROBLEMS: ${problems.join("; ")}` : ""}`,
      );
    }
  } finally {
    await processes.kill(server);
  }

  const sum = (pick: (r: CycleReport) => number) => reports.reduce((total, r) => total + pick(r), 0);
  const totals = {
    cycles: reports.length,
    sent: sum((r) => r.sent),
    acknowledged: sum((r) => r.acknowledged),
    storedUnacknowledged: sum((r) => r.storedUnacknowledged),
    lost: sum((r) => r.lost),
    duplicated: sum((r) => r.duplicated),
    phantom: sum((r) => r.phantom),
    problems: sum((r) => r.problems.length),
  };
  log(
    `crash loop totals (seed ${options.seed}): ${totals.cycles} cycles, sent ${totals.sent}, acknowledged ` +
      `${totals.acknowledged}, stored unacknowledged ${totals.storedUnacknowledged}, lost ${totals.lost}, ` +
      `duplicated ${totals.duplicated}, problems ${totals.problems}`,
  );
  return { seed: options.seed, cycles: reports, totals };
}
