import { type Interval, periodFirstDay, periodIndex } from "../../reports/periods.js";
import type { Scope } from "../../reports/plans.js";
import { VISITOR_PREFIX } from "../../reports/visitors.js";
import { REPORT_IDENTITY_CTES } from "./entities.js";

export { REPORT_IDENTITY_CTES, VISITOR_PREFIX };

/** The day number of a DATE column. */
export const dayNumber = (column: string) => `(${column} - DATE '1970-01-01')`;

/** The first instant of local day `day` (a day number, as SQL) in the time zone $tz. */
export const dayStart = (day: string) => `timezone($tz, (DATE '1970-01-01' + ${day})::TIMESTAMP)`;

/**
 * The period index of a day number, as `periodIndex` in reports/periods.ts computes it: the day
 * itself; weeks from Monday (1970-01-01 was a Thursday); calendar months as year × 12 + month − 1.
 */
export function periodSql(interval: Interval, day: string): string {
  if (interval === "day") return `(${day})`;
  if (interval === "week") return `floor((${day} + 3) / 7)::INTEGER`;
  // Day numbers are often BIGINT (a DATE difference), and DuckDB adds only an INTEGER to a DATE.
  return `(year(DATE '1970-01-01' + (${day})::INTEGER) * 12 + month(DATE '1970-01-01' + (${day})::INTEGER) - 1)`;
}

/** The day of its week of a day number, as SQL: 0 for Monday to 6 for Sunday (periodSql's weeks). */
export const weekDaySql = (day: string) => `(${day} + 3 - 7 * ${periodSql("week", day)})`;

/**
 * The join of an actor row to its anonymousId's link. It is one equality (NULL, so no match, for a
 * userId actor) on purpose: DuckDB plans `x.actor_kind = 'anon' AND l.anonymous_id = x.actor_id` in
 * a LEFT JOIN as a nested-loop join, seconds over a million rows, where this is a hash join.
 */
const LINK_KEY = "l.anonymous_id = CASE WHEN x.actor_kind = 'anon' THEN x.actor_id END";

/** The user an actor row resolves to: its userId, or the user its anonymousId is linked to. */
const RESOLVED_USER = "CASE WHEN x.actor_kind = 'user' THEN x.actor_id ELSE l.user_id END";

/**
 * Rows of a derived table (activity_days, event_days or actor_summary) as the report's entities:
 * at user level the resolved user (or the visitor, when asked for); at company level the company of
 * the context.groupId, or else every company of the user. `columns` are taken from the table as `x`.
 * The result has `entity` plus the columns, one row per source row and company; callers aggregate.
 */
export function entityRows(scope: Scope, table: string, columns: string, where = ""): string {
  const join = `LEFT JOIN links l ON ${LINK_KEY}`;
  if (scope.level === "user") {
    const visitor = scope.includeAnonymous ? `'${VISITOR_PREFIX}' || x.actor_id` : "NULL";
    return `SELECT * FROM (
      SELECT coalesce(${RESOLVED_USER}, ${visitor}) AS entity, ${columns}
      FROM ${table} x ${join} WHERE x.workspace_id = $ws ${where}
    ) WHERE entity IS NOT NULL`;
  }
  return `
    SELECT x.context_group_id AS entity, ${columns} FROM ${table} x
    WHERE x.workspace_id = $ws AND x.context_group_id IS NOT NULL ${where}
    UNION ALL
    SELECT m.group_id AS entity, ${columns} FROM ${table} x ${join} JOIN members m ON m.user_id = ${RESOLVED_USER}
    WHERE x.workspace_id = $ws AND x.context_group_id IS NULL ${where}`;
}

/**
 * Track calls as the report's entities, with the same rules as entityRows: a message's own userId,
 * else the user of its anonymousId; at company level its context.groupId, else the user's
 * companies. Columns are taken from `track_events` (the columns of `messages` that these reports
 * read, for track calls only, in event order) as `x`. At company level, `members` may name a table
 * with the columns of the members CTE and more, joined as `m` with the extra condition `on`.
 */
export function messageRows(
  scope: Scope,
  columns: string,
  where: string,
  members: { table: string; on: string } = { table: "members", on: "" },
): string {
  const user = "coalesce(x.user_id, l.user_id)";
  // A pure equality, for the reason given at LINK_KEY.
  const join = "LEFT JOIN links l ON l.anonymous_id = CASE WHEN x.user_id IS NULL THEN x.anonymous_id END";
  if (scope.level === "user") {
    const visitor = scope.includeAnonymous ? `'${VISITOR_PREFIX}' || x.anonymous_id` : "NULL";
    return `SELECT * FROM (
      SELECT coalesce(${user}, ${visitor}) AS entity, ${columns}
      FROM track_events x ${join} WHERE x.workspace_id = $ws ${where}
    ) WHERE entity IS NOT NULL`;
  }
  return `
    SELECT x.context_group_id AS entity, ${columns} FROM track_events x
    WHERE x.workspace_id = $ws AND x.context_group_id IS NOT NULL ${where}
    UNION ALL
    SELECT m.group_id AS entity, ${columns} FROM track_events x ${join} JOIN ${members.table} m ON m.user_id = ${user} ${members.on}
    WHERE x.workspace_id = $ws AND x.context_group_id IS NULL ${where}`;
}

/**
 * The actors (actor_summary's key: actor and context.groupId) with activity in [$from, $to], shaped
 * as a table for entityRows. An actor whose first and last activity both fall in the range is
 * active in it, one whose activity lies wholly outside is not: only the others need activity_days,
 * and for a range that spans the data there are none. Far fewer rows than activity_days.
 */
export function activeActorsSql(): string {
  // The range as instants, [start of `from`, start of the day after `to`): comparing timestamps with
  // them costs less than turning every timestamp into a local day.
  const start = dayStart("$from");
  const end = dayStart("$to + 1");
  return `(
    WITH spans AS (
      SELECT workspace_id, actor_kind, actor_id, context_group_id, min(first_ts) AS first_ts, max(last_ts) AS last_ts
      FROM actor_summary WHERE workspace_id = $ws GROUP BY workspace_id, actor_kind, actor_id, context_group_id
    ),
    overlapping AS MATERIALIZED (
      SELECT *, first_ts >= ${start} AND last_ts < ${end} AS inside FROM spans
      WHERE first_ts < ${end} AND last_ts >= ${start}
    ),
    straddling AS MATERIALIZED (SELECT actor_kind, actor_id, context_group_id FROM overlapping WHERE NOT inside)
    SELECT workspace_id, actor_kind, actor_id, context_group_id FROM overlapping WHERE inside
    UNION ALL
    SELECT x.workspace_id, x.actor_kind, x.actor_id, x.context_group_id
    FROM activity_days x SEMI JOIN straddling s ON s.actor_kind = x.actor_kind AND s.actor_id = x.actor_id
      AND s.context_group_id IS NOT DISTINCT FROM x.context_group_id
    WHERE x.workspace_id = $ws AND x.day BETWEEN DATE '1970-01-01' + $from AND DATE '1970-01-01' + $to
  )`;
}

/** Inclusive ranges of day numbers. */
export type DayRanges = readonly (readonly [number, number])[];

/** An integer as a SQL literal. */
const int = (n: number) => String(Math.trunc(n));

/** All seven days of a week in activity_weeks.days. */
const WHOLE_WEEK = 0b111_1111;

/**
 * Day ranges as weeks: spans of whole weeks (as week numbers), and the weeks the ranges hold only
 * some days of, each with those days as a mask of activity_weeks.days (bit 0 for Monday).
 */
export function weekCover(ranges: DayRanges): { weeks: [number, number][]; partial: [number, number][] } {
  const weeks: [number, number][] = [];
  const masks = new Map<number, number>();
  for (const [lo, hi] of mergeRanges(ranges)) {
    const first = periodIndex(lo, "week");
    const last = periodIndex(hi, "week");
    // The whole weeks: from the first week unless lo is past its Monday, to the last unless hi is before its Sunday.
    const from = periodFirstDay(first, "week") === lo ? first : first + 1;
    const to = periodFirstDay(last + 1, "week") - 1 === hi ? last : last - 1;
    if (from <= to) weeks.push([from, to]);
    for (const week of new Set([first, last])) {
      if (week >= from && week <= to) continue;
      const monday = periodFirstDay(week, "week");
      const a = Math.max(lo, monday) - monday;
      const b = Math.min(hi, monday + 6) - monday;
      masks.set(week, (masks.get(week) ?? 0) | (((1 << (b + 1)) - 1) & ~((1 << a) - 1)));
    }
  }
  // The ranges are apart by a day at least, so no week is whole by the days of two of them.
  const partial = [...masks].sort(([a], [b]) => a - b);
  return { weeks, partial };
}

/** Day ranges sorted, without empty ones, and those that overlap or touch made one. */
export function mergeRanges(ranges: DayRanges): [number, number][] {
  const merged: [number, number][] = [];
  for (const [lo, hi] of [...ranges].filter(([lo, hi]) => lo <= hi).sort(([a], [b]) => a - b)) {
    const last = merged[merged.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else merged.push([lo, hi]);
  }
  return merged;
}

/**
 * The rows of activity_weeks on the days of weekCover's result: one range of weeks, which DuckDB
 * checks as it scans, then the days of the rows of partial weeks (and none of the weeks between two
 * ranges). An OR of a condition per span and per partial week is not pushed into the scan, and cost
 * half as much again as the whole query without it.
 */
export function weeksFilter(weeks: readonly [number, number][], partial: readonly [number, number][]): string {
  const all = [...weeks.flat(), ...partial.map(([week]) => week)];
  const first = Math.min(...all);
  const last = Math.max(...all);
  const span = `x.week BETWEEN ${int(first)} AND ${int(last)}`;
  const held = weeks.reduce((n, [from, to]) => n + to - from + 1, 0) + partial.length;
  const gaps = held < last - first + 1;
  if (partial.length === 0 && !gaps) return span;
  const cases = [
    ...partial.map(([week, mask]) => `WHEN x.week = ${int(week)} THEN ${int(mask)}`),
    ...(gaps ? weeks.map(([from, to]) => `WHEN x.week BETWEEN ${int(from)} AND ${int(to)} THEN ${WHOLE_WEEK}`) : []),
  ];
  return `${span} AND x.days & (CASE ${cases.join(" ")} ELSE ${gaps ? 0 : WHOLE_WEEK} END)::UTINYINT <> 0`;
}

/**
 * `entity` and `p` for each activity row on the days of `ranges`, `p` being the row's period: the
 * entities active in each period, counting those days only. Rows repeat; callers reduce them (periodWords).
 * Weekly periods read activity_weeks alone, under half the rows of activity_days (756k against
 * 1.73M on the benchmark data): whole weeks by their number, the weeks at a range's edges by the days
 * of each row. activity_days is in actor order, so that reading a few of its days costs a whole scan.
 */
export function activePeriodRows(scope: Scope, interval: Interval, ranges: DayRanges): string {
  const kept = mergeRanges(ranges);
  if (kept.length === 0) return "SELECT NULL::VARCHAR AS entity, NULL::INTEGER AS p WHERE false";
  if (interval === "week") {
    const { weeks, partial } = weekCover(kept);
    return `SELECT entity, p FROM (${entityRows(scope, "activity_weeks", "x.week AS p", `AND ${weeksFilter(weeks, partial)}`)})`;
  }
  const date = (n: number) => `DATE '1970-01-01' + ${int(n)}`;
  const days = kept.map(([lo, hi]) => `x.day BETWEEN ${date(lo)} AND ${date(hi)}`);
  // The whole span first, which DuckDB checks as it scans (see weeksFilter), then each range.
  const span = `x.day BETWEEN ${date(Math.min(...kept.map(([lo]) => lo)))} AND ${date(Math.max(...kept.map(([, hi]) => hi)))}`;
  return `SELECT entity, p FROM (${entityRows(
    scope,
    "activity_days",
    `${periodSql(interval, dayNumber("x.day"))} AS p`,
    `AND ${span} AND (${days.join(" OR ")})`,
  )})`;
}

/**
 * Each entity's first activity over all data, as a timestamp and as a local day number, for the
 * entities first seen on a local day in [lo, hi] (day numbers, as SQL). The days are compared as
 * instants, before the local day is worked out: a time zone conversion costs about a quarter of a
 * microsecond, and it is made only for the entities kept.
 */
export function firstSeenSql(scope: Scope, lo: string, hi: string): string {
  return `SELECT entity, first_ts, (timezone($tz, first_ts))::DATE - DATE '1970-01-01' AS first_day FROM (
      SELECT entity, min(first_ts) AS first_ts FROM (${entityRows(scope, "actor_summary", "x.first_ts")})
      GROUP BY entity HAVING min(first_ts) >= ${dayStart(lo)} AND min(first_ts) < ${dayStart(`${hi} + 1`)}
    )`;
}

/** Each entity's first occurrence of a track event over all data, as a local day number. */
export function firstEventSql(scope: Scope): string {
  return `SELECT entity, min(first_ts) AS first_ts, min(day) AS first_day
    FROM (${entityRows(scope, "event_days", `${dayNumber("x.day")} AS day, x.first_ts`, "AND x.type = 'track' AND x.event = $startEvent")})
    GROUP BY entity`;
}

/** Periods per word of periodWords. */
export const WORD_BITS = 64;

/**
 * Each entity's periods among `rows` (columns entity and p, p ≥ $base) as bitmaps: bit i of word w
 * stands for period $base + 64w + i. One row per entity and word, and most entities have a single
 * word. Grouping by entity costs about half of a DISTINCT over (entity, period), whose hash table
 * holds a string key per entity and period: 29 against 60 ms for the weekly activity of 50,000
 * users over 25 weeks, their reading included.
 */
export function periodWords(rows: string): string {
  return `SELECT entity, (p - $base) // ${WORD_BITS} AS word,
      bit_or(1::UBIGINT << ((p - $base) % ${WORD_BITS})::UBIGINT) AS bits
    FROM (${rows}) GROUP BY entity, word`;
}

/**
 * Per bit of the bitmap `bits`, the number of rows that have it set, as columns `prefix`0, 1, …: for
 * the first `periods` bits only (at most a word's), as no later period has a bit.
 */
export function bitSums(periods: number, bits = "bits", prefix = "b"): string {
  const used = Math.max(1, Math.min(WORD_BITS, periods));
  return Array.from({ length: used }, (_, i) => `sum(((${bits} >> ${i}) & 1)::INTEGER) AS ${prefix}${i}`).join(", ");
}

/** The set-bit counts of a row with bitSums' columns, by bit. */
export function bitCounts(row: Record<string, unknown>, prefix = "b"): number[] {
  return Array.from({ length: WORD_BITS }, (_, i) => Number(row[`${prefix}${i}`] ?? 0));
}
