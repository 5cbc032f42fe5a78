import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { MESSAGE_TYPES, type MessageType } from "../storage/types.js";
import { BATCH_SCHEMA, MESSAGE_SCHEMAS } from "./schemas.js";

const ajv = new Ajv2020({ allErrors: false, strict: false });
addFormats.default(ajv, ["date-time"]);

const messageValidators = Object.fromEntries(
  MESSAGE_TYPES.map((type) => [type, ajv.compile(MESSAGE_SCHEMAS[type])]),
) as Record<MessageType, ValidateFunction>;
const batchValidator = ajv.compile(BATCH_SCHEMA);

/** Why a message or request was refused; `message` names the field, e.g. `/batch/3/groupId: required`. */
export interface ValidationIssue {
  code: string;
  message: string;
}

const TYPE_LIST = MESSAGE_TYPES.join(", ");

/** The first of ajv's errors, as one line that names the field. */
export function describeErrors(errors: readonly ErrorObject[], prefix: string): string {
  const anyOf = errors.find((e) => e.keyword === "anyOf");
  if (anyOf) {
    const missing = errors
      .filter((e) => e.keyword === "required" && e.instancePath === anyOf.instancePath)
      .map((e) => String(e.params.missingProperty));
    const where = `${prefix}${anyOf.instancePath}` || "/";
    if (missing.length > 0) return `${where}: ${missing.join(" or ")} is required`;
  }
  const first = errors[0];
  if (!first) return `${prefix || "/"}: invalid`;
  const at = `${prefix}${first.instancePath}`;
  // The pointer of the whole request or message is "/", so that every message starts with one.
  const here = at || "/";
  switch (first.keyword) {
    case "required":
      return `${at}/${String(first.params.missingProperty)}: required`;
    case "format":
      return `${here}: must be an ISO 8601 ${String(first.params.format)} string, such as 2024-05-01T12:00:00.000Z`;
    case "type":
      return `${here}: must be ${String(first.params.type)}`;
    case "maxLength":
      return `${here}: must be at most ${String(first.params.limit)} characters`;
    case "minLength":
      return `${here}: must not be empty`;
    case "maxItems":
      return `${here}: at most ${String(first.params.limit)} messages per batch`;
    case "minItems":
      return `${here}: must not be empty`;
    default:
      return `${here}: ${first.message ?? "invalid"}`;
  }
}

/**
 * Checks one message against its call's schema. `prefix` is the message's JSON pointer in the request
 * (`/batch/3`, or empty for a single call).
 */
export function validateMessage(type: MessageType, message: unknown, prefix: string): ValidationIssue | null {
  const validate = messageValidators[type];
  if (validate(message)) return null;
  return { code: "invalid_message", message: describeErrors(validate.errors ?? [], prefix) };
}

/** Checks a batch item's `type`; returns it, or the issue. */
export function itemType(item: unknown, prefix: string): MessageType | ValidationIssue {
  if (typeof item !== "object" || item === null || Array.isArray(item)) {
    return { code: "invalid_message", message: `${prefix}: must be object` };
  }
  const type = (item as { type?: unknown }).type;
  if (type === undefined || type === null) return { code: "invalid_message", message: `${prefix}/type: required` };
  if (typeof type !== "string" || !(MESSAGE_TYPES as readonly string[]).includes(type)) {
    return { code: "invalid_message", message: `${prefix}/type: must be one of ${TYPE_LIST}` };
  }
  return type as MessageType;
}

/** Checks a batch request's envelope (not its items). */
export function validateBatchEnvelope(body: unknown): ValidationIssue | null {
  if (batchValidator(body)) return null;
  return { code: "invalid_request", message: describeErrors(batchValidator.errors ?? [], "") };
}
