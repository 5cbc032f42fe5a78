import type { FastifyInstance, FastifyRequest } from "fastify";
import type { WorkspaceRecord } from "../storage/types.js";
import { writeKeyCandidates } from "../tracking/auth.js";
import { type IngestPlan, planBatch, planSingle } from "../tracking/ingest.js";
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

/** The Tracking API: June's and Segment's ingestion routes, and the write key check. */
export function registerTrackingRoutes(app: FastifyInstance, services: Services): void {
  const now = services.now ?? Date.now;

  for (const [path, route] of TRACKING_ROUTES) {
    if (route.kind === "telemetry") {
      app.post(path, async () => ({ status: 200, success: true }));
      continue;
    }
    app.post(path, async (request) => {
      const receivedAt = now();
      const workspace = authenticate(services, request, request.body);
      const plan: IngestPlan =
        route.kind === "single"
          ? planSingle(request.body, route.type, workspace.id, receivedAt, request.bodyBytes)
          : planBatch(request.body, workspace.id, receivedAt, request.bodyBytes);
      const outcomes = await services.storage.write(plan.rows);
      let duplicates = 0;
      for (const outcome of outcomes) if (outcome === "duplicate") duplicates++;
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
