import type { MessageType, StoredMessage } from "../storage/types.js";
import { LIMITS } from "./limits.js";
import { normalizeMessage, type RequestContext } from "./normalize.js";
import { itemType, type ValidationIssue, validateBatchEnvelope } from "./validate.js";

/** A refused message of a batch: its index in the request and why. */
export interface MessageError {
  index: number;
  code: string;
  message: string;
}

/** What a request asks to store: the rows that passed, and the messages that did not. */
export interface IngestPlan {
  received: number;
  rows: StoredMessage[];
  errors: MessageError[];
}

/** A request that is refused as a whole. */
export class RequestRefused extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly errors: MessageError[] = [],
  ) {
    super(message);
  }
}

function objectOrUndefined(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function refuse(issue: ValidationIssue): never {
  throw new RequestRefused(issue.code, issue.message);
}

/** One message of a single call (`/v1/track`, `/sdk/identify`, …); the path gives its type. */
export function planSingle(
  body: unknown,
  type: MessageType,
  workspaceId: string,
  receivedAt: number,
  bytes: number,
  surrogateEscapes = true,
) {
  const context: RequestContext = { workspaceId, receivedAt, small: bytes <= LIMITS.messageBytes, surrogateEscapes };
  if (bytes > LIMITS.messageBytes) {
    throw new RequestRefused(
      "message_too_large",
      `/: message is ${bytes} bytes of JSON; the limit is ${LIMITS.messageBytes} bytes per message`,
    );
  }
  const result = normalizeMessage(body, type, "", context);
  if (!result.ok) refuse(result.issue);
  return { received: 1, rows: [result.value], errors: [] } satisfies IngestPlan;
}

/**
 * A batch: the envelope must be valid, then each item is checked on its own. Bad items are reported
 * by index and the rest are kept; a batch with no good item is refused as a whole.
 */
export function planBatch(
  body: unknown,
  workspaceId: string,
  receivedAt: number,
  bytes: number,
  surrogateEscapes = true,
): IngestPlan {
  const envelopeIssue = validateBatchEnvelope(body);
  if (envelopeIssue) refuse(envelopeIssue);
  const envelope = body as { batch: unknown[]; sentAt?: unknown; context?: unknown; integrations?: unknown };
  const context: RequestContext = {
    workspaceId,
    receivedAt,
    sentAt: envelope.sentAt,
    context: objectOrUndefined(envelope.context),
    integrations: objectOrUndefined(envelope.integrations),
    small: bytes <= LIMITS.messageBytes,
    surrogateEscapes,
  };
  const rows: StoredMessage[] = [];
  const errors: MessageError[] = [];
  envelope.batch.forEach((item, index) => {
    const prefix = `/batch/${index}`;
    const type = itemType(item, prefix);
    if (typeof type !== "string") {
      errors.push({ index, ...type });
      return;
    }
    const result = normalizeMessage(item, type, prefix, context);
    if (result.ok) rows.push(result.value);
    else errors.push({ index, ...result.issue });
  });
  if (rows.length === 0) {
    throw new RequestRefused(errors[0]?.code ?? "invalid_request", errors[0]?.message ?? "no valid message", errors);
  }
  return { received: envelope.batch.length, rows, errors };
}
