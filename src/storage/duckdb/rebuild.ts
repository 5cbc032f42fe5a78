import type { DuckDBConnection } from "@duckdb/node-api";
import { ACTIVITY_TABLES, activityTablesFrom, NOT_QUARANTINED } from "./commit-sql.js";

/**
 * Recomputes a workspace's activity tables from its stored messages, for new settings (stored in
 * workspace_settings first, in the same transaction): the same SQL as each commit runs, over all of
 * the workspace's messages at once, quarantined ones left out as the derivation leaves them out.
 */
export async function rebuildActivity(connection: DuckDBConnection, workspaceId: string): Promise<void> {
  for (const table of ACTIVITY_TABLES) {
    await connection.run(`DELETE FROM ${table} WHERE workspace_id = $ws`, { ws: workspaceId });
  }
  await connection.run(`CREATE OR REPLACE TEMP TABLE rebuild_activity AS SELECT * FROM commit_activity LIMIT 0`);
  const [first, ...rest] = activityTablesFrom(
    `(SELECT * FROM messages m WHERE m.workspace_id = $ws AND ${NOT_QUARANTINED})`,
    "rebuild_activity",
  );
  await connection.run(first as string, { ws: workspaceId });
  for (const statement of rest) await connection.run(statement);
  await connection.run("DROP TABLE rebuild_activity");
}
