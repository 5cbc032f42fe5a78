import { createHash, randomBytes } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { SessionRecord } from "../storage/types.js";
import { HttpError } from "./errors.js";
import type { Services } from "./services.js";

/**
 * The session cookie's name. Marked Secure, it takes the __Host- prefix, with which browsers also refuse
 * it from another subdomain or for a narrower path.
 */
export function sessionCookieName(secure: boolean): string {
  return secure ? "__Host-solstice_session" : "solstice_session";
}

/** A session token as this server makes them: 32 random bytes (256 bits), base64url. */
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

/** What the database keeps of a token: its SHA-256, hex. The token is random, so it needs no salt. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** The value of the first cookie named `name` in a Cookie header (RFC 6265, section 4.2), or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const pair of (header ?? "").split(";")) {
    const eq = pair.indexOf("=");
    if (eq === -1 || pair.slice(0, eq).trim() !== name) continue;
    const value = pair.slice(eq + 1).trim();
    return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
  }
  return undefined;
}

/** The hash of the session token the request's cookie carries, if it is shaped like one, whatever it is worth. */
function carriedTokenHash(services: Services, request: FastifyRequest): string | undefined {
  const token = cookieValue(request.headers.cookie, sessionCookieName(services.config.secureCookies));
  return token !== undefined && TOKEN.test(token) ? hashToken(token) : undefined;
}

/** The live session the request's cookie opens; null without one, or for one forged, expired or revoked. */
export async function requestSession(services: Services, request: FastifyRequest): Promise<SessionRecord | null> {
  const tokenHash = carriedTokenHash(services, request);
  return tokenHash === undefined ? null : services.storage.session(tokenHash, (services.now ?? Date.now)());
}

const UNAUTHORIZED = 'no live session: log in with POST /api/v1/sessions {"secretKey": "sk_…"}';

/** Sets the session cookie; an empty token with no lifetime clears it. */
function setCookie(services: Services, reply: FastifyReply, token: string, maxAgeSeconds: number): void {
  const attributes = [
    `${sessionCookieName(services.config.secureCookies)}=${token}`,
    "HttpOnly",
    "SameSite=Strict",
    "Path=/",
    `Max-Age=${maxAgeSeconds}`,
  ];
  if (services.config.secureCookies) attributes.push("Secure");
  reply.header("set-cookie", attributes.join("; "));
}

/**
 * Dashboard sessions: a login with a workspace's secret key sets an HttpOnly cookie that the query API
 * accepts in place of the key (see auth.ts). A login while holding a session adds the workspace to it.
 */
export function registerSessionRoutes(app: FastifyInstance, services: Services): void {
  const now = services.now ?? Date.now;
  const lifetimeMs = services.config.sessionDays * 86_400_000;

  const answer = (session: SessionRecord) => ({
    workspaces: session.workspaceIds.flatMap((id) => {
      const workspace = services.workspaces.byId(id);
      return workspace ? [{ id: workspace.id, name: workspace.name }] : [];
    }),
    expiresAt: new Date(session.expiresAt).toISOString(),
  });

  const current = async (request: FastifyRequest): Promise<SessionRecord> => {
    const session = await requestSession(services, request);
    if (!session) throw new HttpError(401, "unauthorized", UNAUTHORIZED);
    return session;
  };

  app.post("/api/v1/sessions", async (request, reply) => {
    // A cross-site form can post text/plain, never application/json: a page elsewhere cannot log a browser in.
    if (!/^application\/json\s*(;|$)/i.test(request.headers["content-type"] ?? "")) {
      throw new HttpError(415, "unsupported_media_type", "send the secret key as JSON: Content-Type: application/json");
    }
    const body = request.body;
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw new HttpError(400, "invalid_request", 'the body must be a JSON object: {"secretKey": "sk_…"}');
    }
    const key = (body as { secretKey?: unknown }).secretKey;
    if (typeof key !== "string" || key === "") {
      throw new HttpError(400, "invalid_parameter", "secretKey: required, a workspace's secret key (a string)", {
        parameter: "secretKey",
      });
    }
    const workspace = services.workspaces.bySecret(key);
    if (!workspace) throw new HttpError(401, "unauthorized", "secretKey: not the secret key of any workspace");
    const token = randomBytes(32).toString("base64url");
    const at = now();
    const session = await services.storage.openSession({
      tokenHash: hashToken(token),
      workspaceId: workspace.id,
      now: at,
      expiresAt: at + lifetimeMs,
      renews: carriedTokenHash(services, request),
    });
    // A rotation of the workspace's keys that was under way took the workspace out of every session
    // before this one was stored (storage writes run in order), and has since given the registry the new
    // key: checked again, the old key no longer opens anything.
    if (services.workspaces.bySecret(key)?.id !== workspace.id) {
      await services.storage.deleteSession(session.tokenHash);
      throw new HttpError(401, "unauthorized", "secretKey: not the secret key of any workspace");
    }
    setCookie(services, reply, token, Math.floor(lifetimeMs / 1000));
    return reply.status(201).send(answer(session));
  });

  app.get("/api/v1/sessions/current", async (request) => answer(await current(request)));

  app.delete("/api/v1/sessions/current", async (request, reply) => {
    // The browser forgets the cookie whatever it was worth.
    setCookie(services, reply, "", 0);
    await services.storage.deleteSession((await current(request)).tokenHash);
    return reply.status(204).send();
  });
}
