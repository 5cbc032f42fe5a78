/**
 * The SQL of a group commit and of the derivation that follows it. The writer hands DuckDB the
 * commit's new messages as one JSON text; DuckDB parses it into a temporary table shaped like
 * `messages` and stores them, off the JavaScript thread. The derivation then reads the messages of
 * the commits it takes on into the same temporary table, on its own connection, and fills the
 * identity and activity tables from there. Their derivations live here only: a rebuild runs the same
 * SQL over stored messages.
 */

import { dayNumber, periodSql, weekDaySql } from "./report-sql.js";
import { WEEKDAY_COLUMNS } from "./weekdays.js";

/** How from_json reads a StoredMessage (see storage/types.ts) with the writer's hash words. */
const ROW_TYPE = JSON.stringify([
  {
    workspaceId: "VARCHAR",
    messageId: "VARCHAR",
    type: "VARCHAR",
    event: "VARCHAR",
    name: "VARCHAR",
    category: "VARCHAR",
    userId: "VARCHAR",
    anonymousId: "VARCHAR",
    groupId: "VARCHAR",
    contextGroupId: "VARCHAR",
    previousId: "VARCHAR",
    email: "VARCHAR",
    timestamp: "BIGINT",
    originalTimestamp: "BIGINT",
    sentAt: "BIGINT",
    receivedAt: "BIGINT",
    properties: "JSON",
    traits: "JSON",
    context: "JSON",
    integrations: "JSON",
    extra: "JSON",
    hash: "INTEGER[]",
  },
]);

const ms = (column: string) => `make_timestamp(${column} * 1000)::TIMESTAMPTZ`;

/** The columns of `messages`, in order. */
export const MESSAGE_COLUMNS = `workspace_id, message_id, type, event, name, category, user_id, anonymous_id, group_id,
  context_group_id, previous_id, email, timestamp, original_timestamp, sent_at, received_at, properties, traits,
  context, integrations, extra`;

/** The commit's rows, shaped like `messages` plus hash words, from the JSON array in `json`. */
function commitRowsFrom(json: string): string {
  return `
  SELECT workspaceId AS workspace_id, messageId AS message_id, type, event, name, category, userId AS user_id,
    anonymousId AS anonymous_id, groupId AS group_id, contextGroupId AS context_group_id, previousId AS previous_id, email,
    ${ms('"timestamp"')} AS timestamp, ${ms("originalTimestamp")} AS original_timestamp, ${ms("sentAt")} AS sent_at,
    ${ms("receivedAt")} AS received_at, properties, traits, context, integrations, extra,
    hash[1] AS h0, hash[2] AS h1, hash[3] AS h2, hash[4] AS h3
  FROM (SELECT unnest(from_json(${json}, '${ROW_TYPE}'), recursive := true))`;
}

/**
 * Session tables, made once on the writer's connection and on the derivation's: `commit_rows` holds
 * a commit's new messages (or, for the derivation, the messages of the commits it takes on),
 * `commit_activity` their activity rows; both are emptied before the transaction ends.
 */
export const CREATE_COMMIT_TABLES = [
  `CREATE TEMP TABLE IF NOT EXISTS commit_rows AS ${commitRowsFrom("'[]'")}`,
  `CREATE TEMP TABLE IF NOT EXISTS commit_activity AS ${activityFrom("commit_rows")} LIMIT 0`,
];

/** Fills `commit_rows` from the JSON array of rows, each with its hash words, in $rows. */
export const LOAD_COMMIT_ROWS = `INSERT INTO commit_rows ${commitRowsFrom("$rows::VARCHAR")}`;

/** Appends one commit's change to the workspaces' counts, from the JSON array in $counts. */
export const ADD_COUNTS = `
  INSERT INTO workspace_counters
  SELECT w, m, e, d FROM (SELECT unnest(from_json($counts::VARCHAR, '[{"w":"VARCHAR","m":"BIGINT","e":"BIGINT","d":"BIGINT"}]'), recursive := true))`;

/**
 * Reduces `rows` (with the columns workspace_id, timestamp, received_at, message_id and those of
 * `value`) to one row per `key`: the first by (timestamp, received_at, message_id), or the last when
 * `last`. Readers pick the same winner among all of a key's rows, so dropping the others within one
 * commit changes no answer, and a browser that sends both ids with every event adds one link a
 * commit instead of one an event.
 */
function winners(rows: string, keys: readonly string[], values: readonly string[], last = false): string {
  const carried = [...values, "timestamp", "received_at", "message_id"];
  const struct = carried.map((c) => `${c}: ${c}`).join(", ");
  const key = ["workspace_id", ...keys].join(", ");
  return `
  SELECT ${key}, ${carried.map((c) => `w.${c}`).join(", ")} FROM (
    SELECT ${key}, ${last ? "max_by" : "min_by"}({${struct}}, (timestamp, received_at, message_id)) AS w
    FROM (${rows}) GROUP BY ${key}
  )`;
}

/** Anonymous ids seen with a userId, or made previousId by an alias: the first link of each in `source`. */
export function linksFrom(source: string): string {
  return `
  INSERT INTO identity_links ${winners(
    `SELECT workspace_id, anonymous_id, user_id, timestamp, received_at, message_id FROM ${source}
     WHERE user_id IS NOT NULL AND anonymous_id IS NOT NULL
     UNION ALL
     SELECT workspace_id, previous_id, user_id, timestamp, received_at, message_id FROM ${source}
     WHERE type = 'alias' AND user_id IS NOT NULL AND previous_id IS NOT NULL`,
    ["anonymous_id"],
    ["user_id"],
  )}`;
}

/** Group calls: the actor (its userId, else its anonymousId) becomes a member; its first call in `source`. */
export function membershipsFrom(source: string): string {
  return `
  INSERT INTO memberships ${winners(
    `SELECT workspace_id, group_id, CASE WHEN user_id IS NOT NULL THEN 'user' ELSE 'anon' END AS actor_kind,
       coalesce(user_id, anonymous_id) AS actor_id, timestamp, received_at, message_id
     FROM ${source} WHERE type = 'group' AND group_id IS NOT NULL AND coalesce(user_id, anonymous_id) IS NOT NULL`,
    ["group_id", "actor_kind", "actor_id"],
    [],
  )}`;
}

/**
 * Each trait an identify (on its actor) or a group call (on its company) sets: its latest value in
 * `source`, one row per entity and key. An identify's email column (its top-level email, else
 * traits.email) is the email trait.
 */
export function traitsFrom(source: string): string {
  const entries = `unnest(map_entries(json_transform(traits, '"MAP(VARCHAR, JSON)"')))`;
  const set = `
  SELECT workspace_id, kind AS entity_kind, id AS entity_id, entry.key AS key, entry.value AS value, timestamp, received_at, message_id FROM (
    SELECT workspace_id, 'company' AS kind, group_id AS id, ${entries} AS entry, timestamp, received_at, message_id, NULL AS email
    FROM ${source} WHERE type = 'group' AND group_id IS NOT NULL AND json_type(traits) = 'OBJECT'
    UNION ALL
    SELECT workspace_id, CASE WHEN user_id IS NOT NULL THEN 'user' ELSE 'anon' END, coalesce(user_id, anonymous_id),
      ${entries}, timestamp, received_at, message_id, email
    FROM ${source} WHERE type = 'identify' AND coalesce(user_id, anonymous_id) IS NOT NULL AND json_type(traits) = 'OBJECT'
  ) WHERE NOT (entry.key = 'email' AND email IS NOT NULL)
  UNION ALL
  SELECT workspace_id, CASE WHEN user_id IS NOT NULL THEN 'user' ELSE 'anon' END, coalesce(user_id, anonymous_id),
    'email', to_json(email), timestamp, received_at, message_id
  FROM ${source} WHERE type = 'identify' AND coalesce(user_id, anonymous_id) IS NOT NULL AND email IS NOT NULL`;
  return `INSERT INTO traits ${winners(set, ["entity_kind", "entity_id", "key"], ["value"], true)}`;
}

/**
 * Activity messages (track, page, screen) by actor: a userId, else the anonymousId. The local day
 * follows the workspace's time zone, and `system` marks the workspace's system events.
 */
function activityFrom(source: string): string {
  return `
    WITH settings AS (
      SELECT workspace_id, time_zone, from_json(system_events, '["VARCHAR"]') AS system_events FROM workspace_settings
    )
    SELECT m.workspace_id, CASE WHEN m.user_id IS NOT NULL THEN 'user' ELSE 'anon' END AS actor_kind,
      coalesce(m.user_id, m.anonymous_id) AS actor_id, m.context_group_id,
      timezone(coalesce(s.time_zone, 'UTC'), m.timestamp)::DATE AS day, m.type,
      CASE WHEN m.type = 'track' THEN m.event ELSE m.name END AS name, m.timestamp,
      coalesce(m.type = 'track' AND list_contains(s.system_events, m.event), false) AS system
    FROM ${source} m LEFT JOIN settings s ON s.workspace_id = m.workspace_id
    WHERE m.type IN ('track', 'page', 'screen') AND coalesce(m.user_id, m.anonymous_id) IS NOT NULL`;
}

/** The week of the local day in `day`, numbered as the reports number their weekly periods. */
export const WEEK_OF_DAY = periodSql("week", dayNumber("day"));

/** The local day in `day` as its bit in activity_weeks.days: bit 0 for Monday to bit 6 for Sunday. */
const DAY_OF_WEEK_BIT = `1::UTINYINT << ${weekDaySql(dayNumber("day"))}::UTINYINT`;

/** The tables that activity messages fill, each keyed by actor (actor_kind, actor_id). */
export const ACTIVITY_TABLES = [
  "activity_days",
  "activity_weeks",
  "event_days",
  "event_weeks",
  "event_times",
  "actor_summary",
] as const;

/**
 * The activity tables' rows for the messages of `source`, summed per key. The activity rows are
 * worked out once, into the (empty) temporary table `activity`, for every table.
 */
export function activityTablesFrom(source: string, activity: string): string[] {
  return [
    `INSERT INTO ${activity} ${activityFrom(source)}`,
    `INSERT INTO event_days
     SELECT workspace_id, actor_kind, actor_id, context_group_id, day, type, name, count(*), min(timestamp), max(timestamp)
     FROM ${activity} WHERE name IS NOT NULL
     GROUP BY workspace_id, actor_kind, actor_id, context_group_id, day, type, name`,
    `INSERT INTO event_weeks
     SELECT workspace_id, actor_kind, actor_id, context_group_id, name, ${WEEK_OF_DAY} AS week,
       ${WEEKDAY_COLUMNS.map((_, k) => `count(*) FILTER (WHERE ${weekDaySql(dayNumber("day"))} = ${k})`).join(", ")}
     FROM ${activity} WHERE type = 'track' AND name IS NOT NULL
     GROUP BY workspace_id, actor_kind, actor_id, context_group_id, name, week`,
    `INSERT INTO event_times
     SELECT workspace_id, actor_kind, actor_id, context_group_id, name, list_sort(list(epoch_ms(timestamp)::DOUBLE))
     FROM ${activity} WHERE type = 'track' AND name IS NOT NULL
     GROUP BY workspace_id, actor_kind, actor_id, context_group_id, name`,
    `INSERT INTO activity_days
     SELECT workspace_id, actor_kind, actor_id, context_group_id, day, count(*), min(timestamp), max(timestamp)
     FROM ${activity} WHERE NOT system
     GROUP BY workspace_id, actor_kind, actor_id, context_group_id, day`,
    `INSERT INTO activity_weeks
     SELECT workspace_id, actor_kind, actor_id, context_group_id, ${WEEK_OF_DAY} AS week, count(*), min(timestamp), max(timestamp),
       bit_or(${DAY_OF_WEEK_BIT})
     FROM ${activity} WHERE NOT system
     GROUP BY workspace_id, actor_kind, actor_id, context_group_id, week`,
    `INSERT INTO actor_summary
     SELECT workspace_id, actor_kind, actor_id, context_group_id, count(*), min(timestamp), max(timestamp)
     FROM ${activity} WHERE NOT system
     GROUP BY workspace_id, actor_kind, actor_id, context_group_id`,
  ];
}

/** What a commit's rows contain, so that statements with nothing to insert are skipped. */
export interface CommitShape {
  links: boolean;
  groups: boolean;
  identifies: boolean;
  activity: boolean;
  tracks: boolean;
}

/** Track calls of `source` as rows of track_events. */
export function trackEventsFrom(source: string): string {
  return `INSERT INTO track_events
  SELECT workspace_id, type, event, user_id, anonymous_id, context_group_id, timestamp, message_id
  FROM ${source} WHERE type = 'track' AND event IS NOT NULL`;
}

/** Messages of `source` per actor (userId, else anonymousId) and UTC day, as rows of message_days. */
export function messageDaysFrom(source: string): string {
  return `INSERT INTO message_days
  SELECT workspace_id, CASE WHEN user_id IS NOT NULL THEN 'user' ELSE 'anon' END AS actor_kind,
    coalesce(user_id, anonymous_id) AS actor_id, timezone('UTC', timestamp)::DATE AS day, count(*), min(timestamp), max(timestamp)
  FROM ${source} WHERE coalesce(user_id, anonymous_id) IS NOT NULL
  GROUP BY workspace_id, actor_kind, actor_id, day`;
}

/**
 * A commit stores its messages, numbered `seq`, and their hashes; the derived tables are filled
 * afterwards from the stored messages (see derivationSteps), so that the commit stays short.
 */
export function storeSteps(seq: number): string[] {
  if (!Number.isSafeInteger(seq) || seq < 1) throw new RangeError(`bad commit number ${seq}`);
  return [
    `INSERT INTO messages SELECT ${MESSAGE_COLUMNS}, ${seq} FROM commit_rows`,
    "INSERT INTO message_hashes SELECT h0, h1, h2, h3 FROM commit_rows",
    "DELETE FROM commit_rows",
  ];
}

/**
 * The columns of `messages` that the derivations read. The others (properties, context and the like,
 * most of a message's size) stay NULL in the derivation's `commit_rows`.
 */
const DERIVED_FROM = new Set([
  "workspace_id",
  "message_id",
  "type",
  "event",
  "name",
  "user_id",
  "anonymous_id",
  "group_id",
  "context_group_id",
  "previous_id",
  "email",
  "timestamp",
  "received_at",
  "traits",
]);

/** The columns of `commit_rows`, in order: those of `messages`, then the hash words. */
const COMMIT_ROW_COLUMNS = `${MESSAGE_COLUMNS}, h0, h1, h2, h3`;

/**
 * A stored message (the row m of `messages`) is not quarantined: the derivation took it on, or will.
 * See quarantined_messages (migration 13).
 */
export const NOT_QUARANTINED = `NOT EXISTS (
  SELECT 1 FROM quarantined_messages q WHERE q.workspace_id = m.workspace_id AND q.message_id = m.message_id)`;

/**
 * Stored messages matching `where` (a condition on messages m) as rows of `commit_rows`: the columns
 * the derivations read (the others and the hash words NULL), then their commit number, seq.
 */
export function storedRows(where: string): string {
  const columns = MESSAGE_COLUMNS.split(",").map((column) => column.trim());
  const read = columns.map((column) => `${DERIVED_FROM.has(column) ? `m.${column}` : "NULL"} AS ${column}`);
  return `SELECT ${read.join(", ")}, NULL AS h0, NULL AS h1, NULL AS h2, NULL AS h3, m.seq FROM messages m WHERE ${where}`;
}

/** The messages of commits after `from` up to `to`, quarantined ones left out, as storedRows() shapes them. */
export function committedRows(from: number, to: number): string {
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to)) throw new RangeError("bad commit numbers");
  return storedRows(`m.seq > ${from} AND m.seq <= ${to} AND ${NOT_QUARANTINED}`);
}

/** Fills `commit_rows` from `rows`, a query shaped as storedRows() shapes them. */
export const loadRows = (rows: string) => `INSERT INTO commit_rows SELECT ${COMMIT_ROW_COLUMNS} FROM (${rows})`;

/** Fills `commit_rows` with the stored messages of commits after `from` up to `to` that are not quarantined. */
export const loadCommitted = (from: number, to: number) => loadRows(committedRows(from, to));

/** Every statement that derives the identity and activity tables from `commit_rows`. */
export const DERIVATION_STATEMENTS = {
  messageDays: messageDaysFrom("commit_rows"),
  links: linksFrom("commit_rows"),
  memberships: membershipsFrom("commit_rows"),
  traits: traitsFrom("commit_rows"),
  activity: activityTablesFrom("commit_rows", "commit_activity"),
  tracks: trackEventsFrom("commit_rows"),
  clear: ["DELETE FROM commit_activity", "DELETE FROM commit_rows"],
} as const;

/** The statements of DERIVATION_STATEMENTS that messages of this shape need, in order. */
export function derivationSteps(shape: CommitShape): string[] {
  const steps: string[] = [DERIVATION_STATEMENTS.messageDays];
  if (shape.links) steps.push(DERIVATION_STATEMENTS.links);
  if (shape.groups) steps.push(DERIVATION_STATEMENTS.memberships);
  if (shape.groups || shape.identifies) steps.push(DERIVATION_STATEMENTS.traits);
  if (shape.activity) steps.push(...DERIVATION_STATEMENTS.activity);
  if (shape.tracks) steps.push(DERIVATION_STATEMENTS.tracks);
  steps.push(...DERIVATION_STATEMENTS.clear);
  return steps;
}

/** A shape that runs every derivation: for messages whose shape is not known. */
export const EVERY_SHAPE: Readonly<CommitShape> = {
  links: true,
  groups: true,
  identifies: true,
  activity: true,
  tracks: true,
};
