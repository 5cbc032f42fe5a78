import type { FastifyRequest } from "fastify";
import type { SessionRecord, WorkspaceRecord } from "../storage/types.js";
import { bearerToken } from "../tracking/auth.js";
import { HttpError } from "./errors.js";
import { stringParam } from "./params.js";
import type { Services } from "./services.js";
import { requestSession } from "./sessions.js";

/** The header naming the workspace of a request made with a session cookie. */
export const WORKSPACE_HEADER = "x-solstice-workspace";

/** Methods that change nothing; any other, made with a session cookie, must carry the workspace header. */
const SAFE_METHODS = new Set(["GET", "HEAD"]);

const UNAUTHORIZED =
  "missing or unknown credentials: send Authorization: Bearer <secretKey>, or a session cookie from POST /api/v1/sessions";

/** The session's workspace that a request names, or its only one. */
function chooseWorkspace(services: Services, request: FastifyRequest, session: SessionRecord): WorkspaceRecord {
  const header = request.headers[WORKSPACE_HEADER];
  if (Array.isArray(header)) throw new HttpError(400, "invalid_parameter", "X-Solstice-Workspace: must be given once");
  if (header === "") throw new HttpError(400, "invalid_parameter", "X-Solstice-Workspace: must not be empty");
  const param = stringParam(request.query as Record<string, unknown>, "workspace");
  if (header !== undefined && param !== undefined && header !== param) {
    throw new HttpError(400, "invalid_parameter", "workspace: the parameter and X-Solstice-Workspace disagree");
  }
  const chosen = header ?? param;
  if (chosen === undefined && session.workspaceIds.length !== 1) {
    throw new HttpError(
      400,
      "invalid_parameter",
      "workspace: required when the session holds several workspaces (?workspace=<id> or X-Solstice-Workspace)",
      { parameter: "workspace" },
    );
  }
  const id = chosen ?? (session.workspaceIds[0] as string);
  // The same answer for a workspace of someone else's and for no workspace at all: it tells nothing.
  const workspace = session.workspaceIds.includes(id) ? services.workspaces.byId(id) : undefined;
  if (!workspace) throw new HttpError(404, "not_found", "workspace: no such workspace in this session");
  // A custom header cannot be sent across sites without a CORS preflight, which this server never grants
  // with credentials: requests that change something cannot be forged from another site.
  if (!SAFE_METHODS.has(request.method) && header === undefined) {
    throw new HttpError(
      403,
      "workspace_header_required",
      `a ${request.method} request made with a session cookie must name its workspace in the X-Solstice-Workspace header`,
    );
  }
  return workspace;
}

/**
 * The workspace of a query API request: its secret key as a Bearer token, or, without an Authorization
 * header, a dashboard session cookie and the session's workspace the request names. The Tracking API
 * never comes here: it takes write keys only.
 */
export async function authenticate(services: Services, request: FastifyRequest): Promise<WorkspaceRecord> {
  if (request.headers.authorization === undefined) {
    const session = await requestSession(services, request);
    if (session) return chooseWorkspace(services, request, session);
  } else {
    const key = bearerToken(request.headers.authorization);
    const workspace = key === undefined ? undefined : services.workspaces.bySecret(key);
    if (workspace) return workspace;
  }
  throw new HttpError(401, "unauthorized", UNAUTHORIZED);
}
