import fs from "node:fs";
import type { DuckDBConnection, DuckDBValue } from "@duckdb/node-api";
import type { DeletionRequest, DeletionState } from "../types.js";
import { IDENTITY_CTES } from "./entities.js";

/** Runs `fn` in one transaction on `connection`, rolling back if it throws; rethrows the first error. */
export async function transaction<T>(connection: DuckDBConnection, fn: () => Promise<T>): Promise<T> {
  await connection.run("BEGIN TRANSACTION");
  try {
    const result = await fn();
    await connection.run("COMMIT");
    return result;
  } catch (err) {
    // A COMMIT that failed (a full disk) has already ended the transaction, and an invalidated database
    // refuses the ROLLBACK too: the error to report is the first one.
    await connection.run("ROLLBACK").catch(() => undefined);
    throw err;
  }
}

const ISO = (column: string) => `strftime(${column}, '%Y-%m-%dT%H:%M:%S.%gZ')`;

function toRequest(row: Record<string, DuckDBValue>): DeletionRequest {
  const text = (v: DuckDBValue | undefined) => (v === null || v === undefined ? null : String(v));
  return {
    id: String(row.id),
    userId: String(row.user_id),
    state: String(row.state) as DeletionState,
    requestedAt: String(row.requested_at),
    startedAt: text(row.started_at),
    finishedAt: text(row.finished_at),
    messagesDeleted:
      row.messages_deleted === null || row.messages_deleted === undefined ? null : Number(row.messages_deleted),
  };
}

export async function readDeletionRequests(
  connection: DuckDBConnection,
  workspaceId: string,
  filter: { state?: DeletionState | undefined; id?: string | undefined } = {},
): Promise<DeletionRequest[]> {
  const where = ["workspace_id = $ws"];
  const params: Record<string, DuckDBValue> = { ws: workspaceId };
  if (filter.state) {
    where.push("state = $state");
    params.state = filter.state;
  }
  if (filter.id) {
    where.push("id = $id");
    params.id = filter.id;
  }
  const result = await connection.runAndReadAll(
    `SELECT id, user_id, state, ${ISO("requested_at")} AS requested_at, ${ISO("started_at")} AS started_at,
       ${ISO("finished_at")} AS finished_at, messages_deleted
     FROM deletion_requests WHERE ${where.join(" AND ")} ORDER BY requested_at, id`,
    params,
  );
  return result.getRowObjects().map(toRequest);
}

/**
 * Erases a user within the current transaction: their messages and those sent under the anonymousIds
 * linked to them, and every derived row about them. Returns the number of messages erased.
 */
export async function eraseUser(connection: DuckDBConnection, workspaceId: string, userId: string): Promise<number> {
  const params = { ws: workspaceId, userId };
  await connection.run(
    `CREATE OR REPLACE TEMP TABLE erased_anonymous AS
     WITH ${IDENTITY_CTES} SELECT anonymous_id FROM links WHERE user_id = $userId`,
    params,
  );
  const anon = "(SELECT anonymous_id FROM erased_anonymous)";
  const counted = await connection.runAndReadAll(
    `SELECT count(*) AS messages, count(*) FILTER (WHERE type IN ('track', 'page', 'screen')) AS events
     FROM messages WHERE workspace_id = $ws AND (user_id = $userId OR (user_id IS NULL AND anonymous_id IN ${anon}))`,
    params,
  );
  const [messages, events] = (counted.getRows()[0] ?? [0, 0]).map(Number) as [number, number];
  // Traits the user's own calls set on anything, companies included: a group call's traits may describe them.
  await connection.run(
    `DELETE FROM traits WHERE workspace_id = $ws AND message_id IN (
       SELECT message_id FROM messages
       WHERE workspace_id = $ws AND (user_id = $userId OR (user_id IS NULL AND anonymous_id IN ${anon})))`,
    params,
  );
  await connection.run(
    `DELETE FROM messages WHERE workspace_id = $ws AND (user_id = $userId OR (user_id IS NULL AND anonymous_id IN ${anon}))`,
    params,
  );
  const actor = `((actor_kind = 'user' AND actor_id = $userId) OR (actor_kind = 'anon' AND actor_id IN ${anon}))`;
  for (const table of ["activity_days", "event_days", "actor_summary", "memberships"]) {
    await connection.run(`DELETE FROM ${table} WHERE workspace_id = $ws AND ${actor}`, params);
  }
  await connection.run(
    `DELETE FROM traits WHERE workspace_id = $ws
       AND ((entity_kind = 'user' AND entity_id = $userId) OR (entity_kind = 'anon' AND entity_id IN ${anon}))`,
    params,
  );
  await connection.run(
    `DELETE FROM identity_links WHERE workspace_id = $ws AND (user_id = $userId OR anonymous_id IN ${anon})`,
    params,
  );
  // The counts shrink by what was erased; the duplicates seen before stay counted.
  await connection.run("INSERT INTO workspace_counters VALUES ($ws, $messages, $events, 0)", {
    ws: workspaceId,
    messages: -messages,
    events: -events,
  });
  await connection.run("DROP TABLE erased_anonymous");
  return messages;
}

/**
 * A consistent copy of the database: a checkpoint folds the write-ahead log into the file, then the
 * file is copied while the caller keeps every writer out.
 */
export async function copyDatabase(connection: DuckDBConnection, source: string, target: string): Promise<void> {
  if (fs.existsSync(target)) throw new Error(`${target} already exists`);
  await connection.run("CHECKPOINT");
  await fs.promises.copyFile(source, target, fs.constants.COPYFILE_EXCL);
}
