import { type DuckDBAppender, type DuckDBConnection, DuckDBDateValue, DuckDBTimestampTZValue } from "@duckdb/node-api";
import type { Deltas } from "../../identity/deltas.js";

function ts(ms: number): DuckDBTimestampTZValue {
  return new DuckDBTimestampTZValue(BigInt(Math.round(ms * 1000)));
}

function text(a: DuckDBAppender, value: string | null): void {
  if (value === null) a.appendNull();
  else a.appendVarchar(value);
}

/** How each append-only table is reduced to one row per key. */
const COMPACTIONS = {
  identity_links:
    "QUALIFY row_number() OVER (PARTITION BY workspace_id, anonymous_id ORDER BY timestamp, received_at, message_id) = 1",
  memberships:
    "QUALIFY row_number() OVER (PARTITION BY workspace_id, group_id, actor_kind, actor_id ORDER BY timestamp, received_at, message_id) = 1",
  traits:
    "QUALIFY row_number() OVER (PARTITION BY workspace_id, entity_kind, entity_id, key ORDER BY timestamp DESC, received_at DESC, message_id DESC) = 1",
} as const;

/** Tables summed per key: the key columns, then the aggregates, in the table's column order. */
const SUMMED = {
  actor_summary: [
    "workspace_id, actor_kind, actor_id, context_group_id",
    "sum(events)::BIGINT, min(first_ts), max(last_ts)",
  ],
  activity_days: [
    "workspace_id, actor_kind, actor_id, context_group_id, day",
    "sum(events)::BIGINT, min(first_ts), max(last_ts)",
  ],
  event_days: [
    "workspace_id, actor_kind, actor_id, context_group_id, day, type, event",
    "sum(events)::BIGINT, min(first_ts), max(last_ts)",
  ],
  workspace_counters: ["workspace_id", "sum(messages)::BIGINT, sum(events)::BIGINT, sum(duplicates)::BIGINT"],
} as const;

/** The day tables are compacted only for the days that gained rows; the others whole. */
const DAY_TABLES: readonly Table[] = ["activity_days", "event_days"];

type Table = keyof typeof COMPACTIONS | keyof typeof SUMMED;

/** Appended rows after which a table is compacted: a tenth of its size, and at least this many. */
const MIN_COMPACTION_ROWS = 20_000;

/**
 * The derived tables that the writer keeps as messages arrive, in the same transaction as the
 * messages: identity links, memberships, traits and daily activity. Append-only; see `compact()`.
 */
export class DerivedTables {
  private appenders = new Map<Table, DuckDBAppender>();
  private appended = new Map<Table, number>();
  /** Appenders holding rows not yet flushed: flushing an empty appender still costs a round trip. */
  private dirty = new Set<Table>();
  private sizes = new Map<Table, number>();
  /** Days that gained activity rows since the last compaction of the day tables. */
  private touchedDays = new Set<number>();

  constructor(private readonly connection: DuckDBConnection) {}

  async open(): Promise<void> {
    for (const table of [...Object.keys(COMPACTIONS), ...Object.keys(SUMMED)] as Table[]) {
      this.appenders.set(table, await this.connection.createAppender(table));
      const count = await this.connection.runAndReadAll(`SELECT count(*) FROM ${table}`);
      this.sizes.set(table, Number(count.getRows()[0]?.[0] ?? 0));
      this.appended.set(table, 0);
    }
  }

  private appender(table: Table): DuckDBAppender {
    const a = this.appenders.get(table);
    if (!a) throw new Error(`no appender for ${table}`);
    return a;
  }

  /** Appends the deltas into the current transaction. */
  append(deltas: Deltas): void {
    const links = this.appender("identity_links");
    for (const d of deltas.links) {
      links.appendVarchar(d.workspaceId);
      links.appendVarchar(d.anonymousId);
      links.appendVarchar(d.userId);
      links.appendTimestampTZ(ts(d.timestamp));
      links.appendTimestampTZ(ts(d.receivedAt));
      links.appendVarchar(d.messageId);
      links.endRow();
    }
    const memberships = this.appender("memberships");
    for (const d of deltas.memberships) {
      memberships.appendVarchar(d.workspaceId);
      memberships.appendVarchar(d.groupId);
      memberships.appendVarchar(d.actorKind);
      memberships.appendVarchar(d.actorId);
      memberships.appendTimestampTZ(ts(d.timestamp));
      memberships.appendTimestampTZ(ts(d.receivedAt));
      memberships.appendVarchar(d.messageId);
      memberships.endRow();
    }
    const traits = this.appender("traits");
    for (const d of deltas.traits) {
      traits.appendVarchar(d.workspaceId);
      traits.appendVarchar(d.entityKind);
      traits.appendVarchar(d.entityId);
      traits.appendVarchar(d.key);
      traits.appendVarchar(d.value);
      traits.appendTimestampTZ(ts(d.timestamp));
      traits.appendTimestampTZ(ts(d.receivedAt));
      traits.appendVarchar(d.messageId);
      traits.endRow();
    }
    const activity = this.appender("activity_days");
    for (const d of deltas.activity) {
      activity.appendVarchar(d.workspaceId);
      activity.appendVarchar(d.actorKind);
      activity.appendVarchar(d.actorId);
      text(activity, d.contextGroupId);
      activity.appendDate(new DuckDBDateValue(d.day));
      activity.appendBigInt(BigInt(d.events));
      activity.appendTimestampTZ(ts(d.firstTs));
      activity.appendTimestampTZ(ts(d.lastTs));
      activity.endRow();
      this.touchedDays.add(d.day);
    }
    const summary = this.appender("actor_summary");
    for (const d of deltas.summary) {
      summary.appendVarchar(d.workspaceId);
      summary.appendVarchar(d.actorKind);
      summary.appendVarchar(d.actorId);
      text(summary, d.contextGroupId);
      summary.appendBigInt(BigInt(d.events));
      summary.appendTimestampTZ(ts(d.firstTs));
      summary.appendTimestampTZ(ts(d.lastTs));
      summary.endRow();
    }
    const eventDays = this.appender("event_days");
    for (const d of deltas.eventDays) {
      eventDays.appendVarchar(d.workspaceId);
      eventDays.appendVarchar(d.actorKind);
      eventDays.appendVarchar(d.actorId);
      text(eventDays, d.contextGroupId);
      eventDays.appendDate(new DuckDBDateValue(d.day));
      eventDays.appendVarchar(d.type);
      eventDays.appendVarchar(d.event);
      eventDays.appendBigInt(BigInt(d.events));
      eventDays.appendTimestampTZ(ts(d.firstTs));
      eventDays.appendTimestampTZ(ts(d.lastTs));
      eventDays.endRow();
      this.touchedDays.add(d.day);
    }
    this.count("identity_links", deltas.links.length);
    this.count("memberships", deltas.memberships.length);
    this.count("traits", deltas.traits.length);
    this.count("activity_days", deltas.activity.length);
    this.count("actor_summary", deltas.summary.length);
    this.count("event_days", deltas.eventDays.length);
  }

  private count(table: Table, rows: number): void {
    if (rows === 0) return;
    this.appended.set(table, (this.appended.get(table) ?? 0) + rows);
    this.dirty.add(table);
  }

  /** Appends one commit's change to a workspace's counts. */
  appendCounters(workspaceId: string, messages: number, events: number, duplicates: number): void {
    const a = this.appender("workspace_counters");
    a.appendVarchar(workspaceId);
    a.appendBigInt(BigInt(messages));
    a.appendBigInt(BigInt(events));
    a.appendBigInt(BigInt(duplicates));
    a.endRow();
    this.count("workspace_counters", 1);
  }

  /** Flushes the appenders that hold rows into the current transaction. */
  flush(): void {
    for (const table of this.dirty) this.appender(table).flushSync();
    this.dirty.clear();
  }

  /** Drops what the appenders hold (after a failed commit) and starts from fresh appenders. */
  async reset(): Promise<void> {
    for (const [table, a] of this.appenders) {
      try {
        a.clear();
        a.closeSync();
      } catch {
        // Already unusable; replaced below.
      }
      this.appenders.set(table, await this.connection.createAppender(table));
    }
    this.dirty.clear();
  }

  closeSync(): void {
    for (const a of this.appenders.values()) a.closeSync();
  }

  /** Whether some table has grown enough since its last compaction to be worth compacting. */
  get compactionDue(): boolean {
    for (const [table, rows] of this.appended) {
      if (rows >= Math.max(MIN_COMPACTION_ROWS, (this.sizes.get(table) ?? 0) / 10)) return true;
    }
    return false;
  }

  /**
   * Rewrites the tables that grew to one row per key, each in its own transaction. Readers give the
   * same answers before and after; compaction only keeps the tables small. The day tables are
   * rewritten only for the days that gained rows.
   */
  async compact(all = false): Promise<void> {
    for (const [table, rule] of Object.entries(COMPACTIONS) as [Table, string][]) {
      if (!all && (this.appended.get(table) ?? 0) < MIN_COMPACTION_ROWS) continue;
      await this.rewrite(table, `SELECT * FROM ${table} ${rule}`, "");
    }
    const days = [...this.touchedDays];
    for (const [table, [key, aggregates]] of Object.entries(SUMMED) as [Table, readonly [string, string]][]) {
      let where = "";
      if (DAY_TABLES.includes(table)) {
        if (!all && days.length === 0) continue;
        if (!all) where = `WHERE day IN (${days.map((d) => `DATE '1970-01-01' + ${d}`).join(", ")})`;
      } else if (!all && (this.appended.get(table) ?? 0) < MIN_COMPACTION_ROWS) {
        continue;
      }
      await this.rewrite(table, `SELECT ${key}, ${aggregates} FROM ${table} ${where} GROUP BY ${key}`, where);
    }
    this.touchedDays.clear();
  }

  private async rewrite(table: Table, select: string, where: string): Promise<void> {
    await this.connection.run("BEGIN TRANSACTION");
    try {
      await this.connection.run(`CREATE OR REPLACE TEMP TABLE compacted AS ${select}`);
      await this.connection.run(`DELETE FROM ${table} ${where}`);
      await this.connection.run(`INSERT INTO ${table} SELECT * FROM compacted`);
      await this.connection.run("DROP TABLE compacted");
      await this.connection.run("COMMIT");
    } catch (err) {
      await this.connection.run("ROLLBACK");
      throw err;
    }
    const count = await this.connection.runAndReadAll(`SELECT count(*) FROM ${table}`);
    this.sizes.set(table, Number(count.getRows()[0]?.[0] ?? 0));
    this.appended.set(table, 0);
  }
}
