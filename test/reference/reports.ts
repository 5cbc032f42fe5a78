/**
 * A second, deliberately naive computation of every report, written from SPEC-reports.md alone and
 * kept independent of the SQL engine: plain arrays, nested loops, one Intl.DateTimeFormat call per
 * event. It is slow and obvious on purpose, so that when it disagrees with the server the question
 * is only ever "what does the spec say", never "which of two clever implementations slipped".
 *
 * Days are day numbers (days since 1970-01-01) of calendar dates in the workspace's zone; periods are
 * named by their first day. Output has the shape of the HTTP API's JSON.
 */

export type MessageType = "track" | "page" | "screen" | "identify" | "group" | "alias";

/** A message as stored: after clock correction (none here), with the request's arrival time. */
export interface Message {
  type: MessageType;
  messageId: string;
  /** ms since the epoch. */
  timestamp: number;
  /** ms since the epoch; the same for every message of a batch. */
  receivedAt: number;
  userId?: string;
  anonymousId?: string;
  /** alias only. */
  previousId?: string;
  /** group only. */
  groupId?: string;
  /** context.groupId. */
  contextGroupId?: string;
  /** track only. */
  event?: string;
  name?: string;
}

export interface Settings {
  timeZone: string;
  systemEvents?: string[];
}

export type Level = "user" | "company";
export type Interval = "day" | "week" | "month";

export interface Who {
  level: Level;
  /** User level only: visitors count as entities. */
  includeAnonymous?: boolean;
}

/** One activity event as seen by one entity (an event attributed to three companies is three of these). */
export interface Activity {
  /** "user:<id>", "visitor:<anonymousId>" or "company:<groupId>": kinds never collide. */
  entity: string;
  messageId: string;
  ts: number;
  day: number;
  /** The track event name; null for page and screen. */
  event: string | null;
}

const DAY_MS = 86_400_000;

// ---------------------------------------------------------------------------------------------------
// Calendar

export function parseDay(text: string): number {
  return Date.parse(`${text}T00:00:00Z`) / DAY_MS;
}

export function formatDay(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The calendar date of an instant in a zone, as a day number. */
export function localDay(ms: number, zone: string): number {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" });
    formatters.set(zone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  return parseDay(`${parts.year}-${parts.month}-${parts.day}`);
}

/** The first instant of a local day: walks in quarter hours (every zone's offset is a multiple of one). */
export function startOfLocalDay(day: number, zone: string): number {
  let ms = day * DAY_MS - 15 * 3_600_000;
  while (localDay(ms, zone) < day) ms += 15 * 60_000;
  return ms;
}

export function periodStart(day: number, interval: Interval): number {
  if (interval === "day") return day;
  if (interval === "week") {
    let d = day;
    while (new Date(d * DAY_MS).getUTCDay() !== 1) d--;
    return d;
  }
  const date = new Date(day * DAY_MS);
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1) / DAY_MS;
}

/** The first day of the period k periods after the one starting at `start`. */
export function periodAfter(start: number, interval: Interval, k = 1): number {
  if (interval === "day") return start + k;
  if (interval === "week") return start + 7 * k;
  const date = new Date(start * DAY_MS);
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + k, 1) / DAY_MS;
}

/** Every period that meets [from, to], with its first and last day. */
export function periodsMeeting(from: number, to: number, interval: Interval): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  for (let start = periodStart(from, interval); start <= to; start = periodAfter(start, interval)) {
    out.push({ start, end: periodAfter(start, interval) - 1 });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Small helpers

function distinct(items: Activity[]): Set<string> {
  return new Set(items.map((a) => a.entity));
}

function between(a: Activity, from: number, to: number): boolean {
  return a.day >= from && a.day <= to;
}

export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function ratio(n: number, d: number): number | null {
  return d === 0 ? null : n / d;
}

/** The id the API shows for an entity key. */
export function publicId(entity: string): string {
  return entity.slice(entity.indexOf(":") + 1);
}

// ---------------------------------------------------------------------------------------------------
// The model

export class Reference {
  /** After de-duplication by messageId: the first copy to arrive is the one kept. */
  readonly messages: Message[];
  /** anonymousId → the userId it belongs to (first link by timestamp, then receivedAt). */
  readonly owner = new Map<string, string>();
  /** userId → the companies it is a member of. */
  readonly memberships = new Map<string, Set<string>>();

  constructor(
    messages: Message[],
    readonly settings: Settings,
  ) {
    const seen = new Set<string>();
    const arrived = [...messages].sort((a, b) => a.receivedAt - b.receivedAt);
    this.messages = arrived.filter((m) => {
      if (seen.has(m.messageId)) return false;
      seen.add(m.messageId);
      return true;
    });

    const links: { anonymousId: string; userId: string; timestamp: number; receivedAt: number }[] = [];
    for (const m of this.messages) {
      if (m.userId !== undefined && m.anonymousId !== undefined)
        links.push({ ...m, anonymousId: m.anonymousId, userId: m.userId });
      if (m.type === "alias" && m.userId !== undefined && m.previousId !== undefined) {
        links.push({ ...m, anonymousId: m.previousId, userId: m.userId });
      }
    }
    links.sort((a, b) => a.timestamp - b.timestamp || a.receivedAt - b.receivedAt);
    for (const link of links) if (!this.owner.has(link.anonymousId)) this.owner.set(link.anonymousId, link.userId);

    for (const m of this.messages) {
      if (m.type !== "group" || m.groupId === undefined) continue;
      const user = this.userOf(m);
      if (user === undefined) continue;
      if (!this.memberships.has(user)) this.memberships.set(user, new Set());
      this.memberships.get(user)?.add(m.groupId);
    }
  }

  private readonly days = new Map<Message, number>();

  /** The local day of a message; remembered, as every report asks for every message's day. */
  dayOf(m: Message): number {
    let day = this.days.get(m);
    if (day === undefined) {
      day = localDay(m.timestamp, this.settings.timeZone);
      this.days.set(m, day);
    }
    return day;
  }

  /** The user a message belongs to, if any. */
  userOf(m: Message): string | undefined {
    if (m.userId !== undefined) return m.userId;
    if (m.anonymousId !== undefined) return this.owner.get(m.anonymousId);
    return undefined;
  }

  isActivity(m: Message): boolean {
    if (m.type === "page" || m.type === "screen") return true;
    return m.type === "track" && !(this.settings.systemEvents ?? []).includes(m.event ?? "");
  }

  /** Every activity event over all stored data, once per entity it counts for. */
  activities(who: Who): Activity[] {
    const out: Activity[] = [];
    for (const m of this.messages) {
      if (!this.isActivity(m)) continue;
      const base = {
        messageId: m.messageId,
        ts: m.timestamp,
        day: this.dayOf(m),
        event: m.type === "track" ? (m.event ?? null) : null,
      };
      const user = this.userOf(m);
      if (who.level === "user") {
        if (user !== undefined) out.push({ entity: `user:${user}`, ...base });
        else if (who.includeAnonymous && m.anonymousId !== undefined) {
          out.push({ entity: `visitor:${m.anonymousId}`, ...base });
        }
      } else {
        const companies =
          m.contextGroupId !== undefined
            ? [m.contextGroupId]
            : user !== undefined
              ? [...(this.memberships.get(user) ?? [])]
              : [];
        for (const c of companies) out.push({ entity: `company:${c}`, ...base });
      }
    }
    return out;
  }

  /** entity → its first activity event over all data. */
  firstSeen(acts: Activity[]): Map<string, Activity> {
    const first = new Map<string, Activity>();
    for (const a of acts) {
      const f = first.get(a.entity);
      if (f === undefined || a.ts < f.ts) first.set(a.entity, a);
    }
    return first;
  }

  // -------------------------------------------------------------------------------------------------
  // Reports

  active(who: Who, p: { interval: Interval; from: string; to: string }) {
    const acts = this.activities(who);
    const from = parseDay(p.from);
    const to = parseDay(p.to);
    const series = periodsMeeting(from, to, p.interval).map((period) => {
      const count = distinct(
        acts.filter((a) => between(a, Math.max(from, period.start), Math.min(to, period.end))),
      ).size;
      if (p.interval !== "day") return { period: formatDay(period.start), count };
      const d = period.start;
      return {
        period: formatDay(d),
        count,
        wau: distinct(acts.filter((a) => between(a, d - 6, d))).size,
        mau: distinct(acts.filter((a) => between(a, d - 29, d))).size,
      };
    });
    return { level: who.level, interval: p.interval, series };
  }

  newEntities(who: Who, p: { interval: Interval; from: string; to: string }) {
    const first = [...this.firstSeen(this.activities(who)).values()];
    const from = parseDay(p.from);
    const to = parseDay(p.to);
    const series = periodsMeeting(from, to, p.interval).map((period) => ({
      period: formatDay(period.start),
      count: first.filter((a) => between(a, Math.max(from, period.start), Math.min(to, period.end))).length,
    }));
    return { level: who.level, interval: p.interval, series };
  }

  /** Entities first seen in [from, to], by the period of that day: only periods that start in the range. */
  private cohorts(startDay: Map<string, number>, from: number, to: number, interval: Interval) {
    const cohorts = new Map<number, string[]>();
    for (const [entity, day] of startDay) {
      const start = periodStart(day, interval);
      if (start < from || day > to) continue;
      if (!cohorts.has(start)) cohorts.set(start, []);
      cohorts.get(start)?.push(entity);
    }
    return [...cohorts.entries()].sort((a, b) => a[0] - b[0]);
  }

  retention(
    who: Who,
    p: {
      period: Interval;
      from: string;
      to: string;
      mode: "bounded" | "unbounded";
      periods: number;
      startEvent?: string;
      returnEvent?: string;
    },
  ) {
    const acts = this.activities(who);
    const from = parseDay(p.from);
    const to = parseDay(p.to);
    const startDay = new Map<string, number>();
    for (const a of acts) {
      if (p.startEvent !== undefined && a.event !== p.startEvent) continue;
      const d = startDay.get(a.entity);
      if (d === undefined || a.day < d) startDay.set(a.entity, a.day);
    }
    const returns = acts.filter((a) => (p.returnEvent === undefined ? true : a.event === p.returnEvent));
    const cohorts = this.cohorts(startDay, from, to, p.period).map(([start, members]) => {
      const counts: (number | null)[] = [members.length];
      for (let k = 1; k < p.periods; k++) {
        const first = periodAfter(start, p.period, k);
        const last = periodAfter(start, p.period, k + 1) - 1;
        if (last > to) {
          counts.push(null);
          continue;
        }
        const until = p.mode === "bounded" ? last : to;
        const back = distinct(returns.filter((a) => between(a, first, until)));
        counts.push(members.filter((e) => back.has(e)).length);
      }
      return {
        period: formatDay(start),
        size: members.length,
        counts,
        rates: counts.map((c) => (c === null ? null : c / members.length)),
      };
    });
    return { level: who.level, period: p.period, mode: p.mode, cohorts };
  }

  funnel(who: Who, p: { steps: string[]; windowDays: number; from: string; to: string }) {
    const from = parseDay(p.from);
    const to = parseDay(p.to);
    const windowMs = p.windowDays * DAY_MS;
    const byEntity = new Map<string, Activity[]>();
    for (const a of this.activities(who)) {
      if (!byEntity.has(a.entity)) byEntity.set(a.entity, []);
      byEntity.get(a.entity)?.push(a);
    }
    /** Per entity with a step-1 occurrence in the range: the times at which each step was reached. */
    const paths: number[][] = [];
    for (const events of byEntity.values()) {
      const starts = events.filter((a) => a.event === p.steps[0] && between(a, from, to)).sort((a, b) => a.ts - b.ts);
      let best: number[] | null = null;
      for (const s of starts) {
        const used = new Set([s.messageId]);
        const reached = [s.ts];
        for (let k = 1; k < p.steps.length; k++) {
          const previous = reached[k - 1] as number;
          const candidates = events.filter(
            (a) => a.event === p.steps[k] && !used.has(a.messageId) && a.ts >= previous && a.ts <= s.ts + windowMs,
          );
          if (candidates.length === 0) break;
          const next = candidates.reduce((x, y) => (y.ts < x.ts ? y : x));
          used.add(next.messageId);
          reached.push(next.ts);
        }
        // Starts go in time order, so only a strictly deeper path replaces the one kept.
        if (best === null || reached.length > best.length) best = reached;
      }
      if (best !== null) paths.push(best);
    }
    const counts = p.steps.map((_, k) => paths.filter((path) => path.length > k).length);
    const first = counts[0] as number;
    return {
      level: who.level,
      steps: p.steps.map((event, k) => ({
        event,
        count: counts[k] as number,
        conversionFromPrevious: k === 0 ? 1 : ratio(counts[k] as number, counts[k - 1] as number),
        conversionFromStart: k === 0 ? 1 : ratio(counts[k] as number, first),
        medianSecondsFromPrevious:
          k === 0
            ? null
            : median(
                paths
                  .filter((path) => path.length > k)
                  .map((path) => ((path[k] as number) - (path[k - 1] as number)) / 1000),
              ),
      })),
    };
  }

  feature(who: Who, p: { event: string; from: string; to: string; adoptionThreshold: number }) {
    const from = parseDay(p.from);
    const to = parseDay(p.to);
    const inRange = this.activities(who).filter((a) => between(a, from, to));
    const uses = inRange.filter((a) => a.event === p.event);
    const perEntity = new Map<string, { count: number; lastSeen: number; weeks: Set<number> }>();
    for (const a of uses) {
      const e = perEntity.get(a.entity) ?? { count: 0, lastSeen: a.ts, weeks: new Set<number>() };
      e.count++;
      e.lastSeen = Math.max(e.lastSeen, a.ts);
      e.weeks.add(periodStart(a.day, "week"));
      perEntity.set(a.entity, e);
    }
    const active = distinct(inRange).size;
    const all = [...perEntity.entries()].map(([entity, e]) => ({
      id: publicId(entity),
      count: e.count,
      lastSeen: new Date(e.lastSeen).toISOString(),
      weeks: e.weeks.size,
    }));
    return {
      level: who.level,
      event: p.event,
      active,
      used: all.length,
      adopted: all.filter((e) => e.count >= p.adoptionThreshold).length,
      returned: all.filter((e) => e.weeks >= 2).length,
      adoptionRate: ratio(all.length, active),
      /** Every entity that used it, most uses first: the API shows the first 50 (ties in any order). */
      top: all.sort((a, b) => b.count - a.count).map(({ id, count, lastSeen }) => ({ id, count, lastSeen })),
      series: periodsMeeting(from, to, "week").map((w) => ({
        period: formatDay(w.start),
        used: distinct(uses.filter((a) => between(a, w.start, w.end))).size,
      })),
    };
  }

  activation(
    who: Who,
    p: {
      milestones: { event: string; minCount: number }[];
      windowDays: number;
      from: string;
      to: string;
      period: Interval;
    },
  ) {
    const acts = this.activities(who);
    const from = parseDay(p.from);
    const to = parseDay(p.to);
    const endMs = startOfLocalDay(to + 1, this.settings.timeZone);
    const windowMs = p.windowDays * DAY_MS;
    const first = this.firstSeen(acts);
    const startDay = new Map([...first].map(([entity, a]) => [entity, a.day]));
    const cohorts = this.cohorts(startDay, from, to, p.period).map(([start, members]) => {
      let activated = 0;
      let pending = 0;
      const completed = p.milestones.map(() => 0);
      const times: number[] = [];
      for (const entity of members) {
        const fs = (first.get(entity) as Activity).ts;
        const windowEnd = fs + windowMs;
        const counted = acts.filter((a) => a.entity === entity && a.ts >= fs && a.ts <= windowEnd && a.day <= to);
        let doneAt = fs;
        let all = true;
        p.milestones.forEach((m, i) => {
          const occurrences = counted.filter((a) => a.event === m.event).sort((a, b) => a.ts - b.ts);
          if (occurrences.length >= m.minCount) {
            completed[i] = (completed[i] as number) + 1;
            doneAt = Math.max(doneAt, (occurrences[m.minCount - 1] as Activity).ts);
          } else all = false;
        });
        if (all) {
          activated++;
          times.push((doneAt - fs) / 1000);
        } else if (windowEnd > endMs) pending++;
      }
      return {
        period: formatDay(start),
        size: members.length,
        activated,
        pending,
        rate: ratio(activated, members.length - pending),
        milestones: p.milestones.map((m, i) => ({ event: m.event, minCount: m.minCount, completed: completed[i] })),
        medianSecondsToActivate: median(times),
      };
    });
    return { level: who.level, period: p.period, cohorts };
  }

  lifecycle(who: Who, p: { period: Interval; from: string; to: string }) {
    const acts = this.activities(who);
    const from = parseDay(p.from);
    const to = parseDay(p.to);
    const first = this.firstSeen(acts);
    const series = periodsMeeting(from, to, p.period).map((period, i) => {
      // The previous period of the first one lies before `from` and counts whole; any other is inside
      // the range, and a period the range cuts counts only its days in the range.
      const previousStart =
        i === 0 ? periodAfter(period.start, p.period, -1) : Math.max(from, periodAfter(period.start, p.period, -1));
      const before = distinct(acts.filter((a) => between(a, previousStart, period.start - 1)));
      const now = distinct(acts.filter((a) => between(a, Math.max(from, period.start), Math.min(to, period.end))));
      const firstDay = (e: string) => (first.get(e) as Activity).day;
      const isNew = (e: string) =>
        firstDay(e) >= Math.max(from, period.start) && firstDay(e) <= Math.min(to, period.end);
      return {
        period: formatDay(period.start),
        new: [...first.keys()].filter(isNew).length,
        returning: [...now].filter((e) => before.has(e)).length,
        resurrecting: [...now].filter((e) => !before.has(e) && firstDay(e) < period.start).length,
        dormant: -[...before].filter((e) => !now.has(e)).length,
      };
    });
    return { level: who.level, period: p.period, series };
  }

  power(who: Who, p: { days: number; date: string }) {
    const date = parseDay(p.date);
    const inWindow = this.activities(who).filter((a) => between(a, date - p.days + 1, date));
    const days = new Map<string, Set<number>>();
    for (const a of inWindow) {
      if (!days.has(a.entity)) days.set(a.entity, new Set());
      days.get(a.entity)?.add(a.day);
    }
    const counts = [...days.entries()].map(([entity, d]) => ({ id: publicId(entity), activeDays: d.size }));
    const histogram = [];
    for (let n = 1; n <= p.days; n++) {
      histogram.push({ activeDays: n, entities: counts.filter((c) => c.activeDays === n).length });
    }
    return {
      level: who.level,
      days: p.days,
      date: p.date,
      histogram,
      /** Every active entity, most active first: the API shows the first 50 (ties in any order). */
      top: counts.sort((a, b) => b.activeDays - a.activeDays),
    };
  }

  slipping(who: Who, p: { inactiveDays: number; date: string }) {
    const date = parseDay(p.date);
    const upTo = this.activities(who).filter((a) => a.day <= date);
    const windowStart = date - p.inactiveDays - 30;
    const windowEnd = date - p.inactiveDays; // exclusive
    const out: { id: string; lastSeen: string; activeDaysInPrior30: number }[] = [];
    for (const entity of distinct(upTo)) {
      const mine = upTo.filter((a) => a.entity === entity);
      const last = mine.reduce((x, y) => (y.ts > x.ts ? y : x));
      if (last.day < windowStart || last.day >= windowEnd) continue;
      const activeDays = new Set(mine.filter((a) => a.day >= windowStart && a.day < windowEnd).map((a) => a.day));
      out.push({
        id: publicId(entity),
        lastSeen: new Date(last.ts).toISOString(),
        activeDaysInPrior30: activeDays.size,
      });
    }
    /** Every slipping entity, most active first: the API shows the first `limit` (ties in any order). */
    return { level: who.level, entities: out.sort((a, b) => b.activeDaysInPrior30 - a.activeDaysInPrior30) };
  }
}
