import type { FastifyInstance } from "fastify";
import { MESSAGE_TYPES, type MessageType } from "../storage/types.js";
import { authenticate } from "./auth.js";
import { sendTable } from "./csv.js";
import { HttpError } from "./errors.js";
import { limitParam, stringParam } from "./params.js";
import type { Services } from "./services.js";

const EVENT_COLUMNS = [
  "timestamp",
  "type",
  "event",
  "name",
  "category",
  "userId",
  "anonymousId",
  "groupId",
  "previousId",
  "email",
  "messageId",
  "properties",
  "traits",
  "context",
  "integrations",
  "originalTimestamp",
  "sentAt",
  "receivedAt",
] as const;

/** Opaque page cursors: base64url of [timestamp ms, messageId] of the last row returned. */
export function encodeCursor(timestamp: number, messageId: string): string {
  return Buffer.from(JSON.stringify([timestamp, messageId])).toString("base64url");
}

function decodeCursor(cursor: string): { timestamp: number; messageId: string } {
  try {
    const [timestamp, messageId] = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    // Only timestamps a Date can hold: the database cannot compare with one outside its own range.
    if (Number.isInteger(timestamp) && Math.abs(timestamp) <= 8.64e15 && typeof messageId === "string") {
      return { timestamp, messageId };
    }
  } catch {
    // Reported below.
  }
  throw new HttpError(400, "invalid_parameter", "cursor: not a cursor returned by this API");
}

/** The read API used to check what was stored: events newest first, and the workspace's counts. */
export function registerQueryRoutes(app: FastifyInstance, services: Services): void {
  app.get("/api/v1/events", async (request, reply) => {
    const workspace = await authenticate(services, request);
    const query = request.query as Record<string, unknown>;
    const type = stringParam(query, "type");
    if (type !== undefined && !(MESSAGE_TYPES as readonly string[]).includes(type)) {
      throw new HttpError(400, "invalid_parameter", `type: must be one of ${MESSAGE_TYPES.join(", ")}`);
    }
    const limit = limitParam(query);
    const cursor = stringParam(query, "cursor");
    const rows = await services.storage.readEvents({
      workspaceId: workspace.id,
      type: type as MessageType | undefined,
      userId: stringParam(query, "userId"),
      anonymousId: stringParam(query, "anonymousId"),
      groupId: stringParam(query, "groupId"),
      companyId: stringParam(query, "companyId"),
      event: stringParam(query, "event"),
      messageId: stringParam(query, "messageId"),
      limit: limit + 1,
      after: cursor === undefined ? undefined : decodeCursor(cursor),
    });
    const events = rows.slice(0, limit);
    const last = events[events.length - 1];
    const nextCursor = rows.length > limit && last ? encodeCursor(Date.parse(last.timestamp), last.messageId) : null;
    return sendTable(request, reply, events, { events, nextCursor }, EVENT_COLUMNS);
  });

  app.get("/api/v1/stats", async (request) => {
    const workspace = await authenticate(services, request);
    return services.storage.stats(workspace.id);
  });

  app.get("/api/v1/quarantined-messages", async (request, reply) => {
    const workspace = await authenticate(services, request);
    const messages = await services.storage.quarantined(workspace.id);
    return sendTable(request, reply, messages, { messages }, ["messageId", "quarantinedAt", "error"]);
  });
}
