import { boolean, level, type RawParams } from "./params.js";
import type { ReportEngine, Scope } from "./plans.js";

/** What every report needs to know about the request beyond its parameters. */
export interface ReportContext {
  workspaceId: string;
  timeZone: string;
  systemEvents: readonly string[];
  /** The current time, ms since the epoch. */
  now: number;
}

/** A report: how to read its parameters, how to run its plan, and how to lay it out as CSV rows. */
export interface Report<Plan = unknown, Result = unknown> {
  name: string;
  method: "GET" | "POST";
  plan(raw: RawParams, context: ReportContext): Plan;
  run(engine: ReportEngine, plan: Plan): Promise<Result>;
  csv(result: Result): object[];
}

/** Level, visitors and zone, common to every report. */
export function scope(raw: RawParams, context: ReportContext): Scope {
  const lvl = level(raw);
  return {
    workspaceId: context.workspaceId,
    level: lvl,
    includeAnonymous: lvl === "user" && boolean(raw, "includeAnonymous", false),
    timeZone: context.timeZone,
  };
}

/** A ratio, or null for 0/0. */
export function ratio(n: number, d: number): number | null {
  return d === 0 ? null : n / d;
}

/** The CSV layout shared by reports that are one series of periods. */
export function seriesCsv(result: { series: object[] }): object[] {
  return result.series;
}
