/** Calendar arithmetic on day numbers (days since 1970-01-01): weeks start on Monday, months are calendar months. */

export const INTERVALS = ["day", "week", "month"] as const;
export type Interval = (typeof INTERVALS)[number];

const DAY_MS = 86_400_000;

/** 'YYYY-MM-DD' to a day number, or null when it is not a real date. */
export function parseDay(text: string): number | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!match) return null;
  const [y, m, d] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const ms = Date.UTC(y, m - 1, d);
  const date = new Date(ms);
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d) return null;
  return ms / DAY_MS;
}

export function formatDay(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

/** The Monday on or before a day; 1970-01-01 was a Thursday. */
function weekStart(day: number): number {
  return day - ((((day + 3) % 7) + 7) % 7);
}

function monthStart(day: number): number {
  const d = new Date(day * DAY_MS);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) / DAY_MS;
}

/** The first day of the period holding `day`. */
export function periodStart(day: number, interval: Interval): number {
  if (interval === "day") return day;
  return interval === "week" ? weekStart(day) : monthStart(day);
}

/** The first day of the period after the one starting at `start`. */
export function nextPeriod(start: number, interval: Interval): number {
  if (interval === "day") return start + 1;
  if (interval === "week") return start + 7;
  const d = new Date(start * DAY_MS);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) / DAY_MS;
}

/** The periods that meet [from, to], each with its first and last day. */
export function periodsBetween(from: number, to: number, interval: Interval): { start: number; end: number }[] {
  const periods: { start: number; end: number }[] = [];
  for (let start = periodStart(from, interval); start <= to; start = nextPeriod(start, interval)) {
    periods.push({ start, end: nextPeriod(start, interval) - 1 });
  }
  return periods;
}

/** The period index of a day: consecutive periods have consecutive indexes. */
export function periodIndex(day: number, interval: Interval): number {
  if (interval === "day") return day;
  if (interval === "week") return Math.floor((day + 3) / 7);
  const d = new Date(day * DAY_MS);
  return d.getUTCFullYear() * 12 + d.getUTCMonth();
}

/** The first day of the period with this index: the inverse of periodIndex. */
export function periodFirstDay(index: number, interval: Interval): number {
  if (interval === "day") return index;
  if (interval === "week") return index * 7 - 3;
  return Date.UTC(Math.floor(index / 12), index % 12, 1) / DAY_MS;
}
