/**
 * A seeded, reproducible B2B product-analytics dataset, and a loader that writes it through the DuckDB
 * engine exactly as ingestion does (so every derived table is built by production code).
 *
 *   node --import tsx bench/generate.ts [--events N] [--users N] [--companies N] [--visitors N]
 *     [--days N] [--seed N] [--dir DIR] [--dry-run] [--help]
 *
 * --dry-run generates the messages without storing them and prints the summary: the generator's own
 * speed.
 *
 * The same options and seed always give the same messages. The shape, with the defaults (10M
 * activity events, 50k users, 2k companies, 5k visitors, 180 days ending 2026-06-30T00:00:00Z):
 *
 * - Counting. `events` is the exact number of activity events (track and page calls). Identify and
 *   group calls come on top: one identify per user and one group call per membership, so the
 *   defaults store 10,000,000 + 50,000 + 59,047 = 10,109,047 messages.
 * - Companies. Sizes follow a Zipf law (weight 1/rank^0.9, ranks shuffled over the ids): the largest
 *   has 4,569 members, the 90th percentile 41, the median 11, the smallest 1; the 75 companies with
 *   100 or more members hold half of all memberships. Every company has at least one member. Each
 *   has a name, an industry, a plan (enterprise for the largest 2%, mostly free or starter for
 *   small ones), an integer employee count of a few times its member count, and a time zone that
 *   shifts its users' working hours.
 * - Memberships. A user belongs to one company (85%), two (12%) or three (3%); extra companies are
 *   drawn from the same Zipf law. One group call per membership, carrying the company's traits
 *   (name, industry, employees, plan): right after the identify for the first company, at the start
 *   of one of the user's active days for the others.
 * - Users. 30% existed before the window (createdAt up to two years earlier) and 70% sign up on a
 *   day spread uniformly over the window. Three tiers: power users (10%: active on 85% of weekdays,
 *   heaviest days), regulars (40%: 45% of weekdays) and occasional users (50%: 12% of weekdays);
 *   weekends have a quarter of the weekday odds. A per-user and a per-day log-normal factor vary the
 *   volume: the top 10% of users send 64% of the identified events, the median user 37, the busiest
 *   10,340. Users churn with a constant daily hazard per tier (expected lifetimes of about 500, 170
 *   and 70 days) and send nothing after. Every user is active on their first day (the signup day,
 *   or some day of the window for earlier users) and sends one identify there, before any other
 *   identified message, with traits email, name, plan and createdAt.
 * - Visitors. 10% of users (14% of those signing up in the window) first visit anonymously under an
 *   anonymousId: on 1-3 days in the two weeks before signup, then the first messages of the signup
 *   day, all anonymous; the identify that follows carries both ids and links them, and every later
 *   message of theirs carries both. Another `visitors` anonymousIds visit on 1-3 days and never
 *   sign up. Anonymous messages are mostly page calls and never carry a groupId.
 * - Activity. Each active user-day has 1-4 sessions starting in local working hours (8:00-19:00,
 *   peaking early afternoon, in the company's time zone), with exponential gaps (mean 40 s) between
 *   messages; a day's messages stay within its UTC day, so every timestamp is inside the window.
 *   The first message of a session is a page call, later ones are page calls 10% of the time and
 *   otherwise track events: pages are 24% of activity events. Track event names (`eventNames`, 30)
 *   follow a Zipf law with exponent 1.1: "Dashboard Viewed" is 29% of track events, the rarest 0.7%.
 *   20% of identified track events carry context.groupId: the user's first company 70% of the time,
 *   else one of the others (always the first, for single-company users).
 * - Fields. messageIds are UUID-shaped, random but for a 12-hex-digit serial, so unique. timestamp
 *   = originalTimestamp, sentAt is null (no clock-skew correction), receivedAt = timestamp + 30 ms
 *   plus an exponential delay (mean 400 ms, at most 10 s). properties, traits and context are JSON
 *   values, as the normaliser hands them to the engine (context holds library, ip, locale, timezone,
 *   userAgent, page for page calls, groupId when attributed); integrations and extra are null.
 * - Order. Messages come day by day in timestamp order, as a live workspace would send them, in
 *   batches of `batchSize` (10k) messages.
 *
 * loadDataset() caches a finished load in bench/.data/<name> with a marker file of its options, the
 * generator's version and the schema version; a later call with the same ones reuses it, and one
 * stored by an earlier schema only is migrated in place by opening the engine on it.
 */

import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { DEFAULTS } from "../src/config/index.js";
import { DATABASE_FILE, DuckDBEngine } from "../src/storage/duckdb/engine.js";
import { MIGRATIONS } from "../src/storage/duckdb/migrations.js";
import type { StoredMessage } from "../src/storage/types.js";
import { runMain } from "./common.js";
import { headerComment } from "./usage.js";

export interface DatasetOptions {
  seed: number;
  /** Activity events (track and page calls), exactly; identify and group calls come on top. */
  events: number;
  users: number;
  companies: number;
  /** Anonymous visitors that never sign up. */
  visitors: number;
  days: number;
  /** Distinct track event names. */
  eventNames: number;
  /** Exclusive end of the window. */
  end: Date;
  workspaceId: string;
  /** Messages per yielded batch. */
  batchSize: number;
}

export const DEFAULT_DATASET: Readonly<DatasetOptions> = Object.freeze({
  seed: 1,
  events: 10_000_000,
  users: 50_000,
  companies: 2_000,
  visitors: 5_000,
  days: 180,
  eventNames: 30,
  end: new Date("2026-06-30T00:00:00Z"),
  workspaceId: "bench",
  batchSize: 10_000,
});

const DAY_MS = 86_400_000;

// ---------------------------------------------------------------------------------------------
// Seeded randomness

/** 32-bit avalanche mix (the splitmix32 finaliser), to turn small related seeds into unrelated states. */
function mix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** sfc32: small, fast, 128 bits of state, so streams seeded from different keys do not overlap in practice. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** A stream for a seed and any number of stream keys (a day, a purpose). */
  constructor(...keys: number[]) {
    let h = 0x2545f491;
    for (const k of keys) h = mix32(h ^ mix32(k));
    this.a = mix32(h ^ 1);
    this.b = mix32(h ^ 2);
    this.c = mix32(h ^ 3);
    this.d = 1;
    for (let i = 0; i < 15; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.u32() / 4294967296;
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** Log-normal with mean 1. */
  logNormal(sigma: number): number {
    return Math.exp(sigma * this.normal() - (sigma * sigma) / 2);
  }

  exponential(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }

  /** Trials before the first success, each succeeding with probability p. */
  geometric(p: number): number {
    return Math.floor(Math.log(1 - this.next()) / Math.log(1 - p));
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j] as T, items[i] as T];
    }
    return items;
  }
}

/** Draws indices in proportion to fixed weights. */
class Weighted {
  private readonly cumulative: Float64Array;

  constructor(weights: readonly number[]) {
    this.cumulative = new Float64Array(weights.length);
    let sum = 0;
    for (const [i, w] of weights.entries()) {
      sum += w;
      this.cumulative[i] = sum;
    }
  }

  pick(rng: Rng): number {
    const target = rng.next() * (this.cumulative[this.cumulative.length - 1] ?? 0);
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.cumulative[mid] ?? 0) <= target) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

function zipf(n: number, exponent: number): number[] {
  return Array.from({ length: n }, (_, i) => 1 / (i + 1) ** exponent);
}

// ---------------------------------------------------------------------------------------------
// Vocabulary

const TRACK_EVENTS = [
  "Dashboard Viewed",
  "Report Viewed",
  "Search Performed",
  "Item Created",
  "Item Updated",
  "Comment Added",
  "Filter Applied",
  "Notification Opened",
  "Task Completed",
  "File Uploaded",
  "Project Created",
  "Export Downloaded",
  "Chart Created",
  "Member Invited",
  "Template Used",
  "Report Shared",
  "Automation Created",
  "Alert Configured",
  "Integration Connected",
  "Dashboard Created",
  "Import Started",
  "Import Completed",
  "Settings Updated",
  "API Key Created",
  "Plan Upgraded",
  "Webhook Created",
  "Custom Field Added",
  "SSO Configured",
  "Audit Log Viewed",
  "Data Deleted",
  "Goal Created",
  "Survey Answered",
  "Role Changed",
  "Plan Downgraded",
  "Workspace Deleted",
];

type Page = readonly [name: string, path: string, category: string];

/** Page name, path and section; the first few are the most visited. */
const PAGES: readonly Page[] = [
  ["Dashboard", "/dashboard", "App"],
  ["Projects", "/projects", "App"],
  ["Project", "/projects/:id", "App"],
  ["Reports", "/reports", "App"],
  ["Report", "/reports/:id", "App"],
  ["Search", "/search", "App"],
  ["Team", "/settings/team", "Settings"],
  ["Settings", "/settings", "Settings"],
  ["Integrations", "/settings/integrations", "Settings"],
  ["Billing", "/settings/billing", "Settings"],
  ["Docs", "/docs", "Marketing"],
  ["Pricing", "/pricing", "Marketing"],
];
/** Anonymous visitors see the marketing site. */
const VISITOR_PAGES: readonly Page[] = [
  ["Home", "/", "Marketing"],
  ["Pricing", "/pricing", "Marketing"],
  ["Docs", "/docs", "Marketing"],
  ["Customers", "/customers", "Marketing"],
  ["Blog", "/blog", "Marketing"],
  ["Sign Up", "/signup", "Marketing"],
];
const VISITOR_EVENTS = ["CTA Clicked", "Demo Requested", "Signup Started"];

const INDUSTRIES = [
  "Software",
  "Financial Services",
  "Healthcare",
  "E-commerce",
  "Education",
  "Media",
  "Manufacturing",
  "Logistics",
  "Real Estate",
  "Consulting",
  "Travel",
  "Energy",
];
const NAME_HEADS =
  "Acme Blue Bright Cedar Cobalt Delta Ember Falcon Granite Harbor Iron Juniper Kite Lumen Maple Nimbus Oak Pioneer Quartz River Summit Terra Umbra Vector Willow Zenith".split(
    " ",
  );
const NAME_TAILS =
  "Labs Systems Analytics Works Software Health Capital Logistics Media Cloud Robotics Studio Partners Foods Energy Learning".split(
    " ",
  );
const FIRST_NAMES =
  "Ada Ben Chloe David Elena Farid Grace Hugo Ines Jonas Kira Liam Maya Noah Olivia Pablo Quinn Rosa Sam Tara Umar Vera Wei Yuki Zoe".split(
    " ",
  );
const LAST_NAMES =
  "Adams Bauer Chen Diaz Evans Fischer Garcia Haddad Ito Jensen Kim Lopez Martin Nguyen Okafor Patel Rossi Silva Tanaka Weber".split(
    " ",
  );
/** IANA zone, its standard offset in hours (the generator ignores daylight saving), and how common it is. */
const ZONES: readonly (readonly [string, number, number])[] = [
  ["America/Los_Angeles", -8, 4],
  ["America/New_York", -5, 6],
  ["America/Sao_Paulo", -3, 1],
  ["Europe/London", 0, 3],
  ["Europe/Berlin", 1, 4],
  ["Europe/Paris", 1, 2],
  ["Asia/Kolkata", 5.5, 1],
  ["Asia/Singapore", 8, 1],
  ["Australia/Sydney", 10, 1],
];
const USER_AGENTS = [
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
];
const SOURCES = ["web", "web", "web", "api", "mobile"];

function trackEventNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => TRACK_EVENTS[i] ?? `Feature ${i + 1} Used`);
}

// ---------------------------------------------------------------------------------------------
// The plan: who exists, who belongs where, and how many activity events each active user-day has

const TIERS = [
  // share of users, weekday activity odds, relative volume of an active day, daily churn hazard
  { share: 0.1, active: 0.85, volume: 4, churn: 0.002 },
  { share: 0.4, active: 0.45, volume: 1.5, churn: 0.006 },
  { share: 0.5, active: 0.12, volume: 0.7, churn: 0.015 },
] as const;
const WEEKEND_FACTOR = 0.25;
const PRE_EXISTING_SHARE = 0.3;
const ANONYMOUS_START_SHARE = 0.1 / (1 - PRE_EXISTING_SHARE);
const GROUP_CONTEXT_SHARE = 0.2;

/** The user-day is before signup: every message anonymous. */
const F_ANON = 1;
/** The actor's first day: never dropped when thinning. */
const F_FIRST = 2;
/** The user's identify (and first group call) happen on this day. */
const F_IDENTIFY = 4;

interface Company {
  id: string;
  name: string;
  industry: string;
  plan: string;
  employees: number;
  zone: string;
  offsetHours: number;
  /** Group call traits as JSON text. */
  /** Group call traits; shared by the company's group calls. */
  traits: Record<string, unknown>;
}

interface Actor {
  /** null for a visitor who never signs up. */
  userId: string | null;
  anonymousId: string | null;
  /** Company indices; the first is the main one. Empty for visitors. */
  companies: number[];
  offsetHours: number;
  identifyTraits: Record<string, unknown> | null;
  email: string | null;
  /** The context every message of the actor carries; page calls add page, attributed events groupId. */
  context: Record<string, unknown>;
  /** Entry index (in the day-sorted plan) of the days with extra group calls, with their companies. */
  extraGroups: Map<number, number[]>;
}

export interface DatasetSummary {
  /** Activity events (track and page calls). */
  events: number;
  identifies: number;
  groups: number;
  /** Every message: events + identifies + groups. */
  messages: number;
  activeUserDays: number;
  windowStart: string;
  windowEnd: string;
}

interface Plan {
  options: DatasetOptions;
  windowStart: number;
  companies: Company[];
  actors: Actor[];
  /** Per entry (an actor's active day), sorted by day. */
  entryActor: Int32Array;
  entryCount: Int32Array;
  entryFlags: Uint8Array;
  /** Entries of day d are dayStart[d] .. dayStart[d + 1] - 1. */
  dayStart: Int32Array;
  summary: DatasetSummary;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

export function userIdOf(index: number, options: Pick<DatasetOptions, "users">): string {
  return `user-${pad(index + 1, String(options.users).length)}`;
}

export function companyIdOf(index: number, options: Pick<DatasetOptions, "companies">): string {
  return `company-${pad(index + 1, String(options.companies).length)}`;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function hex4(x: number): string {
  return `${HEX[(x >>> 8) & 255]}${HEX[x & 255]}`;
}

function hex8(x: number): string {
  return `${hex4(x >>> 16)}${hex4(x)}`;
}

/** A version-4 UUID whose last 12 hex digits are a serial number, so that the ids are unique. */
function uuid(rng: Rng, serial: number): string {
  const a = rng.u32();
  const b = rng.u32();
  const tail = `${hex4(Math.floor(serial / 2 ** 32))}${hex8(serial >>> 0)}`;
  return `${hex8(a)}-${hex4(b >>> 16)}-4${hex4(b).slice(1)}-${hex4((rng.u32() & 0x3fff) | 0x8000)}-${tail}`;
}

function slug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, "");
}

function makeCompanies(options: DatasetOptions, rng: Rng, sizes: number[]): Company[] {
  const zoneOdds = new Weighted(ZONES.map((z) => z[2]));
  const taken = new Set<string>();
  const bySize = [...sizes.keys()].sort((a, b) => (sizes[b] ?? 0) - (sizes[a] ?? 0));
  const rankOf = new Int32Array(sizes.length);
  for (const [rank, c] of bySize.entries()) rankOf[c] = rank;
  return sizes.map((members, c) => {
    let name = `${rng.pick(NAME_HEADS)} ${rng.pick(NAME_TAILS)}`;
    for (let n = 2; taken.has(name); n++) name = `${name.replace(/ \d+$/, "")} ${n}`;
    taken.add(name);
    const rank = (rankOf[c] ?? 0) / sizes.length;
    const plan =
      rank < 0.02
        ? "enterprise"
        : rank < 0.15
          ? rng.pick(["enterprise", "pro", "pro"])
          : rng.pick(["pro", "starter", "starter", "free", "free"]);
    const employees = Math.max(2, Math.round(members * (2 + rng.exponential(6))));
    const zone = ZONES[zoneOdds.pick(rng)] ?? ZONES[0];
    const industry = rng.pick(INDUSTRIES);
    const id = companyIdOf(c, options);
    return {
      id,
      name,
      industry,
      plan,
      employees,
      zone: zone?.[0] ?? "UTC",
      offsetHours: zone?.[1] ?? 0,
      traits: { name, industry, employees, plan },
    };
  });
}

function makePlan(options: DatasetOptions): Plan {
  const { users, companies: companyCount, visitors, days, events } = options;
  if (users < companyCount) throw new Error("users must be at least companies: every company has a member");
  const windowStart = options.end.getTime() - days * DAY_MS;
  const rng = new Rng(options.seed, 0xc0ffee);

  // Zipf-sized companies, the ranks shuffled over the ids.
  const companyOdds = new Weighted(rng.shuffle(zipf(companyCount, 0.9)));
  const mainCompany = new Int32Array(users);
  const sizes = new Array<number>(companyCount).fill(0);
  for (let u = 0; u < users; u++) {
    const c = u < companyCount ? u : companyOdds.pick(rng);
    mainCompany[u] = c;
    sizes[c] = (sizes[c] ?? 0) + 1;
  }
  const extra: number[][] = [];
  for (let u = 0; u < users; u++) {
    const r = rng.next();
    const want = r < 0.03 ? 2 : r < 0.15 ? 1 : 0;
    const mine = [mainCompany[u] as number];
    for (let tries = 0; mine.length < 1 + want && tries < 20; tries++) {
      const c = companyOdds.pick(rng);
      if (!mine.includes(c)) mine.push(c);
    }
    extra.push(mine);
    for (const c of mine.slice(1)) sizes[c] = (sizes[c] ?? 0) + 1;
  }
  const companies = makeCompanies(options, rng, sizes);

  // Actors, and the days each is active with a relative volume.
  const actors: Actor[] = [];
  let entryDay: number[] = [];
  let entryActor: number[] = [];
  let entryWeight: number[] = [];
  let entryFlags: number[] = [];
  const tierOdds = new Weighted(TIERS.map((t) => t.share));
  const zoneOdds = new Weighted(ZONES.map((z) => z[2]));
  const emails = new Set<string>();
  const weekend = (d: number) => {
    const dow = new Date(windowStart + d * DAY_MS).getUTCDay();
    return dow === 0 || dow === 6;
  };
  const anonymousDays = (actor: number, from: number, to: number, first: boolean) => {
    const want = 1 + rng.int(3);
    const chosen = new Set<number>();
    for (let i = 0; i < want && to > from; i++) chosen.add(from + rng.int(to - from));
    for (const [i, d] of [...chosen].sort((a, b) => a - b).entries()) {
      entryDay.push(d);
      entryActor.push(actor);
      entryWeight.push(0.4 * rng.logNormal(0.5));
      entryFlags.push(F_ANON | (first && i === 0 ? F_FIRST : 0));
    }
  };

  for (let u = 0; u < users; u++) {
    const tier = TIERS[tierOdds.pick(rng)] ?? TIERS[2];
    const preExisting = rng.chance(PRE_EXISTING_SHARE);
    const signupDay = preExisting ? 0 : rng.int(days);
    const createdAt = preExisting
      ? windowStart - (1 + rng.int(730)) * DAY_MS - rng.int(DAY_MS)
      : windowStart + signupDay * DAY_MS + rng.int(DAY_MS);
    const lastDay = Math.min(days, signupDay + 1 + rng.geometric(tier.churn));
    const mine = extra[u] as number[];
    const main = companies[mine[0] as number] as Company;
    const first = rng.pick(FIRST_NAMES);
    const last = rng.pick(LAST_NAMES);
    let email = `${first}.${last}@${slug(main.name)}.example`.toLowerCase();
    for (let n = 2; emails.has(email); n++) email = `${first}.${last}${n}@${slug(main.name)}.example`.toLowerCase();
    emails.add(email);
    const anonymousStart = !preExisting && rng.chance(ANONYMOUS_START_SHARE);
    const anonymousId = anonymousStart ? uuid(rng, 0x800000000000 + u) : null;
    const plan = main.plan === "enterprise" || rng.chance(0.9) ? main.plan : "free";
    const userId = userIdOf(u, options);
    actors.push({
      userId,
      anonymousId,
      companies: mine,
      offsetHours: main.offsetHours,
      identifyTraits: {
        email,
        name: `${first} ${last}`,
        plan,
        createdAt: new Date(createdAt).toISOString(),
      },
      email,
      context: contextOf(rng, main.zone),
      extraGroups: new Map(),
    });
    if (anonymousStart) anonymousDays(u, Math.max(0, signupDay - 14), signupDay, true);
    const volume = tier.volume * rng.logNormal(0.6);
    let firstDay = -1;
    for (let d = signupDay; d < lastDay; d++) {
      const isFirst = d === signupDay && !preExisting;
      if (!isFirst && !rng.chance(tier.active * (weekend(d) ? WEEKEND_FACTOR : 1))) continue;
      if (firstDay < 0) firstDay = d;
      entryDay.push(d);
      entryActor.push(u);
      entryWeight.push(volume * rng.logNormal(0.6));
      entryFlags.push(firstDay === d ? F_FIRST | F_IDENTIFY : 0);
    }
    if (firstDay < 0) {
      // An earlier user who churns before a day of activity by chance still shows up once.
      entryDay.push(rng.int(lastDay));
      entryActor.push(u);
      entryWeight.push(volume * rng.logNormal(0.6));
      entryFlags.push(F_FIRST | F_IDENTIFY);
    }
  }
  for (let v = 0; v < visitors; v++) {
    const actor = actors.length;
    const zone = ZONES[zoneOdds.pick(rng)] ?? ZONES[0];
    actors.push({
      userId: null,
      anonymousId: uuid(rng, 0x900000000000 + v),
      companies: [],
      offsetHours: zone?.[1] ?? 0,
      identifyTraits: null,
      email: null,
      context: contextOf(rng, zone?.[0] ?? "UTC"),
      extraGroups: new Map(),
    });
    const from = rng.int(days);
    anonymousDays(actor, from, Math.min(days, from + 14), true);
  }

  // Small datasets: keep the first days and thin out the others so that each day has a few events.
  const forced = entryFlags.filter((f) => (f & F_FIRST) !== 0).length;
  if (forced > events) throw new Error(`events must be at least ${forced} for this many users and visitors`);
  const budget = Math.max(forced, Math.floor(events / 2));
  if (entryDay.length > budget) {
    const keep = (budget - forced) / (entryDay.length - forced);
    const kept = entryFlags.map((f) => (f & F_FIRST) !== 0 || rng.chance(keep));
    const filter = <T>(xs: T[]) => xs.filter((_, i) => kept[i]);
    entryDay = filter(entryDay);
    entryActor = filter(entryActor);
    entryWeight = filter(entryWeight);
    entryFlags = filter(entryFlags);
  }

  // Exactly `events` activity events: one per active day, the rest in proportion to the weights.
  const n = entryDay.length;
  const rest = events - n;
  const total = entryWeight.reduce((a, b) => a + b, 0);
  const counts = new Int32Array(n);
  let cumulative = 0;
  let given = 0;
  for (let i = 0; i < n; i++) {
    cumulative += entryWeight[i] as number;
    const upTo = i === n - 1 ? rest : Math.min(rest, Math.floor((rest * cumulative) / total));
    counts[i] = 1 + upTo - given;
    given = upTo;
  }

  // Sort the entries by day (stable, so each day keeps actor order).
  const dayStart = new Int32Array(days + 1);
  for (const d of entryDay) dayStart[d + 1] = (dayStart[d + 1] ?? 0) + 1;
  for (let d = 0; d < days; d++) dayStart[d + 1] = (dayStart[d + 1] ?? 0) + (dayStart[d] ?? 0);
  const next = dayStart.slice(0, days);
  const sortedActor = new Int32Array(n);
  const sortedCount = new Int32Array(n);
  const sortedFlags = new Uint8Array(n);
  const entriesOf: number[][] = actors.map(() => []);
  for (let i = 0; i < n; i++) {
    const d = entryDay[i] as number;
    const at = next[d] as number;
    next[d] = at + 1;
    sortedActor[at] = entryActor[i] as number;
    sortedCount[at] = counts[i] as number;
    sortedFlags[at] = entryFlags[i] as number;
    entriesOf[entryActor[i] as number]?.push(at);
  }

  // Extra memberships: a group call at the start of one of the user's identified days.
  let groups = 0;
  for (let u = 0; u < users; u++) {
    const actor = actors[u] as Actor;
    groups += actor.companies.length;
    const identified = (entriesOf[u] ?? []).filter((at) => ((sortedFlags[at] as number) & F_ANON) === 0);
    for (const c of actor.companies.slice(1)) {
      const at = rng.pick(identified);
      const list = actor.extraGroups.get(at) ?? [];
      list.push(c);
      actor.extraGroups.set(at, list);
    }
  }

  return {
    options,
    windowStart,
    companies,
    actors,
    entryActor: sortedActor,
    entryCount: sortedCount,
    entryFlags: sortedFlags,
    dayStart,
    summary: {
      events,
      identifies: users,
      groups,
      messages: events + users + groups,
      activeUserDays: n,
      windowStart: new Date(windowStart).toISOString(),
      windowEnd: options.end.toISOString(),
    },
  };
}

const LIBRARY = Object.freeze({ name: "analytics.js", version: "5.2.0" });

function contextOf(rng: Rng, zone: string): Record<string, unknown> {
  const ip = `${10 + rng.int(200)}.${rng.int(256)}.${rng.int(256)}.${1 + rng.int(254)}`;
  const locale = rng.pick(["en-US", "en-US", "en-GB", "de-DE", "fr-FR", "es-ES"]);
  return { library: LIBRARY, ip, locale, timezone: zone, userAgent: rng.pick(USER_AGENTS) };
}

// ---------------------------------------------------------------------------------------------
// Messages

/** Kinds of a day's skeleton entries; a company index (0 or more) means a group call for it. */
const K_ANON = -1;
const K_EVENT = -2;
const K_IDENTIFY = -3;
/** A day's entries are sorted on time * 2^24 + position, exact in a double while both fit. */
const POSITION_BITS = 2 ** 24;

/** Growable typed arrays for one day's skeleton: who sends what, when. */
class Skeleton {
  length = 0;
  time = new Int32Array(1 << 16);
  actor = new Int32Array(1 << 16);
  kind = new Int32Array(1 << 16);
  sessionStart = new Uint8Array(1 << 16);

  push(time: number, actor: number, kind: number, sessionStart: boolean): void {
    if (this.length === this.time.length) {
      const grow = <T extends Int32Array | Uint8Array>(from: T, to: T) => {
        to.set(from);
        return to;
      };
      const size = this.length * 2;
      this.time = grow(this.time, new Int32Array(size));
      this.actor = grow(this.actor, new Int32Array(size));
      this.kind = grow(this.kind, new Int32Array(size));
      this.sessionStart = grow(this.sessionStart, new Uint8Array(size));
    }
    const i = this.length++;
    this.time[i] = time;
    this.actor[i] = actor;
    this.kind[i] = kind;
    this.sessionStart[i] = sessionStart ? 1 : 0;
  }
}

/**
 * Writes the messages of one day at a time. The day's skeleton (times, actors, kinds) is drawn first
 * and sorted; the messages are then built in timestamp order from a second random stream, so that
 * only a batch of message objects is alive at once.
 */
class DayWriter {
  private readonly trackOdds: Weighted;
  private readonly trackNames: string[];
  private readonly pageOdds = new Weighted(zipf(PAGES.length, 1));
  private readonly skeleton = new Skeleton();
  private serial = 0;

  constructor(private readonly plan: Plan) {
    this.trackNames = trackEventNames(plan.options.eventNames);
    this.trackOdds = new Weighted(zipf(this.trackNames.length, 1.1));
  }

  /** The day's messages, in timestamp order (ties in the order they were drawn). */
  *day(d: number): Generator<StoredMessage> {
    const { plan, skeleton } = this;
    const rng = new Rng(plan.options.seed, 0xda7, d);
    skeleton.length = 0;
    const from = plan.dayStart[d] as number;
    const to = plan.dayStart[d + 1] as number;
    for (let at = from; at < to; at++) this.actorDay(rng, at);
    const n = skeleton.length;
    if (n >= POSITION_BITS) throw new Error(`day ${d} has ${n} messages; at most ${POSITION_BITS - 1} are supported`);
    const order = new Float64Array(n);
    for (let i = 0; i < n; i++) order[i] = (skeleton.time[i] as number) * POSITION_BITS + i;
    order.sort();
    const content = new Rng(plan.options.seed, 0xc0de, d);
    const dayStart = plan.windowStart + d * DAY_MS;
    for (let k = 0; k < n; k++) {
      const i = (order[k] as number) % POSITION_BITS;
      yield this.message(
        content,
        plan.actors[skeleton.actor[i] as number] as Actor,
        skeleton.kind[i] as number,
        dayStart + (skeleton.time[i] as number),
        skeleton.sessionStart[i] === 1,
      );
    }
  }

  private actorDay(rng: Rng, at: number): void {
    const { plan } = this;
    const actorIndex = plan.entryActor[at] as number;
    const actor = plan.actors[actorIndex] as Actor;
    const count = plan.entryCount[at] as number;
    const flags = plan.entryFlags[at] as number;
    const kinds: number[] = [];
    for (const company of actor.extraGroups.get(at) ?? []) kinds.push(company);
    if ((flags & F_ANON) !== 0) {
      for (let i = 0; i < count; i++) kinds.push(K_ANON);
    } else if ((flags & F_IDENTIFY) !== 0) {
      const anonymous = actor.anonymousId === null ? 0 : Math.min(count - 1, 1 + rng.int(3));
      for (let i = 0; i < anonymous; i++) kinds.push(K_ANON);
      kinds.push(K_IDENTIFY, actor.companies[0] as number);
      for (let i = anonymous; i < count; i++) kinds.push(K_EVENT);
    } else {
      for (let i = 0; i < count; i++) kinds.push(K_EVENT);
    }
    this.times(rng, actor, kinds, actorIndex);
  }

  /**
   * Pushes increasing times (ms into day d) for one actor's messages: 1-4 sessions starting in local
   * working hours, exponential gaps within a session, all inside the UTC day.
   */
  private times(rng: Rng, actor: Actor, kinds: number[], actorIndex: number): void {
    const n = kinds.length;
    const sessions = 1 + rng.int(Math.min(4, Math.ceil(n / 5)));
    const starts: number[] = [];
    for (let s = 0; s < sessions; s++) {
      const localHour = 8 + 11 * ((rng.next() + rng.next()) / 2);
      const utcHour = (((localHour - actor.offsetHours) % 24) + 24) % 24;
      starts.push(Math.floor(utcHour * 3_600_000));
    }
    starts.sort((a, b) => a - b);
    const times = new Array<number>(n);
    const sessionStarts = new Array<boolean>(n);
    let t = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const session = Math.floor((i * sessions) / n);
      const gap = Math.min(15 * 60_000, 1000 + rng.exponential(40_000));
      sessionStarts[i] = i === 0 || Math.floor(((i - 1) * sessions) / n) !== session;
      t = sessionStarts[i] ? Math.max(starts[session] as number, t + gap) : t + gap;
      times[i] = Math.floor(t);
    }
    // Squeeze the messages when they would run past midnight.
    const first = times[0] as number;
    const last = times[n - 1] as number;
    if (last >= DAY_MS) {
      const base = Math.min(first, DAY_MS - 60_000);
      const room = DAY_MS - 1 - base;
      for (let i = 0; i < n; i++) {
        times[i] = base + Math.floor((((times[i] as number) - first) * room) / Math.max(1, last - first));
      }
    }
    for (let i = 0; i < n; i++) {
      this.skeleton.push(times[i] as number, actorIndex, kinds[i] as number, sessionStarts[i] as boolean);
    }
  }

  private message(rng: Rng, actor: Actor, kind: number, ts: number, sessionStart: boolean): StoredMessage {
    const { plan } = this;
    const messageId = uuid(rng, this.serial++);
    const receivedAt = ts + 30 + Math.min(10_000, Math.floor(rng.exponential(400)));
    const anonymous = kind === K_ANON;
    const userId = anonymous ? null : actor.userId;
    if (kind === K_IDENTIFY) {
      return row(
        plan,
        messageId,
        "identify",
        null,
        null,
        null,
        actor,
        userId,
        null,
        null,
        actor.email,
        ts,
        receivedAt,
        {
          properties: null,
          traits: actor.identifyTraits,
          context: actor.context,
        },
      );
    }
    if (kind >= 0) {
      const company = plan.companies[kind] as Company;
      return row(plan, messageId, "group", null, null, null, actor, userId, company.id, null, null, ts, receivedAt, {
        properties: null,
        traits: company.traits,
        context: actor.context,
      });
    }
    if (sessionStart || rng.chance(anonymous ? 0.7 : 0.1)) {
      const [name, pagePath, category] = anonymous ? rng.pick(VISITOR_PAGES) : (PAGES[this.pageOdds.pick(rng)] as Page);
      const url = `https://app.example.com${pagePath.replace(":id", String(1 + rng.int(500)))}`;
      const referrer = sessionStart ? rng.pick(REFERRERS) : "";
      const page = { path: pagePath, url, title: `${name} | Example`, referrer };
      return row(plan, messageId, "page", null, name, category, actor, userId, null, null, null, ts, receivedAt, {
        properties: page,
        traits: null,
        context: { ...actor.context, page },
      });
    }
    const event = anonymous ? rng.pick(VISITOR_EVENTS) : (this.trackNames[this.trackOdds.pick(rng)] as string);
    let groupId: string | null = null;
    if (!anonymous && rng.chance(GROUP_CONTEXT_SHARE)) {
      const c =
        actor.companies.length === 1 || rng.chance(0.7) ? actor.companies[0] : rng.pick(actor.companies.slice(1));
      groupId = (plan.companies[c as number] as Company).id;
    }
    const properties = { source: rng.pick(SOURCES), itemId: `itm_${hex8(rng.u32())}`, count: 1 + rng.int(20) };
    return row(plan, messageId, "track", event, null, null, actor, userId, null, groupId, null, ts, receivedAt, {
      properties,
      traits: null,
      context: groupId === null ? actor.context : { ...actor.context, groupId },
    });
  }
}

const REFERRERS = ["https://www.google.com/", "", "https://news.ycombinator.com/", ""];

/** One stored message; every message is built here so that all share one object shape. */
function row(
  plan: Plan,
  messageId: string,
  type: StoredMessage["type"],
  event: string | null,
  name: string | null,
  category: string | null,
  actor: Actor,
  userId: string | null,
  groupId: string | null,
  contextGroupId: string | null,
  email: string | null,
  timestamp: number,
  receivedAt: number,
  json: { properties: Record<string, unknown> | null; traits: Record<string, unknown> | null; context: object },
): StoredMessage {
  return {
    workspaceId: plan.options.workspaceId,
    messageId,
    type,
    event,
    name,
    category,
    userId,
    anonymousId: actor.anonymousId,
    groupId,
    contextGroupId,
    previousId: null,
    email,
    timestamp,
    originalTimestamp: timestamp,
    sentAt: null,
    receivedAt,
    properties: json.properties,
    traits: json.traits,
    context: json.context,
    integrations: null,
    extra: null,
  };
}

export interface Dataset extends Iterable<StoredMessage[]> {
  readonly options: DatasetOptions;
  readonly summary: DatasetSummary;
  readonly userIds: readonly string[];
  readonly companyIds: readonly string[];
  /** Members per company id, from the plan (group calls made them members). */
  readonly companySizes: ReadonlyMap<string, number>;
}

export function datasetOptions(options: Partial<DatasetOptions> = {}): DatasetOptions {
  return { ...DEFAULT_DATASET, ...options };
}

/** The dataset for these options: plan now, messages as the batches are iterated. */
export function generateDataset(options: Partial<DatasetOptions> = {}): Dataset {
  const full = datasetOptions(options);
  const plan = makePlan(full);
  const sizes = new Map<string, number>();
  for (const actor of plan.actors) {
    for (const c of actor.companies) {
      const id = (plan.companies[c] as Company).id;
      sizes.set(id, (sizes.get(id) ?? 0) + 1);
    }
  }
  return {
    options: full,
    summary: plan.summary,
    userIds: Array.from({ length: full.users }, (_, u) => userIdOf(u, full)),
    companyIds: plan.companies.map((c) => c.id),
    companySizes: sizes,
    *[Symbol.iterator]() {
      const writer = new DayWriter(plan);
      let batch: StoredMessage[] = [];
      for (let d = 0; d < full.days; d++) {
        for (const message of writer.day(d)) {
          batch.push(message);
          if (batch.length === full.batchSize) {
            yield batch;
            batch = [];
          }
        }
      }
      if (batch.length > 0) yield batch;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Loading

/** Written into the data directory once a load has finished. */
export const MARKER_FILE = "dataset.json";

interface Marker {
  options: Record<string, unknown>;
  summary: DatasetSummary;
  loadMs: number;
  finishedAt: string;
}

export interface LoadResult {
  dataDir: string;
  /** The directory already held this dataset. */
  cached: boolean;
  summary: DatasetSummary;
  /** Time of the load that built the directory. */
  loadMs: number;
}

/** The cache directory for a named dataset: bench/.data/<name>. */
export function datasetDir(name: string): string {
  return path.join(import.meta.dirname, ".data", name);
}

/** The cache directory of a dataset: bench/.data/default for the defaults, else one named after the options. */
export function defaultDatasetDir(options: Partial<DatasetOptions> = {}): string {
  const full = markerOptions(datasetOptions(options));
  const same = JSON.stringify(full) === JSON.stringify(markerOptions(datasetOptions()));
  if (same) return datasetDir("default");
  const hash = createHash("sha256").update(JSON.stringify(full)).digest("hex").slice(0, 10);
  return datasetDir(`${full.events}-events-${hash}`);
}

/** Bumped whenever the generator's output changes, so that cached datasets are rebuilt. */
const GENERATOR_VERSION = 3;

/** What a cached dataset must match: the options, the generator and the database schema that stored it. */
function markerOptions(options: DatasetOptions): Record<string, unknown> {
  const schema = Math.max(...MIGRATIONS.map((m) => m.version));
  return { ...options, end: options.end.toISOString(), generator: GENERATOR_VERSION, schema };
}

/** Whether a cached dataset's options differ from `wanted` only by an earlier schema version. */
function olderSchemaOnly(found: Record<string, unknown>, wanted: Record<string, unknown>): boolean {
  const { schema: foundSchema, ...foundRest } = found;
  const { schema: wantedSchema, ...wantedRest } = wanted;
  return (
    typeof foundSchema === "number" &&
    typeof wantedSchema === "number" &&
    foundSchema < wantedSchema &&
    JSON.stringify(foundRest) === JSON.stringify(wantedRest)
  );
}

function readMarker(dataDir: string): Marker | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(dataDir, MARKER_FILE), "utf8")) as Marker;
  } catch {
    return null;
  }
}

/** The engine that loads a dataset, with the server's default limits. */
async function openLoader(dataDir: string): Promise<DuckDBEngine> {
  const engine = new DuckDBEngine({
    dataDir,
    maxQueuedRows: DEFAULTS.maxQueuedRows,
    maxCommitRows: DEFAULTS.maxCommitRows,
  });
  await engine.open();
  return engine;
}

/**
 * Compacts the derived tables once the load has ended, as a server does when writes pause: the
 * benchmarks then read the tables a server reads between bursts, not the rows that the last tenth of
 * the load added per commit.
 */
async function compactLoaded(engine: DuckDBEngine, log: (line: string) => void): Promise<void> {
  const started = performance.now();
  await engine.compact();
  log(`compacted the derived tables in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

/**
 * Writes the dataset into a fresh database in `dataDir` through DuckDBEngine.write(), so the
 * derived tables are built as ingestion builds them. Skipped when the directory already holds a
 * finished load of the same options.
 */
export async function loadDataset(
  dataDir: string,
  options: Partial<DatasetOptions> = {},
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<LoadResult> {
  const full = datasetOptions(options);
  const marker = readMarker(dataDir);
  const wanted = markerOptions(full);
  if (marker && JSON.stringify(marker.options) === JSON.stringify(wanted)) {
    return { dataDir, cached: true, summary: marker.summary, loadMs: marker.loadMs };
  }
  if (marker && olderSchemaOnly(marker.options, wanted)) {
    // The same data stored by an earlier schema: opening the engine migrates it in place, which
    // takes seconds where generating it again takes minutes.
    const started = performance.now();
    log(`migrating ${dataDir} from schema ${String(marker.options.schema)} to ${String(wanted.schema)}`);
    const engine = await openLoader(dataDir);
    try {
      await compactLoaded(engine, log);
    } finally {
      await engine.close();
    }
    log(`migrated in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const migrated: Marker = { ...marker, options: wanted };
    fs.writeFileSync(path.join(dataDir, MARKER_FILE), `${JSON.stringify(migrated, null, 2)}\n`);
    return { dataDir, cached: true, summary: marker.summary, loadMs: marker.loadMs };
  }
  // Anything else in the directory is a partial or different load: start over.
  for (const file of [MARKER_FILE, DATABASE_FILE, `${DATABASE_FILE}.wal`])
    fs.rmSync(path.join(dataDir, file), { force: true });
  fs.mkdirSync(dataDir, { recursive: true });

  const started = performance.now();
  const dataset = generateDataset(full);
  const { summary } = dataset;
  log(
    `generating ${summary.messages.toLocaleString("en")} messages (${summary.events.toLocaleString("en")} events) into ${dataDir}`,
  );
  const engine = await openLoader(dataDir);
  try {
    await engine.createWorkspace({
      id: full.workspaceId,
      name: full.workspaceId,
      writeKey: `wk_${full.workspaceId}_dataset_write_key`,
      secretKey: `sk_${full.workspaceId}_dataset_secret_key`,
      createdAt: summary.windowStart,
    });
    // A few writes in flight keep the group-commit writer busy while the next batch is generated,
    // and stay well under its queue limit.
    const maxInFlight = Math.max(1, Math.floor(DEFAULTS.maxQueuedRows / full.batchSize / 2));
    const inFlight = new Set<Promise<void>>();
    let written = 0;
    let lastReport = started;
    let lastWritten = 0;
    for (const batch of dataset) {
      const write = engine.write(batch).then((outcomes) => {
        const duplicates = outcomes.filter((o) => o !== "stored").length;
        if (duplicates > 0) throw new Error(`${duplicates} generated messageIds were duplicates`);
        written += batch.length;
      });
      inFlight.add(write);
      write.then(
        () => inFlight.delete(write),
        () => inFlight.delete(write),
      );
      if (inFlight.size >= maxInFlight) await Promise.race(inFlight);
      const now = performance.now();
      if (now - lastReport >= 2000) {
        const rate = ((written - lastWritten) * 1000) / (now - lastReport);
        log(
          `  ${written.toLocaleString("en")} / ${summary.messages.toLocaleString("en")} (${((100 * written) / summary.messages).toFixed(1)}%), ${Math.round(rate).toLocaleString("en")} rows/s, ${((now - started) / 1000).toFixed(0)} s`,
        );
        lastReport = now;
        lastWritten = written;
      }
    }
    await Promise.all(inFlight);
    await compactLoaded(engine, log);
  } finally {
    await engine.close();
  }
  const loadMs = performance.now() - started;
  log(
    `loaded ${summary.messages.toLocaleString("en")} messages in ${(loadMs / 1000).toFixed(1)} s (${Math.round((summary.messages * 1000) / loadMs).toLocaleString("en")} rows/s)`,
  );
  const done: Marker = {
    options: markerOptions(full),
    summary,
    loadMs,
    finishedAt: new Date().toISOString(),
  };
  fs.writeFileSync(path.join(dataDir, MARKER_FILE), `${JSON.stringify(done, null, 2)}\n`);
  return { dataDir, cached: false, summary, loadMs };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seed: { type: "string" },
      events: { type: "string" },
      users: { type: "string" },
      companies: { type: "string" },
      visitors: { type: "string" },
      days: { type: "string" },
      dir: { type: "string" },
      "dry-run": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(headerComment(import.meta.filename));
    return;
  }
  const options: Partial<DatasetOptions> = {};
  for (const key of ["seed", "events", "users", "companies", "visitors", "days"] as const) {
    const value = values[key];
    if (value !== undefined) options[key] = Number(value.replaceAll("_", ""));
  }
  if (values["dry-run"]) {
    // Generates without writing: the generator's own speed.
    const started = performance.now();
    const dataset = generateDataset(options);
    let n = 0;
    for (const batch of dataset) n += batch.length;
    const ms = performance.now() - started;
    process.stderr.write(`generated ${n.toLocaleString("en")} messages in ${(ms / 1000).toFixed(1)} s\n`);
    process.stdout.write(`${JSON.stringify(dataset.summary, null, 2)}\n`);
    return;
  }
  const dir = values.dir ?? defaultDatasetDir(options);
  const result = await loadDataset(dir, options);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runMain(main);
}
