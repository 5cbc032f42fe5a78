import type { Config } from "../config/index.js";
import { DuckDBEngine, type DuckDBEngineOptions } from "./duckdb/engine.js";
import type { StorageEngine } from "./types.js";

/** The storage engine for a configuration: DuckDB embedded in this process. */
export function createStorage(
  config: Config,
  hooks: Pick<
    DuckDBEngineOptions,
    "onCommit" | "onDerive" | "onCompact" | "onQuarantine" | "onProgress" | "onReopen"
  > = {},
): StorageEngine {
  return new DuckDBEngine({
    dataDir: config.dataDir,
    maxQueuedRows: config.maxQueuedRows,
    maxCommitRows: config.maxCommitRows,
    memoryLimit: config.memoryLimit,
    threads: config.dbThreads,
    ...hooks,
  });
}
