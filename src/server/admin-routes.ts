import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { errorMessage } from "../storage/errors.js";
import { DELETION_STATES, type DeletionState } from "../storage/types.js";
import { bearerToken } from "../tracking/auth.js";
import { unpairedSurrogate } from "../tracking/normalize.js";
import { DEFAULT_WORKSPACE, rotateKeys } from "../workspaces/registry.js";
import { sameSecret } from "./admin-token.js";
import { authenticate } from "./auth.js";
import { HttpError } from "./errors.js";
import { stringParam } from "./params.js";
import type { Services } from "./services.js";

/** Key rotation, deletion requests, and the server-wide backup. */
export function registerAdminRoutes(app: FastifyInstance, services: Services): void {
  const now = services.now ?? Date.now;

  app.post("/api/v1/workspace/rotate-keys", async (request) => {
    const workspace = await authenticate(services, request);
    if (workspace.name === DEFAULT_WORKSPACE && (services.config.writeKey || services.config.secretKey)) {
      // Keys from the environment are written back at every start, which would undo the rotation.
      throw new HttpError(
        409,
        "keys_from_environment",
        "this workspace's keys come from SOLSTICE_WRITE_KEY / SOLSTICE_SECRET_KEY: change them there and restart",
      );
    }
    const body = (request.body ?? {}) as { graceHours?: unknown };
    const graceHours = body.graceHours ?? 24 * 7;
    if (typeof graceHours !== "number" || !Number.isFinite(graceHours) || graceHours < 0 || graceHours > 24 * 365) {
      throw new HttpError(400, "invalid_parameter", "graceHours: must be a number of hours from 0 to 8760");
    }
    const at = now();
    const { workspace: rotated, oldWriteKeyExpiresAt } = await rotateKeys(
      services.storage,
      workspace,
      graceHours * 3600_000,
      at,
    );
    services.workspaces.add(rotated);
    if (oldWriteKeyExpiresAt !== null)
      services.workspaces.retire(workspace.id, workspace.writeKey, oldWriteKeyExpiresAt);
    return {
      writeKey: rotated.writeKey,
      secretKey: rotated.secretKey,
      previousWriteKeyValidUntil: oldWriteKeyExpiresAt === null ? null : new Date(oldWriteKeyExpiresAt).toISOString(),
    };
  });

  app.post("/api/v1/deletion-requests", async (request, reply) => {
    const workspace = await authenticate(services, request);
    const body = request.body as { userId?: unknown } | undefined;
    const userId = body?.userId;
    if (typeof userId !== "string" || userId === "") {
      throw new HttpError(400, "invalid_parameter", "userId: required, a non-empty string");
    }
    // Stored, an unpaired surrogate would become U+FFFD: the request would be for someone else's data.
    const unpaired = unpairedSurrogate(userId, "userId");
    if (unpaired) throw new HttpError(400, "invalid_parameter", unpaired);
    const deletion = {
      id: randomUUID(),
      userId,
      state: "requested" as const,
      requestedAt: new Date(now()).toISOString(),
      startedAt: null,
      finishedAt: null,
      messagesDeleted: null,
    };
    await services.storage.requestDeletion(workspace.id, deletion);
    services.deletions?.schedule(workspace.id, deletion.id);
    return reply.status(202).send(deletion);
  });

  app.get("/api/v1/deletion-requests", async (request) => {
    const workspace = await authenticate(services, request);
    const state = stringParam(request.query as Record<string, unknown>, "state");
    if (state !== undefined && !DELETION_STATES.includes(state as DeletionState)) {
      throw new HttpError(400, "invalid_parameter", `state: must be one of ${DELETION_STATES.join(", ")}`);
    }
    return {
      deletionRequests: await services.storage.deletionRequests(workspace.id, state as DeletionState | undefined),
    };
  });

  app.post("/admin/backup", async (request) => {
    const token = bearerToken(request.headers.authorization);
    if (!services.adminToken || token === undefined || !sameSecret(token, services.adminToken)) {
      throw new HttpError(401, "unauthorized", "the backup needs the admin token of the data directory");
    }
    const path = (request.body as { path?: unknown } | undefined)?.path;
    if (typeof path !== "string" || !path.startsWith("/")) {
      throw new HttpError(400, "invalid_parameter", "path: must be an absolute path on the server");
    }
    const started = performance.now();
    try {
      await services.storage.backup(path);
    } catch (err) {
      const message = errorMessage(err);
      if (/already exists|ENOENT|EACCES/.test(message))
        throw new HttpError(400, "invalid_parameter", `path: ${message}`);
      throw err;
    }
    return { path, ms: Math.round(performance.now() - started) };
  });
}
