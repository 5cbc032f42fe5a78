import { randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import type { RetiredWriteKey, StorageEngine, WorkspaceRecord } from "../storage/types.js";

/** How long a write key replaced by a rotation keeps working: SDKs in shipped apps and pages need time to update. */
export const WRITE_KEY_GRACE_MS = 7 * 24 * 3600_000;

/** The name of the workspace that exists from the first start. */
export const DEFAULT_WORKSPACE = "default";

const KEY_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** A random key: a prefix saying what it is for, then 32 base-62 characters (190 bits). */
export function generateKey(prefix: "wk" | "sk"): string {
  const bytes = randomBytes(32);
  let key = `${prefix}_`;
  for (const b of bytes) key += KEY_ALPHABET[b % 62];
  return key;
}

function sameKey(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Workspaces by key, loaded once from storage and kept in memory. */
export class WorkspaceRegistry {
  private byWriteKey = new Map<string, WorkspaceRecord>();
  private bySecretKey = new Map<string, WorkspaceRecord>();
  private byWorkspaceId = new Map<string, WorkspaceRecord>();
  /** Write keys replaced by a rotation: still accepted until they expire. */
  private retired = new Map<string, { workspaceId: string; expiresAt: number }>();

  constructor(
    workspaces: readonly WorkspaceRecord[],
    retired: readonly RetiredWriteKey[] = [],
    private readonly now: () => number = Date.now,
  ) {
    for (const w of workspaces) this.add(w);
    for (const r of retired) this.retired.set(r.writeKey, { workspaceId: r.workspaceId, expiresAt: r.expiresAt });
  }

  add(workspace: WorkspaceRecord): void {
    const previous = this.byWorkspaceId.get(workspace.id);
    if (previous) {
      this.byWriteKey.delete(previous.writeKey);
      this.bySecretKey.delete(previous.secretKey);
    }
    this.byWorkspaceId.set(workspace.id, workspace);
    this.byWriteKey.set(workspace.writeKey, workspace);
    this.bySecretKey.set(workspace.secretKey, workspace);
  }

  /** Keeps accepting a replaced write key until `expiresAt` (ms). */
  retire(workspaceId: string, writeKey: string, expiresAt: number): void {
    this.retired.set(writeKey, { workspaceId, expiresAt });
  }

  /** The workspace a write key belongs to, if any: a current key, or a retired one in its grace period. */
  byWrite(key: string): WorkspaceRecord | undefined {
    const found = this.byWriteKey.get(key);
    if (found) return sameKey(found.writeKey, key) ? found : undefined;
    const retired = this.retired.get(key);
    if (!retired || retired.expiresAt <= this.now()) return undefined;
    return this.byWorkspaceId.get(retired.workspaceId);
  }

  /** A workspace by id, if any. */
  byId(id: string): WorkspaceRecord | undefined {
    return this.byWorkspaceId.get(id);
  }

  /** The workspace a secret key belongs to, if any. */
  bySecret(key: string): WorkspaceRecord | undefined {
    const found = this.bySecretKey.get(key);
    return found && sameKey(found.secretKey, key) ? found : undefined;
  }
}

/** Creates a workspace with fresh keys (or the given ones) and stores it. */
export async function createWorkspace(
  storage: StorageEngine,
  name: string,
  keys: { writeKey?: string | undefined; secretKey?: string | undefined } = {},
): Promise<WorkspaceRecord> {
  const workspace: WorkspaceRecord = {
    id: randomUUID(),
    name,
    writeKey: keys.writeKey ?? generateKey("wk"),
    secretKey: keys.secretKey ?? generateKey("sk"),
    createdAt: new Date().toISOString(),
  };
  await storage.createWorkspace(workspace);
  return workspace;
}

/**
 * Makes sure the default workspace exists. On the first start it is created, with the configured keys
 * or generated ones; later, configured keys replace the stored ones. Returns it and whether it was created now.
 */
export async function ensureDefaultWorkspace(
  storage: StorageEngine,
  keys: { writeKey?: string | undefined; secretKey?: string | undefined },
): Promise<{ workspace: WorkspaceRecord; created: boolean }> {
  const existing = (await storage.listWorkspaces()).find((w) => w.name === DEFAULT_WORKSPACE);
  if (existing) {
    const writeKey = keys.writeKey ?? existing.writeKey;
    const secretKey = keys.secretKey ?? existing.secretKey;
    if (writeKey === existing.writeKey && secretKey === existing.secretKey)
      return { workspace: existing, created: false };
    await storage.setWorkspaceKeys(existing.id, writeKey, secretKey);
    return { workspace: { ...existing, writeKey, secretKey }, created: false };
  }
  return { workspace: await createWorkspace(storage, DEFAULT_WORKSPACE, keys), created: true };
}

/**
 * Gives a workspace new keys. The old write key keeps working for `graceMs` (it is in pages and apps
 * that take time to redeploy); the old secret key stops working at once.
 */
export async function rotateKeys(
  storage: StorageEngine,
  workspace: WorkspaceRecord,
  graceMs: number = WRITE_KEY_GRACE_MS,
  now: number = Date.now(),
): Promise<{ workspace: WorkspaceRecord; oldWriteKeyExpiresAt: number | null }> {
  const rotated = { ...workspace, writeKey: generateKey("wk"), secretKey: generateKey("sk") };
  const expiresAt = graceMs > 0 ? now + graceMs : null;
  await storage.rotateKeys(workspace, rotated.writeKey, rotated.secretKey, expiresAt);
  return { workspace: rotated, oldWriteKeyExpiresAt: expiresAt };
}
