import type { DuckDBValue } from "@duckdb/node-api";
import type { EventQuery, EventRecord, MessageType } from "../types.js";
import { IDENTITY_CTES } from "./entities.js";

const ACTIVITY = "type IN ('track', 'page', 'screen')";
const ORDER = "ORDER BY timestamp DESC, message_id DESC";

/** What the engine may know before it reads a timeline, to read less. */
export interface TimelineHints {
  /** From timelineBoundQuery: the page lies at or after this instant (µs since the epoch). */
  since?: bigint | null;
  /** The anonymousIds linked to query.userId (from USER_ANONYMOUS_IDS_SQL), instead of working them out. */
  userAnonymousIds?: readonly string[];
  /**
   * From timelineRanges: disjoint spans of time, inclusive, in µs since the epoch, that hold every
   * message the page could return. Each is scanned on its own, and skips the row groups outside it.
   */
  ranges?: readonly (readonly [bigint, bigint])[];
}

/** A list of strings as SQL literals: a constant IN list, which DuckDB checks against each row group's statistics. */
function literals(values: readonly string[]): string {
  return values.map((v) => `'${v.replaceAll("'", "''")}'`).join(", ");
}

/** A cursor's timestamp in microseconds since the epoch, as the queries bind it. */
const cursorMicros = (after: NonNullable<EventQuery["after"]>) => BigInt(Math.round(after.timestamp * 1000));

/** `column` is one of `ids`; an empty list matches nothing. */
const inList = (column: string, ids: readonly string[]) =>
  ids.length === 0 ? "false" : `${column} IN (${literals(ids)})`;

/**
 * SQL and named parameters for `GET /api/v1/events`, newest first.
 *
 * A filter that is a disjunction across columns or subqueries (a user's messages, or those sent under
 * the anonymousIds linked to it) is split into disjoint alternatives, each a branch of a UNION ALL:
 * DuckDB pushes a branch's simple filters into its scan and reads the wide JSON columns only for the
 * rows that pass, where a disjunction would make it read them for every row. Each branch keeps its own
 * ORDER BY and LIMIT, so that its scan still gets the top-N's dynamic filter on timestamp.
 */
export function eventsQuery(
  query: EventQuery,
  hints: TimelineHints = {},
): { sql: string; params: Record<string, DuckDBValue> } {
  const since = hints.since ?? null;
  const params: Record<string, DuckDBValue> = { ws: query.workspaceId, limit: query.limit };
  const where = ["workspace_id = $ws"];
  if (since !== null) {
    // From timelineBoundQuery: the page lies at or after it, and the scan skips the row groups before it.
    where.push("timestamp >= make_timestamp($since::BIGINT)::TIMESTAMPTZ");
    params.since = since;
  }
  /** Each branch's extra conditions; a row matches at most one branch. */
  let branches: string[][] = [[]];
  const oneOf = (alternatives: string[][]) => {
    branches = branches.flatMap((branch) => alternatives.map((alternative) => [...branch, ...alternative]));
  };
  let with_ = "";
  if (hints.ranges !== undefined) {
    oneOf(
      hints.ranges.map(([lo, hi], i) => {
        params[`lo${i}`] = lo;
        params[`hi${i}`] = hi;
        return [
          `timestamp BETWEEN make_timestamp($lo${i}::BIGINT)::TIMESTAMPTZ AND make_timestamp($hi${i}::BIGINT)::TIMESTAMPTZ`,
        ];
      }),
    );
  }
  if (query.type) {
    where.push("type = $type");
    params.type = query.type;
  }
  if (query.userId !== undefined || query.companyId !== undefined) with_ = `WITH ${IDENTITY_CTES}`;
  if (query.userId !== undefined) {
    // A message with a userId is that user's; one with only an anonymousId is the linked user's.
    oneOf([
      ["user_id = $userId"],
      [
        "user_id IS NULL",
        hints.userAnonymousIds === undefined
          ? "anonymous_id IN (SELECT anonymous_id FROM links WHERE user_id = $userId)"
          : inList("anonymous_id", hints.userAnonymousIds),
      ],
    ]);
    params.userId = query.userId;
  }
  if (query.anonymousId !== undefined) {
    where.push("anonymous_id = $anonymousId");
    params.anonymousId = query.anonymousId;
  }
  if (query.groupId !== undefined) {
    oneOf([["group_id = $groupId"], ["context_group_id = $groupId", "group_id IS DISTINCT FROM $groupId"]]);
    params.groupId = query.groupId;
  }
  if (query.companyId !== undefined) {
    // The company's timeline: its group calls, and the activity attributed to it (its context.groupId,
    // or, without one, any member's).
    const members = "(SELECT user_id FROM members WHERE group_id = $companyId)";
    const unattributed = ["context_group_id IS NULL", "group_id IS DISTINCT FROM $companyId", ACTIVITY];
    oneOf([
      ["group_id = $companyId"],
      ["context_group_id = $companyId", "group_id IS DISTINCT FROM $companyId"],
      [...unattributed, `user_id IN ${members}`],
      [
        ...unattributed,
        "user_id IS NULL",
        `anonymous_id IN (SELECT anonymous_id FROM links WHERE user_id IN ${members})`,
      ],
    ]);
    params.companyId = query.companyId;
  }
  if (query.event !== undefined) {
    where.push("event = $event");
    params.event = query.event;
  }
  if (query.messageId !== undefined) {
    where.push("message_id = $messageId");
    params.messageId = query.messageId;
  }
  if (query.after) {
    // A JavaScript bigint parameter binds as HUGEINT, which make_timestamp does not take.
    where.push(
      "(timestamp < make_timestamp($afterTs::BIGINT)::TIMESTAMPTZ OR (timestamp = make_timestamp($afterTs::BIGINT)::TIMESTAMPTZ AND message_id < $afterId))",
    );
    params.afterTs = cursorMicros(query.after);
    params.afterId = query.after.messageId;
  }
  const source =
    branches.length === 1
      ? "messages"
      : `(${branches.map((branch) => `(SELECT * FROM messages WHERE ${[...where, ...branch].join(" AND ")} ${ORDER} LIMIT $limit)`).join("\n      UNION ALL ")})`;
  const filter = branches.length === 1 ? [...where, ...(branches[0] ?? [])] : ["true"];
  const sql = `${with_}
    SELECT message_id, type, event, name, category, user_id, anonymous_id, coalesce(group_id, context_group_id) AS group_id,
      previous_id, email, properties, traits, context, integrations,
      epoch_us(timestamp) AS ts, epoch_us(original_timestamp) AS original_ts, epoch_us(sent_at) AS sent_ts,
      epoch_us(received_at) AS received_ts
    FROM ${source}
    WHERE ${filter.join(" AND ")}
    ${ORDER}
    LIMIT $limit`;
  return { sql, params };
}

/** Whether an events query has a filter besides its user or company: then it is not a plain timeline. */
const narrowed = (query: EventQuery) =>
  [query.type, query.anonymousId, query.groupId, query.event, query.messageId].some((filter) => filter !== undefined);

/**
 * For a user's or a company's timeline (no other filter), SQL whose one row holds a lower bound on
 * the timestamps of the page eventsQuery returns, in microseconds, or NULL when there is none; null
 * for other queries.
 *
 * The activity tables know, per actor and day, how many activity messages there were and their first
 * and last timestamps. Taking those rows newest first (by last timestamp), older than the cursor,
 * until they hold `limit` messages, every message of that many lies at or after the earliest first
 * timestamp among them, and each is one the page could return: so the page's oldest message does too.
 * Messages arrive roughly in time order, so the messages table is in time order too, and a scan with
 * the bound reads only the row groups of the page's time span instead of the whole table.
 */
export function timelineBoundQuery(
  query: EventQuery,
  userAnonymousIds?: readonly string[],
): { sql: string; params: Record<string, DuckDBValue> } | null {
  if (narrowed(query)) return null;
  const params: Record<string, DuckDBValue> = { ws: query.workspaceId, limit: query.limit };
  let rows: string;
  const columns = "x.events, x.first_ts, x.last_ts";
  if (query.userId !== undefined && query.companyId === undefined) {
    params.userId = query.userId;
    // The same messages as eventsQuery's two branches: the user's own, and those of its anonymousIds.
    rows = `
      SELECT ${columns} FROM activity_days x
      WHERE x.workspace_id = $ws AND x.actor_kind = 'user' AND x.actor_id = $userId
      UNION ALL
      SELECT ${columns} FROM activity_days x
      WHERE x.workspace_id = $ws AND x.actor_kind = 'anon' AND ${
        userAnonymousIds === undefined
          ? "x.actor_id IN (SELECT anonymous_id FROM links WHERE user_id = $userId)"
          : inList("x.actor_id", userAnonymousIds)
      }`;
  } else if (query.companyId !== undefined && query.userId === undefined) {
    params.companyId = query.companyId;
    // Activity attributed to the company, as in eventsQuery: its context.groupId, or a member's without one.
    const members = "(SELECT user_id FROM members WHERE group_id = $companyId)";
    rows = `
      SELECT ${columns} FROM activity_days x WHERE x.workspace_id = $ws AND x.context_group_id = $companyId
      UNION ALL
      SELECT ${columns} FROM activity_days x
      WHERE x.workspace_id = $ws AND x.context_group_id IS NULL AND x.actor_kind = 'user' AND x.actor_id IN ${members}
      UNION ALL
      SELECT ${columns} FROM activity_days x
      WHERE x.workspace_id = $ws AND x.context_group_id IS NULL AND x.actor_kind = 'anon'
        AND x.actor_id IN (SELECT anonymous_id FROM links WHERE user_id IN ${members})`;
  } else {
    return null;
  }
  let older = "";
  if (query.after) {
    // Only rows wholly older than the cursor: every message of theirs is on a later page than it.
    older = "WHERE last_ts < make_timestamp($afterTs::BIGINT)::TIMESTAMPTZ";
    params.afterTs = cursorMicros(query.after);
  }
  const sql = `WITH ${IDENTITY_CTES},
    newest AS (
      SELECT sum(events) OVER w AS upto, min(first_ts) OVER w AS since
      FROM (${rows}) ${older}
      WINDOW w AS (ORDER BY last_ts DESC, first_ts DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    )
    SELECT epoch_us(max(since)) AS since FROM newest WHERE upto >= $limit`;
  return { sql, params };
}

/**
 * For a user's timeline (no other filter), SQL for the message_days rows of the user and of its
 * anonymousIds: per actor and UTC day, how many messages and their first and last timestamps (µs),
 * which timelineRanges turns into the spans to scan. null for other queries.
 */
export function userTimelineDaysQuery(
  query: EventQuery,
  anonymousIds: readonly string[],
): { sql: string; params: Record<string, DuckDBValue> } | null {
  if (query.userId === undefined || query.companyId !== undefined || narrowed(query)) return null;
  const columns = "messages, epoch_us(first_ts) AS first, epoch_us(last_ts) AS last";
  // Two scans, one per actor kind, each with simple filters that DuckDB checks against the
  // statistics of the rows, which are in actor order.
  const sql = `
    SELECT ${columns} FROM message_days WHERE workspace_id = $ws AND actor_kind = 'user' AND actor_id = $userId
    UNION ALL
    SELECT ${columns} FROM message_days WHERE workspace_id = $ws AND actor_kind = 'anon' AND ${inList("actor_id", anonymousIds)}`;
  return { sql, params: { ws: query.workspaceId, userId: query.userId } };
}

/** At most this many spans are scanned one by one; with more, one scan from the page's bound is cheaper. */
export const MAX_TIMELINE_RANGES = 12;

/** Spans closer than this (µs) are scanned as one. */
const RANGE_GAP_US = 3_600_000_000n;

/**
 * The spans of time that hold every message of a user's page, from the user's message_days rows
 * (`messages`, `first` and `last` in µs), for the page of `limit` messages after the cursor: or, when
 * more than MAX_TIMELINE_RANGES spans would be needed, just the page's lower bound (`since`, or null
 * when there is none).
 *
 * Rows wholly older than the cursor, newest first, until they hold `limit` messages: the page's
 * messages all lie at or after the earliest first timestamp among them (as in timelineBoundQuery).
 * Every row that reaches past that bound, cut to it and to the cursor, is a span to scan; spans that
 * overlap or nearly touch are joined.
 */
export function timelineRanges(
  rows: readonly { messages: number; first: bigint; last: bigint }[],
  limit: number,
  after?: EventQuery["after"],
): { ranges: [bigint, bigint][] } | { since: bigint | null } {
  const cursor = after === undefined ? null : cursorMicros(after);
  const older = rows
    .filter((r) => cursor === null || r.last < cursor)
    .sort((a, b) => (a.last === b.last ? (a.first < b.first ? 1 : -1) : a.last < b.last ? 1 : -1));
  let since: bigint | null = null;
  let held = 0;
  for (const row of older) {
    held += row.messages;
    since = since === null || row.first < since ? row.first : since;
    if (held >= limit) break;
  }
  if (held < limit) since = null;
  const spans = rows
    .filter((r) => (cursor === null || r.first <= cursor) && (since === null || r.last >= since))
    .map((r): [bigint, bigint] => [
      since !== null && r.first < since ? since : r.first,
      cursor !== null && r.last > cursor ? cursor : r.last,
    ])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const ranges: [bigint, bigint][] = [];
  for (const [lo, hi] of spans) {
    const last = ranges[ranges.length - 1];
    if (last && lo <= last[1] + RANGE_GAP_US) {
      if (hi > last[1]) last[1] = hi;
    } else {
      ranges.push([lo, hi]);
    }
  }
  return ranges.length <= MAX_TIMELINE_RANGES ? { ranges } : { since };
}

function text(value: DuckDBValue): string | null {
  return value === null || value === undefined ? null : String(value);
}

function json(value: DuckDBValue): unknown {
  return value === null || value === undefined ? null : JSON.parse(String(value));
}

/** Microseconds since the epoch to ISO 8601 with milliseconds. */
function iso(value: DuckDBValue): string | null {
  return value === null || value === undefined ? null : new Date(Number(value) / 1000).toISOString();
}

/** One row of eventsQuery as the API returns it. */
export function toEventRecord(row: Record<string, DuckDBValue>): EventRecord {
  return {
    messageId: String(row.message_id),
    type: String(row.type) as MessageType,
    event: text(row.event ?? null),
    name: text(row.name ?? null),
    category: text(row.category ?? null),
    userId: text(row.user_id ?? null),
    anonymousId: text(row.anonymous_id ?? null),
    groupId: text(row.group_id ?? null),
    previousId: text(row.previous_id ?? null),
    email: text(row.email ?? null),
    properties: json(row.properties ?? null),
    traits: json(row.traits ?? null),
    context: json(row.context ?? null),
    integrations: json(row.integrations ?? null),
    timestamp: iso(row.ts ?? null) as string,
    originalTimestamp: iso(row.original_ts ?? null),
    sentAt: iso(row.sent_ts ?? null),
    receivedAt: iso(row.received_ts ?? null) as string,
  };
}
