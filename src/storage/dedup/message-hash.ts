import { hash } from "node:crypto";

/** The 128-bit identity of a message: four signed 32-bit words, the first never zero. */
export type MessageHash = readonly [number, number, number, number];

/**
 * Hashes (workspace, messageId) with a secret key kept in the database, so that a client choosing its
 * messageIds cannot make two of them collide on purpose. Truncated SHA-256: about 1.5e-21 odds of any
 * accidental collision among 1e9 messages.
 */
export function messageHash(key: string, workspaceId: string, messageId: string): MessageHash {
  const digest = hash("sha256", `${key}\u0000${workspaceId}\u0000${messageId}`, "buffer");
  return [digest.readInt32LE(0) | 1, digest.readInt32LE(4), digest.readInt32LE(8), digest.readInt32LE(12)];
}
