import { afterEach } from "vitest";
import { DuckDBEngine, type DuckDBEngineOptions } from "../../src/storage/duckdb/engine.js";
import type { StoredMessage } from "../../src/storage/types.js";
import { tempDataDir } from "./server.js";

/**
 * Opens DuckDB engines on fresh data directories, closing the ones still open after each test of the
 * file that calls it. `close(engine)` closes one early (to read its file directly, say).
 */
export function enginesClosedAfterEach(label: string) {
  let open: DuckDBEngine[] = [];
  afterEach(async () => {
    for (const engine of open) await engine.close();
    open = [];
  });
  return {
    async open(options: Partial<DuckDBEngineOptions> = {}): Promise<{ engine: DuckDBEngine; dataDir: string }> {
      const dataDir = tempDataDir(label);
      const engine = new DuckDBEngine({ dataDir, maxQueuedRows: 1000, maxCommitRows: 1000, ...options });
      await engine.open();
      open.push(engine);
      return { engine, dataDir };
    },
    async close(engine: DuckDBEngine): Promise<void> {
      open = open.filter((e) => e !== engine);
      await engine.close();
    },
  };
}

/** A message as the writer stores it: every optional field empty unless given. */
export function storedMessage(
  fields: Partial<StoredMessage> & Pick<StoredMessage, "workspaceId" | "messageId" | "type" | "timestamp">,
): StoredMessage {
  return {
    event: null,
    name: null,
    category: null,
    userId: null,
    anonymousId: null,
    groupId: null,
    contextGroupId: null,
    previousId: null,
    email: null,
    originalTimestamp: null,
    sentAt: null,
    receivedAt: fields.timestamp,
    properties: null,
    traits: null,
    context: null,
    integrations: null,
    extra: null,
    ...fields,
  };
}
