import type { DuckDBConnection, DuckDBValue } from "@duckdb/node-api";
import type {
  CompanyListQuery,
  CompanyProfile,
  CompanySummary,
  Provenance,
  UserProfile,
} from "../../identity/types.js";
import { formatDay, periodFirstDay, periodIndex } from "../../reports/periods.js";
import { WEEKDAY_COLUMNS } from "./weekdays.js";

/**
 * Members (group calls resolved to users; an anonymousId's group call makes its user a member), with
 * the first group call of each, of the groups that `where` (a condition on memberships m) keeps.
 * Needs a `links` CTE.
 */
function membersOf(where: string): string {
  return `
    SELECT group_id, user_id, w.joined_at, w.message_id FROM (
      SELECT m.group_id, ${MEMBER_USER},
        min_by({joined_at: m.timestamp, message_id: m.message_id}, (m.timestamp, m.received_at, m.message_id)) AS w
      ${MEMBERSHIPS_RESOLVED} ${where}
      GROUP BY ALL
    )`;
}

/**
 * The user of a membership row m (joined to its link l), as user_id. Spelled out: a bare user_id
 * would name l.user_id (NULL for a userId actor), not the alias.
 */
const MEMBER_USER = "CASE WHEN m.actor_kind = 'user' THEN m.actor_id ELSE l.user_id END AS user_id";

/** Membership rows of the workspace whose actor is a user or linked to one, with the link as l. */
const MEMBERSHIPS_RESOLVED = `
  -- One equality, not "actor_kind = 'anon' AND anonymous_id = actor_id", which DuckDB runs as a nested loop.
  FROM memberships m LEFT JOIN links l ON l.anonymous_id = CASE WHEN m.actor_kind = 'anon' THEN m.actor_id END
  WHERE m.workspace_id = $ws AND (m.actor_kind = 'user' OR l.user_id IS NOT NULL)`;

/** The first link of each anonymousId, from identity_links. */
const LINKS = `
  -- The first row per key is taken with min_by over (timestamp, received_at, message_id), the same
  -- order as a row_number() window would use: a hash aggregate, about ten times faster than the
  -- window's sort, and every report query starts with it.
  links AS (
    SELECT anonymous_id, w.user_id, w.timestamp, w.message_id FROM (
      SELECT anonymous_id,
        min_by({user_id: user_id, timestamp: timestamp, message_id: message_id}, (timestamp, received_at, message_id)) AS w
      FROM identity_links WHERE workspace_id = $ws GROUP BY anonymous_id
    )
  )`;

/**
 * Identity as the append-only tables hold it, combined per key: the first link of each anonymousId,
 * and members (group calls resolved to users; an anonymousId's group call makes its user a member).
 */
export const IDENTITY_CTES = `${LINKS},
  members AS (${membersOf("")})`;

/** The anonymousIds whose first link is to $userId. */
export const USER_ANONYMOUS_IDS_SQL = `WITH ${LINKS} SELECT anonymous_id FROM links WHERE user_id = $userId`;

/**
 * IDENTITY_CTES as reports need them: who belongs to which company, without the group call that
 * made each membership. Picking that call costs about 20 ms over 59,000 memberships.
 */
export const REPORT_IDENTITY_CTES = `${LINKS},
  members AS (SELECT DISTINCT m.group_id, ${MEMBER_USER} ${MEMBERSHIPS_RESOLVED})`;

/**
 * An entity's latest traits as one JSON object, keys in order: json_group_object() is a macro over
 * an aggregate that takes no ORDER BY, and its key order changes from one run to the next.
 */
const TRAITS_OBJECT = `('{' || string_agg(to_json(key)::VARCHAR || ':' || coalesce(value::VARCHAR, 'null'), ',' ORDER BY key) || '}')::JSON`;

/** Rows of an activity table with the user each actor resolves to (NULL for a visitor). */
function resolved(table: string, columns: string, where = ""): string {
  return `
    SELECT CASE WHEN x.actor_kind = 'user' THEN x.actor_id ELSE l.user_id END AS user_id,
      x.actor_kind, x.actor_id, ${columns}
    -- One equality, as in IDENTITY_CTES: a condition on x alone would make it a nested loop.
    FROM ${table} x LEFT JOIN links l ON l.anonymous_id = CASE WHEN x.actor_kind = 'anon' THEN x.actor_id END
    WHERE x.workspace_id = $ws ${where}`;
}

/**
 * The latest value of each trait, per entity: max_by over (timestamp, received_at, message_id), the
 * order a row_number() window would use, as a hash aggregate instead of a sort. `where` narrows the
 * traits first; it may only test entity_kind, entity_id and key, so that it keeps or drops whole
 * groups and the winners stay the same.
 */
function latestTraits(where = ""): string {
  return `
  SELECT entity_kind, entity_id, key, w.value, w.timestamp, w.message_id FROM (
    SELECT entity_kind, entity_id, key,
      max_by({value: value, timestamp: timestamp, message_id: message_id}, (timestamp, received_at, message_id)) AS w
    FROM traits WHERE workspace_id = $ws ${where} GROUP BY entity_kind, entity_id, key
  )`;
}

/**
 * Company $id's members, with the group call that made each one, and the anonymousIds whose first
 * link is to one of them: `part` tells the two apart. The same rows as IDENTITY_CTES' members for
 * this company, worked out from its own memberships rather than every company's.
 */
const COMPANY_MEMBERS_SQL = `WITH ${IDENTITY_CTES},
  company_members AS (${membersOf("AND m.group_id = $id")})
  SELECT 'member' AS part, user_id, epoch_us(joined_at) AS at, message_id, NULL AS anonymous_id FROM company_members
  UNION ALL
  SELECT 'anon', user_id, NULL, NULL, anonymous_id FROM links WHERE user_id IN (SELECT user_id FROM company_members)`;

/**
 * The actors whose activity counts for the company through its members, from the parameters that
 * memberActors() makes: each member, and each anonymousId linked to one, with the user it resolves
 * to. Joining an activity table to these actors is cheaper than resolving every actor and then
 * keeping members.
 */
const MEMBER_ACTORS = `
  member_ids AS (
    SELECT unnest(from_json($memberIds, '["VARCHAR"]')) AS user_id, unnest(from_json($memberAt, '["BIGINT"]')) AS at,
      unnest(from_json($memberMessages, '["VARCHAR"]')) AS message_id
  ),
  member_actors AS (
    SELECT unnest(from_json($actorKinds, '["VARCHAR"]')) AS actor_kind,
      unnest(from_json($actorIds, '["VARCHAR"]')) AS actor_id, unnest(from_json($actorUsers, '["VARCHAR"]')) AS user_id
  )`;

/** The parameters of MEMBER_ACTORS, from the rows of COMPANY_MEMBERS_SQL: JSON lists (an empty one has a type). */
function memberActors(found: readonly Record<string, DuckDBValue>[]): Record<string, DuckDBValue> {
  const joined = found.filter((r) => r.part === "member");
  const members = joined.map((r) => String(r.user_id));
  const anonymous = found.filter((r) => r.part === "anon");
  const list = (items: readonly unknown[]) => JSON.stringify(items);
  return {
    memberIds: list(members),
    // Microseconds since the epoch fit a double exactly until the year 2255.
    memberAt: list(joined.map((r) => Number(r.at))),
    memberMessages: list(joined.map((r) => String(r.message_id))),
    actorKinds: list([...members.map(() => "user"), ...anonymous.map(() => "anon")]),
    actorIds: list([...members, ...anonymous.map((r) => String(r.anonymous_id))]),
    actorUsers: list([...members, ...anonymous.map((r) => String(r.user_id))]),
  };
}

/**
 * Rows of an activity table attributed to company $id (its context.groupId, or none and an actor that
 * resolves to a member), with the user each actor resolves to. Two disjoint branches, so that each
 * scan gets a filter it can push down. Needs IDENTITY_CTES and MEMBER_ACTORS. Without `users`, the
 * rows of the company's own context.groupId are not resolved (user_id is NULL there): a sum or a
 * time span does not need it, and resolving means joining each row to its link.
 */
function attributedTo(table: string, columns: string, where: string, users = true): string {
  const own = users
    ? `SELECT CASE WHEN x.actor_kind = 'user' THEN x.actor_id ELSE l.user_id END AS user_id, x.actor_kind, x.actor_id, ${columns}
    FROM ${table} x LEFT JOIN links l ON l.anonymous_id = CASE WHEN x.actor_kind = 'anon' THEN x.actor_id END`
    : `SELECT NULL AS user_id, x.actor_kind, x.actor_id, ${columns} FROM ${table} x`;
  return `
    ${own}
    WHERE x.workspace_id = $ws AND x.context_group_id = $id ${where}
    UNION ALL
    SELECT a.user_id, x.actor_kind, x.actor_id, ${columns}
    FROM ${table} x JOIN member_actors a ON a.actor_kind = x.actor_kind AND a.actor_id = x.actor_id
    WHERE x.workspace_id = $ws AND x.context_group_id IS NULL ${where}`;
}

function iso(value: DuckDBValue | undefined): string | null {
  return value === null || value === undefined ? null : new Date(Number(value) / 1000).toISOString();
}

function provenance(messageId: DuckDBValue | undefined, at: DuckDBValue | undefined): Provenance {
  return { messageId: String(messageId), at: iso(at) as string };
}

function parseTraits(value: DuckDBValue | undefined): Record<string, unknown> {
  return value === null || value === undefined ? {} : (JSON.parse(String(value)) as Record<string, unknown>);
}

function nameOf(traits: Record<string, unknown>): string | null {
  return typeof traits.name === "string" ? traits.name : null;
}

function emailOf(traits: Record<string, unknown>): string | null {
  return typeof traits.email === "string" ? traits.email : null;
}

async function rows(
  connection: DuckDBConnection,
  sql: string,
  params: Record<string, DuckDBValue>,
): Promise<Record<string, DuckDBValue>[]> {
  return (await connection.runAndReadAll(sql, params)).getRowObjects();
}

/** Traits of a set of entities, latest value per key, with the message that set each. */
async function traitsOf(
  connection: DuckDBConnection,
  ws: string,
  entities: string,
  params: Record<string, DuckDBValue>,
): Promise<{ traits: Record<string, unknown>; traitsSetBy: Record<string, Provenance> }> {
  const found = await rows(
    connection,
    `SELECT key, value, epoch_us(timestamp) AS at, message_id FROM traits
     WHERE workspace_id = $ws AND ${entities}
     QUALIFY row_number() OVER (PARTITION BY key ORDER BY timestamp DESC, received_at DESC, message_id DESC) = 1
     ORDER BY key`,
    { ws, ...params },
  );
  const traits: Record<string, unknown> = {};
  const traitsSetBy: Record<string, Provenance> = {};
  // defineProperty, not assignment: a "__proto__" trait is data to return, not a prototype to set.
  const set = (target: object, key: string, value: unknown) =>
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  for (const row of found) {
    const key = String(row.key);
    set(traits, key, row.value === null ? null : JSON.parse(String(row.value)));
    set(traitsSetBy, key, provenance(row.message_id, row.at));
  }
  return { traits, traitsSetBy };
}

/** Whether any table knows `id` as a userId. */
async function isUser(connection: DuckDBConnection, ws: string, id: string): Promise<boolean> {
  const found = await rows(
    connection,
    `SELECT 1 FROM actor_summary WHERE workspace_id = $ws AND actor_kind = 'user' AND actor_id = $id
     UNION ALL SELECT 1 FROM traits WHERE workspace_id = $ws AND entity_kind = 'user' AND entity_id = $id
     UNION ALL SELECT 1 FROM identity_links WHERE workspace_id = $ws AND user_id = $id
     UNION ALL SELECT 1 FROM memberships WHERE workspace_id = $ws AND actor_kind = 'user' AND actor_id = $id
     LIMIT 1`,
    { ws, id },
  );
  if (found.length > 0) return true;
  const raw = await rows(connection, "SELECT 1 FROM messages WHERE workspace_id = $ws AND user_id = $id LIMIT 1", {
    ws,
    id,
  });
  return raw.length > 0;
}

/** A user by userId, or by an anonymousId linked to one; null when neither. */
export async function userProfile(connection: DuckDBConnection, ws: string, id: string): Promise<UserProfile | null> {
  let userId = id;
  if (!(await isUser(connection, ws, id))) {
    const owner = await rows(connection, `WITH ${IDENTITY_CTES} SELECT user_id FROM links WHERE anonymous_id = $id`, {
      ws,
      id,
    });
    if (owner.length === 0) return null;
    userId = String(owner[0]?.user_id);
  }
  const anonymous = await rows(
    connection,
    `WITH ${IDENTITY_CTES} SELECT anonymous_id, epoch_us(timestamp) AS at, message_id FROM links
     WHERE user_id = $userId ORDER BY timestamp, anonymous_id`,
    { ws, userId },
  );
  const linked = `(${USER_ANONYMOUS_IDS_SQL})`;
  const actors = `((entity_kind = 'user' AND entity_id = $userId) OR (entity_kind = 'anon' AND entity_id IN ${linked}))`;
  const { traits, traitsSetBy } = await traitsOf(connection, ws, actors, { userId });
  const companies = await rows(
    connection,
    `WITH ${IDENTITY_CTES},
     names AS (
       SELECT entity_id AS group_id, value FROM (${latestTraits(
         "AND entity_kind = 'company' AND key = 'name' AND entity_id IN (SELECT group_id FROM members WHERE user_id = $userId)",
       )})
     )
     SELECT m.group_id, n.value AS name, epoch_us(m.joined_at) AS at, m.message_id
     FROM members m LEFT JOIN names n USING (group_id) WHERE m.user_id = $userId ORDER BY m.joined_at, m.group_id`,
    { ws, userId },
  );
  const seen = await rows(
    connection,
    `SELECT epoch_us(min(first_ts)) AS first, epoch_us(max(last_ts)) AS last, coalesce(sum(events), 0) AS events
     FROM actor_summary WHERE workspace_id = $ws
       AND ((actor_kind = 'user' AND actor_id = $userId) OR (actor_kind = 'anon' AND actor_id IN ${linked}))`,
    { ws, userId },
  );
  return {
    id: userId,
    email: emailOf(traits),
    name: nameOf(traits),
    traits,
    traitsSetBy,
    companies: companies.map((row) => ({
      id: String(row.group_id),
      name: row.name === null || row.name === undefined ? null : (JSON.parse(String(row.name)) as string),
      joinedBy: provenance(row.message_id, row.at),
    })),
    anonymousIds: anonymous.map((row) => ({
      anonymousId: String(row.anonymous_id),
      linkedBy: provenance(row.message_id, row.at),
    })),
    firstSeen: iso(seen[0]?.first),
    lastSeen: iso(seen[0]?.last),
    events: Number(seen[0]?.events ?? 0),
  };
}

/** The SQL of the companies list: one row per company with its figures. */
function companiesSql(filter: string): string {
  return `WITH ${IDENTITY_CTES},
    summary AS (${resolved("actor_summary", "x.context_group_id, x.events, x.first_ts, x.last_ts")}),
    recent AS (${resolved("activity_days", "x.context_group_id, x.events", "AND x.day >= DATE '1970-01-01' + $since")}),
    seen AS (
      SELECT group_id, min(first_ts) AS first_ts, max(last_ts) AS last_ts FROM (
        SELECT context_group_id AS group_id, first_ts, last_ts FROM summary WHERE context_group_id IS NOT NULL
        UNION ALL
        SELECT m.group_id, s.first_ts, s.last_ts FROM summary s JOIN members m ON m.user_id = s.user_id
        WHERE s.context_group_id IS NULL
      ) GROUP BY group_id
    ),
    recent_events AS (
      SELECT group_id, sum(events) AS events FROM (
        SELECT context_group_id AS group_id, events FROM recent WHERE context_group_id IS NOT NULL
        UNION ALL
        SELECT m.group_id, r.events FROM recent r JOIN members m ON m.user_id = r.user_id WHERE r.context_group_id IS NULL
      ) GROUP BY group_id
    ),
    member_counts AS (SELECT group_id, count(*) AS users FROM members GROUP BY group_id),
    company_traits AS (
      SELECT entity_id AS group_id, ${TRAITS_OBJECT} AS traits
      FROM (${latestTraits("AND entity_kind = 'company'")}) GROUP BY entity_id
    ),
    ids AS (
      SELECT group_id FROM memberships WHERE workspace_id = $ws UNION SELECT group_id FROM seen
      UNION SELECT group_id FROM company_traits
    )
    SELECT ids.group_id AS id, t.traits, epoch_us(s.first_ts) AS first, epoch_us(s.last_ts) AS last,
      coalesce(mc.users, 0) AS users, coalesce(r.events, 0) AS events
    FROM ids
      LEFT JOIN company_traits t USING (group_id)
      LEFT JOIN seen s USING (group_id)
      LEFT JOIN member_counts mc USING (group_id)
      LEFT JOIN recent_events r USING (group_id)
    ${filter}`;
}

/**
 * When company $id was first and last seen, from its own rows and its members' (see attributedTo), and
 * whether it has rows of its own there (`own`) or in memberships (`joined`): with traits, what makes
 * a company known to the list.
 */
const COMPANY_SEEN_SQL = `WITH ${MEMBER_ACTORS}
    SELECT epoch_us(min(first_ts)) AS first, epoch_us(max(last_ts)) AS last, count(*) FILTER (WHERE user_id IS NULL) AS own,
      EXISTS (SELECT 1 FROM memberships WHERE workspace_id = $ws AND group_id = $id) AS joined
    FROM (${attributedTo("actor_summary", "x.first_ts, x.last_ts", "", false)})`;

function toSummary(row: Record<string, DuckDBValue>): CompanySummary {
  const traits = parseTraits(row.traits);
  return {
    id: String(row.id),
    name: nameOf(traits),
    traits,
    firstSeen: iso(row.first),
    lastSeen: iso(row.last),
    users: Number(row.users),
    events: Number(row.events),
  };
}

const ORDER: Record<CompanyListQuery["sort"], string> = {
  lastSeen: "last DESC NULLS LAST, id",
  users: "users DESC, id",
  events: "events DESC, id",
};

/** Every company of the workspace matching `q`, in the requested order. */
export async function listCompanies(
  connection: DuckDBConnection,
  query: CompanyListQuery,
  today: number,
): Promise<CompanySummary[]> {
  const params: Record<string, DuckDBValue> = { ws: query.workspaceId, since: today - 29 };
  let filter = "";
  if (query.q !== undefined) {
    filter = `WHERE contains(lower(ids.group_id), lower($q)) OR contains(lower(coalesce(t.traits->>'name', '')), lower($q))`;
    params.q = query.q;
  }
  const found = await rows(connection, `${companiesSql(filter)} ORDER BY ${ORDER[query.sort]}`, params);
  return found.map(toSummary);
}

/** One company with its members, recent activity and top events; null when unknown. */
export async function companyProfile(
  connection: DuckDBConnection,
  ws: string,
  id: string,
  today: number,
): Promise<CompanyProfile | null> {
  // The members first: every later query takes them (and their anonymousIds) as parameters.
  const actors = memberActors(await rows(connection, COMPANY_MEMBERS_SQL, { ws, id }));
  const [seen] = await rows(connection, COMPANY_SEEN_SQL, { ws, id, ...actors });
  const { traits, traitsSetBy } = await traitsOf(connection, ws, "entity_kind = 'company' AND entity_id = $id", { id });
  // Known to the list: by a group call, by activity with its context.groupId, or by its traits.
  if (!seen?.joined && Number(seen?.own ?? 0) === 0 && Object.keys(traits).length === 0) return null;
  const members = await rows(
    connection,
    `WITH ${MEMBER_ACTORS},
     -- Each member's latest email and name among the traits of the member and its anonymousIds, by
     -- the order the user profile takes them in.
     user_traits AS (
       SELECT a.user_id,
         max_by(t.value ->> '$', (t.timestamp, t.received_at, t.message_id)) FILTER (WHERE t.key = 'email') AS email,
         max_by(t.value ->> '$', (t.timestamp, t.received_at, t.message_id)) FILTER (WHERE t.key = 'name') AS name
       FROM traits t JOIN member_actors a ON a.actor_kind = t.entity_kind AND a.actor_id = t.entity_id
       WHERE t.workspace_id = $ws AND t.entity_kind IN ('user', 'anon') AND t.key IN ('email', 'name')
       GROUP BY a.user_id
     ),
     last_seen AS (
       SELECT a.user_id, max(x.last_ts) AS last_ts
       FROM actor_summary x JOIN member_actors a ON a.actor_kind = x.actor_kind AND a.actor_id = x.actor_id
       WHERE x.workspace_id = $ws GROUP BY a.user_id
     )
     SELECT m.user_id, m.at, m.message_id, epoch_us(s.last_ts) AS last, t.email, t.name
     FROM member_ids m LEFT JOIN last_seen s USING (user_id) LEFT JOIN user_traits t USING (user_id)
     ORDER BY s.last_ts DESC NULLS LAST, m.user_id`,
    { ws, ...actors },
  );
  // The last 90 days.
  const since = today - 89;
  const recent = "AND x.day >= DATE '1970-01-01' + $since";
  const activity = await rows(
    connection,
    `WITH ${IDENTITY_CTES}, ${MEMBER_ACTORS}
     SELECT strftime(day, '%Y-%m-%d') AS day, sum(events) AS events, count(DISTINCT who) AS users FROM (
       SELECT day, events, coalesce(user_id, 'anon:' || actor_id) AS who
       FROM (${attributedTo("activity_days", "x.day, x.events", recent)})
     ) GROUP BY day ORDER BY day`,
    { ws, id, since, ...actors },
  );
  // The same 90 days from event_weeks: the weeks from the first day's on, and of the first week the
  // days from the first day on.
  const firstWeek = periodIndex(since, "week");
  const weekly = (columns: readonly string[]) => columns.map((column) => `x.${column}`).join(" + ");
  const events = `CASE WHEN x.week = $firstWeek THEN ${weekly(WEEKDAY_COLUMNS.slice(since - periodFirstDay(firstWeek, "week")))} ELSE ${weekly(WEEKDAY_COLUMNS)} END`;
  const topEvents = await rows(
    connection,
    `WITH ${MEMBER_ACTORS}
     SELECT event, sum(events) AS count FROM (${attributedTo("event_weeks", `x.event, ${events} AS events`, "AND x.week >= $firstWeek", false)})
     GROUP BY event HAVING count > 0 ORDER BY count DESC, event LIMIT 10`,
    { ws, id, firstWeek, ...actors },
  );
  // The list's "events" (the last 30 days) from the same rows as the daily activity.
  const recentFrom = formatDay(today - 29);
  return {
    id,
    name: nameOf(traits),
    traits,
    firstSeen: iso(seen?.first),
    lastSeen: iso(seen?.last),
    users: members.length,
    events: activity.reduce((sum, row) => (String(row.day) >= recentFrom ? sum + Number(row.events) : sum), 0),
    traitsSetBy,
    members: members.map((row) => ({
      userId: String(row.user_id),
      email: row.email === null || row.email === undefined ? null : String(row.email),
      name: row.name === null || row.name === undefined ? null : String(row.name),
      lastSeen: iso(row.last),
      joinedBy: provenance(row.message_id, row.at),
    })),
    activity: activity.map((row) => ({ day: String(row.day), events: Number(row.events), users: Number(row.users) })),
    topEvents: topEvents.map((row) => ({ event: String(row.event), count: Number(row.count) })),
  };
}
