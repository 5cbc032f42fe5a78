import { randomBytes } from "node:crypto";
import fs from "node:fs";
import nodePath from "node:path";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import type { DayFn } from "../../identity/days.js";
import { dayIn } from "../../identity/days.js";
import type { CompanyListQuery, CompanyProfile, CompanySummary, UserProfile } from "../../identity/types.js";
import { HashSet128 } from "../dedup/hash-set.js";
import { type MessageHash, messageHash } from "../dedup/message-hash.js";
import { EngineClosedError, errorMessage, StorageError, wrap } from "../errors.js";
import type {
  DeletionRequest,
  DeletionState,
  EventQuery,
  EventRecord,
  QuarantineRecord,
  RetiredWriteKey,
  SavedReport,
  SessionOpening,
  SessionRecord,
  StorageEngine,
  StoredMessage,
  WorkspaceRecord,
  WorkspaceSettings,
  WorkspaceStats,
  WriteOutcome,
} from "../types.js";
import { copyDatabase, eraseUser, readDeletionRequests, transaction } from "./admin.js";
import { companyProfile, listCompanies, USER_ANONYMOUS_IDS_SQL, userProfile } from "./entities.js";
import { migrate } from "./migrations.js";
import {
  eventsQuery,
  type TimelineHints,
  timelineBoundQuery,
  timelineRanges,
  toEventRecord,
  userTimelineDaysQuery,
} from "./queries.js";
import { rebuildActivity } from "./rebuild.js";
import { DuckDBReports } from "./reports.js";
import { deleteExpired, dropWorkspaceFromSessions, insertSession, readSessions } from "./sessions.js";
import {
  type CommitListener,
  type CompactListener,
  type DeriveListener,
  GroupCommitWriter,
  invalidates,
  type QuarantineListener,
  type WriterOptions,
} from "./writer.js";

export interface DuckDBEngineOptions extends WriterOptions {
  /** DuckDB's memory_limit: the most its buffers and queries may hold. */
  memoryLimit?: string;
  /** Threads for queries and commits; 0 or absent for one per core. */
  threads?: number;
  /** DuckDB's checkpoint_threshold: the write-ahead log's size at which a commit folds it into the file. */
  checkpointThreshold?: string;
  /** Directory of the database file; created if missing. */
  dataDir: string;
  /** Called after each group commit. */
  onCommit?: CommitListener;
  /** Hears of each derivation of the identity and activity tables. */
  onDerive?: DeriveListener;
  /** Hears of each compaction of the derived tables. */
  onCompact?: CompactListener;
  /** Hears of each message quarantined, and of the quarantine's retry at start-up. */
  onQuarantine?: QuarantineListener;
  /** Progress of start-up work that can take a while (schema migrations, the de-duplication index). */
  onProgress?: (message: string) => void;
  /** Called after the engine closed and opened again a database that a failure had invalidated. */
  onReopen?: (cause: unknown) => void;
}

/**
 * Below this much free disk space the engine reports itself not ready, and a failed writer is not
 * probed nor its database reopened.
 */
const MIN_FREE_BYTES = 64 * 1024 * 1024;

/** How often a failed writer is checked until it writes again. */
const PROBE_INTERVAL_MS = 1000;

/** The longest wait between two reopens that failed: each one replays the whole write-ahead log. */
const MAX_REOPEN_DELAY_MS = 30_000;

/** The database file inside the data directory. */
export const DATABASE_FILE = "solstice.duckdb";

/**
 * The embedded engine: one DuckDB database file, one writer connection (group commit through Appenders)
 * and one connection for reads.
 */
export class DuckDBEngine implements StorageEngine {
  private instance: DuckDBInstance | null = null;
  private reader: DuckDBConnection | null = null;
  private writerConnection: DuckDBConnection | null = null;
  /** The compactor's own connection: compactions run beside the commits. */
  private compactionConnection: DuckDBConnection | null = null;
  private derivationConnection: DuckDBConnection | null = null;
  private writer: GroupCommitWriter | null = null;
  private hashKey = "";
  private localDay = new Map<string, DayFn>();
  private workspaceSettings = new Map<string, WorkspaceSettings>();
  /**
   * Every stored session by token hash: read at open, then changed along with the table, so that a
   * request's session costs no query. A revocation takes effect here before it is committed.
   */
  private sessions = new Map<string, SessionRecord>();
  private closed = false;
  private probeTimer: NodeJS.Timeout | null = null;
  /** The probe under way, if any; close() waits for it. */
  private recovering: Promise<void> | null = null;
  /** What closed the database for a reopen: an error that invalidated it, or the last reopen's. */
  private failure: unknown = null;
  /** When the next reopen may be tried, and the wait after it if it fails (doubled each time). */
  private nextReopen = 0;
  private reopenDelay = PROBE_INTERVAL_MS;
  readonly reports = new DuckDBReports(() => this.derivedReader());

  constructor(private readonly options: DuckDBEngineOptions) {}

  async open(): Promise<void> {
    await wrap("open", () => this.start());
  }

  /**
   * Opens the database file and loads what the engine keeps in memory: the hash key, the
   * de-duplication set, the workspace settings and the writer's prepared statements. The writer
   * takes writes only once all of it is ready.
   */
  private async start(): Promise<void> {
    try {
      fs.mkdirSync(this.options.dataDir, { recursive: true });
      this.instance = await DuckDBInstance.create(nodePath.join(this.options.dataDir, DATABASE_FILE), {
        // Larger checkpoints, less often: keeps the appends' p99 near 10 ms instead of 150 ms.
        checkpoint_threshold: this.options.checkpointThreshold ?? "256MB",
        memory_limit: this.options.memoryLimit ?? "2GB",
        // Fewer threads make each commit's many small statements cheaper (less hand-over between
        // threads) and leave a core to the HTTP side; reports, which scan, get slower.
        ...(this.options.threads ? { threads: String(this.options.threads) } : {}),
      });
      const writerConnection = await this.connect();
      this.writerConnection = writerConnection;
      await migrate(writerConnection, this.options.onProgress);
      // Fold a write-ahead log replayed at start into the file, so that it never grows across restarts.
      await writerConnection.run("CHECKPOINT");
      this.hashKey = await this.loadHashKey(writerConnection);
      const seen = await this.loadSeen(writerConnection);
      await this.loadSettings(writerConnection);
      const sessions = new Map<string, SessionRecord>();
      for (const session of await readSessions(writerConnection)) sessions.set(session.tokenHash, session);
      this.sessions = sessions;
      this.compactionConnection = await this.connect();
      this.derivationConnection = await this.connect();
      const writer = new GroupCommitWriter(
        writerConnection,
        this.compactionConnection,
        this.derivationConnection,
        seen,
        this.options,
      );
      if (this.options.onCommit) writer.onCommit = this.options.onCommit;
      if (this.options.onDerive) writer.onDerive = this.options.onDerive;
      if (this.options.onCompact) writer.onCompact = this.options.onCompact;
      if (this.options.onQuarantine) writer.onQuarantine = this.options.onQuarantine;
      writer.onFailure = () => this.watch();
      await writer.open();
      this.writer = writer;
      this.reader = await this.connect();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Closes the writer (after it has tried what it has queued), the connections and the database. */
  private async stop(): Promise<void> {
    const writer = this.writer;
    this.writer = null;
    await writer?.close();
    this.reader?.closeSync();
    this.compactionConnection?.closeSync();
    this.derivationConnection?.closeSync();
    this.writerConnection?.closeSync();
    this.instance?.closeSync();
    this.reader = null;
    this.compactionConnection = null;
    this.derivationConnection = null;
    this.writerConnection = null;
    this.instance = null;
  }

  /** Starts checking, every PROBE_INTERVAL_MS, whether the failed writer can write again. */
  private watch(): void {
    if (this.probeTimer !== null || this.closed) return;
    this.probeTimer = setInterval(() => {
      // A check that fails (the data directory unreadable, say) is simply tried again at the next tick.
      this.recovering ??= this.probe()
        .catch(() => undefined)
        .finally(() => {
          this.recovering = null;
        });
    }, PROBE_INTERVAL_MS);
    this.probeTimer.unref();
  }

  private unwatch(): void {
    if (this.probeTimer !== null) clearInterval(this.probeTimer);
    this.probeTimer = null;
  }

  /**
   * One check of a failed writer, once the disk has room again: a tiny write when the database still
   * works, else a reopen, which replays the write-ahead log and reloads everything `start` loads.
   * Until then writes, and reads of an invalidated database, fail fast and are answered 503.
   */
  private async probe(): Promise<void> {
    const writer = this.writer;
    if (writer !== null && writer.lastError === null) return this.unwatch();
    if ((await this.freeBytes()) < MIN_FREE_BYTES) return;
    if (writer !== null && !invalidates(writer.lastError)) {
      await writer.probe().catch(() => undefined);
      if (writer.lastError === null) this.unwatch();
      return;
    }
    if (Date.now() < this.nextReopen) return;
    this.failure = writer?.lastError ?? this.failure;
    await this.stop();
    if (this.closed) return;
    try {
      await this.start();
    } catch (err) {
      this.failure = err;
      this.nextReopen = Date.now() + this.reopenDelay;
      this.reopenDelay = Math.min(this.reopenDelay * 2, MAX_REOPEN_DELAY_MS);
      return;
    }
    this.options.onProgress?.(`reopened the database after: ${errorMessage(this.failure)}`);
    this.options.onReopen?.(this.failure);
    this.failure = null;
    this.nextReopen = 0;
    this.reopenDelay = PROBE_INTERVAL_MS;
    this.unwatch();
  }

  async health(): Promise<{ writable: boolean; reason?: string; freeBytes?: number }> {
    const writer = this.writer;
    if (!writer) {
      if (this.closed || this.failure === null) return { writable: false, reason: "storage is closed" };
      return {
        writable: false,
        reason: `the database is closed until it can be reopened: ${errorMessage(this.failure)}`,
      };
    }
    if (writer.lastError !== null)
      return { writable: false, reason: `the last write failed: ${errorMessage(writer.lastError)}` };
    const freeBytes = await this.freeBytes();
    if (freeBytes < MIN_FREE_BYTES) return { writable: false, reason: "the disk is almost full", freeBytes };
    return { writable: true, freeBytes };
  }

  private async freeBytes(): Promise<number> {
    const stats = await fs.promises.statfs(this.options.dataDir);
    return stats.bavail * stats.bsize;
  }

  get queueDepth(): number {
    return this.writer?.depth ?? 0;
  }

  get underivedMessages(): number {
    return this.writer?.underivedCount ?? 0;
  }

  get quarantinedMessages(): number {
    return this.writer?.quarantinedCount ?? 0;
  }

  write(rows: readonly StoredMessage[]): Promise<WriteOutcome[]> {
    const writer = this.writer;
    if (!writer) return Promise.reject(new EngineClosedError());
    const hashes: MessageHash[] = rows.map((row) => messageHash(this.hashKey, row.workspaceId, row.messageId));
    return wrap("write", () => writer.write(rows, hashes));
  }

  readEvents(query: EventQuery): Promise<EventRecord[]> {
    return wrap("read events", async () => {
      await this.derivedReader();
      const hints: TimelineHints = {};
      if (query.userId !== undefined) {
        // Fetched once, then given to the queries below as constants: DuckDB skips the rows of other
        // actors by their statistics, which it cannot do for a subquery.
        const linked = await this.connection().runAndReadAll(USER_ANONYMOUS_IDS_SQL, {
          ws: query.workspaceId,
          userId: query.userId,
        });
        const ids = linked.getRows().map((row) => String(row[0]));
        // A NUL cannot be written in a SQL literal; such ids keep the subquery.
        if (!ids.some((id) => id.includes("\0"))) hints.userAnonymousIds = ids;
      }
      // A user's timeline is read span by span, from message_days; a company's from a bound.
      const days = hints.userAnonymousIds && userTimelineDaysQuery(query, hints.userAnonymousIds);
      if (days) {
        const rows = (await this.connection().runAndReadAll(days.sql, days.params)).getRowObjects().map((r) => ({
          messages: Number(r.messages),
          first: BigInt(r.first as bigint),
          last: BigInt(r.last as bigint),
        }));
        const found = timelineRanges(rows, query.limit, query.after);
        // No span: the user has no message the page could hold.
        if ("ranges" in found && found.ranges.length === 0) return [];
        if ("ranges" in found) hints.ranges = found.ranges;
        else if (found.since !== null) hints.since = found.since;
      } else {
        const bound = timelineBoundQuery(query, hints.userAnonymousIds);
        const found = bound && (await this.connection().runAndReadAll(bound.sql, bound.params)).getRows()[0]?.[0];
        if (typeof found === "bigint") hints.since = found;
      }
      const { sql, params } = eventsQuery(query, hints);
      const result = await this.connection().runAndReadAll(sql, params);
      return result.getRowObjects().map(toEventRecord);
    });
  }

  user(workspaceId: string, id: string): Promise<UserProfile | null> {
    return wrap("read user", async () => userProfile(await this.derivedReader(), workspaceId, id));
  }

  company(workspaceId: string, id: string, now: number): Promise<CompanyProfile | null> {
    const today = this.dayOf(workspaceId)(now);
    return wrap("read company", async () => companyProfile(await this.derivedReader(), workspaceId, id, today));
  }

  companies(query: CompanyListQuery): Promise<CompanySummary[]> {
    const today = this.dayOf(query.workspaceId)(query.now);
    return wrap("list companies", async () => listCompanies(await this.derivedReader(), query, today));
  }

  quarantined(workspaceId: string): Promise<QuarantineRecord[]> {
    return wrap("read quarantine", async () => {
      const result = await (await this.derivedReader()).runAndReadAll(
        `SELECT message_id, error, epoch_ms(quarantined_at) AS at
         FROM quarantined_messages WHERE workspace_id = $ws ORDER BY quarantined_at DESC, message_id`,
        { ws: workspaceId },
      );
      return result.getRows().map(([messageId, error, at]) => ({
        messageId: String(messageId),
        error: String(error),
        quarantinedAt: new Date(Number(at)).toISOString(),
      }));
    });
  }

  stats(workspaceId: string): Promise<WorkspaceStats> {
    return wrap("read stats", async () => {
      const result = await this.connection().runAndReadAll(
        "SELECT sum(messages), sum(events), sum(duplicates) FROM workspace_counters WHERE workspace_id = $1",
        [workspaceId],
      );
      const row = result.getRows()[0];
      return { messages: Number(row?.[0] ?? 0), events: Number(row?.[1] ?? 0), duplicates: Number(row?.[2] ?? 0) };
    });
  }

  listWorkspaces(): Promise<WorkspaceRecord[]> {
    return wrap("list workspaces", async () => {
      const result = await this.connection().runAndReadAll(
        `SELECT id, name, write_key, secret_key, strftime(created_at, '%Y-%m-%dT%H:%M:%S.%gZ')
         FROM workspaces ORDER BY created_at, id`,
      );
      return result.getRows().map(([id, name, writeKey, secretKey, createdAt]) => ({
        id: String(id),
        name: String(name),
        writeKey: String(writeKey),
        secretKey: String(secretKey),
        createdAt: String(createdAt),
      }));
    });
  }

  createWorkspace(workspace: WorkspaceRecord): Promise<void> {
    return this.exclusive("create workspace", async (connection) => {
      await connection.run("INSERT INTO workspaces VALUES ($1, $2, $3, $4, $5::TIMESTAMPTZ)", [
        workspace.id,
        workspace.name,
        workspace.writeKey,
        workspace.secretKey,
        workspace.createdAt,
      ]);
    });
  }

  setWorkspaceKeys(workspaceId: string, writeKey: string, secretKey: string): Promise<void> {
    return this.exclusive("set workspace keys", (connection) =>
      transaction(connection, async () => {
        const [current] = (
          await connection.runAndReadAll("SELECT secret_key FROM workspaces WHERE id = $1", [workspaceId])
        ).getRows();
        if (current !== undefined && String(current[0]) !== secretKey) {
          this.dropFromSessions(workspaceId);
          await dropWorkspaceFromSessions(connection, workspaceId);
        }
        await connection.run("UPDATE workspaces SET write_key = $2, secret_key = $3 WHERE id = $1", [
          workspaceId,
          writeKey,
          secretKey,
        ]);
      }),
    );
  }

  rotateKeys(
    workspace: WorkspaceRecord,
    writeKey: string,
    secretKey: string,
    retireUntil: number | null,
  ): Promise<void> {
    this.dropFromSessions(workspace.id);
    return this.exclusive("rotate keys", (connection) =>
      transaction(connection, async () => {
        await dropWorkspaceFromSessions(connection, workspace.id);
        await connection.run("UPDATE workspaces SET write_key = $2, secret_key = $3 WHERE id = $1", [
          workspace.id,
          writeKey,
          secretKey,
        ]);
        if (retireUntil !== null) {
          await connection.run(
            "INSERT INTO retired_write_keys VALUES ($1, $2, make_timestamp($3::BIGINT)::TIMESTAMPTZ)",
            [workspace.id, workspace.writeKey, BigInt(Math.round(retireUntil * 1000))],
          );
        }
      }),
    );
  }

  retiredWriteKeys(now: number): Promise<RetiredWriteKey[]> {
    return wrap("read retired keys", async () => {
      const result = await this.connection().runAndReadAll(
        `SELECT workspace_id, write_key, epoch_ms(expires_at) AS expires FROM retired_write_keys
         WHERE expires_at > make_timestamp($1::BIGINT)::TIMESTAMPTZ`,
        [BigInt(Math.round(now * 1000))],
      );
      return result.getRowObjects().map((r) => ({
        workspaceId: String(r.workspace_id),
        writeKey: String(r.write_key),
        expiresAt: Number(r.expires),
      }));
    });
  }

  requestDeletion(workspaceId: string, request: DeletionRequest): Promise<void> {
    return this.exclusive("request deletion", async (connection) => {
      await connection.run(
        "INSERT INTO deletion_requests VALUES ($1, $2, $3, 'requested', $4::TIMESTAMPTZ, NULL, NULL, NULL)",
        [request.id, workspaceId, request.userId, request.requestedAt],
      );
    });
  }

  deletionRequests(workspaceId: string, state?: DeletionState): Promise<DeletionRequest[]> {
    return wrap("read deletion requests", () => readDeletionRequests(this.connection(), workspaceId, { state }));
  }

  async runDeletion(workspaceId: string, requestId: string): Promise<DeletionRequest> {
    const mark = (state: DeletionState, extra = "") =>
      this.exclusive("update deletion request", async (connection) => {
        await connection.run(`UPDATE deletion_requests SET state = $3${extra} WHERE workspace_id = $1 AND id = $2`, [
          workspaceId,
          requestId,
          state,
        ]);
      });
    const [request] = await wrap("read deletion request", () =>
      readDeletionRequests(this.connection(), workspaceId, { id: requestId }),
    );
    if (!request) throw new StorageError("run deletion", new Error(`no deletion request ${requestId}`));
    if (request.state === "finished") return request;
    await mark("started", ", started_at = now()");
    let quarantined = 0;
    await this.withoutCompaction("erase user", (connection) =>
      transaction(connection, async () => {
        const erased = await eraseUser(connection, workspaceId, request.userId);
        quarantined = erased.quarantined;
        await connection.run(
          `UPDATE deletion_requests SET state = 'finished', finished_at = now(), messages_deleted = $3
           WHERE workspace_id = $1 AND id = $2`,
          [workspaceId, requestId, erased.messages],
        );
      }),
    );
    this.writer?.forgetQuarantined(quarantined);
    const [done] = await readDeletionRequests(this.connection(), workspaceId, { id: requestId });
    return done as DeletionRequest;
  }

  /** The value of one of DuckDB's settings (`threads`, `memory_limit`, …), as DuckDB prints it. */
  setting(name: string): Promise<string> {
    return wrap("read setting", async () => {
      const result = await this.connection().runAndReadAll("SELECT current_setting($name)::VARCHAR", { name });
      return String(result.getRows()[0]?.[0]);
    });
  }

  /**
   * Rewrites every derived table to one row per key now, every day included. The writer does this on
   * its own as the data grows; this is for maintenance and for tests of what compaction keeps.
   */
  compact(): Promise<void> {
    const writer = this.writer;
    if (!writer) return Promise.reject(new EngineClosedError());
    return wrap("compact", () => writer.compact(true));
  }

  backup(path: string): Promise<void> {
    return this.exclusive("backup", (connection) =>
      copyDatabase(connection, nodePath.join(this.options.dataDir, DATABASE_FILE), path),
    );
  }

  openSession(opening: SessionOpening): Promise<SessionRecord> {
    return this.exclusive("open session", async (connection) => {
      // Read in turn with the other writes: a key rotation asked for earlier has taken its workspace out already.
      const renewed = opening.renews === undefined ? undefined : this.sessions.get(opening.renews);
      if (renewed !== undefined) this.sessions.delete(renewed.tokenHash);
      const prior = renewed !== undefined && renewed.expiresAt > opening.now ? renewed : undefined;
      const session: SessionRecord = Object.freeze({
        tokenHash: opening.tokenHash,
        workspaceIds: Object.freeze([...new Set([...(prior?.workspaceIds ?? []), opening.workspaceId])]),
        createdAt: prior?.createdAt ?? opening.now,
        expiresAt: opening.expiresAt,
      });
      await transaction(connection, async () => {
        if (renewed !== undefined) {
          await connection.run("DELETE FROM sessions WHERE token_hash = $1", [renewed.tokenHash]);
        }
        await deleteExpired(connection, opening.now);
        await insertSession(connection, session);
      });
      for (const [tokenHash, stored] of this.sessions) {
        if (stored.expiresAt <= opening.now) this.sessions.delete(tokenHash);
      }
      this.sessions.set(session.tokenHash, session);
      return session;
    });
  }

  session(tokenHash: string, now: number): Promise<SessionRecord | null> {
    if (!this.writer) return Promise.reject(new EngineClosedError());
    const found = this.sessions.get(tokenHash);
    return Promise.resolve(found !== undefined && found.expiresAt > now ? found : null);
  }

  deleteSession(tokenHash: string): Promise<boolean> {
    const known = this.sessions.delete(tokenHash);
    return this.exclusive("delete session", async (connection) => {
      const result = await connection.run("DELETE FROM sessions WHERE token_hash = $1", [tokenHash]);
      return known || result.rowsChanged > 0;
    });
  }

  /** Takes a workspace out of the sessions in memory, as dropWorkspaceFromSessions does in the table. */
  private dropFromSessions(workspaceId: string): void {
    for (const [tokenHash, session] of this.sessions) {
      if (!session.workspaceIds.includes(workspaceId)) continue;
      const workspaceIds = Object.freeze(session.workspaceIds.filter((id) => id !== workspaceId));
      if (workspaceIds.length === 0) this.sessions.delete(tokenHash);
      else this.sessions.set(tokenHash, Object.freeze({ ...session, workspaceIds }));
    }
  }

  /**
   * exclusive() for a task that deletes rows of the derived tables: it waits for a running compaction
   * to end, and none starts until it has, since their deletions would conflict.
   */
  private withoutCompaction<T>(operation: string, fn: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
    const writer = this.writer;
    if (!writer) return Promise.reject(new EngineClosedError());
    return wrap(operation, () => writer.withoutCompaction(() => writer.exclusive(fn)));
  }

  /** Runs a write between two group commits, wrapping the engine's errors. */
  private exclusive<T>(operation: string, fn: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
    const writer = this.writer;
    if (!writer) return Promise.reject(new EngineClosedError());
    return wrap(operation, () => writer.exclusive(fn));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unwatch();
    await this.recovering;
    await this.stop();
  }

  /** A connection whose session works in UTC, whatever the machine's zone. */
  private async connect(): Promise<DuckDBConnection> {
    if (!this.instance) throw new EngineClosedError();
    const connection = await this.instance.connect();
    await connection.run("SET TimeZone = 'UTC'");
    return connection;
  }

  private connection(): DuckDBConnection {
    if (!this.reader) throw new EngineClosedError();
    return this.reader;
  }

  /**
   * The reader, once the derived tables (identities, activity, message_days) hold every write
   * answered so far: their readers see what a read made after a write's answer must see.
   */
  private async derivedReader(): Promise<DuckDBConnection> {
    const writer = this.writer;
    if (!writer) throw new EngineClosedError();
    await writer.caughtUp();
    return this.connection();
  }

  saveReport(workspaceId: string, saved: SavedReport): Promise<void> {
    return this.exclusive("save report", async (connection) => {
      await connection.run("INSERT INTO saved_reports VALUES ($1, $2, $3, $4, $5, $6::TIMESTAMPTZ)", [
        workspaceId,
        saved.id,
        saved.name,
        saved.report,
        JSON.stringify(saved.params),
        saved.createdAt,
      ]);
    });
  }

  savedReports(workspaceId: string): Promise<SavedReport[]> {
    return wrap("list saved reports", async () => {
      const result = await this.connection().runAndReadAll(
        `SELECT id, name, report, params, strftime(created_at, '%Y-%m-%dT%H:%M:%S.%gZ') AS created
         FROM saved_reports WHERE workspace_id = $1 ORDER BY name, created_at`,
        [workspaceId],
      );
      return result.getRowObjects().map((r) => ({
        id: String(r.id),
        name: String(r.name),
        report: String(r.report),
        params: JSON.parse(String(r.params)) as Record<string, unknown>,
        createdAt: String(r.created),
      }));
    });
  }

  deleteSavedReport(workspaceId: string, id: string): Promise<boolean> {
    return this.exclusive("delete saved report", async (connection) => {
      const result = await connection.run("DELETE FROM saved_reports WHERE workspace_id = $1 AND id = $2", [
        workspaceId,
        id,
      ]);
      return result.rowsChanged > 0;
    });
  }

  settings(workspaceId: string): WorkspaceSettings {
    return this.workspaceSettings.get(workspaceId) ?? { timeZone: "UTC", systemEvents: [] };
  }

  setSettings(workspaceId: string, settings: WorkspaceSettings): Promise<void> {
    return this.withoutCompaction("set settings", async (connection) => {
      await transaction(connection, async () => {
        await connection.run("DELETE FROM workspace_settings WHERE workspace_id = $1", [workspaceId]);
        await connection.run("INSERT INTO workspace_settings VALUES ($1, $2, $3)", [
          workspaceId,
          settings.timeZone,
          JSON.stringify(settings.systemEvents),
        ]);
        await rebuildActivity(connection, workspaceId);
      });
      this.remember(workspaceId, settings);
    });
  }

  private remember(workspaceId: string, settings: WorkspaceSettings): void {
    this.workspaceSettings.set(workspaceId, settings);
    this.localDay.set(workspaceId, dayIn(settings.timeZone));
  }

  /** The local day of an instant in the workspace's time zone. */
  private dayOf(workspaceId: string): DayFn {
    return this.localDay.get(workspaceId) ?? dayIn("UTC");
  }

  private async loadSettings(connection: DuckDBConnection): Promise<void> {
    const rows = (
      await connection.runAndReadAll("SELECT workspace_id, time_zone, system_events FROM workspace_settings")
    ).getRows();
    for (const [workspaceId, timeZone, systemEvents] of rows) {
      this.remember(String(workspaceId), {
        timeZone: String(timeZone),
        systemEvents: JSON.parse(String(systemEvents)) as string[],
      });
    }
  }

  private async loadHashKey(connection: DuckDBConnection): Promise<string> {
    const found = (await connection.runAndReadAll("SELECT value FROM meta WHERE key = 'message_hash_key'")).getRows();
    if (found[0]) return String(found[0][0]);
    const key = randomBytes(32).toString("base64url");
    await connection.run("INSERT INTO meta VALUES ('message_hash_key', $1)", [key]);
    return key;
  }

  /** Rebuilds the in-memory de-duplication set from the stored hashes: about 0.3 s per million. */
  private async loadSeen(connection: DuckDBConnection): Promise<HashSet128> {
    const total = Number((await connection.runAndReadAll("SELECT count(*) FROM message_hashes")).getRows()[0]?.[0]);
    const seen = new HashSet128(Math.ceil(total * 1.5) + 1024);
    if (total === 0) return seen;
    const started = Date.now();
    const result = await connection.stream("SELECT h0, h1, h2, h3 FROM message_hashes");
    let lastReport = started;
    for (;;) {
      const chunk = await result.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      const [c0, c1, c2, c3] = [0, 1, 2, 3].map((i) => chunk.getColumnVector(i));
      for (let r = 0; r < chunk.rowCount; r++) {
        seen.add(
          c0?.getItem(r) as number,
          c1?.getItem(r) as number,
          c2?.getItem(r) as number,
          c3?.getItem(r) as number,
        );
      }
      if (Date.now() - lastReport > 2000) {
        lastReport = Date.now();
        this.options.onProgress?.(
          `loading message ids: ${seen.size.toLocaleString("en")} of ${total.toLocaleString("en")}`,
        );
      }
    }
    this.options.onProgress?.(`loaded ${seen.size.toLocaleString("en")} message ids in ${Date.now() - started} ms`);
    return seen;
  }
}
