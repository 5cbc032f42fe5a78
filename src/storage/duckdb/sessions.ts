import type { DuckDBConnection } from "@duckdb/node-api";
import type { SessionRecord } from "../types.js";

/** A time in ms as the microseconds make_timestamp takes. */
const micros = (ms: number) => BigInt(Math.round(ms * 1000));

/** Every stored session, expired or not. */
export async function readSessions(connection: DuckDBConnection): Promise<SessionRecord[]> {
  const result = await connection.runAndReadAll(
    `SELECT token_hash, to_json(workspace_ids) AS workspace_ids, epoch_ms(created_at) AS created,
       epoch_ms(expires_at) AS expires
     FROM sessions`,
  );
  return result.getRowObjects().map((r) => ({
    tokenHash: String(r.token_hash),
    workspaceIds: JSON.parse(String(r.workspace_ids)) as string[],
    createdAt: Number(r.created),
    expiresAt: Number(r.expires),
  }));
}

export async function insertSession(connection: DuckDBConnection, session: SessionRecord): Promise<void> {
  await connection.run(
    `INSERT INTO sessions VALUES ($1, from_json($2, '["VARCHAR"]'),
       make_timestamp($3::BIGINT)::TIMESTAMPTZ, make_timestamp($4::BIGINT)::TIMESTAMPTZ)`,
    [session.tokenHash, JSON.stringify(session.workspaceIds), micros(session.createdAt), micros(session.expiresAt)],
  );
}

/** Takes a workspace out of every session holding it, and deletes the sessions left with none. */
export async function dropWorkspaceFromSessions(connection: DuckDBConnection, workspaceId: string): Promise<void> {
  await connection.run(
    `UPDATE sessions SET workspace_ids = list_filter(workspace_ids, lambda w: w <> $1)
     WHERE list_contains(workspace_ids, $1)`,
    [workspaceId],
  );
  await connection.run("DELETE FROM sessions WHERE len(workspace_ids) = 0");
}

export async function deleteExpired(connection: DuckDBConnection, now: number): Promise<void> {
  await connection.run("DELETE FROM sessions WHERE expires_at <= make_timestamp($1::BIGINT)::TIMESTAMPTZ", [
    micros(now),
  ]);
}
