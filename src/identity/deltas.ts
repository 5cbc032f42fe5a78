import { ACTIVITY_TYPES, type StoredMessage } from "../storage/types.js";
import { type DayFn, utcDay } from "./days.js";

/** Who did something: a userId, or an anonymousId that no userId came with. */
export type ActorKind = "user" | "anon";

/** Where a derived row came from: enough to pick a winner and to explain it. */
interface Provenance {
  workspaceId: string;
  timestamp: number;
  receivedAt: number;
  messageId: string;
}

/** An anonymousId seen with a userId (any call carrying both) or made previousId by an alias. */
export interface LinkDelta extends Provenance {
  anonymousId: string;
  userId: string;
}

/** A group call that made an actor a member of a company. */
export interface MembershipDelta extends Provenance {
  groupId: string;
  actorKind: ActorKind;
  actorId: string;
}

/** One trait set by an identify (on a user or a visitor) or a group call (on a company). */
export interface TraitDelta extends Provenance {
  entityKind: ActorKind | "company";
  entityId: string;
  key: string;
  /** The value as JSON text. */
  value: string;
}

/** Activity of one actor on one local day, under one context.groupId (or none). */
export interface ActivityDelta {
  workspaceId: string;
  actorKind: ActorKind;
  actorId: string;
  contextGroupId: string | null;
  /** Days since 1970-01-01 in the workspace's time zone. */
  day: number;
  events: number;
  firstTs: number;
  lastTs: number;
}

/** Occurrences of one event name by one actor on one local day. */
export interface EventDayDelta extends ActivityDelta {
  type: string;
  /** The track event's name; a page or screen call's name, if any. */
  event: string;
}

/** All-time activity of one actor under one context.groupId (or none): first and last seen. */
export type SummaryDelta = Omit<ActivityDelta, "day">;

/** What a set of stored messages adds to the derived tables; each list already reduced per key. */
export interface Deltas {
  links: LinkDelta[];
  memberships: MembershipDelta[];
  traits: TraitDelta[];
  activity: ActivityDelta[];
  summary: SummaryDelta[];
  eventDays: EventDayDelta[];
}

/** How a workspace counts activity. */
export interface ActivitySettings {
  /** Local day of a timestamp; UTC unless the workspace has a time zone. */
  day: DayFn;
  /** Track events that are not activity. */
  systemEvents: ReadonlySet<string>;
}

const DEFAULT_SETTINGS: ActivitySettings = { day: utcDay, systemEvents: new Set() };
const ACTIVITY = new Set<string>(ACTIVITY_TYPES);

/** Whether `a` comes before `b`: earliest corrected timestamp, then receivedAt, then messageId. */
export function earlier(a: Provenance, b: Provenance): boolean {
  if (a.timestamp !== b.timestamp) return a.timestamp < b.timestamp;
  if (a.receivedAt !== b.receivedAt) return a.receivedAt < b.receivedAt;
  return a.messageId < b.messageId;
}

function keepFirst<T extends Provenance>(map: Map<string, T>, key: string, candidate: T): void {
  const current = map.get(key);
  if (!current || earlier(candidate, current)) map.set(key, candidate);
}

function keepLast<T extends Provenance>(map: Map<string, T>, key: string, candidate: T): void {
  const current = map.get(key);
  if (!current || earlier(current, candidate)) map.set(key, candidate);
}

/** The actor of a message: its userId if it has one (a message with a userId always belongs to that user). */
export function actorOf(row: StoredMessage): { kind: ActorKind; id: string } | null {
  if (row.userId !== null) return { kind: "user", id: row.userId };
  if (row.anonymousId !== null) return { kind: "anon", id: row.anonymousId };
  return null;
}

function addTraits(
  traits: Map<string, TraitDelta>,
  row: StoredMessage,
  entityKind: TraitDelta["entityKind"],
  entityId: string,
  values: Record<string, unknown>,
): void {
  const provenance = {
    workspaceId: row.workspaceId,
    timestamp: row.timestamp,
    receivedAt: row.receivedAt,
    messageId: row.messageId,
  };
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined) continue;
    const candidate = { ...provenance, entityKind, entityId, key, value: JSON.stringify(value) };
    keepLast(traits, `${row.workspaceId}\u0000${entityKind}\u0000${entityId}\u0000${key}`, candidate);
  }
}

/**
 * Derives, from newly stored messages, the rows the identity and activity tables gain. Each list is
 * reduced per key (the earliest link or membership, the latest trait, summed activity), so a commit
 * appends at most one row per key; readers still combine rows of different commits.
 */
export function deriveDeltas(
  rows: readonly StoredMessage[],
  settingsOf: (workspaceId: string) => ActivitySettings = () => DEFAULT_SETTINGS,
): Deltas {
  const links = new Map<string, LinkDelta>();
  const memberships = new Map<string, MembershipDelta>();
  const traits = new Map<string, TraitDelta>();
  const activity = new Map<string, ActivityDelta>();
  const eventDays = new Map<string, EventDayDelta>();

  for (const row of rows) {
    const ws = row.workspaceId;
    const provenance = {
      workspaceId: ws,
      timestamp: row.timestamp,
      receivedAt: row.receivedAt,
      messageId: row.messageId,
    };
    if (row.userId !== null && row.anonymousId !== null) {
      keepFirst(links, `${ws}\u0000${row.anonymousId}`, {
        ...provenance,
        anonymousId: row.anonymousId,
        userId: row.userId,
      });
    }
    if (row.type === "alias" && row.userId !== null && row.previousId !== null) {
      keepFirst(links, `${ws}\u0000${row.previousId}`, {
        ...provenance,
        anonymousId: row.previousId,
        userId: row.userId,
      });
    }
    const actor = actorOf(row);
    if (row.type === "group" && row.groupId !== null) {
      if (actor) {
        keepFirst(memberships, `${ws}\u0000${row.groupId}\u0000${actor.kind}\u0000${actor.id}`, {
          ...provenance,
          groupId: row.groupId,
          actorKind: actor.kind,
          actorId: actor.id,
        });
      }
      if (row.traits !== null) addTraits(traits, row, "company", row.groupId, JSON.parse(row.traits));
    }
    if (row.type === "identify" && actor) {
      const values: Record<string, unknown> = row.traits === null ? {} : JSON.parse(row.traits);
      if (row.email !== null) values.email = row.email;
      addTraits(traits, row, actor.kind, actor.id, values);
    }
    if (!ACTIVITY.has(row.type) || !actor) continue;
    const settings = settingsOf(ws);
    const day = settings.day(row.timestamp);
    const eventName = row.type === "track" ? row.event : row.name;
    if (eventName !== null) {
      const key = `${ws}\u0000${actor.kind}\u0000${actor.id}\u0000${row.contextGroupId ?? ""}\u0000${day}\u0000${row.type}\u0000${eventName}`;
      bump(eventDays, key, row, () => ({
        workspaceId: ws,
        actorKind: actor.kind,
        actorId: actor.id,
        contextGroupId: row.contextGroupId,
        day,
        type: row.type,
        event: eventName,
        events: 0,
        firstTs: row.timestamp,
        lastTs: row.timestamp,
      }));
    }
    if (row.type === "track" && settings.systemEvents.has(row.event ?? "")) continue;
    const key = `${ws}\u0000${actor.kind}\u0000${actor.id}\u0000${row.contextGroupId ?? ""}\u0000${day}`;
    bump(activity, key, row, () => ({
      workspaceId: ws,
      actorKind: actor.kind,
      actorId: actor.id,
      contextGroupId: row.contextGroupId,
      day,
      events: 0,
      firstTs: row.timestamp,
      lastTs: row.timestamp,
    }));
  }
  return {
    links: [...links.values()],
    memberships: [...memberships.values()],
    traits: [...traits.values()],
    activity: [...activity.values()],
    summary: summarize(activity.values()),
    eventDays: [...eventDays.values()],
  };
}

function summarize(days: Iterable<ActivityDelta>): SummaryDelta[] {
  const summary = new Map<string, SummaryDelta>();
  for (const d of days) {
    const key = `${d.workspaceId}\u0000${d.actorKind}\u0000${d.actorId}\u0000${d.contextGroupId ?? ""}`;
    const s = summary.get(key);
    if (!s) {
      const { day: _, ...rest } = d;
      summary.set(key, rest);
      continue;
    }
    s.events += d.events;
    s.firstTs = Math.min(s.firstTs, d.firstTs);
    s.lastTs = Math.max(s.lastTs, d.lastTs);
  }
  return [...summary.values()];
}

function bump<T extends ActivityDelta>(map: Map<string, T>, key: string, row: StoredMessage, create: () => T): void {
  let delta = map.get(key);
  if (!delta) {
    delta = create();
    map.set(key, delta);
  }
  delta.events++;
  if (row.timestamp < delta.firstTs) delta.firstTs = row.timestamp;
  if (row.timestamp > delta.lastTs) delta.lastTs = row.timestamp;
}
