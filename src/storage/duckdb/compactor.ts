import type { DuckDBConnection } from "@duckdb/node-api";
import { periodIndex } from "../../reports/periods.js";
import { transaction } from "./admin.js";
import { WEEKDAY_COLUMNS } from "./weekdays.js";

/** How each append-only table is reduced to one row per key: the winner of each key, in key order. */
const WINNERS = {
  identity_links: `QUALIFY row_number() OVER (PARTITION BY workspace_id, anonymous_id ORDER BY timestamp, received_at, message_id) = 1
    ORDER BY workspace_id, anonymous_id`,
  memberships: `QUALIFY row_number() OVER (PARTITION BY workspace_id, group_id, actor_kind, actor_id ORDER BY timestamp, received_at, message_id) = 1
    ORDER BY workspace_id, group_id, actor_kind, actor_id`,
  traits: `QUALIFY row_number() OVER (PARTITION BY workspace_id, entity_kind, entity_id, key ORDER BY timestamp DESC, received_at DESC, message_id DESC) = 1
    ORDER BY workspace_id, entity_kind, entity_id, key`,
} as const;

/**
 * Tables summed per key: the key columns and the aggregates, in the table's column order, then the
 * order the rows are written in.
 *
 * The actor tables (event_days aside, see there) are written actor by actor (then company, then
 * day), first the rows without a context.groupId, then those with one. An actor's rows then sit in
 * a few row groups, whose min/max statistics let a scan for a handful of actors skip the rest (a
 * user's activity_days rows take 2 ms to find on 10M events instead of 28), and a scan for one
 * company's context.groupId skips the rows that have none. Sorted, the actor ids also compress into
 * runs, and a distinct count over them takes a fifth of the time.
 */
const ACTOR_ORDER = "workspace_id, context_group_id IS NOT NULL, actor_kind, actor_id, context_group_id";
const SUMS = {
  actor_summary: {
    key: "workspace_id, actor_kind, actor_id, context_group_id",
    aggregates: "sum(events)::BIGINT, min(first_ts), max(last_ts)",
    order: ACTOR_ORDER,
  },
  activity_days: {
    key: "workspace_id, actor_kind, actor_id, context_group_id, day",
    aggregates: "sum(events)::BIGINT, min(first_ts), max(last_ts)",
    order: `${ACTOR_ORDER}, day`,
  },
  activity_weeks: {
    key: "workspace_id, actor_kind, actor_id, context_group_id, week",
    aggregates: "sum(events)::BIGINT, min(first_ts), max(last_ts), bit_or(days)",
    order: `${ACTOR_ORDER}, week`,
  },
  // Read event by event (feature adoption, a retention's start or return event, a company's top
  // events): in event order, a scan for one event reads its own row groups only (9 ms instead of 50).
  // The rows without a context.groupId come first, as in the other tables, so that a company's own
  // rows are looked for among the others only.
  event_days: {
    key: "workspace_id, actor_kind, actor_id, context_group_id, day, type, event",
    aggregates: "sum(events)::BIGINT, min(first_ts), max(last_ts)",
    order: "workspace_id, context_group_id IS NOT NULL, type, event, actor_kind, actor_id, context_group_id, day",
  },
  // Read actor by actor (a company's top events: its members' rows), so in actor order.
  event_weeks: {
    key: "workspace_id, actor_kind, actor_id, context_group_id, event, week",
    aggregates: WEEKDAY_COLUMNS.map((column) => `sum(${column})::BIGINT`).join(", "),
    order: `${ACTOR_ORDER}, event, week`,
  },
  // Read actor by actor (a user's timeline), so in actor order.
  message_days: {
    key: "workspace_id, actor_kind, actor_id, day",
    aggregates: "sum(messages)::BIGINT, min(first_ts), max(last_ts)",
    order: "workspace_id, actor_kind, actor_id, day",
  },
  workspace_counters: {
    key: "workspace_id",
    aggregates: "sum(messages)::BIGINT, sum(events)::BIGINT, sum(duplicates)::BIGINT",
    order: "workspace_id",
  },
} as const;

/**
 * event_times, one list of times per key, is read event by event (a funnel's steps), so in event
 * order; a key's rows are merged into one sorted list.
 */
const EVENT_TIMES_KEY = "workspace_id, actor_kind, actor_id, context_group_id, event";

/**
 * The day and week tables are rewritten only for the days (or weeks) that gained rows, unless the
 * rewrite is a full one: how each picks its rows of a range of day numbers.
 */
const days = (first: number, last: number) =>
  `day BETWEEN DATE '1970-01-01' + ${first} AND DATE '1970-01-01' + ${last}`;
// The weeks of those days, numbered as WEEK_OF_DAY numbers them.
const weeks = (first: number, last: number) =>
  `week BETWEEN ${periodIndex(first, "week")} AND ${periodIndex(last, "week")}`;
const RANGES: Record<string, (first: number, last: number) => string> = {
  activity_days: days,
  event_days: days,
  message_days: days,
  activity_weeks: weeks,
  event_weeks: weeks,
};

/** The most times (list elements) that one slice of event_times's compaction merges: 128 MB of them. */
export const EVENT_TIMES_SLICE = 16_000_000;

/** A text as a SQL string literal. */
const literal = (text: string) => `'${text.replaceAll("'", "''")}'`;

/**
 * Consecutive items cut into slices whose weights add up to at most `most` (an item heavier than
 * that is a slice of its own): the first and last key of each slice, in order.
 */
export function slices<K>(items: readonly { key: K; weight: number }[], most: number): [K, K][] {
  const out: [K, K][] = [];
  let start = 0;
  let weight = 0;
  items.forEach((item, i) => {
    if (i > start && weight + item.weight > most) {
      out.push([(items[start] as { key: K }).key, (items[i - 1] as { key: K }).key]);
      start = i;
      weight = 0;
    }
    weight += item.weight;
  });
  if (start < items.length) out.push([(items[start] as { key: K }).key, (items[items.length - 1] as { key: K }).key]);
  return out;
}

/** Messages committed after which the tables are compacted: a tenth of all messages, and at least this many. */
const MIN_MESSAGES = 100_000;

/** What a compaction takes on: the messages and the days committed since the last one. */
interface Pending {
  messages: number;
  firstDay: number;
  lastDay: number;
}

const NOTHING: Pending = { messages: 0, firstDay: Number.POSITIVE_INFINITY, lastDay: Number.NEGATIVE_INFINITY };

/**
 * Keeps the append-only derived tables small and in order. Each commit adds rows reduced within the
 * commit only; readers combine rows per key, so they give the same answers before and after a
 * compaction, which rewrites the tables to one row per key, each table in its own transaction.
 *
 * Compaction runs on a connection of its own, beside the commits rather than between them: its
 * transactions delete and insert rows that were committed before they began, and the commits only
 * append, which DuckDB lets both do at once. Rows appended meanwhile stay as they are, for the next
 * compaction. (Tasks that delete derived rows, such as erasing a user, must not overlap one: see
 * GroupCommitWriter.withoutCompaction.)
 *
 * A compaction rewrites the days that gained rows, written in key order after the rest; once the
 * messages since the last full rewrite outnumber those before it, the day tables and track_events
 * are rewritten whole, so that each is one ordered run again. Each row is rewritten whole about log2(growth)
 * times in all.
 */
export class Compactor {
  private messages = 0;
  /** Messages stored at the last full rewrite (or at start-up, taken as one). */
  private messagesAtFull = 0;
  private pendingWork: Pending = { ...NOTHING };
  /** Set by interrupt(): the compaction running stops at its next statement, and none runs again. */
  private cancelled = false;

  /** `messages`: the messages stored when the compactor starts (the writer's de-duplication set knows). */
  constructor(
    private readonly connection: DuckDBConnection,
    messages: number,
    /** The most times one slice of event_times merges (see compactEventTimes). */
    private readonly eventTimesSlice = EVENT_TIMES_SLICE,
  ) {
    this.messages = messages;
    this.messagesAtFull = messages;
  }

  /** Records a commit of `rows` new messages. */
  committed(rows: number): void {
    this.messages += rows;
    this.pendingWork.messages += rows;
  }

  /** Records that a commit added activity on days from `first` to `last` (day numbers). */
  touched(first: number, last: number): void {
    this.pendingWork.firstDay = Math.min(this.pendingWork.firstDay, first);
    this.pendingWork.lastDay = Math.max(this.pendingWork.lastDay, last);
  }

  /** Messages committed since the last compaction began. */
  get pending(): number {
    return this.pendingWork.messages;
  }

  get due(): boolean {
    return this.pendingWork.messages >= Math.max(MIN_MESSAGES, this.messages / 10);
  }

  /**
   * Rewrites every derived table to one row per key; `all` rewrites the day tables and track_events
   * whole, as a due full rewrite does. What was committed before the call is compacted; a failed
   * compaction leaves it pending for the next one. Resolves to whether the rewrite was a full one.
   */
  async compact(all = false): Promise<boolean> {
    const work = this.pendingWork;
    this.pendingWork = { ...NOTHING };
    const full = all || this.messages - this.messagesAtFull >= Math.max(MIN_MESSAGES, this.messagesAtFull);
    const messagesNow = this.messages;
    try {
      for (const [table, rule] of Object.entries(WINNERS)) {
        await this.rewrite(table, `SELECT * FROM ${table} ${rule}`, "");
      }
      const hasDays = work.firstDay <= work.lastDay;
      for (const [table, { key, aggregates, order }] of Object.entries(SUMS)) {
        let where = "";
        const range = RANGES[table];
        if (range && !full) {
          if (!hasDays) continue;
          // Spans can be long after a backfill; the day range keeps the rewrite to the rows it touched.
          where = `WHERE ${range(work.firstDay, work.lastDay)}`;
        }
        await this.rewrite(
          table,
          `SELECT ${key}, ${aggregates} FROM ${table} ${where} GROUP BY ${key} ORDER BY ${order}`,
          where,
        );
      }
      // Rewritten whole each time: a key's appended rows, one per derivation, are about as many as
      // the keys themselves after a tenth more messages, and each costs the funnels a row to read.
      await this.compactEventTimes();
      if (full) {
        // Appended in the order the messages arrive; rewritten in event order only when whole.
        await this.rewrite("track_events", "SELECT * FROM track_events ORDER BY workspace_id, event, timestamp", "");
        this.messagesAtFull = messagesNow;
      }
    } catch (err) {
      this.pendingWork = {
        messages: this.pendingWork.messages + work.messages,
        firstDay: Math.min(this.pendingWork.firstDay, work.firstDay),
        lastDay: Math.max(this.pendingWork.lastDay, work.lastDay),
      };
      throw err;
    }
    return full;
  }

  /** Stops the compaction running now, if any, at once: it fails and rolls back. For shutting down. */
  interrupt(): void {
    this.cancelled = true;
    this.connection.interrupt();
  }

  /**
   * Rewrites event_times slice by slice, each a range of (workspace, event) in order holding at most
   * EVENT_TIMES_SLICE times: the lists of a whole table merged at once held gigabytes on large
   * data, and DuckDB does not spill list aggregates to disk. The slices are written in order, so the
   * table stays in event order but for the rows that derivations append meanwhile.
   */
  private async compactEventTimes(): Promise<void> {
    if (this.cancelled) throw new Error("compaction cancelled");
    const events = (
      await this.connection.runAndReadAll(
        `SELECT workspace_id, event, sum(len(times))::DOUBLE AS times FROM event_times
         GROUP BY workspace_id, event ORDER BY workspace_id, event`,
      )
    ).getRows();
    for (const [first, last] of slices(
      events.map(([ws, event, n]) => ({ key: [String(ws), String(event)] as [string, string], weight: Number(n) })),
      this.eventTimesSlice,
    )) {
      const where = `WHERE (workspace_id > ${literal(first[0])} OR (workspace_id = ${literal(first[0])} AND event >= ${literal(first[1])}))
        AND (workspace_id < ${literal(last[0])} OR (workspace_id = ${literal(last[0])} AND event <= ${literal(last[1])}))`;
      await this.rewrite(
        "event_times",
        `SELECT ${EVENT_TIMES_KEY}, list_sort(flatten(list(times)))
         FROM event_times ${where} GROUP BY ${EVENT_TIMES_KEY}
         ORDER BY workspace_id, event, context_group_id IS NOT NULL, actor_kind, actor_id, context_group_id`,
        where,
      );
    }
  }

  private rewrite(table: string, select: string, where: string): Promise<void> {
    const run = async (sql: string) => {
      // An interrupt between two statements would be lost: the next one would run as usual.
      if (this.cancelled) throw new Error("compaction cancelled");
      await this.connection.run(sql);
    };
    return transaction(this.connection, async () => {
      await run(`CREATE OR REPLACE TEMP TABLE compacted AS ${select}`);
      await run(`DELETE FROM ${table} ${where}`);
      await run(`INSERT INTO ${table} SELECT * FROM compacted`);
      await run("DROP TABLE compacted");
    });
  }
}
