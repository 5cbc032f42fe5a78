import { randomBytes } from "node:crypto";

interface Snapshot {
  ids: readonly string[];
  expires: number;
}

/**
 * Frozen orders for paging through lists whose sort keys change while the client reads: the first
 * page stores the order of every id, and later pages follow it, so no row is lost or repeated even as
 * events move companies up and down. Like a point-in-time cursor, it expires.
 */
export class SnapshotStore {
  private snapshots = new Map<string, Snapshot>();

  constructor(
    private readonly ttlMs = 15 * 60_000,
    private readonly capacity = 200,
  ) {}

  /** Stores an order and returns its token. */
  create(ids: readonly string[], now: number): string {
    this.evict(now);
    if (this.snapshots.size >= this.capacity) {
      const oldest = this.snapshots.keys().next().value;
      if (oldest !== undefined) this.snapshots.delete(oldest);
    }
    const token = randomBytes(12).toString("base64url");
    this.snapshots.set(token, { ids, expires: now + this.ttlMs });
    return token;
  }

  /** The stored order, or undefined when unknown or expired. */
  get(token: string, now: number): readonly string[] | undefined {
    const snapshot = this.snapshots.get(token);
    if (!snapshot || snapshot.expires < now) return undefined;
    return snapshot.ids;
  }

  private evict(now: number): void {
    for (const [token, snapshot] of this.snapshots) if (snapshot.expires < now) this.snapshots.delete(token);
  }
}
