import { type DuckDBConnection, type DuckDBValue, listValue } from "@duckdb/node-api";
import { periodFirstDay, periodIndex } from "../../reports/periods.js";
import type {
  ActivationPlan,
  ActivationRow,
  ActivePlan,
  ActiveRow,
  CountRow,
  FeatureFigures,
  FeaturePlan,
  FunnelPlan,
  FunnelRow,
  LifecyclePlan,
  LifecycleRow,
  NewPlan,
  PowerFigures,
  PowerPlan,
  ReportEngine,
  RetentionPlan,
  RetentionRow,
  Scope,
  SlippingPlan,
  SlippingRow,
} from "../../reports/plans.js";
import { VISITOR_PREFIX } from "../../reports/visitors.js";
import { wrap } from "../errors.js";
import {
  dayNumber,
  entityRows,
  firstEventSql,
  firstSeenSql,
  IDENTITY_CTES,
  messageRows,
  periodSql,
} from "./report-sql.js";

type Row = Record<string, DuckDBValue>;

const num = (value: DuckDBValue | undefined): number => Number(value ?? 0);
const DAY = dayNumber("x.day");

function scopeParams(scope: Scope): Record<string, DuckDBValue> {
  return { ws: scope.workspaceId, tz: scope.timeZone };
}

/** The report queries on DuckDB, over the derived tables (and raw messages for funnels and activation). */
export class DuckDBReports implements ReportEngine {
  constructor(private readonly connection: () => DuckDBConnection) {}

  private rows(sql: string, params: Record<string, DuckDBValue>): Promise<Row[]> {
    // DuckDB refuses named parameters that the statement does not use, and plans share parameters.
    const used = Object.fromEntries(Object.entries(params).filter(([name]) => new RegExp(`\\$${name}\\b`).test(sql)));
    return wrap("report", async () => (await this.connection().runAndReadAll(sql, used)).getRowObjects());
  }

  async active(plan: ActivePlan): Promise<ActiveRow[]> {
    const params = { ...scopeParams(plan), from: plan.from, to: plan.to };
    if (!plan.rolling) {
      const found = await this.rows(
        `WITH ${IDENTITY_CTES}
         SELECT ${periodSql(plan.interval, "day")} AS period, count(DISTINCT entity) AS count
         FROM (${entityRows(plan, "activity_days", `${DAY} AS day`, `AND ${DAY} BETWEEN $from AND $to`)})
         GROUP BY period ORDER BY period`,
        params,
      );
      return found.map((r) => ({ period: num(r.period), count: num(r.count) }));
    }
    // Rolling windows: an entity active on day a, next active on day n, counts for the w-day window
    // ending on each day of [a, min(a + w − 1, n − 1)]; those spans never overlap, so the number of
    // entities on a day is the number of spans covering it: +1 where a span starts, −1 after it ends.
    const found = await this.rows(
      `WITH ${IDENTITY_CTES},
       ed AS (SELECT DISTINCT entity, day FROM (${entityRows(plan, "activity_days", `${DAY} AS day`, `AND ${DAY} BETWEEN $from - 29 AND $to`)})),
       seq AS (SELECT entity, day, lead(day) OVER (PARTITION BY entity ORDER BY day) AS next FROM ed),
       spans AS (
         SELECT 7 AS w, day AS s, least(day + 6, coalesce(next - 1, day + 6)) AS e FROM seq
         UNION ALL SELECT 30, day, least(day + 29, coalesce(next - 1, day + 29)) FROM seq
         UNION ALL SELECT 1, day, day FROM seq
       )
       SELECT w, d, sum(c) AS c FROM (
         SELECT w, s AS d, 1 AS c FROM spans UNION ALL SELECT w, e + 1 AS d, -1 AS c FROM spans
       ) GROUP BY w, d ORDER BY w, d`,
      params,
    );
    const marks = new Map<number, Map<number, number>>([1, 7, 30].map((w) => [w, new Map()]));
    for (const r of found) marks.get(num(r.w))?.set(num(r.d), num(r.c));
    const running = new Map([1, 7, 30].map((w) => [w, 0]));
    const out: ActiveRow[] = [];
    for (let d = plan.from - 29; d <= plan.to; d++) {
      for (const w of [1, 7, 30]) running.set(w, (running.get(w) ?? 0) + (marks.get(w)?.get(d) ?? 0));
      if (d >= plan.from)
        out.push({ period: d, count: running.get(1) ?? 0, wau: running.get(7) ?? 0, mau: running.get(30) ?? 0 });
    }
    return out;
  }

  async newEntities(plan: NewPlan): Promise<CountRow[]> {
    const found = await this.rows(
      `WITH ${IDENTITY_CTES}
       SELECT ${periodSql(plan.interval, "first_day")} AS period, count(*) AS count
       FROM (${firstSeenSql(plan)}) WHERE first_day BETWEEN $from AND $to GROUP BY period ORDER BY period`,
      { ...scopeParams(plan), from: plan.from, to: plan.to },
    );
    return found.map((r) => ({ period: num(r.period), count: num(r.count) }));
  }

  async retention(plan: RetentionPlan): Promise<RetentionRow[]> {
    const p = (day: string) => periodSql(plan.period, day);
    const cohorts = plan.startEvent === undefined ? firstSeenSql(plan) : firstEventSql(plan);
    const returns =
      plan.returnEvent === undefined
        ? entityRows(plan, "activity_days", `${DAY} AS day`, `AND ${DAY} BETWEEN $from AND $to`)
        : entityRows(
            plan,
            "event_days",
            `${DAY} AS day`,
            `AND ${DAY} BETWEEN $from AND $to AND x.type = 'track' AND x.event = $returnEvent`,
          );
    const firstCohort = periodIndex(plan.from, plan.period) + (isPeriodStart(plan.from, plan) ? 0 : 1);
    const params: Record<string, DuckDBValue> = {
      ...scopeParams(plan),
      from: plan.from,
      to: plan.to,
      firstCohort,
      lastOffset: plan.periods - 1,
    };
    if (plan.startEvent !== undefined) params.startEvent = plan.startEvent;
    if (plan.returnEvent !== undefined) params.returnEvent = plan.returnEvent;
    const offsetsSql = `
      WITH ${IDENTITY_CTES},
      cohort AS (
        SELECT entity, ${p("first_day")} AS cohort FROM (${cohorts})
        WHERE first_day <= $to AND ${p("first_day")} >= $firstCohort
      ),
      back AS (
        SELECT DISTINCT r.entity, c.cohort, ${p("r.day")} - c.cohort AS k
        FROM (${returns}) r JOIN cohort c USING (entity)
        WHERE ${p("r.day")} - c.cohort >= 1
      )`;
    const sizes = await this.rows(
      `${offsetsSql} SELECT cohort, count(*) AS size FROM cohort GROUP BY cohort ORDER BY cohort`,
      params,
    );
    const counts = await this.rows(
      plan.mode === "bounded"
        ? `${offsetsSql} SELECT cohort, k, count(*) AS n FROM back WHERE k <= $lastOffset GROUP BY cohort, k`
        : // A return after the last offset shown still counts for every offset (any later period does).
          `${offsetsSql} SELECT cohort, k, count(*) AS n FROM (SELECT entity, cohort, least(max(k), $lastOffset) AS k FROM back GROUP BY entity, cohort) GROUP BY cohort, k`,
      params,
    );
    const byCohort = new Map<number, number[]>();
    for (const r of sizes) byCohort.set(num(r.cohort), new Array(plan.periods - 1).fill(0));
    for (const r of counts) {
      const list = byCohort.get(num(r.cohort));
      if (list) list[num(r.k) - 1] = num(r.n);
    }
    if (plan.mode === "unbounded") {
      // Returned at offset k or later: entities whose last return offset is ≥ k.
      for (const list of byCohort.values()) {
        for (let k = list.length - 2; k >= 0; k--) list[k] = (list[k] ?? 0) + (list[k + 1] ?? 0);
      }
    }
    return sizes.map((r) => ({
      cohort: num(r.cohort),
      size: num(r.size),
      returned: byCohort.get(num(r.cohort)) ?? [],
    }));
  }

  async funnel(plan: FunnelPlan): Promise<FunnelRow[]> {
    const params: Record<string, DuckDBValue> = {
      ...scopeParams(plan),
      from: plan.from,
      to: plan.to,
      window: plan.windowSeconds,
    };
    plan.steps.forEach((step, i) => {
      params[`e${i}`] = step;
    });
    const names = plan.steps.map((_, i) => `$e${i}`).join(", ");
    // ord orders an entity's messages by time, then messageId; the low 20 bits number the messages
    // within one millisecond, so "at or after step k's time" is ord ≥ ms_k × 2^20.
    const chain: string[] = [];
    for (let k = 1; k < plan.steps.length; k++) {
      const usedBefore = plan.steps.slice(0, k).lastIndexOf(plan.steps[k] as string);
      // DuckDB's greatest() skips NULLs: when step k−1 was not reached, the bound must stay NULL.
      const bound =
        usedBefore === -1
          ? `(epoch_ms(s.t${k - 1}) * 1048576)`
          : `CASE WHEN s.t${k - 1} IS NOT NULL THEN greatest(epoch_ms(s.t${k - 1}) * 1048576, s.o${usedBefore} + 1) END`;
      chain.push(`s${k} AS (
        SELECT s.*, CASE WHEN e.ts <= s.t0 + to_seconds($window) THEN e.ts END AS t${k},
          CASE WHEN e.ts <= s.t0 + to_seconds($window) THEN e.ord END AS o${k}
        FROM s${k - 1} s ASOF LEFT JOIN (SELECT entity, ord, ts FROM ev WHERE event = $e${k}) e
          ON e.entity = s.entity AND e.ord >= ${bound}
      )`);
    }
    const last = plan.steps.length - 1;
    const depth = plan.steps.map((_, k) => `(t${k} IS NOT NULL)::INTEGER`).join(" + ");
    const gaps = plan.steps
      .slice(1)
      .map(
        (_, i) =>
          `median(epoch_ms(t${i + 1}) - epoch_ms(t${i})) FILTER (WHERE t${i + 1} IS NOT NULL) / 1000.0 AS m${i + 1}`,
      )
      .join(", ");
    const sql = `
      WITH ${IDENTITY_CTES},
      raw AS (${messageRows(plan, "x.timestamp AS ts, x.event, x.message_id", `AND x.type = 'track' AND x.event IN (${names}) AND x.timestamp >= timezone($tz, (DATE '1970-01-01' + $from)::TIMESTAMP) AND x.timestamp < timezone($tz, (DATE '1970-01-01' + $to + 1)::TIMESTAMP) + to_seconds($window)`)}),
      ev AS (
        SELECT entity, ts, event,
          epoch_ms(ts) * 1048576 + row_number() OVER (PARTITION BY entity, epoch_ms(ts) ORDER BY message_id) AS ord
        FROM raw
      ),
      s0 AS (
        SELECT entity, ts AS t0, ord AS o0 FROM ev
        WHERE event = $e0 AND ts < timezone($tz, (DATE '1970-01-01' + $to + 1)::TIMESTAMP)
      ),
      ${chain.length > 0 ? `${chain.join(",\n")},` : ""}
      depths AS (SELECT *, ${depth} AS depth FROM s${last}),
      best AS (
        SELECT * FROM depths
        QUALIFY row_number() OVER (PARTITION BY entity ORDER BY depth DESC, t0, o0) = 1
      )
      SELECT ${plan.steps.map((_, k) => `count(*) FILTER (WHERE depth >= ${k + 1}) AS c${k}`).join(", ")}
        ${gaps ? `, ${gaps}` : ""}
      FROM best`;
    const found = (await this.rows(sql, params))[0] ?? {};
    return plan.steps.map((_, k) => ({
      step: k,
      count: num(found[`c${k}`]),
      medianSeconds: k === 0 || found[`m${k}`] === null || found[`m${k}`] === undefined ? null : num(found[`m${k}`]),
    }));
  }

  async feature(plan: FeaturePlan): Promise<FeatureFigures> {
    const params = {
      ...scopeParams(plan),
      from: plan.from,
      to: plan.to,
      event: plan.event,
      threshold: plan.adoptionThreshold,
    };
    const range = `AND ${DAY} BETWEEN $from AND $to`;
    const usage = `
      WITH ${IDENTITY_CTES},
      uses AS (
        SELECT entity, sum(events) AS count, max(last_ts) AS last_ts, count(DISTINCT ${periodSql("week", "day")}) AS weeks
        FROM (${entityRows(plan, "event_days", `${DAY} AS day, x.events, x.last_ts`, `${range} AND x.type = 'track' AND x.event = $event`)})
        GROUP BY entity
      )`;
    const [totals] = await this.rows(
      `${usage},
       active AS (SELECT count(DISTINCT entity) AS n FROM (${entityRows(plan, "activity_days", "x.day", range)}))
       SELECT (SELECT n FROM active) AS active, count(*) AS used,
         count(*) FILTER (WHERE count >= $threshold) AS adopted, count(*) FILTER (WHERE weeks >= 2) AS returned
       FROM uses`,
      params,
    );
    const top = await this.rows(
      `${usage} SELECT entity, count, epoch_ms(last_ts) AS last FROM uses ORDER BY count DESC, entity LIMIT 50`,
      params,
    );
    const weekly = await this.rows(
      `WITH ${IDENTITY_CTES}
       SELECT ${periodSql("week", "day")} AS period, count(DISTINCT entity) AS used
       FROM (${entityRows(plan, "event_days", `${DAY} AS day`, `${range} AND x.type = 'track' AND x.event = $event`)})
       GROUP BY period ORDER BY period`,
      params,
    );
    return {
      active: num(totals?.active),
      used: num(totals?.used),
      adopted: num(totals?.adopted),
      returned: num(totals?.returned),
      top: top.map((r) => ({ id: String(r.entity), count: num(r.count), lastSeen: num(r.last) })),
      weekly: weekly.map((r) => ({ period: num(r.period), used: num(r.used) })),
    };
  }

  async activation(plan: ActivationPlan): Promise<ActivationRow[]> {
    const p = (day: string) => periodSql(plan.period, day);
    const params: Record<string, DuckDBValue> = {
      ...scopeParams(plan),
      from: plan.from,
      to: plan.to,
      window: plan.windowSeconds,
      endMs: plan.endMs,
      firstCohort: periodIndex(plan.from, plan.period) + (isPeriodStart(plan.from, plan) ? 0 : 1),
    };
    const milestones = plan.milestones
      .map((m, i) => {
        params[`me${i}`] = m.event;
        params[`mc${i}`] = m.minCount;
        return `SELECT ${i} AS idx, $me${i} AS event, $mc${i} AS min_count`;
      })
      .join(" UNION ALL ");
    const names = plan.milestones.map((_, i) => `$me${i}`).join(", ");
    // endMs is the first instant of the day after `to`: a milestone at that instant is already after `to`.
    const found = await this.rows(
      `WITH ${IDENTITY_CTES},
       cohort AS (
         SELECT entity, first_ts, ${p("first_day")} AS cohort FROM (${firstSeenSql(plan)})
         WHERE first_day <= $to AND ${p("first_day")} >= $firstCohort
       ),
       milestones AS (${milestones}),
       occ AS (
         SELECT r.entity, r.event, r.ts,
           row_number() OVER (PARTITION BY r.entity, r.event ORDER BY r.ts, r.message_id) AS n
         FROM (${messageRows(plan, "x.timestamp AS ts, x.event, x.message_id", `AND x.type = 'track' AND x.event IN (${names}) AND epoch_ms(x.timestamp) < $endMs`)}) r
         JOIN cohort c USING (entity)
         WHERE r.ts >= c.first_ts AND r.ts <= c.first_ts + to_seconds($window)
       ),
       reached AS (
         SELECT o.entity, m.idx, o.ts FROM occ o JOIN milestones m ON m.event = o.event AND o.n = m.min_count
       ),
       per_entity AS (
         SELECT c.entity, c.cohort, c.first_ts,
           count(r.idx) AS done, max(r.ts) AS activated_at,
           ${plan.milestones.map((_, i) => `bool_or(r.idx = ${i}) AS m${i}`).join(", ")}
         FROM cohort c LEFT JOIN reached r USING (entity) GROUP BY c.entity, c.cohort, c.first_ts
       )
       SELECT cohort, count(*) AS size,
         count(*) FILTER (WHERE done = ${plan.milestones.length}) AS activated,
         count(*) FILTER (WHERE done < ${plan.milestones.length} AND epoch_ms(first_ts) + $window * 1000 > $endMs) AS pending,
         ${plan.milestones.map((_, i) => `count(*) FILTER (WHERE m${i}) AS c${i}`).join(", ")},
         median(epoch_ms(activated_at) - epoch_ms(first_ts)) FILTER (WHERE done = ${plan.milestones.length}) / 1000.0 AS median
       FROM per_entity GROUP BY cohort ORDER BY cohort`,
      params,
    );
    return found.map((r) => ({
      cohort: num(r.cohort),
      size: num(r.size),
      activated: num(r.activated),
      pending: num(r.pending),
      completed: plan.milestones.map((_, i) => num(r[`c${i}`])),
      medianSeconds: r.median === null || r.median === undefined ? null : num(r.median),
    }));
  }

  async lifecycle(plan: LifecyclePlan): Promise<LifecycleRow[]> {
    const p = (day: string) => periodSql(plan.period, day);
    const first = periodIndex(plan.from, plan.period);
    const last = periodIndex(plan.to, plan.period);
    const found = await this.rows(
      `WITH ${IDENTITY_CTES},
       act AS (
         SELECT DISTINCT entity, ${p("day")} AS p FROM (${entityRows(plan, "activity_days", `${DAY} AS day`, `AND ${DAY} BETWEEN $prevStart AND $to AND NOT (${DAY} >= $firstStart AND ${DAY} < $from)`)})
       ),
       fs AS (SELECT entity, first_day, ${p("first_day")} AS fp FROM (${firstSeenSql(plan)})),
       cur AS (
         SELECT a.p, a.entity, fs.first_day, fs.fp,
           EXISTS (SELECT 1 FROM act b WHERE b.entity = a.entity AND b.p = a.p - 1) AS before
         FROM act a LEFT JOIN fs USING (entity) WHERE a.p BETWEEN $first AND $last
       ),
       gone AS (
         SELECT b.p + 1 AS p, count(*) AS n FROM act b
         WHERE b.p + 1 BETWEEN $first AND $last
           AND NOT EXISTS (SELECT 1 FROM act a WHERE a.entity = b.entity AND a.p = b.p + 1)
         GROUP BY b.p
       ),
       news AS (
         SELECT fp AS p, count(*) AS n FROM fs WHERE first_day BETWEEN $from AND $to GROUP BY fp
       ),
       kinds AS (
         SELECT p,
           count(*) FILTER (WHERE before AND NOT (fp = p AND first_day >= $from)) AS returning,
           count(*) FILTER (WHERE NOT before AND fp < p) AS resurrecting
         FROM cur GROUP BY p
       )
       SELECT periods.p, coalesce(news.n, 0) AS new, coalesce(kinds.returning, 0) AS returning,
         coalesce(kinds.resurrecting, 0) AS resurrecting, coalesce(gone.n, 0) AS dormant
       FROM (SELECT unnest(range($first, $last + 1)) AS p) periods
         LEFT JOIN news USING (p) LEFT JOIN kinds USING (p) LEFT JOIN gone USING (p)
       ORDER BY periods.p`,
      {
        ...scopeParams(plan),
        from: plan.from,
        to: plan.to,
        first,
        last,
        firstStart: periodFirstDay(first, plan.period),
        prevStart: periodFirstDay(first - 1, plan.period),
      },
    );
    return found
      .filter((r) => num(r.p) >= first)
      .map((r) => ({
        period: num(r.p),
        new: num(r.new),
        returning: num(r.returning),
        resurrecting: num(r.resurrecting),
        dormant: num(r.dormant),
      }));
  }

  async power(plan: PowerPlan): Promise<PowerFigures> {
    const params = { ...scopeParams(plan), lo: plan.date - plan.days + 1, date: plan.date };
    const counts = `
      WITH ${IDENTITY_CTES},
      days AS (
        SELECT entity, count(DISTINCT day) AS n
        FROM (${entityRows(plan, "activity_days", `${DAY} AS day`, `AND ${DAY} BETWEEN $lo AND $date`)}) GROUP BY entity
      )`;
    const histogram = await this.rows(`${counts} SELECT n, count(*) AS entities FROM days GROUP BY n`, params);
    const top = await this.rows(`${counts} SELECT entity, n FROM days ORDER BY n DESC, entity LIMIT 50`, params);
    const byDays = new Map(histogram.map((r) => [num(r.n), num(r.entities)]));
    return {
      histogram: Array.from({ length: plan.days }, (_, i) => ({ activeDays: i + 1, entities: byDays.get(i + 1) ?? 0 })),
      top: top.map((r) => ({ id: String(r.entity), activeDays: num(r.n) })),
    };
  }

  async slipping(plan: SlippingPlan): Promise<SlippingRow[]> {
    const cutoff = plan.date - plan.inactiveDays;
    const found = await this.rows(
      `WITH ${IDENTITY_CTES},
       recent AS (
         SELECT entity, max(day) AS last_day, max(last_ts) AS last_ts,
           count(DISTINCT day) FILTER (WHERE day < $cutoff) AS prior
         FROM (${entityRows(plan, "activity_days", `${DAY} AS day, x.last_ts`, `AND ${DAY} BETWEEN $cutoff - 30 AND $date`)})
         GROUP BY entity
       )
       SELECT entity, epoch_ms(last_ts) AS last, prior FROM recent
       WHERE last_day < $cutoff
       ORDER BY prior DESC, last_ts DESC, entity LIMIT $limit`,
      { ...scopeParams(plan), cutoff, date: plan.date, limit: plan.limit },
    );
    return found.map((r) => ({ id: String(r.entity), lastSeen: num(r.last), activeDaysInPrior30: num(r.prior) }));
  }

  async names(scope: Scope, ids: string[]): Promise<Map<string, string>> {
    const names = new Map<string, string>();
    const real = ids.filter((id) => !id.startsWith(VISITOR_PREFIX));
    if (real.length === 0) return names;
    const kind = scope.level === "company" ? "company" : "user";
    const keys = scope.level === "company" ? "('name')" : "('name', 'email')";
    const found = await this.rows(
      `SELECT entity_id, key, value ->> '$' AS value FROM traits
       WHERE workspace_id = $ws AND entity_kind = '${kind}' AND key IN ${keys} AND list_contains($ids, entity_id)
       QUALIFY row_number() OVER (PARTITION BY entity_id, key ORDER BY timestamp DESC, received_at DESC, message_id DESC) = 1`,
      { ws: scope.workspaceId, ids: listValue(real) },
    );
    for (const r of found) {
      const id = String(r.entity_id);
      if (r.value === null) continue;
      if (r.key === "name" || !names.has(id)) names.set(id, String(r.value));
    }
    return names;
  }
}

function isPeriodStart(day: number, plan: { period: ActivationPlan["period"] }): boolean {
  return periodIndex(day - 1, plan.period) !== periodIndex(day, plan.period);
}
