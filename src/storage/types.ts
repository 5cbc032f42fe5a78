import type { CompanyListQuery, CompanyProfile, CompanySummary, UserProfile } from "../identity/types.js";
import type { ReportEngine } from "../reports/plans.js";

/** How a workspace counts: its time zone (IANA) and the track events that are not activity. */
export interface WorkspaceSettings {
  timeZone: string;
  systemEvents: string[];
}

/** The message types of the Tracking API. */
export const MESSAGE_TYPES = ["track", "identify", "group", "page", "screen", "alias"] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

/** The types that count as activity. */
export const ACTIVITY_TYPES: readonly MessageType[] = ["track", "page", "screen"];

/**
 * A message as it is stored: normalised, with typed columns for what queries filter on and JSON for
 * the rest. Times are milliseconds since the epoch.
 */
export interface StoredMessage {
  workspaceId: string;
  messageId: string;
  type: MessageType;
  event: string | null;
  name: string | null;
  category: string | null;
  userId: string | null;
  anonymousId: string | null;
  /** The group call's groupId. */
  groupId: string | null;
  /** `context.groupId` of any call: the company an activity event is attributed to. */
  contextGroupId: string | null;
  previousId: string | null;
  /** An identify call's top-level email, else its traits.email. */
  email: string | null;
  /** Corrected for client clock skew. */
  timestamp: number;
  /** The timestamp the client sent, uncorrected. */
  originalTimestamp: number | null;
  sentAt: number | null;
  receivedAt: number;
  /** JSON values as received (the engine serialises them). */
  properties: unknown;
  traits: unknown;
  context: unknown;
  integrations: unknown;
  /** Any other top-level fields the client sent, so that nothing is lost. */
  extra: Record<string, unknown> | null;
}

/** A report's parameters saved under a name. */
export interface SavedReport {
  id: string;
  name: string;
  report: string;
  params: Record<string, unknown>;
  createdAt: string;
}

/** A stored message as the read API returns it: flat camelCase fields, ISO 8601 times. */
export interface EventRecord {
  messageId: string;
  type: MessageType;
  event: string | null;
  name: string | null;
  category: string | null;
  userId: string | null;
  anonymousId: string | null;
  groupId: string | null;
  previousId: string | null;
  email: string | null;
  properties: unknown;
  traits: unknown;
  context: unknown;
  integrations: unknown;
  timestamp: string;
  originalTimestamp: string | null;
  sentAt: string | null;
  receivedAt: string;
}

/** Filters of `GET /api/v1/events`; all optional but the workspace. */
export interface EventQuery {
  workspaceId: string;
  type?: MessageType | undefined;
  /** A userId: its messages and those sent under the anonymousIds linked to it. */
  userId?: string | undefined;
  anonymousId?: string | undefined;
  /** A group call's groupId or an event's context.groupId. */
  groupId?: string | undefined;
  /** A company's timeline: its group calls and every activity event attributed to it. */
  companyId?: string | undefined;
  event?: string | undefined;
  messageId?: string | undefined;
  limit: number;
  /** Continue after this (timestamp, messageId), newest first. */
  after?: { timestamp: number; messageId: string } | undefined;
}

/** Counts for one workspace, kept across restarts. */
export interface WorkspaceStats {
  messages: number;
  events: number;
  duplicates: number;
}

/** A stored message that the derivation could not take on: no profile or report counts it. */
export interface QuarantineRecord {
  messageId: string;
  /** Why deriving it failed, as the database said. */
  error: string;
  quarantinedAt: string;
}

/** A write key replaced by a rotation, still accepted until it expires. */
export interface RetiredWriteKey {
  workspaceId: string;
  writeKey: string;
  /** ms since the epoch. */
  expiresAt: number;
}

export const DELETION_STATES = ["requested", "started", "finished"] as const;
export type DeletionState = (typeof DELETION_STATES)[number];

/** A request to erase a user: their messages, traits, identity links and memberships. */
export interface DeletionRequest {
  id: string;
  userId: string;
  state: DeletionState;
  requestedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** Messages erased, once finished. */
  messagesDeleted: number | null;
}

/**
 * A dashboard session as stored: the SHA-256 of its token, never the token itself, so that a copy of
 * the database opens no session.
 */
export interface SessionRecord {
  /** SHA-256 of the session token, hex. */
  tokenHash: string;
  /** The workspaces the session reads, in the order they were logged in to. */
  workspaceIds: readonly string[];
  /** ms since the epoch. */
  createdAt: number;
  expiresAt: number;
}

/** A login: what `StorageEngine.openSession` stores a session from. */
export interface SessionOpening {
  /** SHA-256 of the new session's token, hex. */
  tokenHash: string;
  /** The workspace whose secret key was given. */
  workspaceId: string;
  /** ms since the epoch. */
  now: number;
  expiresAt: number;
  /** The token hash of the session the request already carried, if any. */
  renews?: string | undefined;
}

export interface WorkspaceRecord {
  id: string;
  name: string;
  writeKey: string;
  secretKey: string;
  createdAt: string;
}

/** What a write did with each row, in order: stored, or a duplicate of a stored message. */
export type WriteOutcome = "stored" | "duplicate";

/**
 * The storage engine boundary. DuckDB embedded is the default engine; every engine implements this
 * same interface, and nothing above it knows which one runs.
 */
export interface StorageEngine {
  /** Opens the database and runs pending migrations. Called once. */
  open(): Promise<void>;
  /**
   * Stores the rows durably, each messageId once per workspace. Resolves when the rows are committed
   * and visible to reads. Rejects with OverloadedError when the writer is too far behind.
   */
  write(rows: readonly StoredMessage[]): Promise<WriteOutcome[]>;
  readEvents(query: EventQuery): Promise<EventRecord[]>;
  /** A user by userId, or by an anonymousId linked to one. */
  user(workspaceId: string, id: string): Promise<UserProfile | null>;
  /** A company; `now` (ms) dates its recent figures, in the workspace's time zone. */
  company(workspaceId: string, id: string, now: number): Promise<CompanyProfile | null>;
  /** Every company matching the query, in its order. */
  companies(query: CompanyListQuery): Promise<CompanySummary[]>;
  stats(workspaceId: string): Promise<WorkspaceStats>;
  /** The workspace's quarantined messages, the latest first, once every answered write is derived or quarantined. */
  quarantined(workspaceId: string): Promise<QuarantineRecord[]>;
  listWorkspaces(): Promise<WorkspaceRecord[]>;
  createWorkspace(workspace: WorkspaceRecord): Promise<void>;
  /**
   * Replaces a workspace's keys. When its secret key changes, every session holding the workspace loses
   * it (see `rotateKeys`).
   */
  setWorkspaceKeys(workspaceId: string, writeKey: string, secretKey: string): Promise<void>;
  /**
   * Replaces a workspace's keys; the old write key stays valid until `retireUntil` (ms), if given. Every
   * session holding the workspace loses it, in the same transaction: a session is worth no more than the
   * secret key it was opened with, and a session left with no workspace is deleted.
   */
  rotateKeys(
    workspace: WorkspaceRecord,
    writeKey: string,
    secretKey: string,
    retireUntil: number | null,
  ): Promise<void>;
  /** Write keys replaced by rotations and not yet expired at `now`. */
  retiredWriteKeys(now: number): Promise<RetiredWriteKey[]>;
  /** Records a deletion request in state "requested". */
  requestDeletion(workspaceId: string, request: DeletionRequest): Promise<void>;
  deletionRequests(workspaceId: string, state?: DeletionState): Promise<DeletionRequest[]>;
  /**
   * Carries out a deletion request: marks it started, erases the user's messages (and those sent
   * under anonymousIds linked to the user), traits, links, memberships and activity in one
   * transaction, and marks it finished. Their messageIds stay known, so a client's retry does not
   * bring a deleted message back.
   */
  runDeletion(workspaceId: string, requestId: string): Promise<DeletionRequest>;
  /** Writes a consistent copy of the whole database to `path`, a new file that DuckDB opens as it is. */
  backup(path: string): Promise<void>;
  /** The report queries. */
  readonly reports: ReportEngine;
  settings(workspaceId: string): WorkspaceSettings;
  /**
   * Changes how a workspace counts. The activity tables depend on the time zone and the system
   * events, so they are rebuilt from the stored messages before this resolves.
   */
  setSettings(workspaceId: string, settings: WorkspaceSettings): Promise<void>;
  saveReport(workspaceId: string, saved: SavedReport): Promise<void>;
  savedReports(workspaceId: string): Promise<SavedReport[]>;
  /** Deletes a saved report; false when there was none with that id. */
  deleteSavedReport(workspaceId: string, id: string): Promise<boolean>;
  /**
   * Stores a new dashboard session on one workspace, and deletes the sessions expired at `now`. When
   * `renews` names a live session, the new one also holds that one's workspaces, keeps its creation time,
   * and replaces it in the same transaction: the old token stops opening anything at once. Returns the
   * session stored.
   */
  openSession(opening: SessionOpening): Promise<SessionRecord>;
  /** The session with this token hash, unless there is none or it has expired at `now` (ms). */
  session(tokenHash: string, now: number): Promise<SessionRecord | null>;
  /** Revokes a session at once; false when there was none. */
  deleteSession(tokenHash: string): Promise<boolean>;
  /** Whether writes can succeed now: the last write did not fail and the disk has room. */
  health(): Promise<{ writable: boolean; reason?: string; freeBytes?: number }>;
  /** Rows accepted by write() and not yet committed. */
  readonly queueDepth: number;
  /** Messages committed and not yet in the derived tables (identities, activity) that profiles and reports read. */
  readonly underivedMessages: number;
  /**
   * Stored messages that the derivation could not take on, even alone: left out of the derived tables
   * so that the rest stay readable, and tried again at each start.
   */
  readonly quarantinedMessages: number;
  /** Flushes what is queued, then closes. No call is accepted afterwards. */
  close(): Promise<void>;
}
