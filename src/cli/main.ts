#!/usr/bin/env node
import fs from "node:fs";
import nodePath from "node:path";
import { COMMON_OPTIONS, ConfigError, loadConfig, parseFlags, SERVE_OPTIONS } from "../config/index.js";
import { loadAdminToken } from "../server/admin-token.js";
import { startServer } from "../server/start.js";
import { createStorage } from "../storage/index.js";
import type { StorageEngine, WorkspaceRecord } from "../storage/types.js";
import { createWorkspace, DEFAULT_WORKSPACE, ensureDefaultWorkspace, rotateKeys } from "../workspaces/registry.js";

const HELP = `Solstice: self-hosted product analytics for B2B SaaS.

Usage:
  solstice serve [--port N] [--host ADDR] [--data DIR]
      Serve the Tracking API and the query API on the embedded database.
  solstice workspace list [--data DIR]
      List the workspaces and their keys.
  solstice workspace create NAME [--data DIR]
      Create a workspace with new keys and print them.
  solstice workspace rotate-keys NAME [--grace-hours H] [--data DIR]
      Give a workspace new keys. The old write key keeps working for H hours (default 168, a week);
      the old secret key stops at once. (A running server does the same: POST /api/v1/workspace/rotate-keys.)
  solstice backup PATH [--data DIR] [--port N]
      Write a consistent copy of the database to PATH (a new file). Works while the server runs: the
      command asks it, with the admin token kept in the data directory.

Options:
  -p, --port N      port to listen on (env SOLSTICE_PORT or PORT; default 8787)
      --host ADDR   address to listen on (env SOLSTICE_HOST; default 0.0.0.0)
  -d, --data DIR    data directory (env SOLSTICE_DATA_DIR; default ./.solstice)
  -h, --help        show this help

Environment:
  SOLSTICE_WRITE_KEY, SOLSTICE_SECRET_KEY   keys of the default workspace (generated once when unset)
  SOLSTICE_LOG_LEVEL                        fatal, error, warn, info (default), debug, trace or silent
  SOLSTICE_MAX_QUEUED_ROWS                  messages waiting for the writer before ingestion answers 503 (100000)
  SOLSTICE_RATE_LIMIT                       Tracking API requests per second per write key (0: no limit)
  SOLSTICE_REQUEST_TIMEOUT_MS               time a request has to arrive, headers and body (30000)
  SOLSTICE_MEMORY_LIMIT                     the most memory the database may use (2GB)
  SOLSTICE_DB_THREADS                       threads the database runs on (0: one per core; 1 favours ingestion)
  SOLSTICE_SESSION_DAYS                     days a dashboard session lasts from its latest login (7)
  SOLSTICE_SECURE_COOKIES                   true behind HTTPS: session cookies are marked Secure (false)

The workspace commands open the database directly: stop the server first.
The copy from backup opens as it is: solstice serve --data DIR, with PATH moved to DIR/solstice.duckdb.
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
  if (sub === "rotate-keys") {
    if (!name || rest.length > 0) throw new ConfigError("usage: solstice workspace rotate-keys NAME [--grace-hours H]");
    const hours = values["grace-hours"] === undefined ? 24 * 7 : Number(values["grace-hours"]);
    if (!Number.isFinite(hours) || hours < 0)
      throw new ConfigError("--grace-hours must be a number of hours, 0 or more");
    await withStorage(values.data, async (storage) => {
      const workspace = (await storage.listWorkspaces()).find((w) => w.name === name);
      if (!workspace) throw new ConfigError(`no workspace named "${name}"`);
      if (name === DEFAULT_WORKSPACE && (process.env.SOLSTICE_WRITE_KEY || process.env.SOLSTICE_SECRET_KEY)) {
        throw new ConfigError(
          "the default workspace's keys come from SOLSTICE_WRITE_KEY / SOLSTICE_SECRET_KEY: change them there",
        );
      }
      const { workspace: rotated, oldWriteKeyExpiresAt } = await rotateKeys(storage, workspace, hours * 3600_000);
      printKeys(rotated);
      process.stdout.write(
        oldWriteKeyExpiresAt === null
          ? "  the old write key no longer works\n"
          : `  the old write key works until ${new Date(oldWriteKeyExpiresAt).toISOString()}\n`,
      );
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

async function backup(args: string[]): Promise<void> {
  const { values, positionals } = parseFlags(args, { ...COMMON_OPTIONS, port: { type: "string", short: "p" } });
  if (values.help) return void process.stdout.write(HELP);
  const [target, ...rest] = positionals;
  if (!target || rest.length > 0) throw new ConfigError("usage: solstice backup PATH [--data DIR] [--port N]");
  const config = loadConfig({ data: values.data, port: values.port }, process.env);
  const path = nodePath.resolve(target);
  if (fs.existsSync(path)) throw new ConfigError(`${path} already exists; the backup writes a new file`);
  const storage = createStorage(config);
  let opened = false;
  try {
    await storage.open();
    opened = true;
  } catch (err) {
    if (!/lock/i.test((err as Error).message)) throw err;
  }
  const started = Date.now();
  if (opened) {
    try {
      await storage.backup(path);
    } finally {
      await storage.close();
    }
  } else {
    process.stdout.write(`the database is in use; asking the server on port ${config.port}\n`);
    const token = loadAdminToken(config.dataDir);
    const res = await fetch(`http://127.0.0.1:${config.port}/admin/backup`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ path }),
    }).catch((err: Error) => {
      throw new ConfigError(`the database is locked, and no server answers on port ${config.port}: ${err.message}`);
    });
    if (res.status !== 200) throw new ConfigError(`the server refused the backup: ${await res.text()}`);
  }
  const size = fs.statSync(path).size;
  process.stdout.write(
    `backup written to ${path} (${(size / 1048576).toFixed(1)} MiB) in ${Date.now() - started} ms\n`,
  );
}

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  switch (command) {
    case "serve":
      return serve(args);
    case "workspace":
      return workspace(args);
    case "backup":
      return backup(args);
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
