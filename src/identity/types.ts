/** A company as the companies list shows it. Times are ISO 8601. */
export interface CompanySummary {
  id: string;
  name: string | null;
  traits: Record<string, unknown>;
  firstSeen: string | null;
  lastSeen: string | null;
  /** Members: users that a group call linked to the company. */
  users: number;
  /** Activity events attributed to the company in the last 30 days. */
  events: number;
}

/** How an entity came to be linked to another: the message that did it, and its time. */
export interface Provenance {
  messageId: string;
  at: string;
}

export interface CompanyMember {
  userId: string;
  email: string | null;
  name: string | null;
  lastSeen: string | null;
  /** The earliest group call that made the user a member. */
  joinedBy: Provenance;
}

export interface CompanyProfile extends CompanySummary {
  /** When each trait got its current value, and by which group call. */
  traitsSetBy: Record<string, Provenance>;
  members: CompanyMember[];
  /** Each of the last 90 days (in the workspace's time zone) with activity: events and active users. */
  activity: { day: string; events: number; users: number }[];
  /** The most frequent track events of the last 90 days. */
  topEvents: { event: string; count: number }[];
}

export interface UserProfile {
  id: string;
  email: string | null;
  name: string | null;
  traits: Record<string, unknown>;
  traitsSetBy: Record<string, Provenance>;
  /** Companies the user is a member of, with the group call that made it so. */
  companies: { id: string; name: string | null; joinedBy: Provenance }[];
  /** AnonymousIds that belong to the user, with the message that linked each. */
  anonymousIds: { anonymousId: string; linkedBy: Provenance }[];
  firstSeen: string | null;
  lastSeen: string | null;
  /** Activity events of the user, all anonymousIds included. */
  events: number;
}

export const COMPANY_SORTS = ["lastSeen", "users", "events"] as const;
export type CompanySort = (typeof COMPANY_SORTS)[number];

export interface CompanyListQuery {
  workspaceId: string;
  sort: CompanySort;
  /** Case-insensitive substring of the name or the id. */
  q?: string | undefined;
  /** The current time (ms), for "the last 30 days" in the workspace's time zone. */
  now: number;
}
