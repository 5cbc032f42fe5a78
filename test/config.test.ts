import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config/index.js";
import { DuckDBEngine } from "../src/storage/duckdb/engine.js";
import { tempDataDir } from "./helpers/server.js";

/** Configuration from flags and SOLSTICE_* variables: defaults, overrides and the errors a user sees. */
const none = {};

describe("configuration", () => {
  it("has the documented defaults", () => {
    const config = loadConfig(none, {}, "/srv");
    expect(config).toMatchObject({
      host: "0.0.0.0",
      port: 8787,
      dataDir: path.resolve("/srv", ".solstice"),
      memoryLimit: "2GB",
      dbThreads: 0,
      maxQueuedRows: 100_000,
      rateLimit: 0,
      requestTimeoutMs: 30_000,
    });
  });

  it("lets flags win over variables, and SOLSTICE_PORT over PORT", () => {
    const env = { SOLSTICE_PORT: "9000", PORT: "9100", SOLSTICE_DATA_DIR: "/var/lib/solstice" };
    expect(loadConfig(none, env)).toMatchObject({ port: 9000, dataDir: "/var/lib/solstice" });
    expect(loadConfig(none, { PORT: "9100" }).port).toBe(9100);
    expect(loadConfig({ port: "9200", data: "d" }, env, "/srv")).toMatchObject({
      port: 9200,
      dataDir: path.resolve("/srv", "d"),
    });
  });

  it("reads the database's thread count and memory limit", () => {
    expect(loadConfig(none, { SOLSTICE_DB_THREADS: "1", SOLSTICE_MEMORY_LIMIT: "512MB" })).toMatchObject({
      dbThreads: 1,
      memoryLimit: "512MB",
    });
    expect(loadConfig(none, { SOLSTICE_DB_THREADS: "0" }).dbThreads).toBe(0);
  });

  it.each([
    ["SOLSTICE_DB_THREADS", "-1"],
    ["SOLSTICE_DB_THREADS", "two"],
    ["SOLSTICE_DB_THREADS", "1.5"],
    ["SOLSTICE_MEMORY_LIMIT", "lots"],
    ["SOLSTICE_PORT", "70000"],
    ["SOLSTICE_RATE_LIMIT", "-5"],
    ["SOLSTICE_REQUEST_TIMEOUT_MS", "soon"],
    ["SOLSTICE_LOG_LEVEL", "loud"],
  ])("refuses %s=%s with a message naming it", (name, value) => {
    expect(() => loadConfig(none, { [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig(none, { [name]: value })).toThrow(name);
  });

  it("opens the database with the configured thread count", async () => {
    const threadsOf = async (threads: number | undefined) => {
      const engine = new DuckDBEngine({
        dataDir: tempDataDir("solstice-config"),
        maxQueuedRows: 1000,
        maxCommitRows: 1000,
        ...(threads === undefined ? {} : { threads }),
      });
      await engine.open();
      try {
        return await engine.setting("threads");
      } finally {
        await engine.close();
      }
    };
    expect(await threadsOf(1)).toBe("1");
    expect(await threadsOf(2)).toBe("2");
    // One per core when not set.
    expect(Number(await threadsOf(undefined))).toBeGreaterThanOrEqual(1);
  });
});
