/**
 * Entity read benchmark: company and user profiles, user and company timelines and the companies list
 * on the generated dataset (bench/generate.ts; 10M events by default), each against a naive query
 * over the raw messages table that answers the same question.
 *
 *   npm run bench:entities [-- --runs 30 --warmup 2 --baseline-runs 10 --seed 7 --events 10000000]
 *
 * The first run builds the dataset in bench/.data/ (minutes); later runs reuse it. Entities are drawn
 * with a seeded generator, a different one for each run, so every run of the benchmark times the same
 * calls. "Now" is the end of the dataset's window, so "the last 30 days" are its last 30 days.
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { type DuckDBConnection, DuckDBInstance, type DuckDBValue } from "@duckdb/node-api";
import type { CompanySort } from "../src/identity/types.js";
import { DATABASE_FILE } from "../src/storage/duckdb/engine.js";
import {
  type Align,
  databaseSize,
  formatBytes,
  formatMs,
  load1,
  machineLine,
  markdownTable,
  openEngine,
  runMain,
  type Timing,
  time,
} from "./common.js";
import { type DatasetOptions, defaultDatasetDir, generateDataset, loadDataset, Rng } from "./generate.js";

const HELP = `Entity read benchmark on a generated dataset.

Options:
  --runs N            measured calls per query (default 30)
  --warmup N          unmeasured calls before them (default 2)
  --baseline-runs N   measured calls per naive query (default 10; they are slow)
  --seed N            seed of the entity choice (default 7)
  --events N          activity events of the dataset (default 10000000; users and companies scale with it)
  --dir DIR           dataset directory (default bench/.data/<name>)
  --only LIST         comma-separated query keys to run (see the table), default all
  -h, --help          show this help
`;

/** Read targets, median ms. */
const TARGETS: Record<string, number> = {
  companyProfile: 50,
  userTimeline: 50,
  companiesLastSeen: 100,
};

// ---------------------------------------------------------------------------------------------
// Naive answers from the raw messages table: what a query would cost without the derived tables.
// They resolve users and memberships from the identify and group calls in `messages` itself.

const NAIVE_MEMBERS = `
  SELECT DISTINCT group_id, user_id FROM messages
  WHERE workspace_id = $ws AND type = 'group' AND user_id IS NOT NULL`;

/** Activity events attributed to a company: its context.groupId, or none and a member's. */
const NAIVE_ATTRIBUTED = `
  SELECT context_group_id AS company, timestamp FROM messages
  WHERE workspace_id = $ws AND type IN ('track', 'page', 'screen') AND context_group_id IS NOT NULL
  UNION ALL
  SELECT mem.group_id, m.timestamp FROM messages m JOIN (${NAIVE_MEMBERS}) mem ON mem.user_id = m.user_id
  WHERE m.workspace_id = $ws AND m.type IN ('track', 'page', 'screen') AND m.context_group_id IS NULL`;

const NAIVE_COMPANIES = `
  WITH members AS (${NAIVE_MEMBERS}),
  attributed AS (${NAIVE_ATTRIBUTED}),
  traits AS (
    SELECT group_id, traits FROM messages WHERE workspace_id = $ws AND type = 'group'
    QUALIFY row_number() OVER (PARTITION BY group_id ORDER BY timestamp DESC, received_at DESC, message_id DESC) = 1
  ),
  seen AS (
    SELECT company AS group_id, min(timestamp) AS first_ts, max(timestamp) AS last_ts,
      count(*) FILTER (WHERE timestamp >= make_timestamp($since::BIGINT)::TIMESTAMPTZ) AS events
    FROM attributed GROUP BY company
  ),
  counts AS (SELECT group_id, count(*) AS users FROM members GROUP BY group_id)
  SELECT t.group_id AS id, t.traits, s.first_ts, s.last_ts, coalesce(c.users, 0) AS users, coalesce(s.events, 0) AS events
  FROM traits t LEFT JOIN seen s USING (group_id) LEFT JOIN counts c USING (group_id)`;

const NAIVE_ORDER: Record<CompanySort, string> = {
  lastSeen: "last_ts DESC NULLS LAST, id",
  users: "users DESC, id",
  events: "events DESC, id",
};

/** A company profile from raw messages: traits, members with last seen, 90 days of activity, top events. */
async function naiveCompany(c: DuckDBConnection, ws: string, id: string, since30: number, since90: number) {
  const p = { ws, id };
  const members = `(SELECT user_id FROM messages WHERE workspace_id = $ws AND type = 'group' AND group_id = $id)`;
  const scoped = `
    SELECT * FROM messages WHERE workspace_id = $ws AND type IN ('track', 'page', 'screen')
      AND (context_group_id = $id OR (context_group_id IS NULL AND user_id IN ${members}))`;
  await c.runAndReadAll(
    `SELECT traits FROM messages WHERE workspace_id = $ws AND type = 'group' AND group_id = $id
     ORDER BY timestamp DESC LIMIT 1`,
    p,
  );
  await c.runAndReadAll(
    `SELECT min(timestamp), max(timestamp), count(*) FILTER (WHERE timestamp >= make_timestamp($since::BIGINT)::TIMESTAMPTZ)
     FROM (${scoped})`,
    { ...p, since: since30 },
  );
  await c.runAndReadAll(
    `WITH m AS (SELECT DISTINCT user_id FROM ${members} x),
     last AS (SELECT user_id, max(timestamp) AS last_ts FROM messages WHERE workspace_id = $ws AND user_id IN (SELECT user_id FROM m) GROUP BY user_id),
     who AS (
       SELECT user_id, traits->>'email' AS email, traits->>'name' AS name FROM messages
       WHERE workspace_id = $ws AND type = 'identify' AND user_id IN (SELECT user_id FROM m)
       QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY timestamp DESC) = 1
     )
     SELECT m.user_id, who.email, who.name, last.last_ts FROM m LEFT JOIN last USING (user_id) LEFT JOIN who USING (user_id)
     ORDER BY last.last_ts DESC NULLS LAST, m.user_id`,
    p,
  );
  await c.runAndReadAll(
    `SELECT timestamp::DATE AS day, count(*), count(DISTINCT coalesce(user_id, anonymous_id)) FROM (${scoped})
     WHERE timestamp >= make_timestamp($since::BIGINT)::TIMESTAMPTZ GROUP BY day ORDER BY day`,
    { ...p, since: since90 },
  );
  await c.runAndReadAll(
    `SELECT event, count(*) AS n FROM (${scoped}) WHERE type = 'track'
       AND timestamp >= make_timestamp($since::BIGINT)::TIMESTAMPTZ
     GROUP BY event ORDER BY n DESC, event LIMIT 10`,
    { ...p, since: since90 },
  );
}

/** The user's anonymousIds, as the raw messages show them. */
const NAIVE_ANONYMOUS = `(SELECT DISTINCT anonymous_id FROM messages
  WHERE workspace_id = $ws AND user_id = $id AND anonymous_id IS NOT NULL)`;

async function naiveUser(c: DuckDBConnection, ws: string, id: string) {
  const p = { ws, id };
  await c.runAndReadAll(
    `SELECT traits FROM messages WHERE workspace_id = $ws AND type = 'identify' AND user_id = $id
     ORDER BY timestamp DESC LIMIT 1`,
    p,
  );
  await c.runAndReadAll(
    `SELECT m.group_id, min(m.timestamp), any_value(t.traits->>'name') FROM messages m
     LEFT JOIN (SELECT group_id, traits FROM messages WHERE workspace_id = $ws AND type = 'group'
       QUALIFY row_number() OVER (PARTITION BY group_id ORDER BY timestamp DESC) = 1) t USING (group_id)
     WHERE m.workspace_id = $ws AND m.type = 'group' AND m.user_id = $id GROUP BY m.group_id`,
    p,
  );
  await c.runAndReadAll(
    `SELECT min(timestamp), max(timestamp), count(*) FROM messages
     WHERE workspace_id = $ws AND type IN ('track', 'page', 'screen')
       AND (user_id = $id OR (user_id IS NULL AND anonymous_id IN ${NAIVE_ANONYMOUS}))`,
    p,
  );
}

const TIMELINE_COLUMNS = `message_id, type, event, name, category, user_id, anonymous_id, coalesce(group_id, context_group_id) AS group_id,
  previous_id, email, properties, traits, context, integrations, timestamp, original_timestamp, sent_at, received_at`;

async function naiveUserTimeline(c: DuckDBConnection, ws: string, id: string) {
  return (
    await c.runAndReadAll(
      `SELECT ${TIMELINE_COLUMNS} FROM messages
       WHERE workspace_id = $ws AND (user_id = $id OR (user_id IS NULL AND anonymous_id IN ${NAIVE_ANONYMOUS}))
       ORDER BY timestamp DESC, message_id DESC LIMIT 100`,
      { ws, id },
    )
  ).getRowObjects();
}

async function naiveCompanyTimeline(c: DuckDBConnection, ws: string, id: string) {
  return (
    await c.runAndReadAll(
      `SELECT ${TIMELINE_COLUMNS} FROM messages
       WHERE workspace_id = $ws AND (group_id = $id OR context_group_id = $id OR (
         context_group_id IS NULL AND type IN ('track', 'page', 'screen') AND user_id IN (
           SELECT user_id FROM messages WHERE workspace_id = $ws AND type = 'group' AND group_id = $id)))
       ORDER BY timestamp DESC, message_id DESC LIMIT 100`,
      { ws, id },
    )
  ).getRowObjects();
}

async function naiveCompanies(c: DuckDBConnection, ws: string, sort: CompanySort, since: number) {
  return (
    await c.runAndReadAll(
      `SELECT * FROM (${NAIVE_COMPANIES})
       ORDER BY ${NAIVE_ORDER[sort]}`,
      { ws, since },
    )
  ).getRowObjects();
}

// ---------------------------------------------------------------------------------------------

interface Row {
  key: string;
  label: string;
  solstice: Timing | null;
  naive: Timing | null;
}

const HEADER = [
  "Query",
  "Solstice median (ms)",
  "Solstice p90 (ms)",
  "Naive median (ms)",
  "Naive p90 (ms)",
  "Naive / Solstice",
  "Target",
];
const ALIGN: Align[] = ["left", "right", "right", "right", "right", "right", "left"];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: "string", default: "30" },
      warmup: { type: "string", default: "2" },
      "baseline-runs": { type: "string", default: "10" },
      seed: { type: "string", default: "7" },
      events: { type: "string" },
      dir: { type: "string" },
      only: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const runs = Number(values.runs);
  const warmup = Number(values.warmup);
  const baselineRuns = Number(values["baseline-runs"]);
  const options: Partial<DatasetOptions> = {};
  if (values.events !== undefined) {
    const events = Number(values.events.replaceAll("_", ""));
    // Keep the default proportions: 200 events per user, 25 users per company.
    options.events = events;
    options.users = Math.max(100, Math.round(events / 200));
    options.companies = Math.max(4, Math.round(events / 5000));
    options.visitors = Math.round(events / 2000);
  }
  const only = values.only ? new Set(values.only.split(",")) : null;
  const dataDir = values.dir ?? defaultDatasetDir(options);

  const load = await loadDataset(dataDir, options);
  const loadBefore = load1();
  const dataset = generateDataset(options);
  const ws = dataset.options.workspaceId;
  const now = dataset.options.end.getTime() - 1;
  const today = Math.floor(now / 86_400_000);
  /** Microseconds since the epoch at the start of the last `days` days. */
  const since = (days: number) => (today - days + 1) * 86_400_000 * 1000;

  const rng = new Rng(Number(values.seed), 0xbe7c);
  const calls = warmup + runs;
  const companies = Array.from({ length: calls }, () => rng.pick(dataset.companyIds));
  const users = Array.from({ length: calls }, () => rng.pick(dataset.userIds));
  const largest = [...dataset.companySizes.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const big = largest.slice(0, 5).map(([id]) => id);
  const bigAt = (i: number) => big[i % big.length] as string;
  const at = <T>(xs: readonly T[], i: number) => xs[i % xs.length] as T;

  const dbFile = path.join(dataDir, DATABASE_FILE);
  const size = databaseSize(dbFile);
  const rowsTable: Row[] = [];
  const want = (key: string) => only === null || only.has(key);

  // Solstice's engine, as the server runs it.
  const { engine, openMs } = await openEngine(dataDir);
  const sorts: CompanySort[] = ["lastSeen", "users", "events"];
  const solstice: Record<string, (i: number) => Promise<unknown>> = {
    companyProfile: (i) => engine.company(ws, at(companies, i), now),
    companyProfileLargest: (i) => engine.company(ws, bigAt(i), now),
    userProfile: (i) => engine.user(ws, at(users, i)),
    userTimeline: (i) => engine.readEvents({ workspaceId: ws, userId: at(users, i), limit: 100 }),
    companyTimeline: (i) => engine.readEvents({ workspaceId: ws, companyId: at(companies, i), limit: 100 }),
    companyTimelineLargest: (i) => engine.readEvents({ workspaceId: ws, companyId: bigAt(i), limit: 100 }),
    ...Object.fromEntries(
      sorts.map((sort) => [
        `companies${sort[0]?.toUpperCase()}${sort.slice(1)}`,
        () => engine.companies({ workspaceId: ws, sort, now }),
      ]),
    ),
  };
  const labels: Record<string, string> = {
    companyProfile: "Company profile (random company)",
    companyProfileLargest: `Company profile (5 largest, ${largest[4]?.[1]}-${largest[0]?.[1]} members)`,
    userProfile: "User profile",
    userTimeline: "User timeline (100 newest)",
    companyTimeline: "Company timeline (100 newest, random company)",
    companyTimelineLargest: "Company timeline (100 newest, 5 largest)",
    companiesLastSeen: "Companies list by lastSeen",
    companiesUsers: "Companies list by users",
    companiesEvents: "Companies list by events",
  };
  try {
    for (const [key, call] of Object.entries(solstice)) {
      if (!want(key)) continue;
      process.stderr.write(`timing ${key}\n`);
      rowsTable.push({
        key,
        label: labels[key] ?? key,
        solstice: (await time(runs, warmup, call)).timing,
        naive: null,
      });
    }
  } finally {
    await engine.close();
  }

  // The naive queries, on the same file opened read-only after the engine has closed it.
  let tables = "";
  if (baselineRuns > 0) {
    const instance = await DuckDBInstance.create(dbFile, { access_mode: "READ_ONLY" });
    const c = await instance.connect();
    await c.run("SET TimeZone = 'UTC'");
    const naive: Record<string, (i: number) => Promise<unknown>> = {
      companyProfile: (i) => naiveCompany(c, ws, at(companies, i), since(30), since(90)),
      companyProfileLargest: (i) => naiveCompany(c, ws, bigAt(i), since(30), since(90)),
      userProfile: (i) => naiveUser(c, ws, at(users, i)),
      userTimeline: (i) => naiveUserTimeline(c, ws, at(users, i)),
      companyTimeline: (i) => naiveCompanyTimeline(c, ws, at(companies, i)),
      companyTimelineLargest: (i) => naiveCompanyTimeline(c, ws, bigAt(i)),
      companiesLastSeen: () => naiveCompanies(c, ws, "lastSeen", since(30)),
      companiesUsers: () => naiveCompanies(c, ws, "users", since(30)),
      companiesEvents: () => naiveCompanies(c, ws, "events", since(30)),
    };
    // Exact counts: duckdb_tables()' estimated_size still counts the rows that compaction deleted.
    const names = [
      "messages",
      "event_days",
      "event_weeks",
      "activity_days",
      "traits",
      "actor_summary",
      "memberships",
      "identity_links",
    ];
    const counted = await c.runAndReadAll(
      names.map((name) => `SELECT '${name}', count(*) FROM ${name}`).join(" UNION ALL "),
    );
    tables = counted
      .getRows()
      .map(([name, rows]) => `${String(name)} ${Number(rows).toLocaleString("en")}`)
      .join(", ");
    try {
      for (const row of rowsTable) {
        const call = naive[row.key];
        if (!call) continue;
        process.stderr.write(`timing naive ${row.key}\n`);
        row.naive = (await time(baselineRuns, warmup, call)).timing;
      }
    } finally {
      c.closeSync();
      instance.closeSync();
    }
  }

  const loadAfter = load1();
  const version = await duckdbVersion();
  const s = dataset.summary;
  const out: string[] = [];
  out.push(
    `${machineLine()}; DuckDB ${version}`,
    `Load average (1 min): ${loadBefore} before, ${loadAfter} after`,
    `Dataset: ${s.events.toLocaleString("en")} activity events + ${s.identifies.toLocaleString("en")} identifies + ${s.groups.toLocaleString("en")} group calls = ${s.messages.toLocaleString("en")} messages; ${dataset.options.users.toLocaleString("en")} users, ${dataset.options.companies.toLocaleString("en")} companies, ${dataset.options.days} days ending ${s.windowEnd}`,
    `Load: ${(load.loadMs / 1000).toFixed(0)} s through DuckDBEngine.write() (${Math.round((s.messages * 1000) / load.loadMs).toLocaleString("en")} messages/s)${load.cached ? ", cached from an earlier run" : ""}; engine open ${(openMs / 1000).toFixed(1)} s`,
    `DuckDB file: ${formatBytes(size)} (${DATABASE_FILE} and its WAL)${tables ? `; rows: ${tables}` : ""}`,
    `Runs: ${runs} per query after ${warmup} warm-ups (naive: ${baselineRuns}); a different entity each run, seed ${values.seed}`,
    "",
  );
  const table = rowsTable.map((row) => {
    const target = TARGETS[row.key];
    const ratio = row.naive && row.solstice ? `${(row.naive.median / row.solstice.median).toFixed(1)}×` : "–";
    const met =
      target === undefined
        ? ""
        : `< ${target} ms median: ${row.solstice && row.solstice.median < target ? "met" : "**missed**"}`;
    return [
      row.label,
      formatMs(row.solstice?.median),
      formatMs(row.solstice?.p90),
      formatMs(row.naive?.median),
      formatMs(row.naive?.p90),
      ratio,
      met,
    ];
  });
  out.push(markdownTable(HEADER, table, ALIGN));
  process.stdout.write(`${out.join("\n")}\n`);
}

async function duckdbVersion(): Promise<string> {
  const instance = await DuckDBInstance.create(":memory:");
  const c = await instance.connect();
  const version = String((await c.runAndReadAll("SELECT version()")).getRows()[0]?.[0] as DuckDBValue);
  c.closeSync();
  instance.closeSync();
  return version;
}

runMain(main);
