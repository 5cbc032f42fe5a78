/**
 * Request bodies for the ingestion benchmark: track calls shaped like those of Segment's Node library
 * in a B2B SaaS product (about 30 event names, a few properties each, context with library, ip and
 * group). Bodies are made once, before the clock starts, as templates: every messageId holds the
 * placeholder ID_SLOT, which the load generator overwrites in place with a fresh request number, so a
 * unique body costs a few byte copies rather than a JSON.stringify.
 */

/** Stands for the request number in a template; as wide as the number written over it. */
export const ID_SLOT = "########";

/** The request numbers of one benchmark run, fixed-width so a template's length never changes. */
export class RequestNumbers {
  private next = 0;

  /** The next number, as ID_SLOT.length hexadecimal digits. */
  take(): string {
    const n = this.next++;
    if (n >= 16 ** ID_SLOT.length) throw new RangeError("out of request numbers");
    return n.toString(16).padStart(ID_SLOT.length, "0");
  }
}

const EVENTS = [
  "Signed Up",
  "Logged In",
  "Logged Out",
  "Dashboard Viewed",
  "Report Created",
  "Report Shared",
  "Report Exported",
  "Project Created",
  "Project Archived",
  "Invite Sent",
  "Invite Accepted",
  "Member Removed",
  "Integration Connected",
  "Integration Disconnected",
  "Trial Started",
  "Plan Upgraded",
  "Plan Downgraded",
  "Subscription Renewed",
  "Invoice Paid",
  "Payment Failed",
  "Feature Flag Toggled",
  "Search Performed",
  "Filter Applied",
  "Comment Added",
  "File Uploaded",
  "Export Downloaded",
  "API Key Created",
  "Settings Updated",
  "Onboarding Step Completed",
  "Support Ticket Opened",
] as const;

const PLANS = ["free", "starter", "pro", "enterprise"] as const;
const SOURCES = ["web", "ios", "android", "api"] as const;
const FEATURES = ["dashboards", "reports", "alerts", "sso", "audit-log", "exports", "webhooks"] as const;

/** A small seeded generator, so every run sends the same mix. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)] as T;
}

function properties(rand: () => number, eventIndex: number): Record<string, unknown> {
  const props: Record<string, unknown> = { plan: pick(rand, PLANS), source: pick(rand, SOURCES) };
  // Each event name has its own set of extra properties, as a real tracking plan would.
  if (eventIndex % 2 === 0) props.feature = pick(rand, FEATURES);
  if (eventIndex % 3 === 0) props.count = Math.floor(rand() * 500);
  if (eventIndex % 4 === 1) props.duration_ms = Math.floor(rand() * 20_000);
  if (eventIndex % 5 === 2) props.value = Math.round(rand() * 100_000) / 100;
  if (eventIndex % 6 === 3) props.object_id = `obj_${Math.floor(rand() * 1e9).toString(36)}`;
  if (eventIndex % 7 === 4) props.first_time = rand() < 0.2;
  return props;
}

/** One track message; `suffix` tells apart the messages of a batch, which share a request number. */
function trackMessage(rand: () => number, now: number, suffix: string, inBatch: boolean): Record<string, unknown> {
  const eventIndex = Math.floor(rand() * EVENTS.length);
  const org = Math.floor(rand() * 200);
  const message: Record<string, unknown> = {
    ...(inBatch ? { type: "track" } : {}),
    event: EVENTS[eventIndex],
    userId: `user_${org}_${Math.floor(rand() * 50)}`,
    properties: properties(rand, eventIndex),
    context: {
      library: { name: "@segment/analytics-node", version: "2.1.3" },
      ip: `203.0.113.${Math.floor(rand() * 254) + 1}`,
      groupId: `org_${org}`,
    },
    integrations: {},
    timestamp: new Date(now - Math.floor(rand() * 60_000)).toISOString(),
    messageId: `bench-${ID_SLOT}${suffix}`,
    _metadata: { nodeVersion: process.versions.node, jsRuntime: "node" },
  };
  return message;
}

/** `count` different bodies for a single-event call such as POST /v1/track. */
export function singleEventBodies(count: number, seed = 1): string[] {
  const rand = random(seed);
  const now = Date.now();
  return Array.from({ length: count }, () => JSON.stringify(trackMessage(rand, now, "", false)));
}

/** `count` different bodies for POST /v1/batch, each of `size` track messages. */
export function batchBodies(count: number, size: number, seed = 2): string[] {
  const rand = random(seed);
  const now = Date.now();
  return Array.from({ length: count }, () => {
    const batch = Array.from({ length: size }, (_, i) => trackMessage(rand, now, `-${i}`, true));
    return JSON.stringify({ batch, sentAt: new Date(now).toISOString() });
  });
}

/** A template with the placeholders replaced by one request number (for clients that build strings). */
export function fillTemplate(parts: readonly string[], requestNumber: string): string {
  return parts.join(requestNumber);
}

/** A template cut at its placeholders, ready for fillTemplate. */
export function splitTemplate(template: string): string[] {
  return template.split(ID_SLOT);
}
