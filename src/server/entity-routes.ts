import type { FastifyInstance } from "fastify";
import { COMPANY_SORTS, type CompanySort } from "../identity/types.js";
import { authenticate } from "./auth.js";
import { sendTable } from "./csv.js";
import { HttpError } from "./errors.js";
import { limitParam, stringParam } from "./params.js";
import type { Services } from "./services.js";
import { SnapshotStore } from "./snapshots.js";

const COMPANY_COLUMNS = ["id", "name", "users", "events", "firstSeen", "lastSeen", "traits"] as const;

interface ListCursor {
  /** The snapshot of the list's order. */
  s: string;
  /** Offset of the next page in it. */
  o: number;
  sort: CompanySort;
  q: string | null;
}

function encodeListCursor(cursor: ListCursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString("base64url");
}

function decodeListCursor(raw: string): ListCursor {
  try {
    const c = JSON.parse(Buffer.from(raw, "base64url").toString("utf8")) as Partial<ListCursor>;
    if (typeof c.s === "string" && Number.isInteger(c.o) && COMPANY_SORTS.includes(c.sort as CompanySort)) {
      return { s: c.s, o: c.o as number, sort: c.sort as CompanySort, q: typeof c.q === "string" ? c.q : null };
    }
  } catch {
    // Reported below.
  }
  throw new HttpError(400, "invalid_parameter", "cursor: not a cursor returned by this API");
}

/** Users and companies: profiles, and the companies list. */
export function registerEntityRoutes(app: FastifyInstance, services: Services): void {
  const now = services.now ?? Date.now;
  const snapshots = new SnapshotStore();

  app.get("/api/v1/companies", async (request, reply) => {
    const workspace = await authenticate(services, request);
    const query = request.query as Record<string, unknown>;
    const cursorParam = stringParam(query, "cursor");
    const cursor = cursorParam === undefined ? undefined : decodeListCursor(cursorParam);
    const sortParam = stringParam(query, "sort") ?? cursor?.sort ?? "lastSeen";
    if (!COMPANY_SORTS.includes(sortParam as CompanySort)) {
      throw new HttpError(400, "invalid_parameter", `sort: must be one of ${COMPANY_SORTS.join(", ")}`);
    }
    const sort = sortParam as CompanySort;
    const q = stringParam(query, "q") ?? cursor?.q ?? undefined;
    if (cursor && (cursor.sort !== sort || (cursor.q ?? undefined) !== q)) {
      throw new HttpError(
        400,
        "invalid_parameter",
        "cursor: was made for another sort or q; start from the first page",
      );
    }
    const limit = limitParam(query, 50);
    const at = now();
    const all = await services.storage.companies({ workspaceId: workspace.id, sort, q, now: at });
    let order: readonly string[];
    let token: string;
    let offset = 0;
    if (cursor) {
      const stored = snapshots.get(cursor.s, at);
      if (!stored) throw new HttpError(400, "cursor_expired", "cursor: has expired; start from the first page");
      order = stored;
      token = cursor.s;
      offset = cursor.o;
    } else {
      order = all.map((c) => c.id);
      token = snapshots.create(order, at);
    }
    const byId = new Map(all.map((c) => [c.id, c]));
    const page = order
      .slice(offset, offset + limit)
      .map((id) => byId.get(id))
      .filter((c) => c !== undefined);
    const next =
      offset + limit < order.length ? encodeListCursor({ s: token, o: offset + limit, sort, q: q ?? null }) : null;
    return sendTable(request, reply, page, { companies: page, nextCursor: next }, COMPANY_COLUMNS);
  });

  app.get("/api/v1/companies/:id", async (request, reply) => {
    const workspace = await authenticate(services, request);
    const { id } = request.params as { id: string };
    const company = await services.storage.company(workspace.id, id, now());
    if (!company) throw new HttpError(404, "not_found", `no company with id "${id}"`);
    return sendTable(request, reply, company.members, company);
  });

  app.get("/api/v1/users/:id", async (request, reply) => {
    const workspace = await authenticate(services, request);
    const { id } = request.params as { id: string };
    const user = await services.storage.user(workspace.id, id);
    if (!user) throw new HttpError(404, "not_found", `no user with userId or linked anonymousId "${id}"`);
    const row = {
      ...user,
      companies: user.companies.map((c) => c.id),
      anonymousIds: user.anonymousIds.map((a) => a.anonymousId),
    };
    return sendTable(request, reply, [row], user);
  });
}
