import fs from "node:fs";
import type { DuckDBConnection, DuckDBValue } from "@duckdb/node-api";
import type { DeletionRequest, DeletionState } from "../types.js";
import { ACTIVITY_TABLES, linksFrom, NOT_QUARANTINED, traitsFrom } from "./commit-sql.js";
import { USER_ANONYMOUS_IDS_SQL } from "./entities.js";

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
 * linked to them, and every derived row about them. Returns the number of messages erased, and of
 * those the number that were quarantined.
 *
 * Compaction keeps only the winner of each key, so a row the user's messages displaced may be gone:
 * the traits of the companies they described and the links of their anonymousIds are worked out
 * again from the messages that remain, as if the user had never sent anything.
 */
export async function eraseUser(
  connection: DuckDBConnection,
  workspaceId: string,
  userId: string,
): Promise<{ messages: number; quarantined: number }> {
  const params = { ws: workspaceId, userId };
  await connection.run(`CREATE OR REPLACE TEMP TABLE erased_anonymous AS ${USER_ANONYMOUS_IDS_SQL}`, params);
  const anon = "(SELECT anonymous_id FROM erased_anonymous)";
  const own = `workspace_id = $ws AND (user_id = $userId OR (user_id IS NULL AND anonymous_id IN ${anon}))`;
  await connection.run(
    `CREATE OR REPLACE TEMP TABLE erased_groups AS
     SELECT DISTINCT group_id FROM messages WHERE ${own} AND type = 'group' AND group_id IS NOT NULL`,
    params,
  );
  const counted = await connection.runAndReadAll(
    `SELECT count(*) AS messages, count(*) FILTER (WHERE type IN ('track', 'page', 'screen')) AS events
     FROM messages WHERE ${own}`,
    params,
  );
  const [messages, events] = (counted.getRows()[0] ?? [0, 0]).map(Number) as [number, number];
  const quarantined = (
    await connection.runAndReadAll(
      `DELETE FROM quarantined_messages
       WHERE workspace_id = $ws AND message_id IN (SELECT message_id FROM messages WHERE ${own}) RETURNING message_id`,
      params,
    )
  ).currentRowCount;
  await connection.run(`DELETE FROM messages WHERE ${own}`, params);
  await connection.run(`DELETE FROM track_events WHERE ${own}`, params);
  const actor = `((actor_kind = 'user' AND actor_id = $userId) OR (actor_kind = 'anon' AND actor_id IN ${anon}))`;
  for (const table of [...ACTIVITY_TABLES, "message_days", "memberships"]) {
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
  // The traits of the companies the user's group calls described, from the group calls that remain.
  const groups = "(SELECT group_id FROM erased_groups)";
  const ws = { ws: workspaceId };
  await connection.run(
    `DELETE FROM traits WHERE workspace_id = $ws AND entity_kind = 'company' AND entity_id IN ${groups}`,
    ws,
  );
  await connection.run(
    traitsFrom(
      `(SELECT * FROM messages m WHERE m.workspace_id = $ws AND m.type = 'group' AND m.group_id IN ${groups} AND ${NOT_QUARANTINED})`,
    ),
    ws,
  );
  // Other users' links to the erased anonymousIds, which the user's earlier links had displaced.
  await connection.run(
    linksFrom(
      `(SELECT * FROM messages m WHERE m.workspace_id = $ws AND ${NOT_QUARANTINED}
        AND (m.anonymous_id IN ${anon} OR (m.type = 'alias' AND m.previous_id IN ${anon})))`,
    ),
    ws,
  );
  // The counts shrink by what was erased; the duplicates seen before stay counted.
  await connection.run("INSERT INTO workspace_counters VALUES ($ws, $messages, $events, 0)", {
    ws: workspaceId,
    messages: -messages,
    events: -events,
  });
  await connection.run("DROP TABLE erased_anonymous");
  await connection.run("DROP TABLE erased_groups");
  return { messages, quarantined };
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
