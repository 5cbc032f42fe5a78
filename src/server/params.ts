import { HttpError } from "./errors.js";

const MAX_LIMIT = 1000;
const DEFAULT_LIMIT = 100;

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
