import { DuckDBInstance } from "@duckdb/node-api";
import { describe, expect, it } from "vitest";
import { MIGRATIONS, migrate } from "../src/storage/duckdb/migrations.js";

/** A database made by an earlier release, at schema version 6, migrated by this one. */
describe("migrations", () => {
  it("fills activity_weeks (with the days of each week), track_events, message_days, event_weeks and event_times from what an earlier version stored", async () => {
    const instance = await DuckDBInstance.create(":memory:");
    const connection = await instance.connect();
    try {
      await connection.run("SET TimeZone = 'UTC'");
      await connection.run(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMPTZ NOT NULL)",
      );
      for (const m of MIGRATIONS.filter((m) => m.version <= 6)) {
        await connection.run(m.sql);
        await connection.run("INSERT INTO schema_migrations VALUES ($1, $2, now())", [m.version, m.description]);
      }
      // u1: Monday 03-02 (2 events), Sunday 03-08 (1), Monday 03-09 (4); a1 with context acme on
      // Wednesday 03-04 (1). Weeks run Monday to Sunday: u1 has 3 events in the week of 03-02, on its
      // Monday and Sunday (days 1 + 64 = 65), 4 in the week of 03-09 (Monday: 1); a1 has 1 in the week
      // of 03-02, on its Wednesday (4).
      await connection.run(`
        INSERT INTO activity_days VALUES
          ('ws', 'user', 'u1', NULL, DATE '2026-03-02', 2, TIMESTAMPTZ '2026-03-02 09:00:00Z', TIMESTAMPTZ '2026-03-02 17:00:00Z'),
          ('ws', 'user', 'u1', NULL, DATE '2026-03-08', 1, TIMESTAMPTZ '2026-03-08 12:00:00Z', TIMESTAMPTZ '2026-03-08 12:00:00Z'),
          ('ws', 'user', 'u1', NULL, DATE '2026-03-09', 4, TIMESTAMPTZ '2026-03-09 08:00:00Z', TIMESTAMPTZ '2026-03-09 20:00:00Z'),
          ('ws', 'anon', 'a1', 'acme', DATE '2026-03-04', 1, TIMESTAMPTZ '2026-03-04 10:00:00Z', TIMESTAMPTZ '2026-03-04 10:00:00Z')`);
      // Track events per day: u1's Opened on Monday 03-02 (2), Sunday 03-08 (1) and Monday 03-09 (4);
      // a1's page Home is not a track event. Per week and day of the week: u1's Opened, in the week of
      // 03-02, 2 on its Monday (d0) and 1 on its Sunday (d6); in the week of 03-09, 4 on its Monday.
      await connection.run(`
        INSERT INTO event_days VALUES
          ('ws', 'user', 'u1', NULL, DATE '2026-03-02', 'track', 'Opened', 2, TIMESTAMPTZ '2026-03-02 09:00:00Z', TIMESTAMPTZ '2026-03-02 17:00:00Z'),
          ('ws', 'user', 'u1', NULL, DATE '2026-03-08', 'track', 'Opened', 1, TIMESTAMPTZ '2026-03-08 12:00:00Z', TIMESTAMPTZ '2026-03-08 12:00:00Z'),
          ('ws', 'user', 'u1', NULL, DATE '2026-03-09', 'track', 'Opened', 4, TIMESTAMPTZ '2026-03-09 08:00:00Z', TIMESTAMPTZ '2026-03-09 20:00:00Z'),
          ('ws', 'anon', 'a1', 'acme', DATE '2026-03-04', 'page', 'Home', 1, TIMESTAMPTZ '2026-03-04 10:00:00Z', TIMESTAMPTZ '2026-03-04 10:00:00Z')`);
      // Messages: three track calls, a page and an identify; only the track calls are track events. m5
      // is stored after m1 but happened before it.
      await connection.run(`
        INSERT INTO messages (workspace_id, message_id, type, event, name, user_id, anonymous_id, context_group_id, timestamp, received_at)
        VALUES
          ('ws', 'm1', 'track', 'Opened', NULL, 'u1', NULL, 'acme', TIMESTAMPTZ '2026-03-02 09:00:00Z', TIMESTAMPTZ '2026-03-02 09:00:01Z'),
          ('ws', 'm2', 'page', NULL, 'Home', 'u1', NULL, NULL, TIMESTAMPTZ '2026-03-02 09:05:00Z', TIMESTAMPTZ '2026-03-02 09:05:01Z'),
          ('ws', 'm3', 'identify', NULL, NULL, 'u1', 'a1', NULL, TIMESTAMPTZ '2026-03-02 09:06:00Z', TIMESTAMPTZ '2026-03-02 09:06:01Z'),
          ('ws', 'm4', 'track', 'Saved', NULL, NULL, 'a1', NULL, TIMESTAMPTZ '2026-03-01 08:00:00Z', TIMESTAMPTZ '2026-03-02 09:07:01Z'),
          ('ws', 'm5', 'track', 'Opened', NULL, 'u1', NULL, 'acme', TIMESTAMPTZ '2026-03-02 08:30:00Z', TIMESTAMPTZ '2026-03-02 09:08:01Z')`);
      const progress: string[] = [];
      const later = MIGRATIONS.filter((m) => m.version > 6);
      expect(await migrate(connection, (message) => progress.push(message))).toEqual(later.map((m) => m.version));
      // Each migration is reported as it starts and as it ends (a new database's are not: see below).
      expect(progress).toHaveLength(2 * later.length);
      for (const [i, m] of later.entries()) {
        expect(progress[2 * i]).toBe(`migrating the database to version ${m.version}: ${m.description}`);
        expect(progress[2 * i + 1]).toMatch(new RegExp(`^migrated the database to version ${m.version} in \\d+ ms$`));
      }
      const tracks = (
        await connection.runAndReadAll(
          "SELECT message_id, type, event, user_id, anonymous_id, context_group_id FROM track_events ORDER BY message_id",
        )
      ).getRows();
      expect(tracks).toEqual([
        ["m1", "track", "Opened", "u1", null, "acme"],
        ["m4", "track", "Saved", null, "a1", null],
        ["m5", "track", "Opened", "u1", null, "acme"],
      ]);
      // Track event times per actor, company and event, ascending whatever the order stored: u1's two
      // Opened with acme (m5 at 08:30, m1 at 09:00), a1's Saved without a company.
      const times = (
        await connection.runAndReadAll(
          `SELECT actor_kind, actor_id, context_group_id, event, list_transform(times, t -> t::BIGINT)::VARCHAR
           FROM event_times ORDER BY actor_id`,
        )
      ).getRows();
      expect(times).toEqual([
        ["anon", "a1", null, "Saved", `[${Date.UTC(2026, 2, 1, 8)}]`],
        ["user", "u1", "acme", "Opened", `[${Date.UTC(2026, 2, 2, 8, 30)}, ${Date.UTC(2026, 2, 2, 9)}]`],
      ]);
      // message_days, every message by actor and UTC day: a1's track on 03-01; u1's two tracks, page
      // and identify on 03-02 (the identify carries u1's userId, so it is u1's), 08:30 to 09:06.
      const days = (
        await connection.runAndReadAll(
          `SELECT actor_kind, actor_id, strftime(day, '%m-%d'), messages, strftime(first_ts, '%H:%M'), strftime(last_ts, '%H:%M')
           FROM message_days ORDER BY actor_id`,
        )
      ).getRows();
      expect(days).toEqual([
        ["anon", "a1", "03-01", 1n, "08:00", "08:00"],
        ["user", "u1", "03-02", 4n, "08:30", "09:06"],
      ]);
      const rows = (
        await connection.runAndReadAll(
          `SELECT actor_id, context_group_id, strftime(DATE '1970-01-01' + week * 7 - 3, '%Y-%m-%d') AS monday, events,
             strftime(first_ts, '%m-%d %H:%M'), strftime(last_ts, '%m-%d %H:%M'), days
           FROM activity_weeks ORDER BY actor_id, week`,
        )
      ).getRows();
      expect(rows).toEqual([
        ["a1", "acme", "2026-03-02", 1n, "03-04 10:00", "03-04 10:00", 4],
        ["u1", null, "2026-03-02", 3n, "03-02 09:00", "03-08 12:00", 65],
        ["u1", null, "2026-03-09", 4n, "03-09 08:00", "03-09 20:00", 1],
      ]);
      const weeks = (
        await connection.runAndReadAll(
          `SELECT actor_id, event, strftime(DATE '1970-01-01' + week * 7 - 3, '%Y-%m-%d') AS monday, d0, d1, d2, d3, d4, d5, d6
           FROM event_weeks ORDER BY actor_id, week`,
        )
      ).getRows();
      expect(weeks).toEqual([
        ["u1", "Opened", "2026-03-02", 2n, 0n, 0n, 0n, 0n, 0n, 1n],
        ["u1", "Opened", "2026-03-09", 4n, 0n, 0n, 0n, 0n, 0n, 0n],
      ]);
      // The messages stored before commits were numbered are in the derived tables already: none has a
      // number after the last derived one (0), so none is derived again.
      const numbered = await connection.runAndReadAll(
        "SELECT count(*) FILTER (WHERE seq IS NOT NULL), (SELECT seq FROM derived_through) FROM messages",
      );
      expect(numbered.getRows()).toEqual([[0n, 0n]]);
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
  });

  it("says nothing of the migrations that make a new database", async () => {
    const instance = await DuckDBInstance.create(":memory:");
    const connection = await instance.connect();
    try {
      const progress: string[] = [];
      expect(await migrate(connection, (message) => progress.push(message))).toEqual(MIGRATIONS.map((m) => m.version));
      expect(progress).toEqual([]);
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
  });
});
