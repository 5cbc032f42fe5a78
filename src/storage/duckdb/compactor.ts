import type { DuckDBConnection } from "@duckdb/node-api";
import { transaction } from "./admin.js";

/** How each append-only table is reduced to one row per key: the winner of each key. */
const WINNERS = {
  identity_links:
    "QUALIFY row_number() OVER (PARTITION BY workspace_id, anonymous_id ORDER BY timestamp, received_at, message_id) = 1",
  memberships:
    "QUALIFY row_number() OVER (PARTITION BY workspace_id, group_id, actor_kind, actor_id ORDER BY timestamp, received_at, message_id) = 1",
  traits:
    "QUALIFY row_number() OVER (PARTITION BY workspace_id, entity_kind, entity_id, key ORDER BY timestamp DESC, received_at DESC, message_id DESC) = 1",
} as const;

/** Tables summed per key: the key columns, then the aggregates, in the table's column order. */
const SUMS = {
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

/** The day tables are rewritten only for the days that gained rows. */
const DAY_TABLES = new Set(["activity_days", "event_days"]);

/** Messages committed after which the tables are compacted: a tenth of all messages, and at least this many. */
const MIN_MESSAGES = 100_000;

/**
 * Keeps the append-only derived tables small. Each commit adds rows reduced within the commit only;
 * readers combine rows per key, so they give the same answers before and after a compaction, which
 * rewrites the tables to one row per key, each table in its own transaction.
 */
export class Compactor {
  private messages = 0;
  private sinceLast = 0;
  private firstDay = Number.POSITIVE_INFINITY;
  private lastDay = Number.NEGATIVE_INFINITY;

  constructor(private readonly connection: DuckDBConnection) {}

  async open(): Promise<void> {
    const result = await this.connection.runAndReadAll("SELECT count(*) FROM message_hashes");
    this.messages = Number(result.getRows()[0]?.[0] ?? 0);
  }

  /** Records a commit of `rows` new messages. */
  committed(rows: number): void {
    this.messages += rows;
    this.sinceLast += rows;
  }

  /** Records that a commit added activity on days from `first` to `last` (day numbers). */
  touched(first: number, last: number): void {
    this.firstDay = Math.min(this.firstDay, first);
    this.lastDay = Math.max(this.lastDay, last);
  }

  /** Messages committed since the last compaction. */
  get pending(): number {
    return this.sinceLast;
  }

  get due(): boolean {
    return this.sinceLast >= Math.max(MIN_MESSAGES, this.messages / 10);
  }

  /** Rewrites every derived table to one row per key; `all` includes the day tables' older days. */
  async compact(all = false): Promise<void> {
    for (const [table, rule] of Object.entries(WINNERS)) {
      await this.rewrite(table, `SELECT * FROM ${table} ${rule}`, "");
    }
    const hasDays = this.firstDay <= this.lastDay;
    for (const [table, [key, aggregates]] of Object.entries(SUMS)) {
      let where = "";
      if (DAY_TABLES.has(table) && !all) {
        if (!hasDays) continue;
        // Spans can be long after a backfill; the day range keeps the rewrite to the rows it touched.
        where = `WHERE day BETWEEN DATE '1970-01-01' + ${this.firstDay} AND DATE '1970-01-01' + ${this.lastDay}`;
      }
      await this.rewrite(table, `SELECT ${key}, ${aggregates} FROM ${table} ${where} GROUP BY ${key}`, where);
    }
    this.sinceLast = 0;
    this.firstDay = Number.POSITIVE_INFINITY;
    this.lastDay = Number.NEGATIVE_INFINITY;
  }

  private rewrite(table: string, select: string, where: string): Promise<void> {
    return transaction(this.connection, async () => {
      await this.connection.run(`CREATE OR REPLACE TEMP TABLE compacted AS ${select}`);
      await this.connection.run(`DELETE FROM ${table} ${where}`);
      await this.connection.run(`INSERT INTO ${table} SELECT * FROM compacted`);
      await this.connection.run("DROP TABLE compacted");
    });
  }
}
