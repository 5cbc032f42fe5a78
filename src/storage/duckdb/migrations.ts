import type { DuckDBConnection } from "@duckdb/node-api";

/** Slices of actors that migration 14 fills event_times in. */
const EVENT_TIMES_MIGRATION_SLICES = 16;

/**
 * event_times from track_events, one slice of actors (by a hash of the actor) at a time: DuckDB holds
 * a list aggregate's lists in memory, and all of them at once took more than the default 2 GB on 10
 * million events. Each list is sorted once made (list() ORDER BY keeps every group's rows until the
 * end). Compaction writes the table in event order afterwards.
 */
function eventTimesFromTrackEvents(): string {
  const actor = "coalesce(user_id, anonymous_id)";
  return Array.from(
    { length: EVENT_TIMES_MIGRATION_SLICES },
    (_, k) => `
      INSERT INTO event_times
      SELECT workspace_id, CASE WHEN user_id IS NOT NULL THEN 'user' ELSE 'anon' END AS actor_kind,
        ${actor} AS actor_id, context_group_id, event, list_sort(list(epoch_ms(timestamp)::DOUBLE))
      FROM track_events WHERE ${actor} IS NOT NULL AND hash(${actor}) % ${EVENT_TIMES_MIGRATION_SLICES} = ${k}
      GROUP BY workspace_id, actor_kind, actor_id, context_group_id, event
      ORDER BY workspace_id, event, context_group_id IS NOT NULL, actor_kind, actor_id, context_group_id;`,
  ).join("");
}

/**
 * Versioned schema migrations, applied in order at start-up, each in its own transaction.
 * Append new versions; never edit one that has shipped.
 */
export const MIGRATIONS: readonly { version: number; description: string; sql: string }[] = [
  {
    version: 1,
    description: "workspaces, messages and de-duplication hashes",
    sql: `
      CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
      CREATE TABLE workspaces (
        id VARCHAR PRIMARY KEY,
        name VARCHAR NOT NULL UNIQUE,
        write_key VARCHAR NOT NULL UNIQUE,
        secret_key VARCHAR NOT NULL UNIQUE,
        created_at TIMESTAMPTZ NOT NULL
      );
      CREATE TABLE workspace_counters (
        workspace_id VARCHAR PRIMARY KEY,
        messages BIGINT NOT NULL,
        events BIGINT NOT NULL,
        duplicates BIGINT NOT NULL
      );
      CREATE TABLE messages (
        workspace_id VARCHAR NOT NULL,
        message_id VARCHAR NOT NULL,
        type VARCHAR NOT NULL,
        event VARCHAR,
        name VARCHAR,
        category VARCHAR,
        user_id VARCHAR,
        anonymous_id VARCHAR,
        group_id VARCHAR,
        context_group_id VARCHAR,
        previous_id VARCHAR,
        email VARCHAR,
        timestamp TIMESTAMPTZ NOT NULL,
        original_timestamp TIMESTAMPTZ,
        sent_at TIMESTAMPTZ,
        received_at TIMESTAMPTZ NOT NULL,
        properties JSON,
        traits JSON,
        context JSON,
        integrations JSON,
        extra JSON
      );
      -- One row per stored message: the keyed 128-bit hash of (workspace, messageId). Unindexed on
      -- purpose; the writer keeps them in memory and reloads them from here at start-up.
      CREATE TABLE message_hashes (h0 INTEGER NOT NULL, h1 INTEGER NOT NULL, h2 INTEGER NOT NULL, h3 INTEGER NOT NULL);
    `,
  },
  {
    version: 2,
    description: "workspace settings, identity links, memberships, traits and activity rollups",
    sql: `
      CREATE TABLE workspace_settings (
        workspace_id VARCHAR PRIMARY KEY,
        time_zone VARCHAR NOT NULL,
        system_events JSON NOT NULL
      );
      -- The tables below are append-only: each commit adds rows already reduced per key within the
      -- commit, readers combine rows per key (earliest link or membership, latest trait, summed
      -- activity), and compaction rewrites them to one row per key now and then.
      CREATE TABLE identity_links (
        workspace_id VARCHAR NOT NULL,
        anonymous_id VARCHAR NOT NULL,
        user_id VARCHAR NOT NULL,
        timestamp TIMESTAMPTZ NOT NULL,
        received_at TIMESTAMPTZ NOT NULL,
        message_id VARCHAR NOT NULL
      );
      CREATE TABLE memberships (
        workspace_id VARCHAR NOT NULL,
        group_id VARCHAR NOT NULL,
        actor_kind VARCHAR NOT NULL,
        actor_id VARCHAR NOT NULL,
        timestamp TIMESTAMPTZ NOT NULL,
        received_at TIMESTAMPTZ NOT NULL,
        message_id VARCHAR NOT NULL
      );
      CREATE TABLE traits (
        workspace_id VARCHAR NOT NULL,
        entity_kind VARCHAR NOT NULL,
        entity_id VARCHAR NOT NULL,
        key VARCHAR NOT NULL,
        value JSON,
        timestamp TIMESTAMPTZ NOT NULL,
        received_at TIMESTAMPTZ NOT NULL,
        message_id VARCHAR NOT NULL
      );
      CREATE TABLE activity_days (
        workspace_id VARCHAR NOT NULL,
        actor_kind VARCHAR NOT NULL,
        actor_id VARCHAR NOT NULL,
        context_group_id VARCHAR,
        day DATE NOT NULL,
        events BIGINT NOT NULL,
        first_ts TIMESTAMPTZ NOT NULL,
        last_ts TIMESTAMPTZ NOT NULL
      );
      CREATE TABLE actor_summary (
        workspace_id VARCHAR NOT NULL,
        actor_kind VARCHAR NOT NULL,
        actor_id VARCHAR NOT NULL,
        context_group_id VARCHAR,
        events BIGINT NOT NULL,
        first_ts TIMESTAMPTZ NOT NULL,
        last_ts TIMESTAMPTZ NOT NULL
      );
      CREATE TABLE event_days (
        workspace_id VARCHAR NOT NULL,
        actor_kind VARCHAR NOT NULL,
        actor_id VARCHAR NOT NULL,
        context_group_id VARCHAR,
        day DATE NOT NULL,
        type VARCHAR NOT NULL,
        event VARCHAR NOT NULL,
        events BIGINT NOT NULL,
        first_ts TIMESTAMPTZ NOT NULL,
        last_ts TIMESTAMPTZ NOT NULL
      );
    `,
  },
  {
    version: 3,
    description: "saved reports",
    sql: `
      CREATE TABLE saved_reports (
        workspace_id VARCHAR NOT NULL,
        id VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        report VARCHAR NOT NULL,
        params JSON NOT NULL,
        created_at TIMESTAMPTZ NOT NULL
      );
    `,
  },
  {
    version: 4,
    description: "workspace counters kept as appended changes",
    sql: `
      CREATE TABLE counter_changes AS SELECT workspace_id, messages, events, duplicates FROM workspace_counters;
      DROP TABLE workspace_counters;
      ALTER TABLE counter_changes RENAME TO workspace_counters;
    `,
  },
  {
    version: 5,
    description: "retired write keys and deletion requests",
    sql: `
      CREATE TABLE retired_write_keys (
        workspace_id VARCHAR NOT NULL,
        write_key VARCHAR NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
      );
      CREATE TABLE deletion_requests (
        id VARCHAR NOT NULL,
        workspace_id VARCHAR NOT NULL,
        user_id VARCHAR NOT NULL,
        state VARCHAR NOT NULL,
        requested_at TIMESTAMPTZ NOT NULL,
        started_at TIMESTAMPTZ,
        finished_at TIMESTAMPTZ,
        messages_deleted BIGINT
      );
    `,
  },
  {
    version: 6,
    description: "dashboard sessions",
    sql: `
      -- A session is known by the SHA-256 of its token (hex); the token itself is never stored.
      CREATE TABLE sessions (
        token_hash VARCHAR PRIMARY KEY,
        workspace_ids VARCHAR[] NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
      );
    `,
  },
  {
    version: 7,
    description: "activity per actor and week",
    sql: `
      -- activity_days summed per week (Monday to Sunday, of the local days; week is the period index
      -- the reports use, floor((day number + 3) / 7)): fewer rows for weekly reports.
      CREATE TABLE activity_weeks (
        workspace_id VARCHAR NOT NULL,
        actor_kind VARCHAR NOT NULL,
        actor_id VARCHAR NOT NULL,
        context_group_id VARCHAR,
        week INTEGER NOT NULL,
        events BIGINT NOT NULL,
        first_ts TIMESTAMPTZ NOT NULL,
        last_ts TIMESTAMPTZ NOT NULL
      );
      INSERT INTO activity_weeks
      SELECT workspace_id, actor_kind, actor_id, context_group_id, floor((day - DATE '1970-01-01' + 3) / 7)::INTEGER AS week,
        sum(events)::BIGINT, min(first_ts), max(last_ts)
      FROM activity_days GROUP BY workspace_id, actor_kind, actor_id, context_group_id, week
      ORDER BY workspace_id, context_group_id IS NOT NULL, actor_kind, actor_id, context_group_id, week;
    `,
  },
  {
    version: 8,
    description: "track events by event",
    sql: `
      -- The columns of messages that funnels and activation read, for track calls only: a narrow
      -- copy that compaction keeps in event order, so that reading a few events skips the rest.
      CREATE TABLE track_events (
        workspace_id VARCHAR NOT NULL,
        type VARCHAR NOT NULL,
        event VARCHAR NOT NULL,
        user_id VARCHAR,
        anonymous_id VARCHAR,
        context_group_id VARCHAR,
        timestamp TIMESTAMPTZ NOT NULL,
        message_id VARCHAR NOT NULL
      );
      INSERT INTO track_events
      SELECT workspace_id, type, event, user_id, anonymous_id, context_group_id, timestamp, message_id
      FROM messages WHERE type = 'track' AND event IS NOT NULL
      ORDER BY workspace_id, event, timestamp;
    `,
  },
  {
    version: 9,
    description: "days of the week in activity_weeks",
    sql: `
      -- days: the days of its week each row has activity on, bit 0 for Monday to bit 6 for Sunday.
      -- Weekly reports read a range's partial weeks from here too, instead of from activity_days.
      CREATE TABLE activity_weeks_days (
        workspace_id VARCHAR NOT NULL,
        actor_kind VARCHAR NOT NULL,
        actor_id VARCHAR NOT NULL,
        context_group_id VARCHAR,
        week INTEGER NOT NULL,
        events BIGINT NOT NULL,
        first_ts TIMESTAMPTZ NOT NULL,
        last_ts TIMESTAMPTZ NOT NULL,
        days UTINYINT NOT NULL
      );
      INSERT INTO activity_weeks_days
      SELECT workspace_id, actor_kind, actor_id, context_group_id, floor((day - DATE '1970-01-01' + 3) / 7)::INTEGER AS week,
        sum(events)::BIGINT, min(first_ts), max(last_ts),
        bit_or(1::UTINYINT << (day - DATE '1970-01-01' + 3 - 7 * floor((day - DATE '1970-01-01' + 3) / 7))::UTINYINT)
      FROM activity_days GROUP BY workspace_id, actor_kind, actor_id, context_group_id, week
      ORDER BY workspace_id, context_group_id IS NOT NULL, actor_kind, actor_id, context_group_id, week;
      DROP TABLE activity_weeks;
      ALTER TABLE activity_weeks_days RENAME TO activity_weeks;
    `,
  },
  {
    version: 10,
    description: "messages per actor and day",
    sql: `
      -- Every message with an actor (its userId, else its anonymousId) per UTC day: how many, the first
      -- and the last. A user's timeline reads the messages of those time spans only.
      CREATE TABLE message_days (
        workspace_id VARCHAR NOT NULL,
        actor_kind VARCHAR NOT NULL,
        actor_id VARCHAR NOT NULL,
        day DATE NOT NULL,
        messages BIGINT NOT NULL,
        first_ts TIMESTAMPTZ NOT NULL,
        last_ts TIMESTAMPTZ NOT NULL
      );
      INSERT INTO message_days
      SELECT workspace_id, CASE WHEN user_id IS NOT NULL THEN 'user' ELSE 'anon' END AS actor_kind,
        coalesce(user_id, anonymous_id) AS actor_id, timezone('UTC', timestamp)::DATE AS day, count(*), min(timestamp), max(timestamp)
      FROM messages WHERE coalesce(user_id, anonymous_id) IS NOT NULL
      GROUP BY workspace_id, actor_kind, actor_id, day
      ORDER BY workspace_id, actor_kind, actor_id, day;
    `,
  },
  {
    version: 11,
    description: "commit numbers of messages, derived tables filled after the commit",
    sql: `
      -- Each commit numbers its messages. The identity and activity tables are filled from the stored
      -- messages after the commit, in a transaction of their own that records the last number done in
      -- derived_through. Messages stored before this version are in those tables already.
      ALTER TABLE messages ADD COLUMN seq BIGINT;
      CREATE TABLE derived_through (seq BIGINT NOT NULL);
      INSERT INTO derived_through VALUES (0);
    `,
  },
  {
    version: 12,
    description: "track events per actor and week",
    sql: `
      -- Track events per actor, company (context.groupId), event and week, with how many fell on each
      -- day of the week: d0 for Monday to d6 for Sunday (local days, as in event_days). Kept in actor
      -- order, so that the events of a company's members are read from their own row groups, where
      -- event_days, in event order, has them in every row group; a range that starts within a week
      -- takes that week's days from the range's first on.
      CREATE TABLE event_weeks (
        workspace_id VARCHAR NOT NULL,
        actor_kind VARCHAR NOT NULL,
        actor_id VARCHAR NOT NULL,
        context_group_id VARCHAR,
        event VARCHAR NOT NULL,
        week INTEGER NOT NULL,
        d0 BIGINT NOT NULL,
        d1 BIGINT NOT NULL,
        d2 BIGINT NOT NULL,
        d3 BIGINT NOT NULL,
        d4 BIGINT NOT NULL,
        d5 BIGINT NOT NULL,
        d6 BIGINT NOT NULL
      );
      INSERT INTO event_weeks
      SELECT workspace_id, actor_kind, actor_id, context_group_id, event, week,
        coalesce(sum(events) FILTER (WHERE weekday = 0), 0)::BIGINT,
        coalesce(sum(events) FILTER (WHERE weekday = 1), 0)::BIGINT,
        coalesce(sum(events) FILTER (WHERE weekday = 2), 0)::BIGINT,
        coalesce(sum(events) FILTER (WHERE weekday = 3), 0)::BIGINT,
        coalesce(sum(events) FILTER (WHERE weekday = 4), 0)::BIGINT,
        coalesce(sum(events) FILTER (WHERE weekday = 5), 0)::BIGINT,
        coalesce(sum(events) FILTER (WHERE weekday = 6), 0)::BIGINT
      FROM (
        SELECT *, floor((day - DATE '1970-01-01' + 3) / 7)::INTEGER AS week,
          day - DATE '1970-01-01' + 3 - 7 * floor((day - DATE '1970-01-01' + 3) / 7) AS weekday
        FROM event_days WHERE type = 'track'
      )
      GROUP BY workspace_id, actor_kind, actor_id, context_group_id, event, week
      ORDER BY workspace_id, context_group_id IS NOT NULL, actor_kind, actor_id, context_group_id, event, week;
    `,
  },
  {
    version: 13,
    description: "messages left out of the derived tables",
    sql: `
      -- A stored message that the derivation cannot take on, even alone: it stays in messages and
      -- counts in the workspace's stats, but no derived table holds it, so that the others' reports
      -- go on. The error says why. At start-up each is tried again, in case a new version takes it.
      CREATE TABLE quarantined_messages (
        workspace_id VARCHAR NOT NULL,
        message_id VARCHAR NOT NULL,
        seq BIGINT NOT NULL,
        error VARCHAR NOT NULL,
        quarantined_at TIMESTAMPTZ NOT NULL
      );
    `,
  },
  {
    version: 14,
    description: "track event times per actor and event",
    sql: `
      -- Each actor's track event times (epoch milliseconds, one element per message, ascending) per
      -- company (context.groupId) and event: a funnel reads its steps' lists and walks them, instead of
      -- every occurrence row by row. Each derivation appends a row per key it saw; compaction merges
      -- a key's rows into one and keeps the table in event order. Filled from track_events in slices
      -- of actors (see eventTimesFromTrackEvents).
      CREATE TABLE event_times (
        workspace_id VARCHAR NOT NULL,
        actor_kind VARCHAR NOT NULL,
        actor_id VARCHAR NOT NULL,
        context_group_id VARCHAR,
        event VARCHAR NOT NULL,
        times DOUBLE[] NOT NULL
      );
      ${eventTimesFromTrackEvents()}
    `,
  },
];

/**
 * Applies the migrations not yet applied; returns the versions applied now. `progress` hears of each
 * one as it starts and ends (but for a new database): some rework every stored message, which takes
 * seconds per ten million.
 */
export async function migrate(connection: DuckDBConnection, progress?: (message: string) => void): Promise<number[]> {
  await connection.run(
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMPTZ NOT NULL)",
  );
  const applied = new Set(
    (await connection.runAndReadAll("SELECT version FROM schema_migrations")).getRows().map((row) => Number(row[0])),
  );
  // A new database has nothing to rework: its migrations are not worth a line each.
  const report = applied.size > 0 ? progress : undefined;
  const done: number[] = [];
  for (const migration of MIGRATIONS) {
    if (applied.has(migration.version)) continue;
    const started = Date.now();
    report?.(`migrating the database to version ${migration.version}: ${migration.description}`);
    await connection.run("BEGIN TRANSACTION");
    try {
      await connection.run(migration.sql);
      await connection.run("INSERT INTO schema_migrations VALUES ($1, $2, now())", [
        migration.version,
        migration.description,
      ]);
      await connection.run("COMMIT");
    } catch (err) {
      await connection.run("ROLLBACK");
      throw err;
    }
    report?.(`migrated the database to version ${migration.version} in ${Date.now() - started} ms`);
    done.push(migration.version);
  }
  return done;
}
