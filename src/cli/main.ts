#!/usr/bin/env node
import { COMMON_OPTIONS, ConfigError, loadConfig, parseFlags, SERVE_OPTIONS } from "../config/index.js";
import { startServer } from "../server/start.js";
import { createStorage } from "../storage/index.js";
import type { StorageEngine, WorkspaceRecord } from "../storage/types.js";
import { createWorkspace, ensureDefaultWorkspace } from "../workspaces/registry.js";

const HELP = `Solstice: self-hosted product analytics for B2B SaaS.

Usage:
  solstice serve [--port N] [--host ADDR] [--data DIR]
      Serve the Tracking API and the query API on the embedded database.
  solstice workspace list [--data DIR]
      List the workspaces and their keys.
  solstice workspace create NAME [--data DIR]
      Create a workspace with new keys and print them.

Options:
  -p, --port N      port to listen on (env SOLSTICE_PORT or PORT; default 8787)
      --host ADDR   address to listen on (env SOLSTICE_HOST; default 0.0.0.0)
  -d, --data DIR    data directory (env SOLSTICE_DATA_DIR; default ./.solstice)
  -h, --help        show this help

Environment:
  SOLSTICE_WRITE_KEY, SOLSTICE_SECRET_KEY   keys of the default workspace (generated once when unset)
  SOLSTICE_LOG_LEVEL                        fatal, error, warn, info (default), debug, trace or silent
  SOLSTICE_MAX_QUEUED_ROWS                  messages waiting for the writer before ingestion answers 503 (100000)

The workspace commands open the database directly: stop the server first.
`;

function printKeys(workspace: WorkspaceRecord): void {
  process.stdout.write(
    `workspace ${workspace.name}\n  write key:  ${workspace.writeKey}\n  secret key: ${workspace.secretKey}\n`,
  );
}

async function withStorage<T>(dataFlag: string | undefined, fn: (storage: StorageEngine) => Promise<T>): Promise<T> {
  const config = loadConfig({ data: dataFlag }, process.env);
  const storage = createStorage(config);
  try {
    await storage.open();
  } catch (err) {
    const message = (err as Error).message;
    if (/lock/i.test(message)) {
      throw new ConfigError(`the database in ${config.dataDir} is in use by a running server; stop it first`);
    }
    throw err;
  }
  try {
    await ensureDefaultWorkspace(storage, { writeKey: config.writeKey, secretKey: config.secretKey });
    return await fn(storage);
  } finally {
    await storage.close();
  }
}

async function serve(args: string[]): Promise<void> {
  const { values } = parseFlags(args, SERVE_OPTIONS);
  if (values.help) return void process.stdout.write(HELP);
  const config = loadConfig(values, process.env);
  const server = await startServer(config);
  const workspace = (await server.storage.listWorkspaces()).find((w) => w.name === "default");
  process.stdout.write(`\nSolstice is listening on ${server.url} (data in ${config.dataDir})\n`);
  if (workspace) printKeys(workspace);
  process.stdout.write("\n");

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    server.app.log.info({ signal }, "shutting down");
    const timer = setTimeout(() => {
      server.app.log.error("shutdown took over 10 s; exiting");
      process.exit(1);
    }, 10_000);
    timer.unref();
    await server.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

async function workspace(args: string[]): Promise<void> {
  const { values, positionals } = parseFlags(args, COMMON_OPTIONS);
  const [sub, name, ...rest] = positionals;
  if (values.help || sub === undefined) return void process.stdout.write(HELP);
  if (sub === "list") {
    await withStorage(values.data, async (storage) => {
      for (const w of await storage.listWorkspaces()) printKeys(w);
    });
    return;
  }
  if (sub === "create") {
    if (!name || rest.length > 0) throw new ConfigError("usage: solstice workspace create NAME");
    await withStorage(values.data, async (storage) => {
      if ((await storage.listWorkspaces()).some((w) => w.name === name)) {
        throw new ConfigError(`a workspace named "${name}" already exists`);
      }
      printKeys(await createWorkspace(storage, name));
    });
    return;
  }
  throw new ConfigError(`unknown workspace command "${sub}"; try solstice --help`);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  switch (command) {
    case "serve":
      return serve(args);
    case "workspace":
      return workspace(args);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(HELP);
      return;
    default:
      throw new ConfigError(`unknown command "${command}"; try solstice --help`);
  }
}

main(process.argv.slice(2)).catch((err) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`solstice: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`solstice: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
