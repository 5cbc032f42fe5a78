import { INTERVALS, type Interval, parseDay } from "./periods.js";

/** A report parameter the caller got wrong; the HTTP layer answers 400 naming it. */
export class ParameterError extends Error {
  constructor(
    readonly parameter: string,
    problem: string,
  ) {
    super(`${parameter}: ${problem}`);
  }
}

export const LEVELS = ["user", "company"] as const;
export type Level = (typeof LEVELS)[number];

/** Parameters as they arrive: a query string or a JSON body. */
export type RawParams = Record<string, unknown>;

function single(raw: RawParams, name: string): unknown {
  const value = raw[name];
  if (Array.isArray(value) && value.length !== 1) {
    throw new ParameterError(name, "must be given once");
  }
  return Array.isArray(value) ? value[0] : value;
}

export function oneOf<T extends string>(raw: RawParams, name: string, allowed: readonly T[], fallback?: T): T {
  const value = single(raw, name);
  if (value === undefined || value === "") {
    if (fallback === undefined) throw new ParameterError(name, "required");
    return fallback;
  }
  if (typeof value !== "string" || !allowed.includes(value as T)) {
    throw new ParameterError(name, `must be one of ${allowed.join(", ")}`);
  }
  return value as T;
}

export function level(raw: RawParams): Level {
  return oneOf(raw, "level", LEVELS, "user");
}

export function interval(raw: RawParams, name: string, fallback: Interval): Interval {
  return oneOf(raw, name, INTERVALS, fallback);
}

/** A date parameter, 'YYYY-MM-DD', as a day number. */
export function day(raw: RawParams, name: string, fallback?: number): number {
  const value = single(raw, name);
  if (value === undefined || value === "") {
    if (fallback === undefined) throw new ParameterError(name, "required (YYYY-MM-DD)");
    return fallback;
  }
  const parsed = typeof value === "string" ? parseDay(value) : null;
  if (parsed === null) throw new ParameterError(name, `must be a date YYYY-MM-DD, got ${JSON.stringify(value)}`);
  return parsed;
}

/** `from` and `to`, both inclusive; `from` after `to` is an error. */
export function range(raw: RawParams): { from: number; to: number } {
  const from = day(raw, "from");
  const to = day(raw, "to");
  if (from > to) throw new ParameterError("from", "must not be after to");
  if (to - from > 3660) throw new ParameterError("to", "the range may span at most ten years");
  return { from, to };
}

export function integer(raw: RawParams, name: string, fallback: number, min: number, max: number): number {
  const value = single(raw, name);
  if (value === undefined || value === "") return fallback;
  const n =
    typeof value === "number" ? value : typeof value === "string" && /^-?\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ParameterError(name, `must be an integer from ${min} to ${max}`);
  }
  return n;
}

export function boolean(raw: RawParams, name: string, fallback: boolean): boolean {
  const value = single(raw, name);
  if (value === undefined || value === "") return fallback;
  if (value === true || value === "true") return true;
  if (value === false || value === "false") return false;
  throw new ParameterError(name, "must be true or false");
}

/** An optional event name; any non-empty string (an unknown event is not an error). */
export function eventName(raw: RawParams, name: string, required = false): string | undefined {
  const value = single(raw, name);
  if (value === undefined || value === "") {
    if (required) throw new ParameterError(name, "required");
    return undefined;
  }
  if (typeof value !== "string") throw new ParameterError(name, "must be a string");
  return value;
}
