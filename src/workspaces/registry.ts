import { randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import type { StorageEngine, WorkspaceRecord } from "../storage/types.js";

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

  constructor(workspaces: readonly WorkspaceRecord[]) {
    for (const w of workspaces) this.add(w);
  }

  add(workspace: WorkspaceRecord): void {
    this.byWriteKey.set(workspace.writeKey, workspace);
    this.bySecretKey.set(workspace.secretKey, workspace);
  }

  /** The workspace a write key belongs to, if any. */
  byWrite(key: string): WorkspaceRecord | undefined {
    const found = this.byWriteKey.get(key);
    return found && sameKey(found.writeKey, key) ? found : undefined;
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
