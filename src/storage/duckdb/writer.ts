import type { DuckDBConnection, DuckDBPreparedStatement } from "@duckdb/node-api";
import { HashSet128 } from "../dedup/hash-set.js";
import type { MessageHash } from "../dedup/message-hash.js";
import { EngineClosedError, OverloadedError } from "../errors.js";
import { ACTIVITY_TYPES, type StoredMessage, type WriteOutcome } from "../types.js";
import {
  ADD_COUNTS,
  COMMIT_STATEMENTS,
  type CommitShape,
  CREATE_COMMIT_TABLES,
  commitSteps,
  LOAD_COMMIT_ROWS,
} from "./commit-sql.js";
import { Compactor } from "./compactor.js";

interface Job {
  rows: readonly StoredMessage[];
  hashes: readonly MessageHash[];
  resolve(outcomes: WriteOutcome[]): void;
  reject(err: unknown): void;
}

export interface WriterOptions {
  maxQueuedRows: number;
  maxCommitRows: number;
  /**
   * Once writes pause for this long (ms), the derived tables are compacted if at least
   * `idleCompactionMessages` messages were committed since the last compaction.
   */
  idleCompactionMs?: number;
  idleCompactionMessages?: number;
}

/**
 * Compaction when writes pause: between two due compactions (every tenth of the data) each commit
 * adds a row per actor it touched, so actor_summary can hold several times its compacted size and
 * every profile and report reads the excess. A pause of a couple of seconds folds it away.
 */
const IDLE_COMPACTION_MS = 2_000;
const IDLE_COMPACTION_MESSAGES = 10_000;

/** Observes each commit; used for metrics and logs. */
export type CommitListener = (info: { rows: number; stored: number; ms: number; error?: unknown }) => void;

const ACTIVITY = new Set<string>(ACTIVITY_TYPES);
const DAY_MS = 86_400_000;

/** The smallest write that proves the database writable: one row of `meta`, through the write-ahead log. */
const PROBE = "INSERT OR REPLACE INTO meta VALUES ('last_write_probe', now()::VARCHAR)";

/**
 * Whether a DuckDB error invalidated the database. A failed checkpoint does (a full disk while the
 * write-ahead log is folded into the file, also after a commit that is itself durable): every later
 * statement of that instance fails, and only closing and opening it again recovers.
 */
export function invalidates(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return message.startsWith("FATAL Error") || message.includes("database has been invalidated");
}

/**
 * Group commit: every write() queued while a commit is running joins the next one, so concurrent
 * requests share one transaction and one fsync. One writer per database; the only code that writes.
 * A messageId already stored (or earlier in the same commit) is counted as a duplicate, not stored.
 *
 * The JavaScript thread does as little as it can per message: de-duplicate against the in-memory
 * hash set and serialise the new rows once; DuckDB parses them and fills every table (see
 * commit-sql.ts) on its own threads while this one goes on reading requests.
 */
export class GroupCommitWriter {
  private queue: Job[] = [];
  private tasks: (() => Promise<void>)[] = [];
  private queued = 0;
  private draining: Promise<void> | null = null;
  private closed = false;
  private idleTimer: NodeJS.Timeout | null = null;
  /** An idle compaction was tried since the last commit: a failed one waits for the next commit. */
  private idleTried = false;
  private readonly compactor: Compactor;
  /** The compaction running now, on the compactor's own connection. */
  private compacting: Promise<void> | null = null;
  /** Tasks under withoutCompaction(): no compaction starts while any runs. */
  private holds = 0;
  onCommit: CommitListener | null = null;
  /** Called whenever `lastError` is set. */
  onFailure: ((err: unknown) => void) | null = null;
  /**
   * The error of the last commit, or of a task or compaction that invalidated the database; cleared by
   * the next commit or probe() that succeeds.
   */
  lastError: unknown = null;

  /** `compaction` is a connection for the compactor alone: compactions run beside the commits. */
  constructor(
    private readonly connection: DuckDBConnection,
    compaction: DuckDBConnection,
    private readonly seen: HashSet128,
    private readonly options: WriterOptions,
  ) {
    this.compactor = new Compactor(compaction, seen.size);
  }

  /**
   * The two statements with parameters, prepared once. The others read `commit_rows` and are planned
   * per commit, as one script: a plan made for an empty table would carry its statistics.
   */
  private prepared = new Map<string, DuckDBPreparedStatement>();

  async open(): Promise<void> {
    for (const sql of CREATE_COMMIT_TABLES) await this.connection.run(sql);
    for (const sql of [ADD_COUNTS, LOAD_COMMIT_ROWS]) this.prepared.set(sql, await this.connection.prepare(sql));
  }

  private async run(sql: string, params: Record<string, string>): Promise<void> {
    const statement = this.prepared.get(sql);
    if (!statement) throw new Error("statement not prepared");
    statement.bind(params);
    await statement.run();
  }

  get depth(): number {
    return this.queued;
  }

  write(rows: readonly StoredMessage[], hashes: readonly MessageHash[]): Promise<WriteOutcome[]> {
    if (this.closed) return Promise.reject(new EngineClosedError());
    if (rows.length === 0) return Promise.resolve([]);
    if (this.queued > 0 && this.queued + rows.length > this.options.maxQueuedRows) {
      return Promise.reject(new OverloadedError(1));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ rows, hashes, resolve, reject });
      this.queued += rows.length;
      if (!this.draining) this.draining = this.drain();
    });
  }

  /** Stops taking writes, commits what is queued, and stops a compaction that is running (it rolls back). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    if (this.compacting) this.compactor.interrupt();
    await this.compacting;
    await this.draining;
    for (const statement of this.prepared.values()) statement.destroySync();
    this.prepared.clear();
  }

  /**
   * Runs `task` on the writer's connection between two commits, so that it sees no half-written
   * commit and no commit sees it half-done.
   */
  exclusive<T>(task: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new EngineClosedError());
    return new Promise<T>((resolve, reject) => {
      this.tasks.push(() =>
        task(this.connection).then(resolve, (err) => {
          if (invalidates(err)) this.failed(err);
          reject(err);
        }),
      );
      if (!this.draining) this.draining = this.drain();
    });
  }

  /** Tries the smallest write between two commits; clears `lastError` when it succeeds. */
  probe(): Promise<void> {
    return this.exclusive(async (connection) => {
      await connection.run(PROBE);
      this.lastError = null;
    });
  }

  /**
   * Compacts the derived tables beside the commits; settles when what was committed before the call
   * is compacted. A failure leaves them correct, only larger, and is reported through onCommit.
   */
  async compact(all = false): Promise<void> {
    while (this.compacting) await this.compacting;
    if (this.closed) return;
    const run = this.compactor.compact(all).catch((err: unknown) => {
      // Stopped by close(): nothing failed.
      if (this.closed) return;
      if (invalidates(err)) this.failed(err);
      this.onCommit?.({ rows: 0, stored: 0, ms: 0, error: err });
    });
    this.compacting = run.finally(() => {
      this.compacting = null;
    });
    await this.compacting;
  }

  /**
   * Runs `task` with no compaction running: for tasks that delete rows of the derived tables, which
   * would conflict with a compaction deleting the same rows (one of the two would fail).
   */
  async withoutCompaction<T>(task: () => Promise<T>): Promise<T> {
    this.holds++;
    try {
      while (this.compacting) await this.compacting;
      return await task();
    } finally {
      this.holds--;
    }
  }

  /** Starts a compaction unless one runs or a task holds them off; does not wait for it. */
  private startCompaction(): void {
    if (this.compacting || this.holds > 0 || this.closed) return;
    this.compact().catch(() => undefined);
  }

  private failed(err: unknown): void {
    this.lastError = err;
    this.onFailure?.(err);
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 || this.tasks.length > 0) {
      const task = this.tasks.shift();
      if (task) {
        await task();
        continue;
      }
      let rows = 0;
      let take = 0;
      while (
        take < this.queue.length &&
        (take === 0 || rows + (this.queue[take]?.rows.length ?? 0) <= this.options.maxCommitRows)
      ) {
        rows += this.queue[take]?.rows.length ?? 0;
        take++;
      }
      const jobs = this.queue.splice(0, take);
      await this.commit(jobs, rows);
      this.queued -= rows;
      if (this.compactor.due) this.startCompaction();
    }
    this.draining = null;
    this.compactWhenIdle();
  }

  /** Compacts once the writer has had nothing to do for a while, if enough was committed since the last time. */
  private compactWhenIdle(): void {
    const enough = this.options.idleCompactionMessages ?? IDLE_COMPACTION_MESSAGES;
    // Once per pause, and not while writes fail (a full disk): the compaction would fail too.
    if (this.closed || this.idleTimer !== null || this.idleTried || this.lastError !== null) return;
    if (this.compactor.pending < enough) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.closed || this.draining || this.lastError !== null || this.compactor.pending < enough) return;
      this.idleTried = true;
      this.startCompaction();
    }, this.options.idleCompactionMs ?? IDLE_COMPACTION_MS);
    this.idleTimer.unref();
  }

  private async commit(jobs: Job[], rows: number): Promise<void> {
    const started = performance.now();
    const inGroup = new HashSet128(rows * 2);
    const outcomes: WriteOutcome[][] = [];
    const counts = new Map<string, { w: string; m: number; e: number; d: number }>();
    const stored: (StoredMessage & { hash?: MessageHash })[] = [];
    const shape: CommitShape = { links: false, groups: false, identifies: false, activity: false, tracks: false };
    let first = Number.POSITIVE_INFINITY;
    let last = Number.NEGATIVE_INFINITY;
    for (const job of jobs) {
      const out: WriteOutcome[] = [];
      for (let i = 0; i < job.rows.length; i++) {
        const row = job.rows[i] as StoredMessage;
        const hash = job.hashes[i] as MessageHash;
        let c = counts.get(row.workspaceId);
        if (!c) {
          c = { w: row.workspaceId, m: 0, e: 0, d: 0 };
          counts.set(row.workspaceId, c);
        }
        if (this.seen.has(hash[0], hash[1], hash[2], hash[3]) || !inGroup.add(hash[0], hash[1], hash[2], hash[3])) {
          out.push("duplicate");
          c.d++;
          continue;
        }
        out.push("stored");
        // The row is this writer's from here on: carrying its hash saves DuckDB a second list to unnest.
        (row as StoredMessage & { hash?: MessageHash }).hash = hash;
        stored.push(row);
        c.m++;
        // The days of every message: message_days has rows for them all, the activity tables for some.
        if (row.timestamp < first) first = row.timestamp;
        if (row.timestamp > last) last = row.timestamp;
        if (ACTIVITY.has(row.type)) {
          c.e++;
          shape.activity = true;
        }
        if (row.userId !== null && (row.anonymousId !== null || row.type === "alias")) shape.links = true;
        if (row.type === "group") shape.groups = true;
        if (row.type === "track") shape.tracks = true;
        if (row.type === "identify") shape.identifies = true;
      }
      outcomes.push(out);
    }
    try {
      await this.connection.run("BEGIN TRANSACTION");
      await this.run(ADD_COUNTS, { counts: JSON.stringify([...counts.values()]) });
      if (stored.length > 0) {
        await this.run(LOAD_COMMIT_ROWS, { rows: JSON.stringify(stored) });
        await this.connection.run(`${commitSteps(shape).join(";\n")};\nCOMMIT`);
      } else {
        await this.connection.run("COMMIT");
      }
    } catch (err) {
      // Nothing of a failed commit is remembered: its messages' hashes join `seen` only once COMMIT
      // succeeds, so that a retry is stored rather than taken for a duplicate. When the commit was
      // durable and only the checkpoint after it failed, the database is invalidated and reopened, and
      // the reopened database's hashes make the retry the duplicate it is.
      this.failed(err);
      for (const job of jobs) job.reject(err);
      this.onCommit?.({ rows, stored: 0, ms: performance.now() - started, error: err });
      try {
        await this.connection.run("ROLLBACK");
      } catch {
        // The failed statement may already have ended the transaction.
      }
      try {
        // Rows of the failed commit must not leak into the next one.
        await this.connection.run(COMMIT_STATEMENTS.clear.join(";\n"));
      } catch {
        // The next commit fails too, and tries again.
      }
      return;
    }
    this.lastError = null;
    this.idleTried = false;
    inGroup.forEach((h0, h1, h2, h3) => {
      this.seen.add(h0, h1, h2, h3);
    });
    // Local days lie within a day of UTC days, whatever the zone.
    if (stored.length > 0) this.compactor.touched(Math.floor(first / DAY_MS) - 1, Math.floor(last / DAY_MS) + 1);
    this.compactor.committed(stored.length);
    this.onCommit?.({ rows, stored: stored.length, ms: performance.now() - started });
    for (const [i, job] of jobs.entries()) job.resolve(outcomes[i] as WriteOutcome[]);
  }
}
