import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sendBatch, setSettings } from "./helpers/fixtures.js";
import { getReport, postReport } from "./helpers/reports.js";
import { query, startTestServer, type TestServer, tempDataDir } from "./helpers/server.js";
import {
  type Interval,
  type Level,
  type Message,
  median,
  parseDay,
  Reference,
  type Settings,
  type Who,
} from "./reference/reports.js";

/**
 * Every report, on a generated dataset sent through the real Tracking API, against the naive
 * computation in reference/reports.ts. The dataset is seeded, so a failure reproduces exactly.
 */

const DAY = 86_400_000;
/** A Monday; the data runs for about 105 days from here, over month ends, a DST change and New Year. */
const START = Date.parse("2025-10-13T00:00:00Z");
const END = START + 105 * DAY;
/** Server time: after all the data. receivedAt of batch b is NOW + b minutes. */
const NOW = Date.parse("2026-02-01T12:00:00Z");
const BATCHES = 12;

const EVENTS: [string, number][] = [
  ["Dashboard Viewed", 30],
  ["Report Created", 20],
  ["Comment Added", 12],
  ["Export", 10],
  ["Invite Sent", 6],
  ["Settings Changed", 6],
  ["Billing Viewed", 4],
];

// ---------------------------------------------------------------------------------------------------
// Generated data

function prng(seed: number) {
  let s = seed;
  const next = () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return {
    next,
    int,
    chance: (p: number) => next() < p,
    pick: <T>(items: readonly T[]): T => items[int(items.length)] as T,
    /** A whole second in [from, to). */
    time: (from: number, to: number) => Math.floor((from + next() * (to - from)) / 1000) * 1000,
    weighted: (items: readonly [string, number][]): string => {
      let x = next() * items.reduce((s, [, w]) => s + w, 0);
      for (const [item, w] of items) {
        x -= w;
        if (x < 0) return item;
      }
      return (items[0] as [string, number])[0];
    },
  };
}

type Draft = Omit<Message, "receivedAt">;

interface Dataset {
  /** Messages per batch, in sending order, with receivedAt filled in. */
  batches: Message[][];
}

function generate(seed: number): Dataset {
  const r = prng(seed);
  const companies = Array.from({ length: 15 }, (_, i) => `company-${String(i + 1).padStart(2, "0")}`);
  const loose: Draft[] = [];
  const pinned: { draft: Draft; batch: number }[] = [];
  let sequence = 0;
  const draft = (m: Omit<Draft, "messageId">): Draft => ({ ...m, messageId: `msg-${++sequence}` });
  const emit = (m: Omit<Draft, "messageId">) => loose.push(draft(m));
  const emitIn = (batch: number, m: Omit<Draft, "messageId">) => pinned.push({ draft: draft(m), batch });

  /** A burst of activity: 1 to 6 events minutes to hours apart, under whichever identity `who` picks. */
  const session = (at: number, who: () => Pick<Draft, "userId" | "anonymousId">, memberOf: string[]) => {
    let t = at;
    for (let n = 1 + r.int(6); n > 0 && t < END; n--) {
      const roll = r.next();
      const type = roll < 0.75 ? "track" : roll < 0.95 ? "page" : "screen";
      const context =
        r.chance(0.1) && (memberOf.length > 0 || r.chance(0.5))
          ? { contextGroupId: memberOf.length > 0 && r.chance(0.7) ? r.pick(memberOf) : r.pick(companies) }
          : {};
      emit({
        type,
        ...who(),
        ...(type === "track" ? { event: r.weighted(EVENTS) } : { name: r.pick(["Home", "Pricing", "Docs"]) }),
        ...context,
        timestamp: t,
      });
      t += Math.floor(r.next() * r.next() * 4 * 3_600) * 1000;
    }
  };

  const users = Array.from({ length: 150 }, (_, i) => `user-${String(i + 1).padStart(3, "0")}`);
  for (const [i, userId] of users.entries()) {
    const anonymousId = `anon-${i + 1}`;
    const signup = r.time(START, START + 85 * DAY);
    const end = Math.min(END, signup + (5 + r.next() * 100) * DAY);
    const linked = r.chance(0.9);
    if (linked) emit({ type: "identify", userId, anonymousId, timestamp: signup });
    else emit({ type: "identify", userId, timestamp: signup });
    if (r.chance(0.8)) emit({ type: "track", userId, event: "Signed Up", timestamp: signup + 1000 * (1 + r.int(60)) });

    // A visitor who browsed before signing up.
    if (linked && r.chance(0.1)) {
      for (let n = 1 + r.int(3); n > 0; n--) {
        session(r.time(signup - 10 * DAY, signup), () => ({ anonymousId }), []);
      }
    }

    const roll = r.next();
    const count = roll < 0.1 ? 0 : roll < 0.85 ? 1 : 2 + r.int(2);
    const mine = new Set<string>();
    while (mine.size < count) mine.add(r.pick(companies));
    for (const groupId of mine) {
      const when = r.time(signup - 2 * DAY, end);
      // An anonymous group call makes a member of the anonymousId's user, even before the link.
      if (linked && r.chance(0.2)) emit({ type: "group", anonymousId, groupId, timestamp: when });
      else emit({ type: "group", userId, groupId, timestamp: when });
    }

    const identities: (() => Pick<Draft, "userId" | "anonymousId">)[] = [() => ({ userId })];
    if (linked) {
      identities.push(() => {
        const x = r.next();
        return x < 0.65 ? { userId } : x < 0.85 ? { anonymousId } : { userId, anonymousId };
      });
    }
    // A second device, tied to the user only by an alias.
    if (r.chance(0.06)) {
      const device = `${anonymousId}-b`;
      emit({ type: "alias", userId, previousId: device, timestamp: r.time(signup, end) });
      identities.push(() => ({ anonymousId: device }));
    }
    // An anonymousId tied to the user by a track call that carries both.
    if (r.chance(0.05)) {
      const device = `${anonymousId}-c`;
      emit({ type: "page", userId, anonymousId: device, name: "Home", timestamp: r.time(signup, end) });
      identities.push(() => ({ anonymousId: device }));
    }
    const sessions = 1 + Math.floor(r.next() * r.next() * 22);
    for (let n = 0; n < sessions; n++) session(r.time(signup, end), r.pick(identities), [...mine]);
  }

  // Events on the stroke of midnight, in UTC and in Los Angeles (PDT, then PST), around the ranges' ends.
  for (const day of [
    "2025-10-27",
    "2025-11-01",
    "2025-11-05",
    "2025-12-01",
    "2026-01-01",
    "2026-01-15",
    "2026-01-26",
  ]) {
    for (const hour of [0, 7, 8]) {
      const timestamp = Date.parse(`${day}T00:00:00Z`) + hour * 3_600_000;
      emit({ type: "track", userId: r.pick(users), event: r.weighted(EVENTS), timestamp });
      emit({ type: "page", userId: r.pick(users), name: "Home", timestamp: timestamp - 1000 });
    }
  }

  // Users whose funnels and activation windows end exactly on, or a second past, their limits.
  for (let k = 0; k < 6; k++) {
    const userId = `edge-${k}`;
    const fs = START + (20 + 6 * k) * DAY + 10 * 3_600_000;
    emit({ type: "identify", userId, timestamp: fs - DAY });
    emit({ type: "group", userId, groupId: companies[k] as string, timestamp: fs - DAY });
    emit({ type: "page", userId, name: "Home", timestamp: fs });
    emit({ type: "track", userId, event: "Report Created", timestamp: fs + 3_600_000 });
    emit({ type: "track", userId, event: "Report Created", timestamp: fs + 2 * DAY });
    emit({ type: "track", userId, event: "Invite Sent", timestamp: fs + 14 * DAY + (k % 2) * 1000 });
    const f = fs + 30 * DAY;
    if (k < 3) emit({ type: "track", userId, event: "Dashboard Viewed", timestamp: f - DAY });
    emit({ type: "track", userId, event: "Dashboard Viewed", timestamp: f });
    emit({ type: "track", userId, event: "Report Created", timestamp: f + (k % 3 === 0 ? 0 : 1000) });
    emit({ type: "track", userId, event: "Export", timestamp: f + 3 * DAY + (k % 2) * 1000 });
  }

  // anonymousIds claimed by two users: the first link wins by timestamp, then by receivedAt.
  const claim = (k: number) => `shared-${k}`;
  const [a, b] = [users[10] as string, users[20] as string];
  const t = (day: number) => START + day * DAY + 37_000;
  emitIn(3, { type: "identify", userId: a, anonymousId: claim(0), timestamp: t(20) });
  emitIn(1, { type: "identify", userId: b, anonymousId: claim(0), timestamp: t(25) });
  emitIn(1, { type: "identify", userId: a, anonymousId: claim(1), timestamp: t(30) });
  emitIn(8, { type: "identify", userId: b, anonymousId: claim(1), timestamp: t(29) });
  emitIn(6, { type: "identify", userId: a, anonymousId: claim(2), timestamp: t(40) });
  emitIn(2, { type: "identify", userId: b, anonymousId: claim(2), timestamp: t(40) });
  emitIn(0, { type: "identify", userId: a, anonymousId: claim(3), timestamp: t(50) });
  emitIn(9, { type: "track", userId: b, anonymousId: claim(3), event: "Export", timestamp: t(49) });
  emitIn(4, { type: "alias", userId: a, previousId: claim(4), timestamp: t(60) });
  emitIn(4, { type: "identify", userId: b, anonymousId: claim(4), timestamp: t(61) });
  for (let k = 0; k < 5; k++) {
    for (let n = 0; n < 4; n++) session(r.time(START, END), () => ({ anonymousId: claim(k) }), []);
    emit({ type: "group", anonymousId: claim(k), groupId: r.pick(companies), timestamp: r.time(START, END) });
  }

  // Visitors never identified; some act for a company, some are put in one by an anonymous group call.
  for (let j = 1; j <= 30; j++) {
    const anonymousId = `visitor-${j}`;
    const from = r.time(START - 5 * DAY, END - 5 * DAY);
    for (let n = 1 + r.int(4); n > 0; n--) session(r.time(from, END), () => ({ anonymousId }), []);
    if (j % 6 === 0) emit({ type: "group", anonymousId, groupId: r.pick(companies), timestamp: from });
  }

  for (let i = loose.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [loose[i], loose[j]] = [loose[j] as Draft, loose[i] as Draft];
  }
  const batches: Draft[][] = Array.from({ length: BATCHES }, () => []);
  for (const [i, m] of loose.entries()) batches[i % BATCHES]?.push(m);
  for (const { draft: m, batch } of pinned) batches[batch]?.push(m);
  // Resent copies, in a later batch: stored once.
  for (let n = 0; n < 60; n++) {
    const from = r.int(BATCHES - 1);
    const original = r.pick(batches[from] as Draft[]);
    batches[Math.min(BATCHES - 1, from + 1 + r.int(3))]?.push({ ...original });
  }
  return {
    batches: batches.map((batch, i) => batch.map((m) => ({ ...m, receivedAt: NOW + i * 60_000 }))),
  };
}

function wire(m: Message): Record<string, unknown> {
  const { receivedAt: _, contextGroupId, timestamp, ...rest } = m;
  return {
    ...rest,
    timestamp: new Date(timestamp).toISOString(),
    ...(contextGroupId === undefined ? {} : { context: { groupId: contextGroupId } }),
    ...(m.type === "group" ? { traits: { name: `Name of ${m.groupId}` } } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------
// Comparison

/** Differences between the API's answer and the reference's, as readable lines. */
function differences(actual: unknown, expected: unknown, path: string, out: string[] = []): string[] {
  const key = path.slice(path.lastIndexOf(".") + 1);
  if (typeof actual === "number" && typeof expected === "number" && /median|rate|conversion/i.test(key)) {
    if (Math.abs(actual - expected) > 1e-9) out.push(`${path}: expected ${expected}, got ${actual}`);
  } else if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) {
      out.push(`${path}: expected an array, got ${JSON.stringify(actual)}`);
      return out;
    }
    if (actual.length !== expected.length) out.push(`${path}: expected ${expected.length} items, got ${actual.length}`);
    for (let i = 0; i < Math.min(actual.length, expected.length); i++) {
      differences(actual[i], expected[i], `${path}[${i}]`, out);
    }
  } else if (typeof expected === "object" && expected !== null) {
    if (typeof actual !== "object" || actual === null) {
      out.push(`${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
      return out;
    }
    const e = expected as Record<string, unknown>;
    const a = actual as Record<string, unknown>;
    for (const k of new Set([...Object.keys(e), ...Object.keys(a)])) differences(a[k], e[k], `${path}.${k}`, out);
  } else if (actual !== expected) {
    out.push(`${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
  return out;
}

type Row = { id: string } & Record<string, unknown>;

/**
 * A "top N" list: the API's rows must be the reference's rows (names aside), ordered by `by`, and hold
 * every entity ranked above the last one shown; entities tied at the cut may be either side of it.
 */
function topDifferences(actual: Row[], expected: Row[], limit: number, by: string, path: string): string[] {
  const out: string[] = [];
  if (actual.length !== Math.min(limit, expected.length)) {
    out.push(`${path}: expected ${Math.min(limit, expected.length)} rows, got ${actual.length}`);
  }
  const byId = new Map(expected.map((row) => [row.id, row]));
  const shown = new Set<string>();
  actual.forEach(({ name: _, ...row }, i) => {
    if (shown.has(row.id)) out.push(`${path}[${i}]: ${row.id} twice`);
    shown.add(row.id);
    const want = byId.get(row.id);
    if (want === undefined) out.push(`${path}[${i}]: ${row.id} should not be listed`);
    else differences(row, want, `${path}[${i}]`, out);
    const previous = actual[i - 1];
    if (previous !== undefined && (previous[by] as number) < (row[by] as number)) out.push(`${path}[${i}]: not sorted`);
  });
  const cut = actual.length === limit ? ((actual[limit - 1] as Row)[by] as number) : Number.NEGATIVE_INFINITY;
  for (const row of expected) {
    if ((row[by] as number) > cut && !shown.has(row.id)) out.push(`${path}: ${row.id} (${by} ${row[by]}) missing`);
  }
  return out;
}

function withoutTop<T extends object>(result: T, field: string): T {
  const { [field]: _, ...rest } = result as Record<string, unknown>;
  return rest as T;
}

// ---------------------------------------------------------------------------------------------------
// The server

let server: TestServer;
let clock = NOW;
let dataset: Dataset;
let messages: Message[];

beforeAll(async () => {
  dataset = generate(20_260_101);
  messages = dataset.batches.flat();
  server = await startTestServer(tempDataDir("solstice-reference"), { now: () => clock });
  for (const [i, batch] of dataset.batches.entries()) {
    clock = NOW + i * 60_000;
    await sendBatch(server, batch.map(wire));
  }
  clock = NOW;
});

afterAll(async () => {
  await server?.close();
});

/** Level and visitors, as query parameters and as the reference takes them. */
const WHO: { label: string; who: Who; params: Record<string, string | boolean> }[] = [
  { label: "users", who: { level: "user" }, params: { level: "user" } },
  {
    label: "users and visitors",
    who: { level: "user", includeAnonymous: true },
    params: { level: "user", includeAnonymous: true },
  },
  { label: "companies", who: { level: "company" }, params: { level: "company" } },
];

/** Ranges: week-aligned, month-aligned, days over New Year, and one that cuts its first and last periods. */
const WEEKS = { from: "2025-10-27", to: "2026-01-25" };
const MONTHS = { from: "2025-11-01", to: "2026-01-31" };
const DAYS = { from: "2025-12-20", to: "2026-01-10" };
const CUT = { from: "2025-11-05", to: "2026-01-14" };

function compareReports(settings: Settings) {
  let ref: Reference;
  beforeAll(async () => {
    await setSettings(server, { systemEvents: [], ...settings });
    ref = new Reference(messages, settings);
  });

  it("active: per period, and wau/mau per day", async () => {
    const diffs: string[] = [];
    for (const { label, who, params } of WHO) {
      const runs: [Interval, { from: string; to: string }][] = [
        ["day", DAYS],
        ["week", WEEKS],
        ["month", MONTHS],
        ["day", CUT],
        ["week", CUT],
        ["month", CUT],
      ];
      for (const [interval, range] of runs) {
        const actual = await getReport(server, "active", { ...params, interval, ...range });
        differences(
          actual,
          ref.active(who, { interval, ...range }),
          `active ${label} ${interval} ${range.from}`,
          diffs,
        );
      }
    }
    expect(diffs).toEqual([]);
  });

  it("new: per period", async () => {
    const diffs: string[] = [];
    for (const { label, who, params } of WHO) {
      for (const [interval, range] of [
        ["day", DAYS],
        ["week", WEEKS],
        ["month", MONTHS],
        ["week", CUT],
        ["month", CUT],
      ] as const) {
        const actual = await getReport(server, "new", { ...params, interval, ...range });
        differences(
          actual,
          ref.newEntities(who, { interval, ...range }),
          `new ${label} ${interval} ${range.from}`,
          diffs,
        );
      }
    }
    expect(diffs).toEqual([]);
  });

  it("retention: bounded and unbounded, with and without start and return events", async () => {
    const diffs: string[] = [];
    const runs: {
      period: Interval;
      range: { from: string; to: string };
      mode: "bounded" | "unbounded";
      periods: number;
      startEvent?: string;
      returnEvent?: string;
    }[] = [
      { period: "week", range: WEEKS, mode: "bounded", periods: 8 },
      { period: "week", range: WEEKS, mode: "unbounded", periods: 8 },
      { period: "week", range: CUT, mode: "bounded", periods: 8 },
      { period: "month", range: CUT, mode: "unbounded", periods: 3 },
      { period: "day", range: { from: "2025-12-01", to: "2025-12-31" }, mode: "bounded", periods: 14 },
      // 110 days: returns span two 64-period words, and offsets cross from one to the next.
      { period: "day", range: { from: "2025-10-13", to: "2026-01-30" }, mode: "bounded", periods: 100 },
      { period: "day", range: { from: "2025-10-13", to: "2026-01-30" }, mode: "unbounded", periods: 100 },
      { period: "month", range: { from: "2025-10-01", to: "2026-01-31" }, mode: "unbounded", periods: 4 },
      { period: "week", range: WEEKS, mode: "bounded", periods: 8, startEvent: "Signed Up" },
      { period: "week", range: WEEKS, mode: "unbounded", periods: 10, returnEvent: "Report Created" },
      {
        period: "week",
        range: WEEKS,
        mode: "bounded",
        periods: 6,
        startEvent: "Report Created",
        returnEvent: "Export",
      },
    ];
    for (const { label, who, params } of WHO) {
      for (const run of runs) {
        const events = {
          ...(run.startEvent ? { startEvent: run.startEvent } : {}),
          ...(run.returnEvent ? { returnEvent: run.returnEvent } : {}),
        };
        const actual = await getReport(server, "retention", {
          ...params,
          period: run.period,
          ...run.range,
          mode: run.mode,
          periods: run.periods,
          ...events,
        });
        const expected = ref.retention(who, {
          period: run.period,
          ...run.range,
          mode: run.mode,
          periods: run.periods,
          ...events,
        });
        differences(actual, expected, `retention ${label} ${JSON.stringify(run)}`, diffs);
      }
    }
    expect(diffs).toEqual([]);
  });

  it("funnel: three steps within three days, and a step repeated", async () => {
    const diffs: string[] = [];
    const runs: [string[], number, { from: string; to: string }][] = [
      [["Dashboard Viewed", "Report Created", "Export"], 3, WEEKS],
      [["Dashboard Viewed", "Report Created", "Export"], 3, CUT],
      // One message satisfies one step only: the second "Dashboard Viewed" must be another message.
      [["Dashboard Viewed", "Report Created", "Dashboard Viewed", "Export"], 7, WEEKS],
    ];
    for (const { label, who, params } of WHO) {
      for (const [steps, windowDays, range] of runs) {
        const actual = await postReport(server, "funnel", { ...params, steps, windowDays, ...range });
        const expected = ref.funnel(who, { steps, windowDays, ...range });
        differences(actual, expected, `funnel ${label} ${steps.length} steps ${range.from}`, diffs);
      }
    }
    expect(diffs).toEqual([]);
  });

  it("feature: use, adoption, return and the top users", async () => {
    const diffs: string[] = [];
    for (const { label, who, params } of WHO) {
      for (const [event, range] of [
        ["Report Created", WEEKS],
        ["Export", CUT],
      ] as const) {
        const actual = (await getReport(server, "feature", { ...params, event, ...range, adoptionThreshold: 3 })) as {
          top: Row[];
        };
        const expected = ref.feature(who, { event, ...range, adoptionThreshold: 3 });
        const path = `feature ${label} ${event} ${range.from}`;
        differences(withoutTop(actual, "top"), withoutTop(expected, "top"), path, diffs);
        diffs.push(...topDifferences(actual.top, expected.top, 50, "count", `${path} top`));
      }
    }
    expect(diffs).toEqual([]);
  });

  it("activation: two milestones, one needed twice", async () => {
    const diffs: string[] = [];
    const milestones = [
      { event: "Report Created", minCount: 2 },
      { event: "Invite Sent", minCount: 1 },
    ];
    for (const { label, who, params } of WHO) {
      for (const [period, range] of [
        ["week", WEEKS],
        ["month", MONTHS],
        ["week", CUT],
      ] as const) {
        const body = { milestones, windowDays: 14, ...range, period };
        const actual = await postReport(server, "activation", { ...params, ...body });
        differences(actual, ref.activation(who, body), `activation ${label} ${period}`, diffs);
      }
    }
    expect(diffs).toEqual([]);
  });

  it("lifecycle: daily, weekly and monthly", async () => {
    const diffs: string[] = [];
    for (const { label, who, params } of WHO) {
      for (const [period, range] of [
        ["week", WEEKS],
        ["month", MONTHS],
        ["week", CUT],
        // 110 days: the periods span two 64-period words, and a return crosses from one to the next.
        ["day", { from: "2025-10-13", to: "2026-01-30" }],
      ] as const) {
        const actual = await getReport(server, "lifecycle", { ...params, period, ...range });
        differences(actual, ref.lifecycle(who, { period, ...range }), `lifecycle ${label} ${period}`, diffs);
      }
    }
    expect(diffs).toEqual([]);
  });

  it("power: the histogram of active days and the most active", async () => {
    const diffs: string[] = [];
    for (const { label, who, params } of WHO) {
      for (const [days, date] of [
        [30, "2026-01-15"],
        [7, "2025-12-31"],
      ] as const) {
        const actual = (await getReport(server, "power", { ...params, days, date })) as { top: Row[] };
        const expected = ref.power(who, { days, date });
        const path = `power ${label} ${days} ${date}`;
        differences(withoutTop(actual, "top"), withoutTop(expected, "top"), path, diffs);
        diffs.push(...topDifferences(actual.top, expected.top, 50, "activeDays", `${path} top`));
      }
    }
    expect(diffs).toEqual([]);
  });

  it("slipping: active in the 30 days before the last 14, not since", async () => {
    const diffs: string[] = [];
    for (const { label, who, params } of WHO) {
      for (const [inactiveDays, date] of [
        [14, "2026-01-20"],
        [7, "2025-12-28"],
      ] as const) {
        const actual = (await getReport(server, "slipping", { ...params, inactiveDays, date, limit: 100 })) as {
          entities: Row[];
        };
        const expected = ref.slipping(who, { inactiveDays, date });
        const path = `slipping ${label} ${inactiveDays} ${date}`;
        differences(withoutTop(actual, "entities"), withoutTop(expected, "entities"), path, diffs);
        diffs.push(
          ...topDifferences(actual.entities, expected.entities, 100, "activeDaysInPrior30", `${path} entities`),
        );
      }
    }
    expect(diffs).toEqual([]);
  });
}

describe("reports against the reference, in UTC", () => {
  compareReports({ timeZone: "UTC" });
});

describe("reports against the reference, in America/Los_Angeles", () => {
  compareReports({ timeZone: "America/Los_Angeles" });
});

describe("reports against the reference, with system events", () => {
  compareReports({ timeZone: "Europe/Paris", systemEvents: ["Settings Changed", "Billing Viewed"] });
});

describe("invariants", () => {
  beforeAll(async () => {
    await setSettings(server, { systemEvents: [], timeZone: "UTC" });
  });
  const levels: { level: Level; params: Record<string, string> }[] = [
    { level: "user", params: { level: "user" } },
    { level: "company", params: { level: "company" } },
  ];
  type Series<T> = { series: ({ period: string } & T)[] };

  it("the dataset has the shape it was built for, and the server resolves the contested anonymousIds alike", async () => {
    const ref = new Reference(messages, { timeZone: "UTC" });
    const users = ref.activities({ level: "user" });
    const all = ref.activities({ level: "user", includeAnonymous: true });
    const stats = {
      activity: all.length,
      users: new Set(users.map((a) => a.entity)).size,
      visitors: new Set(all.filter((a) => a.entity.startsWith("visitor:")).map((a) => a.entity)).size,
      companies: new Set(ref.activities({ level: "company" }).map((a) => a.entity)).size,
      inSeveral: [...ref.memberships.values()].filter((m) => m.size > 1).length,
      duplicates: messages.length - ref.messages.length,
    };
    expect(stats.activity, JSON.stringify(stats)).toBeGreaterThan(3500);
    expect(stats.activity).toBeLessThan(5000);
    expect(stats.users).toBe(156);
    expect(stats.visitors).toBe(30);
    expect(stats.companies).toBe(15);
    expect(stats.inSeveral).toBeGreaterThan(10);
    expect(stats.duplicates).toBe(60);
    // Timestamp first, then receivedAt, whichever batch the links came in.
    const winners = [0, 1, 2, 3, 4].map((k) => ref.owner.get(`shared-${k}`));
    expect(winners).toEqual(["user-011", "user-021", "user-021", "user-021", "user-011"]);
    for (const [k, winner] of winners.entries()) {
      const profile = await query<{ id: string }>(server.url, `/api/v1/users/shared-${k}`);
      expect(profile.id, `shared-${k}`).toBe(winner);
    }
  });

  it("the new entities of a range add up to the entities first seen in it", async () => {
    const ref = new Reference(messages, { timeZone: "UTC" });
    for (const { level, params } of levels) {
      for (const interval of ["day", "week", "month"] as const) {
        const result = (await getReport(server, "new", { ...params, interval, ...CUT })) as Series<{ count: number }>;
        const total = result.series.reduce((s, row) => s + row.count, 0);
        const first = [...ref.firstSeen(ref.activities({ level })).values()];
        const inRange = first.filter((a) => a.day >= parseDay(CUT.from) && a.day <= parseDay(CUT.to));
        expect(total, `${level} ${interval}`).toBe(inRange.length);
      }
    }
  });

  it("retention at offset 0 is the whole cohort, and unbounded is never below bounded", async () => {
    type Retention = {
      cohorts: { period: string; size: number; counts: (number | null)[]; rates: (number | null)[] }[];
    };
    for (const { params } of levels) {
      const query = { ...params, period: "week", ...WEEKS, periods: 8 };
      const bounded = (await getReport(server, "retention", { ...query, mode: "bounded" })) as Retention;
      const unbounded = (await getReport(server, "retention", { ...query, mode: "unbounded" })) as Retention;
      expect(bounded.cohorts.length).toBeGreaterThan(0);
      expect(unbounded.cohorts.map((c) => [c.period, c.size])).toEqual(bounded.cohorts.map((c) => [c.period, c.size]));
      for (const [i, cohort] of bounded.cohorts.entries()) {
        expect(cohort.rates[0]).toBe(1);
        expect(cohort.counts[0]).toBe(cohort.size);
        const wide = unbounded.cohorts[i]?.counts ?? [];
        cohort.counts.forEach((n, k) => {
          if (n === null) expect(wide[k]).toBeNull();
          else expect(wide[k] as number).toBeGreaterThanOrEqual(n);
        });
      }
    }
  });

  it("funnel counts never grow from one step to the next", async () => {
    for (const { params } of levels) {
      const steps = ["Dashboard Viewed", "Report Created", "Export", "Invite Sent"];
      const result = (await postReport(server, "funnel", { ...params, steps, windowDays: 3, ...WEEKS })) as {
        steps: { count: number }[];
      };
      const counts = result.steps.map((s) => s.count);
      expect(counts[0]).toBeGreaterThan(0);
      for (let k = 1; k < counts.length; k++) expect(counts[k] as number).toBeLessThanOrEqual(counts[k - 1] as number);
    }
  });

  it("every day, mau ≥ wau ≥ dau", async () => {
    for (const { params } of levels) {
      const result = (await getReport(server, "active", { ...params, interval: "day", ...WEEKS })) as Series<{
        count: number;
        wau: number;
        mau: number;
      }>;
      for (const row of result.series) {
        expect(row.wau, row.period).toBeGreaterThanOrEqual(row.count);
        expect(row.mau, row.period).toBeGreaterThanOrEqual(row.wau);
      }
    }
  });

  it("the reference's median is the middle value, or the mean of the two middle ones", () => {
    expect(median([])).toBeNull();
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 10])).toBe(3.5);
  });
});
