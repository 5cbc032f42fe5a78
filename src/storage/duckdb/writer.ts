import type { DuckDBConnection, DuckDBPreparedStatement, DuckDBValue } from "@duckdb/node-api";
import { HashSet128 } from "../dedup/hash-set.js";
import type { MessageHash } from "../dedup/message-hash.js";
import { EngineClosedError, errorMessage, OverloadedError } from "../errors.js";
import { ACTIVITY_TYPES, type StoredMessage, type WriteOutcome } from "../types.js";
import {
  ADD_COUNTS,
  type CommitShape,
  CREATE_COMMIT_TABLES,
  committedRows,
  DERIVATION_STATEMENTS,
  derivationSteps,
  EVERY_SHAPE,
  LOAD_COMMIT_ROWS,
  loadCommitted,
  loadRows,
  storedRows,
  storeSteps,
} from "./commit-sql.js";
import { Compactor } from "./compactor.js";
import { failingAlone } from "./halving.js";

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
  /** How long a commit's derivation waits for later commits to share it (ms; DERIVE_DELAY_MS when absent). */
  deriveDelayMs?: number;
  /** The most messages one derivation takes on (MAX_DERIVE_MESSAGES when absent), a commit at least. */
  maxDeriveMessages?: number;
  /** The most track event times one slice of a compaction merges (EVENT_TIMES_SLICE when absent). */
  eventTimesSlice?: number;
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

/** Observes each derivation of the identity and activity tables: the messages it took on, its time. */
export type DeriveListener = (info: { messages: number; ms: number; error?: unknown }) => void;

/** A stored message that the derivation could not take on, even alone; see quarantined_messages. */
export interface QuarantinedMessage {
  workspaceId: string;
  messageId: string;
  error: string;
}

/**
 * Observes the quarantine: a message put in it, or, at start-up, how many quarantined messages the
 * derivation took on after all (`released`) and how many stay.
 */
export type QuarantineListener = (
  info: { message: QuarantinedMessage } | { released: number; remaining: number },
) => void;

/**
 * Observes each compaction of the derived tables: its time, and whether it rewrote the activity
 * tables whole (`full`) or only the days that gained rows; a failed one has `error` instead.
 */
export type CompactListener = (info: { ms: number; full?: boolean; error?: unknown }) => void;

const ACTIVITY = new Set<string>(ACTIVITY_TYPES);
const DAY_MS = 86_400_000;
/** After a derivation fails, the next is tried this much later (or sooner, when a read asks for it). */
const DERIVE_RETRY_MS = 1_000;
/**
 * A commit's derivation waits this long for later commits to share it, unless a read or a task needs
 * it first or DERIVE_NOW_MESSAGES wait: fewer, larger derivations leave the commits more of the CPU.
 */
const DERIVE_DELAY_MS = 100;
const DERIVE_NOW_MESSAGES = 20_000;
/**
 * A backlog (after a crash, or a derivation that failed for a while) is derived in slices of whole
 * commits of at most this many messages, so that no transaction holds all of it.
 */
const MAX_DERIVE_MESSAGES = 100_000;
const NO_SHAPE: Readonly<CommitShape> = {
  links: false,
  groups: false,
  identifies: false,
  activity: false,
  tracks: false,
};

function mergeShape(into: CommitShape, from: Readonly<CommitShape>): void {
  into.links ||= from.links;
  into.groups ||= from.groups;
  into.identifies ||= from.identifies;
  into.activity ||= from.activity;
  into.tracks ||= from.tracks;
}

/** The smallest write that proves the database writable: one row of `meta`, through the write-ahead log. */
const PROBE = "INSERT OR REPLACE INTO meta VALUES ('last_write_probe', now()::VARCHAR)";

/**
 * Whether a DuckDB error invalidated the database. A failed checkpoint does (a full disk while the
 * write-ahead log is folded into the file, also after a commit that is itself durable): every later
 * statement of that instance fails, and only closing and opening it again recovers.
 */
export function invalidates(err: unknown): boolean {
  const message = errorMessage(err);
  return message.startsWith("FATAL Error") || message.includes("database has been invalidated");
}

/**
 * Whether a DuckDB error is about the values it was given (a conversion, a value out of range, a
 * constraint): one a message can cause. Others (a missing table, an I/O error, memory, an internal
 * error) are the database's, and every message would seem to fail alone: none is quarantined for them.
 */
export function blamesTheData(err: unknown): boolean {
  return /^(Conversion|Invalid Input|Out of Range|Constraint) Error/.test(errorMessage(err));
}

/**
 * Group commit: every write() queued while a commit is running joins the next one, so concurrent
 * requests share one transaction and one fsync. One writer per database; the only code that writes.
 * A messageId already stored (or earlier in the same commit) is counted as a duplicate, not stored.
 *
 * The JavaScript thread does as little as it can per message: de-duplicate against the in-memory
 * hash set and serialise the new rows once; DuckDB parses them and stores them (see commit-sql.ts)
 * on its own threads while this one goes on reading requests.
 *
 * A commit stores the messages, numbered by commit, their hashes and the workspaces' counts: all a
 * write needs to be durable and answered. The derivation, on a connection of its own, then fills
 * the identity and activity tables from the stored messages of every commit not yet derived, in one
 * transaction that records the last commit number it took. It runs beside the next commits, so a
 * commit's cost does not grow with the dozen statements of the derived tables, and under load one
 * derivation takes on several commits. Readers of the derived tables call caughtUp() first: a
 * read made after a write was answered sees that write. After a crash, open() derives the commits
 * that were stored and not derived.
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
  onDerive: DeriveListener | null = null;
  onCompact: CompactListener | null = null;
  onQuarantine: QuarantineListener | null = null;
  /** Called whenever `lastError` is set. */
  onFailure: ((err: unknown) => void) | null = null;
  /**
   * The error of the last commit, or of a task or compaction that invalidated the database; cleared by
   * the next commit or probe() that succeeds.
   */
  lastError: unknown = null;

  /** The number of the last commit that stored messages. */
  private lastSeq = 0;
  /** The derived tables hold the messages of the commits up to this number. */
  private derived = 0;
  /** The commits after `derived` that stored messages, in order: what their messages contain, and how many. */
  private pending: { seq: number; shape: CommitShape; messages: number }[] = [];
  /** Messages of the commits in `pending`. */
  private pendingMessages = 0;
  private deriving: Promise<void> | null = null;
  private deriveError: unknown = null;
  /** Messages in quarantined_messages. */
  private quarantined = 0;
  private deriveRetry: NodeJS.Timeout | null = null;
  private deriveTimer: NodeJS.Timeout | null = null;
  /** caughtUp() calls waiting for the derivation of commit `seq`. */
  private waiters: { seq: number; resolve(): void; reject(err: unknown): void }[] = [];

  /**
   * `compaction` and `derivation` are connections for the compactor and the derivation alone: both
   * run beside the commits.
   */
  constructor(
    private readonly connection: DuckDBConnection,
    compaction: DuckDBConnection,
    private readonly derivation: DuckDBConnection,
    private readonly seen: HashSet128,
    private readonly options: WriterOptions,
  ) {
    this.compactor = new Compactor(compaction, seen.size, this.options.eventTimesSlice);
  }

  /**
   * The two statements with parameters, prepared once. The others read `commit_rows` and are planned
   * per commit, as one script: a plan made for an empty table would carry its statistics.
   */
  private prepared = new Map<string, DuckDBPreparedStatement>();

  /**
   * Prepares both connections and derives what a crash left underived: commits stored after the last
   * derivation, whose shape is not known, so every derivation runs on them.
   */
  async open(): Promise<void> {
    for (const connection of [this.connection, this.derivation]) {
      for (const sql of CREATE_COMMIT_TABLES) await connection.run(sql);
    }
    for (const sql of [ADD_COUNTS, LOAD_COMMIT_ROWS]) this.prepared.set(sql, await this.connection.prepare(sql));
    const [row] = (
      await this.connection.runAndReadAll(
        "SELECT (SELECT max(seq) FROM derived_through), (SELECT coalesce(max(seq), 0) FROM messages)",
      )
    ).getRows();
    this.derived = Number(row?.[0] ?? 0);
    // The newest commits' messages may all have been erased since.
    this.lastSeq = Math.max(this.derived, Number(row?.[1] ?? 0));
    await this.releaseQuarantined();
    if (this.lastSeq > this.derived) {
      const commits = await this.connection.runAndReadAll(
        "SELECT seq, count(*) FROM messages WHERE seq > $derived GROUP BY seq ORDER BY seq",
        { derived: this.derived },
      );
      for (const [seq, messages] of commits.getRows()) {
        this.pending.push({ seq: Number(seq), shape: { ...EVERY_SHAPE }, messages: Number(messages) });
        this.pendingMessages += Number(messages);
      }
      // A message that fails alone is quarantined and the derivation goes on without it; another
      // failure keeps the writer from opening.
      while (this.derived < this.lastSeq) await this.derive();
    }
  }

  /** Messages that the derivation could not take on, left out of the derived tables. */
  get quarantinedCount(): number {
    return this.quarantined;
  }

  /** Takes note that `count` quarantined messages were erased. */
  forgetQuarantined(count: number): void {
    this.quarantined -= count;
  }

  /**
   * At start-up, tries the quarantined messages again, in case this version derives them: all at
   * once first, then, if that fails, each alone. One that derives leaves the quarantine in the same
   * transaction. A message of a commit not yet derived leaves it anyway, to be tried with its commit
   * (and quarantined again if it still fails).
   */
  private async releaseQuarantined(): Promise<void> {
    const connection = this.derivation;
    const [row] = (await connection.runAndReadAll("SELECT count(*) FROM quarantined_messages")).getRows();
    const total = Number(row?.[0] ?? 0);
    if (total === 0) return;
    await connection.run("DELETE FROM quarantined_messages WHERE seq > $derived", { derived: this.derived });
    const quarantined = "SELECT workspace_id, message_id, seq FROM quarantined_messages";
    /** Derives the quarantined messages that `which` (a condition on quarantined_messages q) keeps, and releases them. */
    const release = async (which: string, params: Record<string, DuckDBValue>): Promise<boolean> => {
      const rows = storedRows(
        `(m.workspace_id, m.message_id, m.seq) IN (SELECT * FROM (${quarantined}) q WHERE ${which})`,
      );
      const error = await this.deriveRows(rows, params, async () => {
        await connection.run(`DELETE FROM quarantined_messages q WHERE ${which}`, params);
        await connection.run("COMMIT");
      });
      if (error !== null && invalidates(error)) throw error;
      return error === null;
    };
    if (!(await release("true", {}))) {
      const each = (await connection.runAndReadAll(`${quarantined} ORDER BY seq, workspace_id, message_id`)).getRows();
      for (const [ws, id] of each) {
        await release("q.workspace_id = $ws AND q.message_id = $id", { ws: String(ws), id: String(id) });
      }
    }
    const [left] = (await connection.runAndReadAll("SELECT count(*) FROM quarantined_messages")).getRows();
    this.quarantined = Number(left?.[0] ?? 0);
    this.onQuarantine?.({ released: total - this.quarantined, remaining: this.quarantined });
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

  /** Messages stored and not yet in the derived tables. */
  get underivedCount(): number {
    return this.pendingMessages;
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
    // What is not derived now is derived at the next start.
    await this.caughtUp().catch(() => undefined);
    if (this.deriveRetry !== null) clearTimeout(this.deriveRetry);
    this.deriveRetry = null;
    if (this.deriveTimer !== null) clearTimeout(this.deriveTimer);
    this.deriveTimer = null;
    for (const statement of this.prepared.values()) statement.destroySync();
    this.prepared.clear();
  }

  /**
   * Runs `task` on the writer's connection between two commits, so that it sees no half-written
   * commit and no commit sees it half-done, once every commit before it is derived: no derivation
   * runs beside it.
   */
  exclusive<T>(task: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new EngineClosedError());
    return new Promise<T>((resolve, reject) => {
      this.tasks.push(() =>
        this.caughtUp()
          .then(() => task(this.connection))
          .then(resolve, (err) => {
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
   * is compacted. A failure leaves them correct, only larger, and is reported through onCompact.
   */
  async compact(all = false): Promise<void> {
    // A failed derivation leaves its commits to the next compaction.
    await this.caughtUp().catch(() => undefined);
    while (this.compacting) await this.compacting;
    if (this.closed) return;
    const started = performance.now();
    const run = this.compactor.compact(all).then(
      (full) => this.onCompact?.({ ms: performance.now() - started, full }),
      (err: unknown) => {
        // Stopped by close(): nothing failed.
        if (this.closed) return;
        if (invalidates(err)) this.failed(err);
        this.onCompact?.({ ms: performance.now() - started, error: err });
      },
    );
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
    const seq = this.lastSeq + 1;
    try {
      await this.connection.run("BEGIN TRANSACTION");
      await this.run(ADD_COUNTS, { counts: JSON.stringify([...counts.values()]) });
      if (stored.length > 0) {
        await this.run(LOAD_COMMIT_ROWS, { rows: JSON.stringify(stored) });
        await this.connection.run(storeSteps(seq).join(";\n"));
      }
      await this.connection.run("COMMIT");
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
        await this.connection.run("DELETE FROM commit_rows");
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
    if (stored.length > 0) {
      this.lastSeq = seq;
      this.pending.push({ seq, shape, messages: stored.length });
      this.pendingMessages += stored.length;
      this.deriveSoon();
    }
    this.onCommit?.({ rows, stored: stored.length, ms: performance.now() - started });
    for (const [i, job] of jobs.entries()) job.resolve(outcomes[i] as WriteOutcome[]);
  }

  /**
   * Settles once the derived tables hold the messages of every commit made before the call; fails
   * when deriving them fails (the next call tries again).
   */
  caughtUp(): Promise<void> {
    const seq = this.lastSeq;
    if (this.derived >= seq) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ seq, resolve, reject });
      this.startDerivation();
    });
  }

  /** Starts a derivation within the derivation delay, or now when a caller waits or many messages do. */
  private deriveSoon(): void {
    if (this.waiters.length > 0 || this.pendingMessages >= DERIVE_NOW_MESSAGES) {
      this.startDerivation();
      return;
    }
    if (this.deriveTimer !== null || this.deriving || this.derived >= this.lastSeq) return;
    this.deriveTimer = setTimeout(() => {
      this.deriveTimer = null;
      this.startDerivation();
    }, this.options.deriveDelayMs ?? DERIVE_DELAY_MS);
    // close() derives what is left; the timer need not keep the process alive.
    this.deriveTimer.unref();
  }

  /** Starts a derivation unless one runs or every commit is derived; does not wait for it. */
  private startDerivation(): void {
    if (this.deriving || this.derived >= this.lastSeq) return;
    if (this.deriveTimer !== null) clearTimeout(this.deriveTimer);
    this.deriveTimer = null;
    this.deriving = this.derive()
      .catch(() => {
        if (this.closed || this.deriveRetry !== null) return;
        this.deriveRetry = setTimeout(() => {
          this.deriveRetry = null;
          this.startDerivation();
        }, DERIVE_RETRY_MS);
        this.deriveRetry.unref();
      })
      .finally(() => {
        this.deriving = null;
        // Commits made meanwhile; after a failure, the retry or the next caughtUp() goes on.
        if (this.deriveError === null) this.deriveSoon();
      });
  }

  /**
   * Fills the derived tables with the messages of the commits not yet derived, the oldest first and
   * up to the slice's size, in one transaction that also records the last commit number it took.
   */
  private async derive(): Promise<void> {
    const from = this.derived;
    const max = this.options.maxDeriveMessages ?? MAX_DERIVE_MESSAGES;
    const shape = { ...NO_SHAPE };
    let count = 0;
    let take = 0;
    for (const commit of this.pending) {
      if (take > 0 && count + commit.messages > max) break;
      count += commit.messages;
      mergeShape(shape, commit.shape);
      take++;
    }
    // No commit pending: the newest ones' messages were erased; only the number moves on.
    const to = take > 0 ? (this.pending[take - 1]?.seq ?? this.lastSeq) : this.lastSeq;
    const started = performance.now();
    const connection = this.derivation;
    let span: unknown[] | undefined;
    try {
      await connection.run("BEGIN TRANSACTION");
      await connection.run(loadCommitted(from, to));
      span = (
        await connection.runAndReadAll(
          "SELECT count(*), epoch_ms(min(timestamp)), epoch_ms(max(timestamp)) FROM commit_rows",
        )
      ).getRows()[0];
      const steps = [...derivationSteps(shape), `UPDATE derived_through SET seq = ${to}`, "COMMIT"];
      await connection.run(steps.join(";\n"));
    } catch (err) {
      this.onDerive?.({ messages: count, ms: performance.now() - started, error: err });
      await this.abandonDerivation();
      if (invalidates(err)) this.failed(err);
      else if (blamesTheData(err) && !this.closed) {
        // The trials see whether the failure repeats before they blame a message.
        const messages = await this.quarantineFailing(from, to).catch(() => []);
        if (messages.length > 0) {
          // The same commits are derived again, without them, by the caller.
          this.deriveError = null;
          this.quarantined += messages.length;
          for (const message of messages) this.onQuarantine?.({ message });
          return;
        }
      }
      this.deriveError = err;
      for (const waiter of this.waiters.splice(0)) waiter.reject(err);
      throw err;
    }
    this.derived = to;
    this.pending.splice(0, take);
    this.pendingMessages -= count;
    this.deriveError = null;
    this.onDerive?.({ messages: count, ms: performance.now() - started });
    const waiting = this.waiters;
    this.waiters = waiting.filter((waiter) => waiter.seq > to);
    for (const waiter of waiting) if (waiter.seq <= to) waiter.resolve();
    const messages = Number(span?.[0] ?? 0);
    if (messages > 0) {
      // The days of every message: message_days has rows for them all, the activity tables for some.
      // Local days lie within a day of UTC days, whatever the zone.
      this.compactor.touched(Math.floor(Number(span?.[1]) / DAY_MS) - 1, Math.floor(Number(span?.[2]) / DAY_MS) + 1);
    }
    this.compactor.committed(messages);
    if (this.compactor.due) this.startCompaction();
    else if (!this.draining) this.compactWhenIdle();
  }

  /**
   * Derives, in a transaction on the derivation connection, the stored messages that `rows` (a query
   * shaped as storedRows() shapes them) selects, then calls `end`, which commits or rolls back.
   * Resolves to the error, or null; nothing of a failure stays.
   */
  private async deriveRows(
    rows: string,
    params: Record<string, DuckDBValue>,
    end: () => Promise<void>,
  ): Promise<unknown> {
    const connection = this.derivation;
    try {
      await connection.run("BEGIN TRANSACTION");
      await connection.run(loadRows(rows), params);
      await connection.run(derivationSteps(EVERY_SHAPE).join(";\n"));
      await end();
      return null;
    } catch (err) {
      await this.abandonDerivation();
      return err;
    }
  }

  /** Ends the derivation connection's transaction, if one is open, and empties its session tables. */
  private async abandonDerivation(): Promise<void> {
    const connection = this.derivation;
    try {
      await connection.run("ROLLBACK");
    } catch {
      // The failed statement may already have ended the transaction.
    }
    try {
      await connection.run(DERIVATION_STATEMENTS.clear.join(";\n"));
    } catch {
      // The next derivation fails too, and tries again.
    }
  }

  /**
   * Looks, among the messages of commits after `from` up to `to`, for those whose derivation fails
   * alone (see failingAlone: each try derives a part of them and rolls back), and quarantines them.
   * Resolves to none when the messages derive now (the failure has passed), or when the failure takes
   * several messages, none of them to blame; rejects when a try fails for a reason that is not the
   * data's.
   */
  private async quarantineFailing(from: number, to: number): Promise<QuarantinedMessage[]> {
    const connection = this.derivation;
    await connection.run(
      `CREATE OR REPLACE TEMP TABLE derivation_trial AS
       SELECT row_number() OVER (ORDER BY seq, workspace_id, message_id) - 1 AS trial_index, *
       FROM (${committedRows(from, to)})`,
    );
    try {
      const [row] = (await connection.runAndReadAll("SELECT count(*) FROM derivation_trial")).getRows();
      const failing = await failingAlone(Number(row?.[0] ?? 0), async (first, end) => {
        // A trial: whether messages [first, end) derive, rolled back either way.
        const error = await this.deriveRows(
          `SELECT * FROM derivation_trial WHERE trial_index >= ${first} AND trial_index < ${end}`,
          {},
          () => connection.run("ROLLBACK").then(() => undefined),
        );
        if (error === null) return null;
        if (!blamesTheData(error)) throw error;
        return errorMessage(error);
      });
      const quarantined: QuarantinedMessage[] = [];
      for (const { index, error } of failing) {
        const [found] = (
          await connection.runAndReadAll(
            `INSERT INTO quarantined_messages
             SELECT workspace_id, message_id, seq, $error, now() FROM derivation_trial WHERE trial_index = ${index}
             RETURNING workspace_id, message_id`,
            { error },
          )
        ).getRows();
        quarantined.push({ workspaceId: String(found?.[0]), messageId: String(found?.[1]), error });
      }
      return quarantined;
    } finally {
      await connection.run("DROP TABLE IF EXISTS derivation_trial");
    }
  }
}
