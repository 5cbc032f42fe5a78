import type { FastifyInstance, FastifyRequest } from "fastify";
import { MESSAGE_TYPES, type MessageType, type WorkspaceRecord } from "../storage/types.js";
import { bearerToken } from "../tracking/auth.js";
import { sendTable } from "./csv.js";
import { HttpError } from "./errors.js";
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

const MAX_LIMIT = 1000;
const DEFAULT_LIMIT = 100;

/** The workspace of a query API request; only its secret key, as a Bearer token, is accepted. */
export function authenticateSecret(services: Services, request: FastifyRequest): WorkspaceRecord {
  const token = bearerToken(request.headers.authorization);
  const workspace = token === undefined ? undefined : services.workspaces.bySecret(token);
  if (!workspace) {
    throw new HttpError(401, "unauthorized", "missing or unknown secret key: send Authorization: Bearer <secretKey>");
  }
  return workspace;
}

/** A single-valued string parameter, or undefined; repeated or empty parameters are a 400. */
export function stringParam(query: Record<string, unknown>, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new HttpError(400, "invalid_parameter", `${name}: must be given once`);
  if (value === "") throw new HttpError(400, "invalid_parameter", `${name}: must not be empty`);
  return value;
}

/** `limit`: an integer from 1 to 1,000. */
export function limitParam(query: Record<string, unknown>, fallback = DEFAULT_LIMIT): number {
  const raw = stringParam(query, "limit");
  if (raw === undefined) return fallback;
  const limit = Number(raw);
  if (!/^\d+$/.test(raw) || limit < 1 || limit > MAX_LIMIT) {
    throw new HttpError(400, "invalid_parameter", `limit: must be an integer from 1 to ${MAX_LIMIT}`);
  }
  return limit;
}

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
    const workspace = authenticateSecret(services, request);
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
    const workspace = authenticateSecret(services, request);
    return services.storage.stats(workspace.id);
  });
}
