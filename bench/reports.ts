/**
 * Report benchmark: every report at user and company level on the generated dataset
 * (bench/generate.ts; 10M activity events by default), run through the real report code path
 * (REPORTS[name].plan, then .run on the engine's ReportEngine), each against a naive SQL query over
 * the raw `messages` table alone that computes the same figures from the spec's definitions.
 *
 *   npm run bench:reports
 *
 * Environment:
 *   BENCH_RUNS           measured runs per report (default 7)
 *   BENCH_WARMUPS        unmeasured runs per report before them (default 2)
 *   BENCH_NAIVE_RUNS     measured runs per naive query (default 3), after 1 warm-up; they are slow.
 *                        0 skips the naive queries altogether (no ratio, no check)
 *   BENCH_NAIVE_TIMEOUT  seconds after which a naive query is interrupted (default 600)
 *   BENCH_ONLY           comma-separated report names (active,new,retention,…) to run, default all
 *   BENCH_DIR            dataset directory (default bench/.data/default)
 *
 * The first run builds the dataset (minutes); later runs reuse it. The naive queries run first, on
 * the database opened read-only; the engine then opens it as the server does. The check column
 * compares the report's headline figures with the naive ones (see HEADLINES).
 */
import path from "node:path";
import { type DuckDBConnection, DuckDBInstance, type DuckDBValue } from "@duckdb/node-api";
import { REPORTS } from "../src/reports/definitions.js";
import { formatDay, parseDay } from "../src/reports/periods.js";
import type { ReportContext } from "../src/reports/report.js";
import { DATABASE_FILE } from "../src/storage/duckdb/engine.js";
import {
  type Align,
  databaseSize,
  formatBytes,
  formatMs,
  load1,
  loadAverages,
  machineLine,
  markdownTable,
  openEngine,
  runMain,
  type Timing,
  time,
} from "./common.js";
import { DEFAULT_DATASET, defaultDatasetDir, loadDataset } from "./generate.js";
import { environmentOnly } from "./usage.js";

const TARGET_MEDIAN_MS = 100;
const TARGET_RATIO = 5;
const NAIVE_WARMUPS = 1;

function envInt(name: string, fallback: number): number {
  const value = process.env[name];
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${value}`);
  return n;
}

type Level = "user" | "company";
type Row = Record<string, DuckDBValue>;

// ---------------------------------------------------------------------------------------------
// The cases: each report with its parameters, and how to read its headline figures

interface Choice {
  from: string;
  to: string;
  /** Three common track events, most frequent first. */
  funnel: [string, string, string];
  /** A track event of middling frequency. */
  feature: string;
  /** Two track events for activation milestones. */
  milestones: [string, string];
}

interface Case {
  report: string;
  /** What the row measures, beyond the report's name. */
  variant: string;
  raw: (level: Level) => Record<string, unknown>;
  /** The figures compared with the naive query, from the report's result. */
  headline: (result: unknown) => unknown;
  /** The naive query, and the same figures from its rows. */
  naive: (level: Level) => { sql: string; headline: (rows: Row[]) => unknown };
}

/** What the check column compares, per report. */
const HEADLINES: Record<string, string> = {
  active: "every period's count (and wau, mau per day)",
  new: "every period's count",
  retention: "every cohort's size and counts (nulls included)",
  funnel: "every step's count and median seconds from the previous step",
  feature: "active, used, adopted, returned",
  activation: "every cohort's size, activated, pending, completed per milestone, median seconds",
  lifecycle: "every period's new, returning, resurrecting, dormant",
  power: "the histogram and the 50 top entities' active days",
  slipping: "the 100 entities listed, with lastSeen and activeDaysInPrior30",
};

const n = (v: DuckDBValue | undefined): number => Number(v ?? 0);
const nullable = (v: DuckDBValue | undefined): number | null => (v === null || v === undefined ? null : Number(v));
/** Medians are computed in floating point: compare them to the millisecond. */
const seconds = (v: number | null): number | null => (v === null ? null : Math.round(v * 1000) / 1000);

/** A SQL string literal. */
const lit = (s: string) => `'${s.replaceAll("'", "''")}'`;
const date = (day: string) => `DATE ${lit(day)}`;

/**
 * The common part of every naive query: identity and memberships resolved from the raw identify,
 * alias and group calls, and the activity events with the entities they count for.
 */
function naiveEvents(level: Level): string {
  const resolved = `
  links AS (
    -- The first link of each anonymousId wins: any message with both ids, or an alias's previousId.
    SELECT anonymous_id, user_id FROM (
      SELECT anonymous_id, user_id, timestamp, received_at, message_id FROM messages
      WHERE workspace_id = $ws AND user_id IS NOT NULL AND anonymous_id IS NOT NULL
      UNION ALL
      SELECT previous_id, user_id, timestamp, received_at, message_id FROM messages
      WHERE workspace_id = $ws AND type = 'alias' AND user_id IS NOT NULL AND previous_id IS NOT NULL
    )
    QUALIFY row_number() OVER (PARTITION BY anonymous_id ORDER BY timestamp, received_at, message_id) = 1
  ),
  members AS (
    SELECT DISTINCT g.group_id, coalesce(g.user_id, l.user_id) AS user_id
    FROM messages g LEFT JOIN links l ON l.anonymous_id = g.anonymous_id
    WHERE g.workspace_id = $ws AND g.type = 'group' AND g.group_id IS NOT NULL
      AND coalesce(g.user_id, l.user_id) IS NOT NULL
  ),
  -- A plain equality join, with coalesce picking a message's own userId first: the spelled-out
  -- "m.user_id IS NULL AND l.anonymous_id = m.anonymous_id" is planned by DuckDB as a nested loop,
  -- which would make the baseline minutes slower for no reason of its own.
  activity AS (
    SELECT coalesce(m.user_id, l.user_id) AS user_id, m.context_group_id, m.message_id, m.type, m.event,
      m.timestamp AS ts, (m.timestamp AT TIME ZONE 'UTC')::DATE AS day
    FROM messages m LEFT JOIN links l ON l.anonymous_id = m.anonymous_id
    WHERE m.workspace_id = $ws AND m.type IN ('track', 'page', 'screen')
  ),`;
  if (level === "user") {
    return `${resolved}
  events AS (SELECT user_id AS entity, message_id, type, event, ts, day FROM activity WHERE user_id IS NOT NULL)`;
  }
  return `${resolved}
  events AS (
    SELECT context_group_id AS entity, message_id, type, event, ts, day FROM activity WHERE context_group_id IS NOT NULL
    UNION ALL
    SELECT mb.group_id, a.message_id, a.type, a.event, a.ts, a.day
    FROM activity a JOIN members mb ON mb.user_id = a.user_id WHERE a.context_group_id IS NULL
  )`;
}

const week = (day: string) => `date_trunc('week', ${day})::DATE`;
const label = (day: string) => `strftime(${day}, '%Y-%m-%d')`;

function cases(c: Choice): Case[] {
  const range = { from: c.from, to: c.to };
  const from = date(c.from);
  const to = date(c.to);
  const endOfTo = `(${to} + 1)::TIMESTAMP AT TIME ZONE 'UTC'`;
  const windowDays = 14;
  const window = `to_seconds(${windowDays * 86_400})`;
  const series = (result: unknown) => (result as { series: Record<string, unknown>[] }).series;
  const nonZero = (rows: [string, number][]) => rows.filter(([, count]) => count !== 0);

  const activeDay: Case = {
    report: "active",
    variant: "interval=day, wau/mau",
    raw: (level) => ({ level, interval: "day", ...range }),
    headline: (result) => series(result).map((r) => [r.period, r.count, r.wau, r.mau]),
    naive: (level) => ({
      sql: `WITH ${naiveEvents(level)},
        entity_days AS (SELECT DISTINCT entity, day FROM events WHERE day BETWEEN ${from} - 29 AND ${to}),
        days AS (SELECT unnest(generate_series(${from}, ${to}, INTERVAL 1 DAY))::DATE AS d)
        SELECT ${label("d")} AS period,
          count(DISTINCT entity) FILTER (WHERE day = d) AS count,
          count(DISTINCT entity) FILTER (WHERE day > d - 7) AS wau,
          count(DISTINCT entity) AS mau
        FROM days LEFT JOIN entity_days ON day BETWEEN d - 29 AND d
        GROUP BY d ORDER BY d`,
      headline: (rows) => rows.map((r) => [String(r.period), n(r.count), n(r.wau), n(r.mau)]),
    }),
  };

  const perWeek = (report: string, naiveSql: (level: Level) => string): Case => ({
    report,
    variant: "interval=week",
    raw: (level) => ({ level, interval: "week", ...range }),
    headline: (result) => nonZero(series(result).map((r) => [r.period as string, r.count as number])),
    naive: (level) => ({
      sql: naiveSql(level),
      headline: (rows) => nonZero(rows.map((r) => [String(r.period), n(r.count)])),
    }),
  });
  const activeWeek = perWeek(
    "active",
    (level) => `WITH ${naiveEvents(level)}
      SELECT ${label(week("day"))} AS period, count(DISTINCT entity) AS count
      FROM events WHERE day BETWEEN ${from} AND ${to} GROUP BY period ORDER BY period`,
  );
  const newWeek = perWeek(
    "new",
    (level) => `WITH ${naiveEvents(level)},
      firsts AS (SELECT entity, min(day) AS first_day FROM events GROUP BY entity)
      SELECT ${label(week("first_day"))} AS period, count(*) AS count
      FROM firsts WHERE first_day BETWEEN ${from} AND ${to} GROUP BY period ORDER BY period`,
  );

  const periods = 8;
  const retention = (mode: "bounded" | "unbounded"): Case => ({
    report: "retention",
    variant: `period=week, ${periods} periods, ${mode}`,
    raw: (level) => ({ level, period: "week", periods: String(periods), mode, ...range }),
    headline: (result) =>
      (result as { cohorts: { period: string; size: number; counts: (number | null)[] }[] }).cohorts.map((r) => [
        r.period,
        r.size,
        r.counts,
      ]),
    naive: (level) => ({
      sql: `WITH ${naiveEvents(level)},
        firsts AS (SELECT entity, min(day) AS first_day FROM events GROUP BY entity),
        cohort AS (
          SELECT entity, ${week("first_day")} AS cw FROM firsts
          WHERE first_day <= ${to} AND ${week("first_day")} >= ${from}
        ),
        returns AS (
          SELECT DISTINCT c.entity, c.cw, (${week("e.day")} - c.cw) // 7 AS k
          FROM cohort c JOIN events e ON e.entity = c.entity WHERE e.day BETWEEN ${from} AND ${to}
        ),
        offsets AS (SELECT unnest(range(${periods})) AS k)
        SELECT ${label("c.cw")} AS period, o.k,
          -- An offset whose week ends after the range is not over yet.
          CASE WHEN o.k > 0 AND c.cw + (7 * o.k + 6)::INTEGER > ${to} THEN NULL ELSE count(DISTINCT r.entity) END AS n
        FROM cohort c CROSS JOIN offsets o
          LEFT JOIN returns r ON r.entity = c.entity AND ${mode === "bounded" ? "r.k = o.k" : "r.k >= o.k"}
        GROUP BY c.cw, o.k ORDER BY c.cw, o.k`,
      headline: (rows) => {
        const cohorts = new Map<string, (number | null)[]>();
        for (const r of rows) {
          const list = cohorts.get(String(r.period)) ?? [];
          list[n(r.k)] = nullable(r.n);
          cohorts.set(String(r.period), list);
        }
        return [...cohorts].map(([period, counts]) => [period, counts[0], counts]);
      },
    }),
  });

  const [e1, e2, e3] = c.funnel;
  const funnel: Case = {
    report: "funnel",
    variant: `3 steps, windowDays=${windowDays}`,
    raw: (level) => ({ level, steps: [...c.funnel], windowDays, ...range }),
    headline: (result) =>
      (result as { steps: { count: number; medianSecondsFromPrevious: number | null }[] }).steps.map((s) => [
        s.count,
        seconds(s.medianSecondsFromPrevious),
      ]),
    naive: (level) => ({
      // For each step-1 occurrence, step 2 is the first step-2 event at or after it, and step 3 the
      // first step-3 event at or after that, both within the window: "next" values per event row.
      sql: `WITH ${naiveEvents(level)},
        steps AS (
          SELECT entity, event, ts, day,
            min(CASE WHEN event = ${lit(e2)} THEN ts END) OVER later AS next2,
            min(CASE WHEN event = ${lit(e3)} THEN ts END) OVER later AS next3
          FROM events WHERE type = 'track' AND event IN (${lit(e1)}, ${lit(e2)}, ${lit(e3)})
          WINDOW later AS (PARTITION BY entity ORDER BY ts RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)
        ),
        starts AS (
          SELECT entity, ts AS t1, CASE WHEN next2 <= ts + ${window} THEN next2 END AS t2
          FROM steps WHERE event = ${lit(e1)} AND day BETWEEN ${from} AND ${to}
        ),
        walks AS (
          SELECT s.entity, s.t1, s.t2, CASE WHEN min(x.next3) <= s.t1 + ${window} THEN min(x.next3) END AS t3
          FROM starts s LEFT JOIN steps x ON x.entity = s.entity AND x.event = ${lit(e2)} AND x.ts = s.t2
          GROUP BY s.entity, s.t1, s.t2
        ),
        best AS (
          SELECT *, 1 + (t2 IS NOT NULL)::INTEGER + (t3 IS NOT NULL)::INTEGER AS depth FROM walks
          QUALIFY row_number() OVER (PARTITION BY entity ORDER BY depth DESC, t1) = 1
        )
        SELECT count(*) AS c1, count(*) FILTER (WHERE depth >= 2) AS c2, count(*) FILTER (WHERE depth >= 3) AS c3,
          median(epoch_ms(t2) - epoch_ms(t1)) FILTER (WHERE depth >= 2) / 1000.0 AS m2,
          median(epoch_ms(t3) - epoch_ms(t2)) FILTER (WHERE depth >= 3) / 1000.0 AS m3
        FROM best`,
      headline: ([r = {}]) => [
        [n(r.c1), null],
        [n(r.c2), seconds(nullable(r.m2))],
        [n(r.c3), seconds(nullable(r.m3))],
      ],
    }),
  };

  const threshold = 3;
  const feature: Case = {
    report: "feature",
    variant: `"${c.feature}", adoptionThreshold=${threshold}`,
    raw: (level) => ({ level, event: c.feature, adoptionThreshold: String(threshold), ...range }),
    headline: (result) => {
      const f = result as { active: number; used: number; adopted: number; returned: number };
      return [f.active, f.used, f.adopted, f.returned];
    },
    naive: (level) => ({
      sql: `WITH ${naiveEvents(level)},
        uses AS (
          SELECT entity, count(*) AS uses, count(DISTINCT ${week("day")}) AS weeks FROM events
          WHERE type = 'track' AND event = ${lit(c.feature)} AND day BETWEEN ${from} AND ${to} GROUP BY entity
        )
        SELECT (SELECT count(DISTINCT entity) FROM events WHERE day BETWEEN ${from} AND ${to}) AS active,
          count(*) AS used, count(*) FILTER (WHERE uses >= ${threshold}) AS adopted,
          count(*) FILTER (WHERE weeks >= 2) AS returned
        FROM uses`,
      headline: ([r = {}]) => [n(r.active), n(r.used), n(r.adopted), n(r.returned)],
    }),
  };

  const [m1, m2] = c.milestones;
  const activation: Case = {
    report: "activation",
    variant: `"${m1}" ×1 + "${m2}" ×2, windowDays=${windowDays}, period=week`,
    raw: (level) => ({
      level,
      milestones: [
        { event: m1, minCount: 1 },
        { event: m2, minCount: 2 },
      ],
      windowDays,
      period: "week",
      ...range,
    }),
    headline: (result) =>
      (
        result as {
          cohorts: {
            period: string;
            size: number;
            activated: number;
            pending: number;
            milestones: { completed: number }[];
            medianSecondsToActivate: number | null;
          }[];
        }
      ).cohorts.map((r) => [
        r.period,
        r.size,
        r.activated,
        r.pending,
        r.milestones.map((m) => m.completed),
        seconds(r.medianSecondsToActivate),
      ]),
    naive: (level) => ({
      sql: `WITH ${naiveEvents(level)},
        firsts AS (SELECT entity, min(ts) AS first_ts, min(day) AS first_day FROM events GROUP BY entity),
        cohort AS (
          SELECT entity, first_ts, ${week("first_day")} AS cw FROM firsts
          WHERE first_day <= ${to} AND ${week("first_day")} >= ${from}
        ),
        occurrences AS (
          SELECT c.entity, e.event, e.ts,
            row_number() OVER (PARTITION BY c.entity, e.event ORDER BY e.ts, e.message_id) AS nth
          FROM cohort c JOIN events e ON e.entity = c.entity
          WHERE e.type = 'track' AND e.event IN (${lit(m1)}, ${lit(m2)})
            AND e.ts BETWEEN c.first_ts AND c.first_ts + ${window} AND e.ts < ${endOfTo}
        ),
        per_entity AS (
          SELECT c.entity, c.cw, c.first_ts,
            max(o.ts) FILTER (WHERE o.event = ${lit(m1)} AND o.nth = 1) AS done1,
            max(o.ts) FILTER (WHERE o.event = ${lit(m2)} AND o.nth = 2) AS done2
          FROM cohort c LEFT JOIN occurrences o ON o.entity = c.entity GROUP BY c.entity, c.cw, c.first_ts
        )
        SELECT ${label("cw")} AS period, count(*) AS size,
          count(*) FILTER (WHERE done1 IS NOT NULL AND done2 IS NOT NULL) AS activated,
          count(*) FILTER (WHERE (done1 IS NULL OR done2 IS NULL) AND first_ts + ${window} > ${endOfTo}) AS pending,
          count(done1) AS completed1, count(done2) AS completed2,
          median(epoch_ms(greatest(done1, done2)) - epoch_ms(first_ts))
            FILTER (WHERE done1 IS NOT NULL AND done2 IS NOT NULL) / 1000.0 AS median
        FROM per_entity GROUP BY cw ORDER BY cw`,
      headline: (rows) =>
        rows.map((r) => [
          String(r.period),
          n(r.size),
          n(r.activated),
          n(r.pending),
          [n(r.completed1), n(r.completed2)],
          seconds(nullable(r.median)),
        ]),
    }),
  };

  const fromDay = parseDay(c.from) as number;
  const toDay = parseDay(c.to) as number;
  const firstStart = formatDay(fromDay - ((((fromDay + 3) % 7) + 7) % 7));
  const lastStart = formatDay(toDay - ((((toDay + 3) % 7) + 7) % 7));
  const lifecycle: Case = {
    report: "lifecycle",
    variant: "period=week",
    raw: (level) => ({ level, period: "week", ...range }),
    headline: (result) => series(result).map((r) => [r.period, r.new, r.returning, r.resurrecting, r.dormant]),
    naive: (level) => ({
      sql: `WITH ${naiveEvents(level)},
        firsts AS (SELECT entity, min(day) AS first_day FROM events GROUP BY entity),
        -- Active weeks: the range, and the whole week before its first week; not the days of the
        -- first week before the range.
        act AS (
          SELECT DISTINCT entity, ${week("day")} AS p FROM events
          WHERE day BETWEEN ${date(firstStart)} - 7 AND ${to} AND NOT (day >= ${date(firstStart)} AND day < ${from})
        ),
        weeks AS (SELECT unnest(generate_series(${date(firstStart)}, ${date(lastStart)}, INTERVAL 7 DAY))::DATE AS p),
        now_active AS (
          SELECT a.p, count(*) FILTER (WHERE b.entity IS NOT NULL) AS back,
            count(*) FILTER (WHERE b.entity IS NULL AND f.first_day < a.p) AS resurrected
          FROM act a JOIN firsts f ON f.entity = a.entity LEFT JOIN act b ON b.entity = a.entity AND b.p = a.p - 7
          GROUP BY a.p
        ),
        gone AS (
          SELECT b.p + 7 AS p, count(*) AS dormant
          FROM act b LEFT JOIN act a ON a.entity = b.entity AND a.p = b.p + 7
          WHERE a.entity IS NULL GROUP BY b.p
        ),
        news AS (
          SELECT ${week("first_day")} AS p, count(*) AS new FROM firsts
          WHERE first_day BETWEEN ${from} AND ${to} GROUP BY p
        )
        SELECT ${label("weeks.p")} AS period, coalesce(new, 0) AS new, coalesce(back, 0) AS back,
          coalesce(resurrected, 0) AS resurrected, -coalesce(dormant, 0) AS dormant
        FROM weeks LEFT JOIN news USING (p) LEFT JOIN now_active USING (p) LEFT JOIN gone USING (p)
        ORDER BY weeks.p`,
      headline: (rows) => rows.map((r) => [String(r.period), n(r.new), n(r.back), n(r.resurrected), n(r.dormant)]),
    }),
  };

  const days = 30;
  const power: Case = {
    report: "power",
    variant: `days=${days}, date=${c.to}`,
    raw: (level) => ({ level, days: String(days), date: c.to }),
    headline: (result) => {
      const p = result as { histogram: { activeDays: number; entities: number }[]; top: { activeDays: number }[] };
      return [
        p.histogram.filter((h) => h.entities > 0).map((h) => [h.activeDays, h.entities]),
        p.top.map((t) => t.activeDays),
      ];
    },
    naive: (level) => ({
      sql: `WITH ${naiveEvents(level)},
        per_entity AS (
          SELECT entity, count(DISTINCT day) AS active_days FROM events
          WHERE day BETWEEN ${to} - ${days - 1} AND ${to} GROUP BY entity
        )
        SELECT active_days, count(*) AS entities,
          (SELECT list(active_days ORDER BY active_days DESC) FROM (SELECT active_days FROM per_entity ORDER BY active_days DESC LIMIT 50)) AS top
        FROM per_entity GROUP BY active_days ORDER BY active_days`,
      headline: (rows) => [
        rows.map((r) => [n(r.active_days), n(r.entities)]),
        ((rows[0]?.top as { items?: DuckDBValue[] } | undefined)?.items ?? []).map(n),
      ],
    }),
  };

  const inactiveDays = 14;
  const slipping: Case = {
    report: "slipping",
    variant: `inactiveDays=${inactiveDays}, date=${c.to}`,
    raw: (level) => ({ level, inactiveDays: String(inactiveDays), date: c.to }),
    headline: (result) =>
      (result as { entities: { id: string; lastSeen: string; activeDaysInPrior30: number }[] }).entities.map((e) => [
        e.id,
        e.lastSeen,
        e.activeDaysInPrior30,
      ]),
    naive: (level) => ({
      sql: `WITH ${naiveEvents(level)},
        last_seen AS (SELECT entity, max(day) AS last_day, max(ts) AS last_ts FROM events WHERE day <= ${to} GROUP BY entity),
        prior AS (
          SELECT entity, count(DISTINCT day) AS active_days FROM events
          WHERE day >= ${to} - ${inactiveDays + 30} AND day < ${to} - ${inactiveDays} GROUP BY entity
        )
        SELECT l.entity, epoch_ms(l.last_ts) AS last_ms, p.active_days
        FROM last_seen l JOIN prior p ON p.entity = l.entity
        WHERE l.last_day >= ${to} - ${inactiveDays + 30} AND l.last_day < ${to} - ${inactiveDays}
        ORDER BY p.active_days DESC, l.last_ts DESC, l.entity LIMIT 100`,
      headline: (rows) => rows.map((r) => [String(r.entity), new Date(n(r.last_ms)).toISOString(), n(r.active_days)]),
    }),
  };

  return [
    activeDay,
    activeWeek,
    newWeek,
    retention("bounded"),
    retention("unbounded"),
    funnel,
    feature,
    activation,
    lifecycle,
    power,
    slipping,
  ];
}

// ---------------------------------------------------------------------------------------------
// Output

/** The first place where two JSON-able values differ, for the mismatch report. */
function firstDifference(a: unknown, b: unknown, at = ""): string | null {
  if (JSON.stringify(a) === JSON.stringify(b)) return null;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return `${at || "value"}: length ${a.length} (ours) vs ${b.length} (naive)`;
    for (let i = 0; i < a.length; i++) {
      const d = firstDifference(a[i], b[i], `${at}[${i}]`);
      if (d !== null) return d;
    }
  }
  return `${at || "value"}: ${JSON.stringify(a)} (ours) vs ${JSON.stringify(b)} (naive)`;
}

interface Result {
  report: string;
  variant: string;
  level: Level;
  ours?: Timing;
  oursLoad?: string;
  naive?: Timing;
  naiveLoad?: string;
  naiveNote?: string;
  oursHeadline?: unknown;
  naiveHeadline?: unknown;
}

function checkOf(r: Result): { mark: string; difference: string | null } {
  if (r.oursHeadline === undefined || r.naiveHeadline === undefined) return { mark: "?", difference: null };
  const difference = firstDifference(r.oursHeadline, r.naiveHeadline);
  return { mark: difference === null ? "✓" : "✗", difference };
}

function tableRows(results: Result[]): string[][] {
  return results.map((r) => {
    const ratio = r.ours && r.naive ? r.naive.median / r.ours.median : Number.NaN;
    const fast = r.ours !== undefined && r.ours.median < TARGET_MEDIAN_MS;
    const better = !Number.isNaN(ratio) && ratio >= TARGET_RATIO;
    const naiveText = r.naive ? `${formatMs(r.naive.median)}${r.naiveNote ?? ""}` : (r.naiveNote ?? "–");
    return [
      r.report,
      r.variant,
      r.level,
      formatMs(r.ours?.median),
      formatMs(r.ours?.p90),
      naiveText,
      Number.isNaN(ratio) ? "–" : `${ratio.toFixed(1)}×`,
      checkOf(r).mark,
      fast ? "✓" : "✗",
      better ? "✓" : "✗",
      fast && better ? "met" : "MISSED",
      `${r.oursLoad ?? "?"} / ${r.naiveLoad ?? "?"}`,
    ];
  });
}

const HEADER = [
  "report",
  "parameters",
  "level",
  "ours median ms",
  "ours p90 ms",
  "naive median ms",
  "naive/ours",
  "check",
  `< ${TARGET_MEDIAN_MS} ms`,
  `≥ ${TARGET_RATIO}×`,
  "verdict",
  "load (ours / naive)",
];

function plainTable(rows: string[][]): string {
  const all = [HEADER, ...rows];
  const widths = HEADER.map((_, i) => Math.max(...all.map((row) => [...(row[i] ?? "")].length)));
  const line = (row: string[]) =>
    row
      .map((cell, i) => {
        const pad = " ".repeat((widths[i] ?? 0) - [...cell].length);
        return i >= 3 && i <= 6 ? pad + cell : cell + pad;
      })
      .join("  ");
  return [line(HEADER), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

const ALIGN = HEADER.map((_, i): Align => (i >= 3 && i <= 6 ? "right" : i >= 7 && i <= 9 ? "center" : "left"));

// ---------------------------------------------------------------------------------------------
// Main

async function rows(connection: DuckDBConnection, sql: string, params: Record<string, DuckDBValue> = {}) {
  const used = Object.fromEntries(Object.entries(params).filter(([name]) => new RegExp(`\\$${name}\\b`).test(sql)));
  return (await connection.runAndReadAll(sql, used)).getRowObjects();
}

/** Runs a query, interrupting it after `timeoutMs`; null when interrupted. */
async function bounded(
  connection: DuckDBConnection,
  sql: string,
  params: Record<string, DuckDBValue>,
  timeoutMs: number,
): Promise<Row[] | null> {
  let interrupted = false;
  const timer = setTimeout(() => {
    interrupted = true;
    connection.interrupt();
  }, timeoutMs);
  try {
    return await rows(connection, sql, params);
  } catch (err) {
    if (interrupted) return null;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** The most frequent track events sent by identified users, most frequent first. */
async function eventsByFrequency(connection: DuckDBConnection, ws: string): Promise<string[]> {
  const found = await rows(
    connection,
    `SELECT event, count(*) AS n FROM messages
     WHERE workspace_id = $ws AND type = 'track' AND user_id IS NOT NULL AND event IS NOT NULL
     GROUP BY event ORDER BY n DESC, event`,
    { ws },
  );
  return found.map((r) => String(r.event));
}

async function main(): Promise<void> {
  environmentOnly(import.meta.filename);
  const runs = envInt("BENCH_RUNS", 7);
  const warmups = envInt("BENCH_WARMUPS", 2);
  const naiveRuns = envInt("BENCH_NAIVE_RUNS", 3);
  const naiveTimeoutMs = envInt("BENCH_NAIVE_TIMEOUT", 600) * 1000;
  const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(",").map((s) => s.trim())) : null;
  for (const name of only ?? []) if (!(name in REPORTS)) throw new Error(`BENCH_ONLY: no report named ${name}`);
  const dataDir = process.env.BENCH_DIR || defaultDatasetDir();
  const log = (line: string) => process.stderr.write(`${line}\n`);

  const loaded = await loadDataset(dataDir);
  const ws = DEFAULT_DATASET.workspaceId;
  const windowEnd = Date.parse(loaded.summary.windowEnd);
  const from = loaded.summary.windowStart.slice(0, 10);
  const to = formatDay(Math.floor(windowEnd / 86_400_000) - 1);
  const dbFile = path.join(dataDir, DATABASE_FILE);

  const out: string[] = [];
  const say = (line = "") => {
    out.push(line);
    process.stdout.write(`${line}\n`);
  };
  say(machineLine());
  say(`Load average at start (1, 5, 15 min): ${loadAverages()}`);

  // The naive queries first, on the file opened read-only; the engine opens it afterwards.
  const results: Result[] = [];
  const instance = await DuckDBInstance.create(dbFile, { access_mode: "READ_ONLY" });
  const connection = await instance.connect();
  let all: Case[] = [];
  try {
    await connection.run("SET TimeZone = 'UTC'");
    const [versionRow] = await rows(connection, "SELECT version() AS v");
    const [counts] = await rows(
      connection,
      `SELECT (SELECT count(*) FROM messages WHERE workspace_id = $ws) AS messages,
         (SELECT count(*) FROM messages WHERE workspace_id = $ws AND type IN ('track', 'page', 'screen')) AS events,
         (SELECT count(*) FROM activity_days WHERE workspace_id = $ws) AS activity_days,
         (SELECT count(*) FROM event_days WHERE workspace_id = $ws) AS event_days,
         (SELECT count(*) FROM actor_summary WHERE workspace_id = $ws) AS actor_summary,
         (SELECT count(*) FROM identity_links WHERE workspace_id = $ws) AS identity_links,
         (SELECT count(*) FROM memberships WHERE workspace_id = $ws) AS memberships`,
      { ws },
    );
    say(`DuckDB ${String(versionRow?.v)}`);
    say(
      `Dataset: ${dataDir}${loaded.cached ? " (cached)" : ""}: ${n(counts?.messages).toLocaleString("en")} messages (${n(counts?.events).toLocaleString("en")} activity events), ${from} to ${to}; file ${formatBytes(databaseSize(dbFile))}`,
    );
    say(
      `Derived rows: activity_days ${n(counts?.activity_days).toLocaleString("en")}, event_days ${n(counts?.event_days).toLocaleString("en")}, actor_summary ${n(counts?.actor_summary).toLocaleString("en")}, identity_links ${n(counts?.identity_links).toLocaleString("en")}, memberships ${n(counts?.memberships).toLocaleString("en")}`,
    );
    const events = await eventsByFrequency(connection, ws);
    if (events.length < 6) throw new Error(`the dataset has only ${events.length} track event names`);
    const pick = (i: number) => events[Math.min(i, events.length - 1)] as string;
    const choice: Choice = {
      from,
      to,
      funnel: [pick(0), pick(1), pick(2)],
      feature: pick(Math.floor(events.length / 2)),
      milestones: [pick(3), pick(5)],
    };
    all = cases(choice).filter((c) => only === null || only.has(c.report));
    say(`Runs: ours ${runs} after ${warmups} warm-ups; naive ${naiveRuns} after ${NAIVE_WARMUPS} warm-up`);
    say(`Funnel steps: ${choice.funnel.join(" → ")}`);
    say();

    for (const c of all) {
      for (const level of ["user", "company"] as const) {
        const result: Result = { report: c.report, variant: c.variant, level };
        results.push(result);
        if (naiveRuns === 0) continue;
        const naive = c.naive(level);
        log(`naive ${c.report} (${c.variant}) ${level}`);
        const started = performance.now();
        let first: Row[] | null;
        try {
          first = await bounded(connection, naive.sql, { ws }, naiveTimeoutMs);
        } catch (err) {
          log(`  failed: ${err instanceof Error ? err.message : String(err)}`);
          result.naiveNote = "failed";
          continue;
        }
        const firstMs = performance.now() - started;
        result.naiveLoad = load1();
        if (first === null) {
          result.naiveNote = `> ${naiveTimeoutMs / 1000} s`;
          continue;
        }
        result.naiveHeadline = naive.headline(first);
        log(`  ${firstMs.toFixed(0)} ms`);
        // A query that takes longer than the timeout's tenth is timed by its warm-up alone.
        if (firstMs > naiveTimeoutMs / 10) {
          result.naive = { median: firstMs, p90: firstMs, runs: 1 };
          result.naiveNote = " (1 run)";
          continue;
        }
        const { timing } = await time(naiveRuns, 0, () => rows(connection, naive.sql, { ws }));
        result.naive = timing;
        result.naiveLoad = load1();
      }
    }
  } finally {
    connection.closeSync();
    instance.closeSync();
  }

  const { engine, openMs } = await openEngine(dataDir);
  log(`engine open in ${(openMs / 1000).toFixed(1)} s`);
  try {
    const settings = engine.settings(ws);
    if (settings.timeZone !== "UTC" || settings.systemEvents.length > 0) {
      throw new Error(
        `the naive queries assume UTC and no system events; the workspace has ${JSON.stringify(settings)}`,
      );
    }
    const context: ReportContext = {
      workspaceId: ws,
      timeZone: settings.timeZone,
      systemEvents: settings.systemEvents,
      now: windowEnd - 1,
    };
    for (const c of all) {
      const report = REPORTS[c.report];
      if (!report) throw new Error(`no report named ${c.report}`);
      for (const level of ["user", "company"] as const) {
        const result = results.find((r) => r.report === c.report && r.variant === c.variant && r.level === level);
        if (!result) continue;
        log(`ours ${c.report} (${c.variant}) ${level}`);
        const raw = c.raw(level);
        const { timing, result: value } = await time(runs, warmups, () =>
          report.run(engine.reports, report.plan(raw, context)),
        );
        result.ours = timing;
        result.oursLoad = load1();
        result.oursHeadline = c.headline(value);
      }
    }
  } finally {
    await engine.close();
  }

  const table = tableRows(results);
  say(plainTable(table));
  say();
  say(`Load average at end (1, 5, 15 min): ${loadAverages()}`);
  say(
    `Targets: ours median < ${TARGET_MEDIAN_MS} ms and naive/ours ≥ ${TARGET_RATIO}×. Check: the report's figures equal the naive query's:`,
  );
  for (const name of new Set(all.map((c) => c.report))) say(`  ${name}: ${HEADLINES[name] ?? "?"}`);
  const mismatches = results.filter((r) => checkOf(r).mark === "✗");
  if (mismatches.length > 0) {
    say();
    say("Mismatches:");
    for (const r of mismatches) say(`  ${r.report} (${r.variant}) ${r.level}: ${checkOf(r).difference}`);
  }
  say();
  say("Markdown:");
  say();
  say(markdownTable(HEADER, table, ALIGN));
}

runMain(main);
