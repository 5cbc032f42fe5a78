import type { Level } from "./params.js";
import type { Interval } from "./periods.js";

/**
 * What a report asks of the storage engine, with every definition already applied: days are day
 * numbers (days since 1970-01-01) in the workspace's time zone, ranges inclusive, periods named by
 * interval (day; week from Monday; calendar month) and indexed as `periodIndex` in periods.ts does.
 * An engine turns a plan into its own SQL and returns plain rows; the report shapes them.
 */
export interface Scope {
  workspaceId: string;
  level: Level;
  /** User level: count visitors (anonymousIds linked to no user) as entities too. */
  includeAnonymous: boolean;
  /** IANA zone of the workspace, for engines that need to turn a timestamp into a local day. */
  timeZone: string;
}

/** Entities active per period of [from, to]; with `rolling`, also per day the 7- and 30-day windows. */
export interface ActivePlan extends Scope {
  interval: Interval;
  from: number;
  to: number;
  rolling: boolean;
}
export interface ActiveRow {
  period: number;
  count: number;
  wau?: number;
  mau?: number;
}

/** Entities whose first activity (over all data) falls in each period of [from, to]. */
export interface NewPlan extends Scope {
  interval: Interval;
  from: number;
  to: number;
}
export interface CountRow {
  period: number;
  count: number;
}

/** Cohorts by the period of first activity (or first `startEvent`), and their returns. */
export interface RetentionPlan extends Scope {
  period: Interval;
  from: number;
  to: number;
  startEvent?: string | undefined;
  returnEvent?: string | undefined;
  mode: "bounded" | "unbounded";
  periods: number;
}
/** One cohort: its period index, size, and for k = 1..periods−1 the entities returned at offset k. */
export interface RetentionRow {
  cohort: number;
  size: number;
  returned: number[];
}

export interface FunnelPlan extends Scope {
  steps: string[];
  windowSeconds: number;
  from: number;
  to: number;
}
/** Per step k (0-based): entities whose depth is ≥ k+1, and the median seconds from step k−1 to k. */
export interface FunnelRow {
  step: number;
  count: number;
  medianSeconds: number | null;
}

export interface FeaturePlan extends Scope {
  event: string;
  from: number;
  to: number;
  adoptionThreshold: number;
}
export interface FeatureFigures {
  active: number;
  used: number;
  adopted: number;
  returned: number;
  top: { id: string; count: number; lastSeen: number }[];
  /** Per week (period index) of the range: entities that used the event. */
  weekly: { period: number; used: number }[];
}

export interface ActivationPlan extends Scope {
  milestones: { event: string; minCount: number }[];
  windowSeconds: number;
  from: number;
  to: number;
  period: Interval;
  /** End of `to` in the workspace's zone, as ms since the epoch: activity after it is not counted. */
  endMs: number;
}
export interface ActivationRow {
  cohort: number;
  size: number;
  activated: number;
  pending: number;
  completed: number[];
  medianSeconds: number | null;
}

export interface LifecyclePlan extends Scope {
  period: Interval;
  from: number;
  to: number;
}
export interface LifecycleRow {
  period: number;
  new: number;
  returning: number;
  resurrecting: number;
  dormant: number;
}

export interface PowerPlan extends Scope {
  days: number;
  date: number;
}
export interface PowerFigures {
  histogram: { activeDays: number; entities: number }[];
  top: { id: string; activeDays: number }[];
}

export interface SlippingPlan extends Scope {
  inactiveDays: number;
  date: number;
  limit: number;
}
export interface SlippingRow {
  id: string;
  lastSeen: number;
  activeDaysInPrior30: number;
}

/** The report queries an engine answers. */
export interface ReportEngine {
  active(plan: ActivePlan): Promise<ActiveRow[]>;
  newEntities(plan: NewPlan): Promise<CountRow[]>;
  retention(plan: RetentionPlan): Promise<RetentionRow[]>;
  funnel(plan: FunnelPlan): Promise<FunnelRow[]>;
  feature(plan: FeaturePlan): Promise<FeatureFigures>;
  activation(plan: ActivationPlan): Promise<ActivationRow[]>;
  lifecycle(plan: LifecyclePlan): Promise<LifecycleRow[]>;
  power(plan: PowerPlan): Promise<PowerFigures>;
  slipping(plan: SlippingPlan): Promise<SlippingRow[]>;
  /** Display names of entities (a company's name trait, a user's name or email). */
  names(scope: Scope, ids: string[]): Promise<Map<string, string>>;
}
