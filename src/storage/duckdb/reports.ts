import { type DuckDBConnection, type DuckDBValue, listValue } from "@duckdb/node-api";
import { funnelWalk } from "../../reports/funnel-walk.js";
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
  activeActorsSql,
  activePeriodRows,
  bitCounts,
  bitSums,
  dayNumber,
  dayStart,
  entityRows,
  firstEventSql,
  firstSeenSql,
  messageRows,
  periodSql,
  periodWords,
  REPORT_IDENTITY_CTES,
  WORD_BITS,
} from "./report-sql.js";
import { EntityTimeLists } from "./time-lists.js";

type Row = Record<string, DuckDBValue>;

const num = (value: DuckDBValue | undefined): number => Number(value ?? 0);

const DAY = dayNumber("x.day");

/**
 * `x.day` within two day numbers, compared on the column itself: DuckDB then folds the bounds into
 * a filter on the scan and skips the row groups outside them (the day tables are appended day by
 * day), where `day - DATE '1970-01-01' BETWEEN …` reads every row.
 */
const dayBetween = (lo: string, hi: string) =>
  `x.day BETWEEN DATE '1970-01-01' + (${lo}) AND DATE '1970-01-01' + (${hi})`;

function scopeParams(scope: Scope): Record<string, DuckDBValue> {
  return { ws: scope.workspaceId, tz: scope.timeZone };
}

/**
 * Weeks per word of the rolling active counts: 7 bits a week (activity_weeks.days), 49 bits in all,
 * which a DOUBLE holds exactly. Its low 28 bits and the rest are each read with 32-bit operators.
 */
const WORD_WEEKS = 7;
const LOW_SPAN = 2 ** 28;

/** The parameters that `sql` uses: DuckDB refuses any other, and plans share parameters. */
function usedParams(sql: string, params: Record<string, DuckDBValue>): Record<string, DuckDBValue> {
  return Object.fromEntries(Object.entries(params).filter(([name]) => new RegExp(`\\$${name}\\b`).test(sql)));
}

/** The report queries on DuckDB, over the derived tables (and the track calls for activation). */
export class DuckDBReports implements ReportEngine {
  /** `connection` gives the connection to read on once the derived tables hold every answered write. */
  constructor(private readonly connection: () => DuckDBConnection | Promise<DuckDBConnection>) {}

  private async run(sql: string, params: Record<string, DuckDBValue>) {
    return (await this.connection()).runAndReadAll(sql, usedParams(sql, params));
  }

  private rows(sql: string, params: Record<string, DuckDBValue>): Promise<Row[]> {
    return wrap("report", async () => (await this.run(sql, params)).getRowObjects());
  }

  /** The result as DuckDB's chunks, for reading vector by vector. */
  private chunks(sql: string, params: Record<string, DuckDBValue>) {
    return wrap("report", async () => (await this.connection()).run(sql, usedParams(sql, params)));
  }

  async active(plan: ActivePlan): Promise<ActiveRow[]> {
    const params = { ...scopeParams(plan), from: plan.from, to: plan.to };
    if (!plan.rolling) {
      // Each entity's active periods as bitmaps, their bits summed per word: bit i of word w is
      // period base + 64w + i.
      const base = periodIndex(plan.from, plan.interval);
      const found = await this.rows(
        `WITH ${REPORT_IDENTITY_CTES}, words AS (${periodWords(activePeriodRows(plan, plan.interval, [[plan.from, plan.to]]))})
         SELECT word, ${bitSums(periodIndex(plan.to, plan.interval) - base + 1)} FROM words GROUP BY word`,
        { ...params, base },
      );
      const counts = new Map<number, number>();
      for (const r of found) {
        bitCounts(r).forEach((count, i) => {
          if (count > 0) counts.set(base + num(r.word) * WORD_BITS + i, count);
        });
      }
      return [...counts].sort(([a], [b]) => a - b).map(([period, count]) => ({ period, count }));
    }
    // Rolling windows: an entity active on day a, next active on day n, counts for the w-day window
    // ending on each day of [a, min(a + w − 1, n − 1)]; those spans never overlap, so the number of
    // entities on a day is the number of spans covering it: +1 where a span starts, −1 after it ends.
    // Each entity's active days come from activity_weeks (under half the rows of activity_days) as
    // one row of words, each of WORD_WEEKS weeks of 7 bits (activity_weeks.days), so that bit b of
    // word k is day 49k + b: one row per entity, and no sort. The weeks run from the one holding the
    // first day a window of `from` reaches; days outside [from − 29, to] only make marks before `from`
    // or after `to`, which are not read.
    const baseWeek = periodIndex(plan.from - 29, "week");
    const lastWeek = periodIndex(plan.to, "week");
    const base = periodFirstDay(baseWeek, "week");
    const wordCount = Math.floor((lastWeek - baseWeek) / WORD_WEEKS) + 1;
    const wordColumns = Array.from(
      { length: wordCount },
      (_, k) =>
        `bit_or(days::UBIGINT << (7 * (w % ${WORD_WEEKS}))::UBIGINT) FILTER (WHERE w // ${WORD_WEEKS} = ${k})::DOUBLE AS w${k}`,
    );
    const result = await this.chunks(
      `WITH ${REPORT_IDENTITY_CTES},
       weeks AS (
         SELECT entity, week - $baseWeek AS w, days
         FROM (${entityRows(plan, "activity_weeks", "x.week, x.days", "AND x.week BETWEEN $baseWeek AND $lastWeek")})
       )
       SELECT ${wordColumns.join(", ")} FROM weeks GROUP BY entity`,
      { ...params, baseWeek, lastWeek },
    );
    const span = plan.to - base + 1;
    // Marks for windows of 1, 7 and 30 days; the last spans end up to 30 days after the last word.
    const size = wordCount * WORD_WEEKS * 7 + 31;
    const at1 = new Int32Array(size);
    const at7 = new Int32Array(size);
    const at30 = new Int32Array(size);
    // Read vector by vector: converting 50,000 rows of words to JavaScript arrays first costs more
    // than the loop below.
    for (let c = 0; c < result.chunkCount; c++) {
      const chunk = result.getChunk(c);
      const words = Array.from({ length: wordCount }, (_, k) => chunk.getColumnVector(k));
      for (let r = 0; r < chunk.rowCount; r++) {
        // From the last day back, so that each day's next active day is the one just seen.
        let after = Number.POSITIVE_INFINITY;
        for (let k = wordCount - 1; k >= 0; k--) {
          const word = num(words[k]?.getItem(r));
          // Bit b is day b of the word (day 49k after base): its low 28 bits, then the rest, in
          // numbers that JavaScript's 32-bit operators take.
          const low = word % LOW_SPAN;
          for (const [part, first] of [
            [(word - low) / LOW_SPAN, k * WORD_WEEKS * 7 + 28],
            [low, k * WORD_WEEKS * 7],
          ] as const) {
            let rest = part;
            while (rest !== 0) {
              const high = 31 - Math.clz32(rest);
              rest ^= 1 << high;
              const day = first + high;
              (at1[day] as number)++;
              (at1[day + 1] as number)--;
              (at7[day] as number)++;
              (at7[Math.min(day + 7, after)] as number)--;
              (at30[day] as number)++;
              (at30[Math.min(day + 30, after)] as number)--;
              after = day;
            }
          }
        }
      }
    }
    const marks = [at1, at7, at30];
    const running = [0, 0, 0];
    const out: ActiveRow[] = [];
    for (let d = 0; d < span; d++) {
      marks.forEach((at, i) => {
        running[i] = (running[i] ?? 0) + (at[d] ?? 0);
      });
      if (d + base >= plan.from) {
        out.push({ period: d + base, count: running[0] ?? 0, wau: running[1] ?? 0, mau: running[2] ?? 0 });
      }
    }
    return out;
  }

  async newEntities(plan: NewPlan): Promise<CountRow[]> {
    const found = await this.rows(
      `WITH ${REPORT_IDENTITY_CTES}
       SELECT ${periodSql(plan.interval, "first_day")} AS period, count(*) AS count
       FROM (${firstSeenSql(plan, "$from", "$to")}) GROUP BY period ORDER BY period`,
      { ...scopeParams(plan), from: plan.from, to: plan.to },
    );
    return found.map((r) => ({ period: num(r.period), count: num(r.count) }));
  }

  async retention(plan: RetentionPlan): Promise<RetentionRow[]> {
    const p = (day: string) => periodSql(plan.period, day);
    // Entities first seen (or doing startEvent first) on a day of a cohort's period within the range.
    const cohorts =
      plan.startEvent === undefined
        ? firstSeenSql(plan, "$cohortsStart", "$to")
        : `SELECT * FROM (${firstEventSql(plan)}) WHERE first_day BETWEEN $cohortsStart AND $to`;
    // (entity, p): each entity's periods with a return.
    const returns =
      plan.returnEvent === undefined
        ? activePeriodRows(plan, plan.period, [[plan.from, plan.to]])
        : entityRows(
            plan,
            "event_days",
            `${p(DAY)} AS p`,
            `AND ${dayBetween("$from", "$to")} AND x.type = 'track' AND x.event = $returnEvent`,
          );
    const firstCohort = periodIndex(plan.from, plan.period) + (isPeriodStart(plan.from, plan) ? 0 : 1);
    const params: Record<string, DuckDBValue> = {
      ...scopeParams(plan),
      from: plan.from,
      to: plan.to,
      cohortsStart: periodFirstDay(firstCohort, plan.period),
      lastOffset: plan.periods - 1,
    };
    if (plan.startEvent !== undefined) params.startEvent = plan.startEvent;
    if (plan.returnEvent !== undefined) params.returnEvent = plan.returnEvent;
    // One query: the cohorts' sizes (rows without a word) and their returns. Bounded, the returns
    // are each entity's periods as bitmaps (periodWords), their bits summed per cohort and word;
    // unbounded, only each entity's last period with a return matters.
    const returned =
      plan.mode === "bounded"
        ? `words AS (${periodWords(returns)})
          SELECT c.cohort, w.word, NULL AS k, count(*) AS n, ${bitSums(periodIndex(plan.to, plan.period) - periodIndex(plan.from, plan.period) + 1)} FROM words w JOIN cohort c USING (entity)
          GROUP BY c.cohort, w.word`
        : // A return after the last offset shown still counts for every offset (any later period does).
          `last AS (SELECT entity, max(p) AS p FROM (${returns}) GROUP BY entity)
          SELECT c.cohort, NULL AS word, least(r.p - c.cohort, $lastOffset) AS k, count(*) AS n
          FROM last r JOIN cohort c USING (entity) WHERE r.p - c.cohort >= 1 GROUP BY ALL`;
    if (plan.mode === "bounded") params.base = periodIndex(plan.from, plan.period);
    const found = await this.rows(
      `WITH ${REPORT_IDENTITY_CTES},
      cohort AS MATERIALIZED (
        SELECT entity, ${p("first_day")} AS cohort FROM (${cohorts})
      ),
      ${returned}
      UNION ALL BY NAME
      SELECT cohort, count(*) AS n FROM cohort GROUP BY cohort`,
      params,
    );
    const sizes = found.filter((r) => r.word === null && r.k === null).sort((a, b) => num(a.cohort) - num(b.cohort));
    const byCohort = new Map<number, number[]>();
    for (const r of sizes) byCohort.set(num(r.cohort), new Array(plan.periods - 1).fill(0));
    for (const r of found) {
      const list = byCohort.get(num(r.cohort));
      if (!list) continue;
      if (r.k !== null) {
        list[num(r.k) - 1] = num(r.n);
      } else if (r.word !== null) {
        // Bit i of this word is period base + 64 × word + i, offset k = period − cohort.
        const first = num(params.base) + num(r.word) * WORD_BITS - num(r.cohort);
        bitCounts(r).forEach((count, i) => {
          const k = first + i;
          if (k >= 1 && k <= list.length) list[k - 1] = (list[k - 1] ?? 0) + count;
        });
      }
    }
    if (plan.mode === "unbounded") {
      // Returned at offset k or later: entities whose last return offset is ≥ k.
      for (const list of byCohort.values()) {
        for (let k = list.length - 2; k >= 0; k--) list[k] = (list[k] ?? 0) + (list[k + 1] ?? 0);
      }
    }
    return sizes.map((r) => ({
      cohort: num(r.cohort),
      size: num(r.n),
      returned: byCohort.get(num(r.cohort)) ?? [],
    }));
  }

  async funnel(plan: FunnelPlan): Promise<FunnelRow[]> {
    const params: Record<string, DuckDBValue> = { ...scopeParams(plan), from: plan.from, to: plan.to };
    // Step 1 counts from the start of `from` to the end of `to`; later steps up to a window after it.
    const [range] = await this.rows(
      `SELECT epoch_ms(${dayStart("$from")}) AS start, epoch_ms(${dayStart("$to + 1")}) AS end`,
      params,
    );
    const walk = funnelWalk(plan, num(range?.start), num(range?.end));
    walk.events.forEach((event, e) => {
      params[`e${e}`] = event;
    });
    const event = `CASE x.event ${walk.events.map((_, e) => `WHEN $e${e} THEN ${e}`).join(" ")} END::UTINYINT AS e`;
    // Each entity's lists of its steps' times: one row per actor (and context.groupId) and event
    // once compacted, several before; gathered per entity here, then walked. The entities are
    // numbered in SQL: their ids as text cost more to read than the rest of the funnel.
    const result = await this.chunks(
      `WITH ${REPORT_IDENTITY_CTES},
       lists AS MATERIALIZED (
         SELECT entity, e, times
         FROM (${entityRows(plan, "event_times", `${event}, x.times`, `AND x.event IN (${walk.events.map((_, e) => `$e${e}`).join(", ")})`)})
       ),
       numbered AS (SELECT entity, (row_number() OVER () - 1)::INTEGER AS id FROM (SELECT DISTINCT entity FROM lists))
       SELECT n.id, l.e, l.times FROM lists l JOIN numbered n USING (entity)`,
      params,
    );
    const lists = new EntityTimeLists(walk.events.length);
    for (let c = 0; c < result.chunkCount; c++) lists.add(result.getChunk(c));
    lists.visit((times) => {
      walk.add(times);
    });
    return walk.rows();
  }

  async feature(plan: FeaturePlan): Promise<FeatureFigures> {
    const params = {
      ...scopeParams(plan),
      from: plan.from,
      to: plan.to,
      event: plan.event,
      threshold: plan.adoptionThreshold,
    };
    const range = `AND ${dayBetween("$from", "$to")}`;
    // One query for the three parts, so that event_days is read once for the event.
    const found = await this.rows(
      `WITH ${REPORT_IDENTITY_CTES},
       ev AS MATERIALIZED (
         SELECT entity, ${periodSql("week", "day")} AS week, events, last_ts
         FROM (${entityRows(plan, "event_days", `${DAY} AS day, x.events, x.last_ts`, `${range} AND x.type = 'track' AND x.event = $event`)})
       ),
       uses AS MATERIALIZED (
         SELECT entity, sum(events) AS count, max(last_ts) AS last_ts, count(DISTINCT week) AS weeks FROM ev GROUP BY entity
       ),
       active AS (SELECT count(DISTINCT entity) AS n FROM (${entityRows(plan, activeActorsSql(), "NULL")}))
       SELECT 'totals' AS part, NULL AS sort, NULL AS entity, (SELECT n FROM active) AS a, count(*) AS b,
         count(*) FILTER (WHERE count >= $threshold) AS c, count(*) FILTER (WHERE weeks >= 2) AS d
       FROM uses
       UNION ALL
       SELECT * FROM (
         SELECT 'top', -count, entity, count, epoch_ms(last_ts), NULL, NULL FROM uses ORDER BY count DESC, entity LIMIT 50
       )
       UNION ALL
       SELECT 'weekly', week, NULL, week, count(DISTINCT entity), NULL, NULL FROM ev GROUP BY week
       ORDER BY part, sort, entity`,
      params,
    );
    const part = (name: string) => found.filter((r) => r.part === name);
    const [totals] = part("totals");
    return {
      active: num(totals?.a),
      used: num(totals?.b),
      adopted: num(totals?.c),
      returned: num(totals?.d),
      top: part("top").map((r) => ({ id: String(r.entity), count: num(r.a), lastSeen: num(r.b) })),
      weekly: part("weekly").map((r) => ({ period: num(r.a), used: num(r.b) })),
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
      // The first day of the first cohort. No milestone counts before its entity's first activity,
      // which is in a cohort: messages before it are never needed. Both bounds compare the column
      // itself, so that DuckDB skips the row groups outside them.
      cohortsStart: periodFirstDay(
        periodIndex(plan.from, plan.period) + (isPeriodStart(plan.from, plan) ? 0 : 1),
        plan.period,
      ),
    };
    plan.milestones.forEach((m, i) => {
      params[`me${i}`] = m.event;
    });
    const names = plan.milestones.map((_, i) => `$me${i}`).join(", ");
    const all = plan.milestones.map((_, i) => `t${i} IS NOT NULL`).join(" AND ");
    // By company, each member with its company's window: a member's message is then joined to the
    // companies whose window it falls in only, rather than to every company of the member and then
    // filtered (742 rows instead of 730,000 on the benchmark data).
    const byCompany = plan.level === "company";
    const cohortMembers = byCompany
      ? "cohort_members AS (SELECT m.user_id, m.group_id, c.first_ts, c.until FROM members m JOIN cohort c ON c.entity = m.group_id),"
      : "";
    const members = byCompany
      ? { table: "cohort_members", on: "AND x.timestamp BETWEEN m.first_ts AND m.until" }
      : undefined;
    // endMs is the first instant of the day after `to`: a milestone at that instant is already after `to`.
    const found = await this.rows(
      `WITH ${REPORT_IDENTITY_CTES},
       cohort AS (
         SELECT entity, first_ts, first_ts + to_seconds($window) AS until, ${p("first_day")} AS cohort
         FROM (${firstSeenSql(plan, "$cohortsStart", "$to")})
       ),
       ${cohortMembers}
       -- Per entity and milestone, the time its minCount-th occurrence in the window was reached:
       -- the minCount earliest times (min(ts, n), a bounded aggregate instead of numbering every
       -- occurrence in a window), the last of them. Occurrences at the same time share it, so ties
       -- need no order, and the messageIds (long strings) are not read.
       occ AS (
         SELECT r.entity,
           ${plan.milestones.map((m, i) => `min(r.ts, ${Math.trunc(m.minCount)}) FILTER (WHERE r.event = $me${i})[${Math.trunc(m.minCount)}] AS t${i}`).join(",\n           ")}
         FROM (${messageRows(plan, "x.timestamp AS ts, x.event", `AND x.type = 'track' AND x.event IN (${names}) AND x.timestamp >= ${dayStart("$cohortsStart")} AND x.timestamp < timezone('UTC', epoch_ms($endMs::BIGINT))`, members)}) r
         JOIN cohort c USING (entity)
         WHERE r.ts >= c.first_ts AND r.ts <= c.until
         GROUP BY r.entity
       ),
       per_entity AS (
         SELECT c.entity, c.cohort, c.first_ts, c.until, ${all} AS done,
           CASE WHEN ${all} THEN greatest(${plan.milestones.map((_, i) => `t${i}`).join(", ")}) END AS activated_at,
           ${plan.milestones.map((_, i) => `t${i} IS NOT NULL AS m${i}`).join(", ")}
         FROM cohort c LEFT JOIN occ o USING (entity)
       )
       SELECT cohort, count(*) AS size,
         count(*) FILTER (WHERE done) AS activated,
         count(*) FILTER (WHERE NOT done AND epoch_ms(until) > $endMs) AS pending,
         ${plan.milestones.map((_, i) => `count(*) FILTER (WHERE m${i}) AS c${i}`).join(", ")},
         median(epoch_ms(activated_at) - epoch_ms(first_ts)) FILTER (WHERE done) / 1000.0 AS median
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
    // Active periods as bitmaps (periodWords) from the period before the first: bit i of word w is
    // period first − 1 + 64w + i.
    const base = first - 1;
    const found = await this.rows(
      `WITH ${REPORT_IDENTITY_CTES},
       -- The period before the first, whole, then the days of [from, to].
       words AS MATERIALIZED (${periodWords(
         activePeriodRows(plan, plan.period, [
           [periodFirstDay(first - 1, plan.period), periodFirstDay(first, plan.period) - 1],
           [plan.from, plan.to],
         ]),
       )}),
       -- First seen from the first period on: earlier ones make no new or first-period row.
       fs AS (SELECT entity, first_day, ${p("first_day")} AS fp FROM (${firstSeenSql(plan, "$firstStart", "$to")})),
       -- Per word: the entities active in each period (a…), and those also active in the one before
       -- (r…, returning; the period before bit 0 is the last bit of the word before). DuckDB refuses a
       -- shift that drops a set bit, hence the mask.
       active AS (
         SELECT w.word, ${bitSums(last - base + 1, "w.bits", "a")},
           ${bitSums(last - base + 1, "w.bits & (((w.bits & 9223372036854775807::UBIGINT) << 1) | coalesce(v.bits >> 63, 0))", "r")}
         FROM words w LEFT JOIN words v ON v.entity = w.entity AND v.word = w.word - 1 GROUP BY w.word
       ),
       -- Entities active in the period they were first seen in, by period.
       firsts AS (
         SELECT fs.fp AS p, count(*) AS n FROM words w JOIN fs USING (entity)
         WHERE fs.fp - $base - w.word * ${WORD_BITS} BETWEEN 0 AND ${WORD_BITS - 1}
           AND (w.bits >> (fs.fp - $base - w.word * ${WORD_BITS})) & 1 = 1
         GROUP BY fs.fp
       ),
       news AS (SELECT fp AS p, count(*) AS n FROM fs WHERE first_day BETWEEN $from AND $to GROUP BY fp)
       SELECT 'active' AS part, word, NULL AS p, NULL AS n, * EXCLUDE (word) FROM active
       UNION ALL BY NAME SELECT 'firsts' AS part, p, n FROM firsts
       UNION ALL BY NAME SELECT 'news' AS part, p, n FROM news`,
      { ...scopeParams(plan), from: plan.from, to: plan.to, base, firstStart: periodFirstDay(first, plan.period) },
    );
    const span = last - base + 1;
    const active = new Array<number>(span).fill(0);
    const returning = new Array<number>(span).fill(0);
    const firsts = new Map<number, number>();
    const news = new Map<number, number>();
    for (const r of found) {
      if (r.part === "active") {
        const offset = num(r.word) * WORD_BITS;
        const a = bitCounts(r, "a");
        const back = bitCounts(r, "r");
        for (let i = 0; i < WORD_BITS && offset + i < span; i++) {
          active[offset + i] = a[i] ?? 0;
          returning[offset + i] = back[i] ?? 0;
        }
      } else {
        (r.part === "firsts" ? firsts : news).set(num(r.p), num(r.n));
      }
    }
    // Resurrecting: active in p, not in p − 1, seen before (first seen in p rules out p − 1).
    // Dormant: active in p − 1, not in p.
    const out: LifecycleRow[] = [];
    for (let period = first; period <= last; period++) {
      const i = period - base;
      const back = returning[i] ?? 0;
      out.push({
        period,
        new: news.get(period) ?? 0,
        returning: back,
        resurrecting: (active[i] ?? 0) - back - (firsts.get(period) ?? 0),
        dormant: (active[i - 1] ?? 0) - back,
      });
    }
    return out;
  }

  async power(plan: PowerPlan): Promise<PowerFigures> {
    const params = { ...scopeParams(plan), lo: plan.date - plan.days + 1, date: plan.date };
    // One query for both parts: the active days per entity are worked out once.
    const found = await this.rows(
      `WITH ${REPORT_IDENTITY_CTES},
       days AS MATERIALIZED (
         SELECT entity, count(DISTINCT day) AS n
         FROM (${entityRows(plan, "activity_days", `${DAY} AS day`, `AND ${dayBetween("$lo", "$date")}`)}) GROUP BY entity
       )
       SELECT 'histogram' AS part, n, count(*) AS entities, NULL AS entity FROM days GROUP BY n
       UNION ALL
       SELECT * FROM (SELECT 'top', n, NULL, entity FROM days ORDER BY n DESC, entity LIMIT 50)
       ORDER BY part, n DESC, entity`,
      params,
    );
    const byDays = new Map(found.filter((r) => r.part === "histogram").map((r) => [num(r.n), num(r.entities)]));
    const top = found.filter((r) => r.part === "top");
    return {
      histogram: Array.from({ length: plan.days }, (_, i) => ({ activeDays: i + 1, entities: byDays.get(i + 1) ?? 0 })),
      top: top.map((r) => ({ id: String(r.entity), activeDays: num(r.n) })),
    };
  }

  async slipping(plan: SlippingPlan): Promise<SlippingRow[]> {
    const cutoff = plan.date - plan.inactiveDays;
    const found = await this.rows(
      `WITH ${REPORT_IDENTITY_CTES},
       recent AS (
         SELECT entity, max(day) AS last_day, max(last_ts) AS last_ts,
           count(DISTINCT day) FILTER (WHERE day < $cutoff) AS prior
         FROM (${entityRows(plan, "activity_days", `${DAY} AS day, x.last_ts`, `AND ${dayBetween("$cutoff - 30", "$date")}`)})
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
