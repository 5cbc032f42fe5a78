import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { ParameterError } from "../reports/params.js";
import { EngineClosedError, OverloadedError, StorageError } from "../storage/errors.js";
import { RequestRefused } from "../tracking/ingest.js";
import { LIMITS } from "../tracking/limits.js";

/** An error with the HTTP answer it deserves. Thrown anywhere below a route; mapped in one handler. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

/** The JSON body of every error: `code` and `message` for the Python SDK, `error` for others. */
export function errorBody(status: number, code: string, message: string, extra: Record<string, unknown> = {}) {
  return { success: false, status, code, message, error: message, ...extra };
}

/** Turns any error into an HttpError; what the caller sent is never a 5xx. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof RequestRefused) {
    const extra = err.errors.length > 0 ? { errors: err.errors } : {};
    return new HttpError(400, err.code, err.message, extra);
  }
  if (err instanceof ParameterError)
    return new HttpError(400, "invalid_parameter", err.message, { parameter: err.parameter });
  if (err instanceof OverloadedError) return new HttpError(503, "overloaded", err.message, {}, err.retryAfterSeconds);
  if (err instanceof StorageError || err instanceof EngineClosedError) {
    return new HttpError(503, "storage_unavailable", "storage is unavailable; retry later", {}, 5);
  }
  const e = err as Partial<FastifyError> & { code?: string };
  switch (e.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new HttpError(
        400,
        "request_too_large",
        `request body is over the limit of ${LIMITS.requestBytes} bytes (after decompression)`,
      );
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new HttpError(400, "invalid_request", "request body length does not match Content-Length");
    case "Z_DATA_ERROR":
    case "Z_BUF_ERROR":
      return new HttpError(400, "invalid_encoding", "request body is not valid gzip");
    case "ECONNRESET":
    case "ERR_STREAM_PREMATURE_CLOSE":
      return new HttpError(400, "invalid_request", "request body ended early");
  }
  if (typeof e.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) {
    return new HttpError(e.statusCode, "invalid_request", e.message ?? "invalid request");
  }
  return new HttpError(500, "internal_error", "internal error");
}

/** The one error handler: logs server faults, answers JSON. */
export function handleError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const http = toHttpError(err);
  if (http.status >= 500) request.log.error({ err }, "request failed");
  if (http.retryAfterSeconds !== undefined) reply.header("retry-after", String(http.retryAfterSeconds));
  return reply.status(http.status).send(errorBody(http.status, http.code, http.message, http.extra));
}
