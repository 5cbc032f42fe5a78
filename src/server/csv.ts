import { stringify } from "csv-stringify/sync";
import type { FastifyReply, FastifyRequest } from "fastify";

/** Whether the caller asked for CSV: `?format=csv` or `Accept: text/csv`. */
export function wantsCsv(request: FastifyRequest): boolean {
  const format = (request.query as Record<string, unknown>).format;
  if (format === "csv") return true;
  if (format !== undefined && format !== "json") return false;
  return /\btext\/csv\b/i.test(request.headers.accept ?? "");
}

/** One CSV cell: objects and arrays as JSON, null as empty. */
function cell(value: unknown): string | number | boolean {
  if (value === null || value === undefined) return "";
  if (typeof value === "object") return JSON.stringify(value);
  return value as string | number | boolean;
}

/** Rows as CSV with a header line; the columns are the keys of the first row, or `columns` when given. */
export function toCsv(rows: readonly object[], columns?: readonly string[]): string {
  const header = columns ?? Object.keys(rows[0] ?? {});
  return stringify([header, ...rows.map((row) => header.map((c) => cell((row as Record<string, unknown>)[c])))]);
}

/** Sends `rows` as CSV when the caller asked for it, else `json`. */
export function sendTable(
  request: FastifyRequest,
  reply: FastifyReply,
  rows: readonly object[],
  json: unknown,
  columns?: readonly string[],
): FastifyReply {
  if (!wantsCsv(request)) return reply.send(json);
  return reply.type("text/csv; charset=utf-8").send(toCsv(rows, columns));
}
