import cors from "@fastify/cors";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from "fastify";
import { registerAdminRoutes } from "./admin-routes.js";
import { registerBodyParsing } from "./body.js";
import { registerEntityRoutes } from "./entity-routes.js";
import { errorBody, handleError } from "./errors.js";
import { registerQueryRoutes } from "./query-routes.js";
import { registerReportRoutes } from "./report-routes.js";
import type { Services } from "./services.js";
import { registerTrackingRoutes } from "./tracking-routes.js";

/**
 * Builds the HTTP app: routes, body parsing, CORS, error mapping and access logs. Does not listen;
 * `start.ts` does, so tests can drive the app with inject() or on a port of their own.
 */
export async function buildApp(services: Services): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    loggerInstance: services.logger as FastifyBaseLogger,
    // One access line per request, written by the onResponse hook below.
    logController: new LogController({ disableRequestLogging: true }),
    requestTimeout: 30_000,
    connectionTimeout: 60_000,
    keepAliveTimeout: 65_000,
    bodyLimit: 512_000,
    return503OnClosing: true,
    forceCloseConnections: "idle",
  });

  await app.register(cors, {
    origin: "*",
    methods: ["GET", "POST", "PUT", "DELETE", "OPTIONS"],
    allowedHeaders: ["Authorization", "Content-Type", "Content-Encoding"],
    maxAge: 86_400,
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
  registerQueryRoutes(app, services);
  registerEntityRoutes(app, services);
  registerReportRoutes(app, services);
  registerAdminRoutes(app, services);
  return app;
}
