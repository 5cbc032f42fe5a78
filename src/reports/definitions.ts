import { zoneOffset } from "../identity/days.js";
import { day, eventName, integer, interval, ParameterError, type RawParams, range } from "./params.js";
import { formatDay, periodFirstDay, periodIndex, periodsBetween } from "./periods.js";
import type {
  ActivationPlan,
  ActivePlan,
  FeaturePlan,
  FunnelPlan,
  LifecyclePlan,
  NewPlan,
  PowerPlan,
  ReportEngine,
  RetentionPlan,
  Scope,
  SlippingPlan,
} from "./plans.js";
import { type Report, ratio, scope, seriesCsv } from "./report.js";
import { VISITOR_PREFIX } from "./visitors.js";

const DAY_MS = 86_400_000;
const label = (index: number, plan: { interval?: ActivePlan["interval"]; period?: ActivePlan["interval"] }) =>
  formatDay(periodFirstDay(index, (plan.interval ?? plan.period) as ActivePlan["interval"]));

function publicId(entity: string): { id: string; anonymous?: true } {
  return entity.startsWith(VISITOR_PREFIX) ? { id: entity.slice(1), anonymous: true } : { id: entity };
}

async function withNames<T extends { id: string }>(engine: ReportEngine, plan: Scope, rows: T[]) {
  const names = await engine.names(
    plan,
    rows.map((r) => r.id),
  );
  return rows.map((r) => ({ ...r, ...publicId(r.id), name: names.get(r.id) ?? null }));
}

/** Fills the periods of [from, to] that have no row with zeros. */
function everyPeriod<T extends { period: number }>(
  plan: { from: number; to: number; interval: ActivePlan["interval"] },
  rows: T[],
  empty: (period: number) => T,
): T[] {
  const byPeriod = new Map(rows.map((r) => [r.period, r]));
  return periodsBetween(plan.from, plan.to, plan.interval).map((p) => {
    const index = periodIndex(p.start, plan.interval);
    return byPeriod.get(index) ?? empty(index);
  });
}

export const active: Report<ActivePlan, unknown> = {
  name: "active",
  method: "GET",
  plan: (raw, context) => {
    const iv = interval(raw, "interval", "day");
    return { ...scope(raw, context), interval: iv, ...range(raw), rolling: iv === "day" };
  },
  run: async (engine, plan) => {
    const rows = everyPeriod(plan, await engine.active(plan), (period) =>
      plan.rolling ? { period, count: 0, wau: 0, mau: 0 } : { period, count: 0 },
    );
    return {
      level: plan.level,
      interval: plan.interval,
      series: rows.map((r) => ({ ...r, period: label(r.period, plan) })),
    };
  },
  csv: (result) => seriesCsv(result as { series: object[] }),
};

export const newEntities: Report<NewPlan, unknown> = {
  name: "new",
  method: "GET",
  plan: (raw, context) => ({ ...scope(raw, context), interval: interval(raw, "interval", "day"), ...range(raw) }),
  run: async (engine, plan) => {
    const rows = everyPeriod(plan, await engine.newEntities(plan), (period) => ({ period, count: 0 }));
    return {
      level: plan.level,
      interval: plan.interval,
      series: rows.map((r) => ({ period: label(r.period, plan), count: r.count })),
    };
  },
  csv: (result) => seriesCsv(result as { series: object[] }),
};

const DEFAULT_PERIODS = { day: 14, week: 8, month: 12 } as const;

export const retention: Report<RetentionPlan, unknown> = {
  name: "retention",
  method: "GET",
  plan: (raw, context) => {
    const period = interval(raw, "period", "week");
    const mode = raw.mode === undefined || raw.mode === "" ? "bounded" : raw.mode;
    if (mode !== "bounded" && mode !== "unbounded")
      throw new ParameterError("mode", "must be one of bounded, unbounded");
    return {
      ...scope(raw, context),
      period,
      ...range(raw),
      startEvent: eventName(raw, "startEvent"),
      returnEvent: eventName(raw, "returnEvent"),
      mode,
      periods: integer(raw, "periods", DEFAULT_PERIODS[period], 1, 400),
    };
  },
  run: async (engine, plan) => {
    const rows = await engine.retention(plan);
    const cohorts = rows
      .filter((r) => r.size > 0)
      .map((r) => {
        const counts: (number | null)[] = [r.size];
        for (let k = 1; k < plan.periods; k++) {
          // An offset whose period ends after `to` is not over yet: null, not 0.
          const ends = periodFirstDay(r.cohort + k + 1, plan.period) - 1;
          counts.push(ends > plan.to ? null : (r.returned[k - 1] ?? 0));
        }
        return {
          period: label(r.cohort, plan),
          size: r.size,
          counts,
          rates: counts.map((c) => (c === null ? null : c / r.size)),
        };
      });
    return { level: plan.level, period: plan.period, mode: plan.mode, cohorts };
  },
  csv: (result) =>
    (result as { cohorts: { period: string; size: number; counts: (number | null)[] }[] }).cohorts.map((c) => ({
      period: c.period,
      size: c.size,
      ...Object.fromEntries(c.counts.map((n, k) => [`offset${k}`, n])),
    })),
};

function stringList(raw: RawParams, name: string): string[] {
  const value = raw[name];
  if (!Array.isArray(value) || value.some((s) => typeof s !== "string" || s === "")) {
    throw new ParameterError(name, "must be a list of event names");
  }
  return value as string[];
}

export const funnel: Report<FunnelPlan, unknown> = {
  name: "funnel",
  method: "POST",
  plan: (raw, context) => {
    const steps = stringList(raw, "steps");
    if (steps.length < 2) throw new ParameterError("steps", "a funnel needs at least two steps");
    if (steps.length > 20) throw new ParameterError("steps", "a funnel has at most 20 steps");
    const windowDays = integer(raw, "windowDays", 14, 1, 365);
    return { ...scope(raw, context), steps, windowSeconds: windowDays * 86_400, ...range(raw) };
  },
  run: async (engine, plan) => {
    const rows = await engine.funnel(plan);
    const first = rows[0]?.count ?? 0;
    return {
      level: plan.level,
      steps: rows.map((r, k) => ({
        event: plan.steps[k],
        count: r.count,
        conversionFromPrevious: k === 0 ? 1 : ratio(r.count, rows[k - 1]?.count ?? 0),
        conversionFromStart: k === 0 ? 1 : ratio(r.count, first),
        medianSecondsFromPrevious: r.medianSeconds,
      })),
    };
  },
  csv: (result) => (result as { steps: object[] }).steps,
};

export const feature: Report<FeaturePlan, unknown> = {
  name: "feature",
  method: "GET",
  plan: (raw, context) => ({
    ...scope(raw, context),
    event: eventName(raw, "event", true) as string,
    ...range(raw),
    adoptionThreshold: integer(raw, "adoptionThreshold", 3, 1, 1_000_000),
  }),
  run: async (engine, plan) => {
    const f = await engine.feature(plan);
    const weekly = everyPeriod({ ...plan, interval: "week" }, f.weekly, (period) => ({ period, used: 0 }));
    const top = await withNames(
      engine,
      plan,
      f.top.map((t) => ({ id: t.id, count: t.count, lastSeen: new Date(t.lastSeen).toISOString() })),
    );
    return {
      level: plan.level,
      event: plan.event,
      active: f.active,
      used: f.used,
      adopted: f.adopted,
      returned: f.returned,
      adoptionRate: ratio(f.used, f.active),
      top: top.map(({ id, name, count, lastSeen }) => ({ id, name, count, lastSeen })),
      series: weekly.map((w) => ({ period: formatDay(periodFirstDay(w.period, "week")), used: w.used })),
    };
  },
  csv: (result) => (result as { top: object[] }).top,
};

export const activation: Report<ActivationPlan, unknown> = {
  name: "activation",
  method: "POST",
  plan: (raw, context) => {
    const list = raw.milestones;
    if (!Array.isArray(list) || list.length === 0 || list.length > 20) {
      throw new ParameterError("milestones", "must be a list of 1 to 20 {event, minCount}");
    }
    const milestones = list.map((m, i) => {
      if (typeof m !== "object" || m === null) throw new ParameterError(`milestones/${i}`, "must be {event, minCount}");
      // Keyed by their path in the body, so that an error names the milestone, not a bare "event".
      const at = `milestones/${i}`;
      const item: RawParams = {
        [`${at}/event`]: (m as RawParams).event,
        [`${at}/minCount`]: (m as RawParams).minCount,
      };
      return {
        event: eventName(item, `${at}/event`, true) as string,
        minCount: integer(item, `${at}/minCount`, 1, 1, 1_000_000),
      };
    });
    const { from, to } = range(raw);
    const windowDays = integer(raw, "windowDays", 14, 1, 365);
    const period = interval(raw, "period", "week");
    const endMs = localMidnight(to + 1, context.timeZone);
    return { ...scope(raw, context), milestones, windowSeconds: windowDays * 86_400, from, to, period, endMs };
  },
  run: async (engine, plan) => {
    const rows = await engine.activation(plan);
    return {
      level: plan.level,
      period: plan.period,
      cohorts: rows.map((r) => ({
        period: label(r.cohort, plan),
        size: r.size,
        activated: r.activated,
        pending: r.pending,
        rate: ratio(r.activated, r.size - r.pending),
        milestones: plan.milestones.map((m, i) => ({
          event: m.event,
          minCount: m.minCount,
          completed: r.completed[i] ?? 0,
        })),
        medianSecondsToActivate: r.medianSeconds,
      })),
    };
  },
  csv: (result) => (result as { cohorts: { milestones: unknown }[] }).cohorts.map(({ milestones: _, ...rest }) => rest),
};

export const lifecycle: Report<LifecyclePlan, unknown> = {
  name: "lifecycle",
  method: "GET",
  plan: (raw, context) => ({ ...scope(raw, context), period: interval(raw, "period", "week"), ...range(raw) }),
  run: async (engine, plan) => {
    const rows = await engine.lifecycle(plan);
    return {
      level: plan.level,
      period: plan.period,
      series: rows.map((r) => ({
        period: label(r.period, plan),
        new: r.new,
        returning: r.returning,
        resurrecting: r.resurrecting,
        dormant: -r.dormant,
      })),
    };
  },
  csv: (result) => seriesCsv(result as { series: object[] }),
};

export const power: Report<PowerPlan, unknown> = {
  name: "power",
  method: "GET",
  plan: (raw, context) => ({
    ...scope(raw, context),
    days: integer(raw, "days", 30, 1, 366),
    date: day(raw, "date", localDay(context.now, context.timeZone)),
  }),
  run: async (engine, plan) => {
    const figures = await engine.power(plan);
    const top = await withNames(engine, plan, figures.top);
    return {
      level: plan.level,
      days: plan.days,
      date: formatDay(plan.date),
      histogram: figures.histogram,
      top: top.map(({ id, name, activeDays }) => ({ id, name, activeDays })),
    };
  },
  csv: (result) => (result as { histogram: object[] }).histogram,
};

export const slipping: Report<SlippingPlan, unknown> = {
  name: "slipping",
  method: "GET",
  plan: (raw, context) => ({
    ...scope(raw, context),
    inactiveDays: integer(raw, "inactiveDays", 14, 1, 365),
    date: day(raw, "date", localDay(context.now, context.timeZone)),
    limit: integer(raw, "limit", 100, 1, 1000),
  }),
  run: async (engine, plan) => {
    const rows = await engine.slipping(plan);
    const named = await withNames(engine, plan, rows);
    return {
      level: plan.level,
      entities: named.map(({ id, name, lastSeen, activeDaysInPrior30 }) => ({
        id,
        name,
        lastSeen: new Date(lastSeen).toISOString(),
        activeDaysInPrior30,
      })),
    };
  },
  csv: (result) => (result as { entities: object[] }).entities,
};

/** Every report by its name in the URL. */
export const REPORTS: Readonly<Record<string, Report>> = {
  active,
  new: newEntities,
  retention,
  funnel,
  feature,
  activation,
  lifecycle,
  power,
  slipping,
} as Record<string, Report>;

/** The local day number of an instant in a zone. */
export function localDay(ms: number, zone: string): number {
  return Math.floor((ms + offsetAt(zone, ms)) / DAY_MS);
}

/** The instant (ms) of local midnight starting a day in a zone. */
export function localMidnight(dayNumber: number, zone: string): number {
  const guess = dayNumber * DAY_MS;
  // Two rounds: the offset at the guess may differ from the offset at the answer across a DST change.
  let ms = guess - offsetAt(zone, guess);
  ms = guess - offsetAt(zone, ms);
  return ms;
}

function offsetAt(zone: string, ms: number): number {
  return zone === "UTC" ? 0 : zoneOffset(zone, ms);
}
