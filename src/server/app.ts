import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import cors from "@fastify/cors";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from "fastify";
import { registerAdminRoutes } from "./admin-routes.js";
import { registerBodyParsing } from "./body.js";
import { registerEntityRoutes } from "./entity-routes.js";
import { errorBody, handleError } from "./errors.js";
import { registerQueryRoutes } from "./query-routes.js";
import { registerReportRoutes } from "./report-routes.js";
import type { Services } from "./services.js";
import { registerSessionRoutes } from "./sessions.js";
import { registerTrackingRoutes } from "./tracking-routes.js";

/**
 * Errors Node raises before a request reaches the router (malformed HTTP, headers over the size limit,
 * a request not received in time), answered with the same JSON body as every other error.
 */
function clientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const [status, code, message] =
    err.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? [408, "request_timeout", "the request was not received in time"]
      : err.code === "HPE_HEADER_OVERFLOW"
        ? [431, "headers_too_large", "request headers are over the size limit"]
        : [400, "invalid_request", "malformed HTTP request"];
  const body = JSON.stringify(errorBody(status, code, message));
  // A response already under way on this connection cannot be followed by another one.
  const started = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
  if (socket.writable && !started) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\naccess-control-allow-origin: *\r\nconnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}

/**
 * Builds the HTTP app: routes, body parsing, CORS, error mapping and access logs. Does not listen;
 * `start.ts` does, so tests can drive the app with inject() or on a port of their own.
 */
export async function buildApp(services: Services): Promise<FastifyInstance> {
  const requestTimeout = services.config.requestTimeoutMs;
  const app: FastifyInstance = Fastify({
    loggerInstance: services.logger as FastifyBaseLogger,
    // One access line per request, written by the onResponse hook below.
    logController: new LogController({ disableRequestLogging: true }),
    requestTimeout,
    http: {
      // Given to Node's server at creation, not only set on it afterwards as Fastify does: its headers
      // timeout is derived from it then (60 s otherwise), and a body sent slowly is cut off only when
      // both have passed.
      requestTimeout,
      // Node looks for requests past their deadline only this often (every 30 s by default, which would
      // let a slow client hold a connection for twice the timeout); a tenth of it keeps the bound close.
      connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(requestTimeout / 10))),
    },
    clientErrorHandler: clientError,
    connectionTimeout: 60_000,
    keepAliveTimeout: 65_000,
    bodyLimit: 512_000,
    return503OnClosing: true,
    forceCloseConnections: "idle",
  });

  // Any origin, without credentials: a page elsewhere can use a key it holds, never a browser's session
  // cookie; and X-Solstice-Workspace, which requests made with a cookie must carry to change anything, is
  // not among the headers a preflight allows.
  await app.register(cors, {
    origin: "*",
    methods: ["GET", "POST", "PUT", "DELETE", "OPTIONS"],
    allowedHeaders: ["Authorization", "Content-Type", "Content-Encoding"],
    maxAge: 86_400,
    // An OPTIONS request that is not a CORS preflight (no Origin or Access-Control-Request-Method)
    // gets the same 204 with the allowed methods, not the plugin's plain-text 400.
    strictPreflight: false,
  });
  registerBodyParsing(app);
  app.setErrorHandler(handleError);
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send(errorBody(404, "not_found", `no route for ${request.method} ${request.url.split("?")[0]}`)),
  );
  app.addHook("onResponse", async (request, reply) => {
    request.log.info(
      { method: request.method, url: request.url.split("?")[0], status: reply.statusCode, ms: reply.elapsedTime },
      "request",
    );
  });

  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_request, reply) => {
    const health = await services.storage.health();
    return reply
      .status(health.writable ? 200 : 503)
      .send({ status: health.writable ? "ready" : "unavailable", ...health });
  });
  app.get("/metrics", async (_request, reply) => {
    const metrics = services.metrics;
    if (!metrics) return reply.status(404).send(errorBody(404, "not_found", "metrics are not enabled"));
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  await registerTrackingRoutes(app, services);
  registerSessionRoutes(app, services);
  registerQueryRoutes(app, services);
  registerEntityRoutes(app, services);
  registerReportRoutes(app, services);
  registerAdminRoutes(app, services);
  return app;
}
