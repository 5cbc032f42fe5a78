import type { FastifyInstance } from "fastify";
import pino, { type Logger } from "pino";
import type { Config } from "../config/index.js";
import { createStorage } from "../storage/index.js";
import type { StorageEngine } from "../storage/types.js";
import { ensureDefaultWorkspace, WorkspaceRegistry } from "../workspaces/registry.js";
import { loadAdminToken } from "./admin-token.js";
import { buildApp } from "./app.js";
import { DeletionRunner } from "./deletions.js";
import { Metrics } from "./metrics.js";

export interface RunningServer {
  app: FastifyInstance;
  storage: StorageEngine;
  url: string;
  /** Stops accepting, finishes what was accepted, closes the database. */
  close(): Promise<void>;
}

/** Opens the database, makes sure the default workspace exists, and listens. */
export async function startServer(
  config: Config,
  // Buffered: a synchronous write per access line costs the event loop a few percent at full load.
  logger: Logger = pino({ level: config.logLevel }, pino.destination({ sync: false })),
  options: { now?: () => number } = {},
): Promise<RunningServer> {
  let metrics: Metrics | undefined;
  const storage = createStorage(config, {
    onProgress: (message) => logger.info(message),
    onReopen: () => metrics?.reopens.inc(),
    onCommit: (info) => {
      metrics?.commit(info);
      if (info.error !== undefined) logger.error({ err: info.error, rows: info.rows }, "commit failed");
    },
    onDerive: (info) => {
      metrics?.derive(info);
      if (info.error !== undefined) {
        logger.error({ err: info.error, messages: info.messages }, "deriving the identity and activity tables failed");
      }
    },
    onCompact: (info) => {
      metrics?.compact(info);
      if (info.error !== undefined) logger.error({ err: info.error }, "compacting the derived tables failed");
      else logger.info({ full: info.full, ms: Math.round(info.ms) }, "compacted the derived tables");
    },
    onQuarantine: (info) => {
      if ("message" in info) {
        const { workspaceId, messageId, error } = info.message;
        logger.error(
          { workspaceId, messageId, error },
          "a message could not be derived and is left out of the reports",
        );
      } else if (info.remaining > 0) {
        logger.warn(info, "quarantined messages derived at start-up, and left in quarantine");
      } else {
        logger.info(info, "quarantined messages derived at start-up");
      }
    },
  });
  metrics = new Metrics(
    () => storage.queueDepth,
    () => storage.underivedMessages,
    () => storage.quarantinedMessages,
  );
  await storage.open();
  const { workspace, created } = await ensureDefaultWorkspace(storage, {
    writeKey: config.writeKey,
    secretKey: config.secretKey,
  });
  const now = options.now ?? Date.now;
  const all = await storage.listWorkspaces();
  const workspaces = new WorkspaceRegistry(all, await storage.retiredWriteKeys(now()), now);
  const deletions = new DeletionRunner(storage, logger);
  await deletions.resume(all.map((w) => w.id));
  const adminToken = loadAdminToken(config.dataDir);
  const app = await buildApp({ config, storage, workspaces, logger, metrics, deletions, adminToken, ...options });
  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  const url = `http://${config.host === "0.0.0.0" || config.host === "::" ? "localhost" : config.host}:${port}`;
  logger.info(
    { url, dataDir: config.dataDir, workspace: workspace.name, writeKey: workspace.writeKey, created },
    "Solstice is ready",
  );
  return {
    app,
    storage,
    url,
    async close() {
      await app.close();
      await deletions.stop();
      await storage.close();
      logger.flush();
    },
  };
}
