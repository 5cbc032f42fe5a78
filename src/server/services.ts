import type { Logger } from "pino";
import type { Config } from "../config/index.js";
import type { StorageEngine } from "../storage/types.js";
import type { WorkspaceRegistry } from "../workspaces/registry.js";
import type { DeletionRunner } from "./deletions.js";
import type { Metrics } from "./metrics.js";

/** What the HTTP app is built from; start-up assembles it, tests may assemble their own. */
export interface Services {
  config: Config;
  storage: StorageEngine;
  workspaces: WorkspaceRegistry;
  logger: Logger;
  metrics?: Metrics;
  deletions?: DeletionRunner;
  /** The token of server-wide operations (backup); see admin-token.ts. */
  adminToken?: string;
  /** Server time in ms; a test may fix it. */
  now?: () => number;
}
