import rateLimit from "@fastify/rate-limit";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { WorkspaceRecord } from "../storage/types.js";
import { writeKeyCandidates } from "../tracking/auth.js";
import { type IngestPlan, planBatch, planSingle, RequestRefused } from "../tracking/ingest.js";
import { TRACKING_ROUTES } from "../tracking/routes.js";
import { HttpError } from "./errors.js";
import type { Services } from "./services.js";

const UNAUTHORIZED =
  "missing or unknown write key: send it as Basic auth (the key as the user name) or as writeKey in the body";

function authenticate(services: Services, request: FastifyRequest, body: unknown): WorkspaceRecord {
  for (const key of writeKeyCandidates(request.headers.authorization, body)) {
    const workspace = services.workspaces.byWrite(key);
    if (workspace) return workspace;
  }
  throw new HttpError(401, "unauthorized", UNAUTHORIZED);
}

/**
 * The key a request is rate limited by: the write key it authenticates with, whichever of the forms it
 * was sent in (one bucket per key, not per form), else the first key it names, else its address.
 */
function rateKey(services: Services, request: FastifyRequest): string {
  const candidates = writeKeyCandidates(request.headers.authorization, request.body);
  return candidates.find((key) => services.workspaces.byWrite(key) !== undefined) ?? candidates[0] ?? request.ip;
}

/** The Tracking API: June's and Segment's ingestion routes, and the write key check. */
export async function registerTrackingRoutes(app: FastifyInstance, services: Services): Promise<void> {
  const now = services.now ?? Date.now;
  const perSecond = services.config.rateLimit;
  if (perSecond > 0) {
    await app.register(rateLimit, {
      global: false,
      hook: "preHandler",
      keyGenerator: (request) => rateKey(services, request),
      errorResponseBuilder: (_request, context) =>
        new HttpError(
          429,
          "rate_limited",
          `over ${context.max} requests per second for this write key; retry after ${context.after}`,
          {},
          Math.max(1, Math.ceil(context.ttl / 1000)),
        ),
    });
  }
  // When the writer's queue is already full, answer before reading the body: parsing it would be wasted.
  const refuseWhenFull = async () => {
    if (services.storage.queueDepth >= services.config.maxQueuedRows) {
      throw new HttpError(503, "overloaded", "the event writer is behind; retry later", {}, 1);
    }
  };
  const limited = perSecond > 0 ? { config: { rateLimit: { max: perSecond, timeWindow: 1000 } } } : {};

  for (const [path, route] of TRACKING_ROUTES) {
    if (route.kind === "telemetry") {
      app.post(path, async () => ({ status: 200, success: true }));
      continue;
    }
    app.post(path, { ...limited, onRequest: refuseWhenFull }, async (request) => {
      const receivedAt = now();
      const workspace = authenticate(services, request, request.body);
      let plan: IngestPlan;
      try {
        plan =
          route.kind === "single"
            ? planSingle(
                request.body,
                route.type,
                workspace.id,
                receivedAt,
                request.bodyBytes,
                request.surrogateEscapes,
              )
            : planBatch(request.body, workspace.id, receivedAt, request.bodyBytes, request.surrogateEscapes);
      } catch (err) {
        // A request refused as a whole rejects every message it carries: its one message, or the whole batch.
        if (err instanceof RequestRefused) {
          const batch = (request.body as { batch?: unknown } | null)?.batch;
          const refused = route.kind === "single" ? 1 : Array.isArray(batch) ? batch.length : 0;
          services.metrics?.messages.inc({ outcome: "rejected" }, refused);
        }
        throw err;
      }
      const outcomes = await services.storage.write(plan.rows);
      let duplicates = 0;
      for (const outcome of outcomes) if (outcome === "duplicate") duplicates++;
      services.metrics?.messages.inc({ outcome: "accepted" }, plan.rows.length - duplicates);
      services.metrics?.messages.inc({ outcome: "duplicate" }, duplicates);
      services.metrics?.messages.inc({ outcome: "rejected" }, plan.errors.length);
      return {
        status: 200,
        success: true,
        received: plan.received,
        accepted: plan.rows.length - duplicates,
        duplicates,
        errors: plan.errors,
      };
    });
  }

  app.get("/api/validate-write-key", async (request) => {
    authenticate(services, request, undefined);
    return { status: 200, success: true, valid: true };
  });
}
