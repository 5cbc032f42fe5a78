import { type DuckDBAppender, type DuckDBConnection, DuckDBTimestampTZValue } from "@duckdb/node-api";
import { type ActivitySettings, deriveDeltas } from "../../identity/deltas.js";
import { HashSet128 } from "../dedup/hash-set.js";
import type { MessageHash } from "../dedup/message-hash.js";
import { EngineClosedError, OverloadedError } from "../errors.js";
import { ACTIVITY_TYPES, type StoredMessage, type WriteOutcome } from "../types.js";
import { DerivedTables } from "./derived.js";

interface Job {
  rows: readonly StoredMessage[];
  hashes: readonly MessageHash[];
  resolve(outcomes: WriteOutcome[]): void;
  reject(err: unknown): void;
}

export interface WriterOptions {
  maxQueuedRows: number;
  maxCommitRows: number;
}

/** Observes each commit; used for metrics and logs. */
export type CommitListener = (info: { rows: number; stored: number; ms: number; error?: unknown }) => void;

const ACTIVITY = new Set<string>(ACTIVITY_TYPES);

function micros(ms: number): DuckDBTimestampTZValue {
  return new DuckDBTimestampTZValue(BigInt(Math.round(ms * 1000)));
}

/**
 * Group commit: every write() queued while a commit is running joins the next one, so concurrent
 * requests share one append and one fsync. One writer per database; the only code that appends.
 * A messageId already stored (or earlier in the same commit) is counted as a duplicate, not stored.
 */
export class GroupCommitWriter {
  private queue: Job[] = [];
  private tasks: (() => Promise<void>)[] = [];
  private queued = 0;
  private draining: Promise<void> | null = null;
  private closed = false;
  private messages!: DuckDBAppender;
  private hashesOut!: DuckDBAppender;
  onCommit: CommitListener | null = null;
  /** The error of the last commit, cleared by the next one that succeeds. */
  lastError: unknown = null;

  private readonly derived: DerivedTables;

  constructor(
    private readonly connection: DuckDBConnection,
    private readonly seen: HashSet128,
    private readonly options: WriterOptions,
    private readonly settingsOf: (workspaceId: string) => ActivitySettings,
  ) {
    this.derived = new DerivedTables(connection);
  }

  async open(): Promise<void> {
    await this.derived.open();
    this.messages = await this.connection.createAppender("messages");
    this.hashesOut = await this.connection.createAppender("message_hashes");
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

  /** Stops taking writes, commits what is queued, closes the appenders. */
  async close(): Promise<void> {
    this.closed = true;
    await this.draining;
    this.messages?.closeSync();
    this.hashesOut?.closeSync();
    this.derived.closeSync();
  }

  /**
   * Runs `task` on the writer's connection between two commits, so that it sees no half-written
   * commit and no commit sees it half-done.
   */
  exclusive<T>(task: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new EngineClosedError());
    return new Promise<T>((resolve, reject) => {
      this.tasks.push(() => task(this.connection).then(resolve, reject));
      if (!this.draining) this.draining = this.drain();
    });
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
      if (this.derived.compactionDue) await this.compact();
    }
    this.draining = null;
  }

  /** Compacts the derived tables between commits; a failure leaves them correct, only larger. */
  async compact(all = false): Promise<void> {
    try {
      await this.derived.compact(all);
    } catch (err) {
      this.onCommit?.({ rows: 0, stored: 0, ms: 0, error: err });
    }
  }

  private async commit(jobs: Job[], rows: number): Promise<void> {
    const started = performance.now();
    const inGroup = new HashSet128(rows * 2);
    const outcomes: WriteOutcome[][] = [];
    const counters = new Map<string, [number, number, number]>();
    const storedRows: StoredMessage[] = [];
    try {
      await this.connection.run("BEGIN TRANSACTION");
      for (const job of jobs) {
        const out: WriteOutcome[] = [];
        for (let i = 0; i < job.rows.length; i++) {
          const row = job.rows[i] as StoredMessage;
          const [h0, h1, h2, h3] = job.hashes[i] as MessageHash;
          let c = counters.get(row.workspaceId);
          if (!c) {
            c = [0, 0, 0];
            counters.set(row.workspaceId, c);
          }
          if (this.seen.has(h0, h1, h2, h3) || !inGroup.add(h0, h1, h2, h3)) {
            out.push("duplicate");
            c[2]++;
            continue;
          }
          this.appendRow(row);
          this.hashesOut.appendInteger(h0);
          this.hashesOut.appendInteger(h1);
          this.hashesOut.appendInteger(h2);
          this.hashesOut.appendInteger(h3);
          this.hashesOut.endRow();
          out.push("stored");
          storedRows.push(row);
          c[0]++;
          if (ACTIVITY.has(row.type)) c[1]++;
        }
        outcomes.push(out);
      }
      this.derived.append(deriveDeltas(storedRows, this.settingsOf));
      if (storedRows.length > 0) {
        this.messages.flushSync();
        this.hashesOut.flushSync();
      }
      for (const [workspaceId, [messages, events, duplicates]] of counters) {
        this.derived.appendCounters(workspaceId, messages, events, duplicates);
      }
      this.derived.flush();
      await this.connection.run("COMMIT");
    } catch (err) {
      this.lastError = err;
      for (const job of jobs) job.reject(err);
      this.onCommit?.({ rows, stored: 0, ms: performance.now() - started, error: err });
      await this.recover();
      return;
    }
    this.lastError = null;
    inGroup.forEach((h0, h1, h2, h3) => {
      this.seen.add(h0, h1, h2, h3);
    });
    this.onCommit?.({ rows, stored: storedRows.length, ms: performance.now() - started });
    for (const [i, job] of jobs.entries()) job.resolve(outcomes[i] as WriteOutcome[]);
  }

  /**
   * After a failed commit: roll back and start again from fresh appenders, whatever state the old ones
   * were left in. If even that fails, the writer keeps trying at the next commit.
   */
  private async recover(): Promise<void> {
    for (const step of [
      () => this.messages.clear(),
      () => this.hashesOut.clear(),
      () => this.connection.run("ROLLBACK"),
      () => this.messages.closeSync(),
      () => this.hashesOut.closeSync(),
    ]) {
      try {
        await step();
      } catch {
        // Each step may fail when the failure left nothing to undo.
      }
    }
    try {
      this.messages = await this.connection.createAppender("messages");
      this.hashesOut = await this.connection.createAppender("message_hashes");
      await this.derived.reset();
    } catch {
      // The next commit fails too, rejecting its writes, and calls recover() again.
    }
  }

  private appendRow(row: StoredMessage): void {
    const a = this.messages;
    a.appendVarchar(row.workspaceId);
    a.appendVarchar(row.messageId);
    a.appendVarchar(row.type);
    appendText(a, row.event);
    appendText(a, row.name);
    appendText(a, row.category);
    appendText(a, row.userId);
    appendText(a, row.anonymousId);
    appendText(a, row.groupId);
    appendText(a, row.contextGroupId);
    appendText(a, row.previousId);
    appendText(a, row.email);
    a.appendTimestampTZ(micros(row.timestamp));
    if (row.originalTimestamp === null) a.appendNull();
    else a.appendTimestampTZ(micros(row.originalTimestamp));
    if (row.sentAt === null) a.appendNull();
    else a.appendTimestampTZ(micros(row.sentAt));
    a.appendTimestampTZ(micros(row.receivedAt));
    appendText(a, row.properties);
    appendText(a, row.traits);
    appendText(a, row.context);
    appendText(a, row.integrations);
    appendText(a, row.extra);
    a.endRow();
  }
}

function appendText(a: DuckDBAppender, value: string | null): void {
  if (value === null) a.appendNull();
  else a.appendVarchar(value);
}
