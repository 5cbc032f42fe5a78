import type { DuckDBValue } from "@duckdb/node-api";
import type { EventQuery, EventRecord, MessageType } from "../types.js";
import { IDENTITY_CTES } from "./entities.js";

/** SQL and named parameters for `GET /api/v1/events`, newest first. */
export function eventsQuery(query: EventQuery): { sql: string; params: Record<string, DuckDBValue> } {
  const params: Record<string, DuckDBValue> = { ws: query.workspaceId, limit: query.limit };
  const where = ["workspace_id = $ws"];
  let with_ = "";
  if (query.type) {
    where.push("type = $type");
    params.type = query.type;
  }
  if (query.userId !== undefined || query.companyId !== undefined) with_ = `WITH ${IDENTITY_CTES}`;
  if (query.userId !== undefined) {
    // A message with a userId is that user's; one with only an anonymousId is the linked user's.
    where.push(
      "(user_id = $userId OR (user_id IS NULL AND anonymous_id IN (SELECT anonymous_id FROM links WHERE user_id = $userId)))",
    );
    params.userId = query.userId;
  }
  if (query.anonymousId !== undefined) {
    where.push("anonymous_id = $anonymousId");
    params.anonymousId = query.anonymousId;
  }
  if (query.groupId !== undefined) {
    where.push("(group_id = $groupId OR context_group_id = $groupId)");
    params.groupId = query.groupId;
  }
  if (query.companyId !== undefined) {
    // The company's timeline: its group calls, and the activity attributed to it (its context.groupId,
    // or, without one, any member's).
    where.push(`(group_id = $companyId OR context_group_id = $companyId OR (
      context_group_id IS NULL AND type IN ('track', 'page', 'screen') AND (
        user_id IN (SELECT user_id FROM members WHERE group_id = $companyId)
        OR (user_id IS NULL AND anonymous_id IN (
          SELECT anonymous_id FROM links WHERE user_id IN (SELECT user_id FROM members WHERE group_id = $companyId))))))`);
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
    params.afterTs = BigInt(Math.round(query.after.timestamp * 1000));
    params.afterId = query.after.messageId;
  }
  const sql = `${with_}
    SELECT message_id, type, event, name, category, user_id, anonymous_id, coalesce(group_id, context_group_id) AS group_id,
      previous_id, email, properties, traits, context, integrations,
      epoch_us(timestamp) AS ts, epoch_us(original_timestamp) AS original_ts, epoch_us(sent_at) AS sent_ts,
      epoch_us(received_at) AS received_ts
    FROM messages
    WHERE ${where.join(" AND ")}
    ORDER BY timestamp DESC, message_id DESC
    LIMIT $limit`;
  return { sql, params };
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
