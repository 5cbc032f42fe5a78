import type { DuckDBConnection } from "@duckdb/node-api";
import type { WorkspaceSettings } from "../types.js";

/**
 * Recomputes a workspace's activity tables from its stored messages, for new settings: the same rows
 * that deriveDeltas() gives message by message, in one pass of SQL. Runs inside the caller's transaction.
 */
export async function rebuildActivity(
  connection: DuckDBConnection,
  workspaceId: string,
  settings: WorkspaceSettings,
): Promise<void> {
  const params = { ws: workspaceId, tz: settings.timeZone, system: JSON.stringify(settings.systemEvents) };
  for (const table of ["activity_days", "event_days", "actor_summary"]) {
    await connection.run(`DELETE FROM ${table} WHERE workspace_id = $ws`, { ws: workspaceId });
  }
  const actor = `
    SELECT workspace_id, CASE WHEN user_id IS NOT NULL THEN 'user' ELSE 'anon' END AS actor_kind,
      coalesce(user_id, anonymous_id) AS actor_id, context_group_id,
      timezone($tz, timestamp)::DATE AS day, type, CASE WHEN type = 'track' THEN event ELSE name END AS name,
      timestamp, type = 'track' AND list_contains(from_json($system, '["VARCHAR"]'), event) AS system
    FROM messages
    WHERE workspace_id = $ws AND type IN ('track', 'page', 'screen') AND coalesce(user_id, anonymous_id) IS NOT NULL`;
  await connection.run(
    `INSERT INTO event_days
     SELECT workspace_id, actor_kind, actor_id, context_group_id, day, type, name, count(*), min(timestamp), max(timestamp)
     FROM (${actor}) WHERE name IS NOT NULL
     GROUP BY workspace_id, actor_kind, actor_id, context_group_id, day, type, name`,
    params,
  );
  await connection.run(
    `INSERT INTO activity_days
     SELECT workspace_id, actor_kind, actor_id, context_group_id, day, count(*), min(timestamp), max(timestamp)
     FROM (${actor}) WHERE NOT system
     GROUP BY workspace_id, actor_kind, actor_id, context_group_id, day`,
    params,
  );
  await connection.run(
    `INSERT INTO actor_summary
     SELECT workspace_id, actor_kind, actor_id, context_group_id, count(*), min(timestamp), max(timestamp)
     FROM (${actor}) WHERE NOT system
     GROUP BY workspace_id, actor_kind, actor_id, context_group_id`,
    params,
  );
}
