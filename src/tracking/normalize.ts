import { randomUUID } from "node:crypto";
import type { MessageType, StoredMessage } from "../storage/types.js";
import { exceedsBytes, LIMITS } from "./limits.js";
import { type ValidationIssue, validateMessage } from "./validate.js";

/** What one request contributes to each of its messages. */
export interface RequestContext {
  workspaceId: string;
  /** Server time at which the request arrived, in ms; the same for every message of a batch. */
  receivedAt: number;
  /** A batch's top-level sentAt, context and integrations. */
  sentAt?: unknown;
  context?: Record<string, unknown> | undefined;
  integrations?: Record<string, unknown> | undefined;
  /** Skip the per-message size check: the whole body is already within the message limit. */
  small: boolean;
  /** False when the request's JSON text escapes no surrogate, so that no string in it can hold an unpaired one. */
  surrogateEscapes?: boolean;
}

/** A step's result: the value, or why the message was refused (a step never throws for bad input). */
export type Result<T> = { ok: true; value: T } | { ok: false; issue: ValidationIssue };

/** Top-level fields that clients send as `null` to mean "absent". */
const NULLABLE = [
  "userId",
  "anonymousId",
  "timestamp",
  "originalTimestamp",
  "sentAt",
  "messageId",
  "properties",
  "traits",
  "context",
  "integrations",
  "name",
  "category",
  "email",
] as const;

/** Fields with a column of their own, or deliberately dropped; everything else is kept in `extra`. */
const KNOWN: Readonly<Record<MessageType, ReadonlySet<string>>> = (() => {
  const base = [
    "userId",
    "anonymousId",
    "timestamp",
    "sentAt",
    "messageId",
    "properties",
    "traits",
    "context",
    "integrations",
    "name",
    "category",
    "type",
    "writeKey",
    "receivedAt",
    "_metadata",
  ];
  return {
    track: new Set([...base, "event"]),
    identify: new Set([...base, "email"]),
    group: new Set([...base, "groupId"]),
    page: new Set(base),
    screen: new Set(base),
    alias: new Set([...base, "previousId"]),
  };
})();

type Message = Record<string, unknown>;

const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * Where a JSON value holds an unpaired surrogate (in a string or a key), as the refusal naming the place;
 * null when it holds none. UTF-8 cannot encode one and the database's JSON parser refuses its escape:
 * stored, it would be altered to U+FFFD (merging distinct ids, making a new messageId a duplicate) or
 * fail the commit of every message written with it.
 */
export function unpairedSurrogate(value: unknown, at: string): string | null {
  if (typeof value === "string") {
    return LONE_SURROGATE.test(value)
      ? `${at || "/"}: must be well-formed Unicode text (it holds an unpaired surrogate)`
      : null;
  }
  if (typeof value !== "object" || value === null) return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = unpairedSurrogate(value[i], `${at}/${i}`);
      if (found) return found;
    }
    return null;
  }
  for (const key of Object.keys(value)) {
    if (LONE_SURROGATE.test(key)) {
      return `${at || "/"}: keys must be well-formed Unicode text (one holds an unpaired surrogate)`;
    }
    const found = unpairedSurrogate((value as Message)[key], `${at}/${key}`);
    if (found) return found;
  }
  return null;
}

/** The largest distance from the epoch, in ms, that a Date can hold; the read API turns timestamps into Dates. */
const MAX_DATE_MS = 8.64e15;

function parseTime(value: unknown): number | null {
  if (typeof value !== "string") return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}

function asId(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return null;
}

/** A batch's shared object under a message's own; a message value that is not an object is kept as sent. */
function merged(under: Record<string, unknown> | undefined, over: unknown): unknown {
  if (under === undefined || over === undefined) return over ?? under;
  if (typeof over !== "object" || over === null || Array.isArray(over)) return over;
  return { ...under, ...(over as Record<string, unknown>) };
}

/**
 * Turns one received message into the row to store: checks its size and schema, then applies the
 * batch's shared fields, corrects the client's clock skew, and assigns a messageId when it has none.
 * `prefix` locates the message in the request for error messages (`/batch/3`, or empty).
 */
export function normalizeMessage(
  raw: unknown,
  type: MessageType,
  prefix: string,
  req: RequestContext,
): Result<StoredMessage> {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return { ok: false, issue: { code: "invalid_message", message: `${prefix || "/"}: must be object` } };
  }
  const message: Message = { ...(raw as Message) };
  for (const field of NULLABLE) if (message[field] === null) delete message[field];

  if (!req.small && exceedsBytes(JSON.stringify(raw), LIMITS.messageBytes)) {
    const bytes = Buffer.byteLength(JSON.stringify(raw), "utf8");
    return {
      ok: false,
      issue: {
        code: "message_too_large",
        message: `${prefix || "/"}: message is ${bytes} bytes of JSON; the limit is ${LIMITS.messageBytes} bytes per message`,
      },
    };
  }
  const issue = validateMessage(type, message, prefix);
  if (issue) return { ok: false, issue };
  // June's group schema leaves messageId unchecked; the other schemas hold it to the same rule.
  const id = message.messageId;
  if (id !== undefined && (typeof id !== "string" || id.length === 0 || id.length > 100)) {
    return {
      ok: false,
      issue: { code: "invalid_message", message: `${prefix}/messageId: must be a string of 1 to 100 characters` },
    };
  }
  const unpaired =
    req.surrogateEscapes !== false &&
    (unpairedSurrogate(message, prefix) ??
      unpairedSurrogate(req.context ?? null, `${prefix}/context`) ??
      unpairedSurrogate(req.integrations ?? null, `${prefix}/integrations`));
  if (unpaired) return { ok: false, issue: { code: "invalid_message", message: unpaired } };

  const original = parseTime(message.timestamp ?? message.originalTimestamp);
  if ((message.timestamp ?? message.originalTimestamp) !== undefined && original === null) {
    const field = message.timestamp !== undefined ? "timestamp" : "originalTimestamp";
    return { ok: false, issue: { code: "invalid_message", message: `${prefix}/${field}: not a valid date-time` } };
  }
  const sentAt = parseTime(message.sentAt ?? req.sentAt);
  let timestamp = original ?? req.receivedAt;
  if (original !== null && sentAt !== null) {
    const corrected = req.receivedAt - (sentAt - original);
    // A sentAt so far from the timestamp that the correction leaves the range of dates is ignored.
    if (Math.abs(corrected) <= MAX_DATE_MS) timestamp = corrected;
  }

  const context = merged(req.context, message.context);
  const integrations = merged(req.integrations, message.integrations);
  const traits = message.traits as Record<string, unknown> | undefined;
  let extra: Message | null = null;
  const known = KNOWN[type];
  for (const key of Object.keys(message)) {
    if (known.has(key) || (key === "originalTimestamp" && message.timestamp === undefined)) continue;
    extra ??= {};
    // defineProperty, not assignment: a "__proto__" key is data to keep, not a prototype to set.
    Object.defineProperty(extra, key, { value: message[key], enumerable: true, writable: true, configurable: true });
  }

  return {
    ok: true,
    value: {
      workspaceId: req.workspaceId,
      messageId: (message.messageId as string | undefined) ?? `solstice-${randomUUID()}`,
      type,
      event: type === "track" ? (message.event as string) : null,
      name: asId(message.name),
      category: asId(message.category),
      userId: (message.userId as string | undefined) ?? null,
      anonymousId: (message.anonymousId as string | undefined) ?? null,
      groupId: type === "group" ? (message.groupId as string) : null,
      contextGroupId: typeof context === "object" && context !== null ? asId((context as Message).groupId) : null,
      previousId: type === "alias" ? (message.previousId as string) : null,
      email: type === "identify" ? (asId(message.email) ?? asId(traits?.email)) : null,
      timestamp,
      originalTimestamp: original,
      sentAt,
      receivedAt: req.receivedAt,
      properties: message.properties ?? null,
      traits: traits ?? null,
      context: context ?? null,
      integrations: integrations ?? null,
      extra,
    },
  };
}
