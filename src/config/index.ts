import path from "node:path";
import { type ParseArgsConfig, parseArgs } from "node:util";

/** Everything the server needs to know about its surroundings. Built once, then frozen. */
export interface Config {
  readonly host: string;
  readonly port: number;
  /** Directory holding the embedded database and its write-ahead log. */
  readonly dataDir: string;
  readonly logLevel: string;
  /** Keys for the default workspace; generated once and stored when not given. */
  readonly writeKey: string | undefined;
  readonly secretKey: string | undefined;
  /** Rows waiting for the writer beyond which ingestion answers 503. */
  readonly maxQueuedRows: number;
  /** Rows appended in one commit at most. */
  readonly maxCommitRows: number;
  /** Tracking API requests per second allowed per write key; 0 for no limit. */
  readonly rateLimit: number;
  /** The most memory the database may use (DuckDB's memory_limit, e.g. "2GB"). */
  readonly memoryLimit: string;
  /** Threads the database may run queries on; 0 for one per core (DuckDB's default). */
  readonly dbThreads: number;
  /** Milliseconds a client has to send a whole request, headers and body, before it is answered 408. */
  readonly requestTimeoutMs: number;
  /** Days a dashboard session lasts from its latest login. */
  readonly sessionDays: number;
  /** Whether session cookies are marked Secure: browsers reach the server over HTTPS only. */
  readonly secureCookies: boolean;
}

export const DEFAULTS = Object.freeze({
  host: "0.0.0.0",
  port: 8787,
  dataDir: ".solstice",
  logLevel: "info",
  maxQueuedRows: 100_000,
  maxCommitRows: 20_000,
  rateLimit: 0,
  requestTimeoutMs: 30_000,
  memoryLimit: "2GB",
  dbThreads: 0,
  sessionDays: 7,
  secureCookies: false,
});

/** Raised for configuration the user got wrong; the CLI prints its message and exits 2. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

function parsePort(value: string, source: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`${source} must be a port number between 0 and 65535, got "${value}"`);
  }
  return port;
}

function parsePositive(value: string | undefined, source: string, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new ConfigError(`${source} must be a positive integer, got "${value}"`);
  return n;
}

function memory(value: string | undefined): string {
  if (value === undefined || value === "") return DEFAULTS.memoryLimit;
  if (!/^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i.test(value)) {
    throw new ConfigError(`SOLSTICE_MEMORY_LIMIT must be a size such as 2GB or 512MB, got "${value}"`);
  }
  return value;
}

function flag(value: string | undefined, source: string, fallback: boolean): boolean {
  if (value === undefined || value === "") return fallback;
  if (value === "true") return true;
  if (value === "false") return false;
  throw new ConfigError(`${source} must be true or false, got "${value}"`);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

/** Options that every command accepts. */
export const COMMON_OPTIONS = {
  data: { type: "string", short: "d" },
  help: { type: "boolean", short: "h" },
  "grace-hours": { type: "string" },
} as const;

/** Options of `solstice serve`. */
export const SERVE_OPTIONS = {
  ...COMMON_OPTIONS,
  port: { type: "string", short: "p" },
  host: { type: "string" },
} as const;

/**
 * Reads flags and environment into a Config. The only place in Solstice that reads process.env:
 * flags win over SOLSTICE_* variables, which win over defaults.
 */
export function loadConfig(
  flags: { port?: string | undefined; host?: string | undefined; data?: string | undefined },
  env: NodeJS.ProcessEnv,
  cwd: string = process.cwd(),
): Config {
  const portSource = flags.port !== undefined ? "--port" : env.SOLSTICE_PORT ? "SOLSTICE_PORT" : "PORT";
  const portValue = flags.port ?? nonEmpty(env.SOLSTICE_PORT) ?? nonEmpty(env.PORT);
  const config: Config = {
    host: flags.host ?? nonEmpty(env.SOLSTICE_HOST) ?? DEFAULTS.host,
    port: portValue === undefined ? DEFAULTS.port : parsePort(portValue, portSource),
    dataDir: path.resolve(cwd, flags.data ?? nonEmpty(env.SOLSTICE_DATA_DIR) ?? DEFAULTS.dataDir),
    logLevel: nonEmpty(env.SOLSTICE_LOG_LEVEL) ?? DEFAULTS.logLevel,
    writeKey: nonEmpty(env.SOLSTICE_WRITE_KEY),
    secretKey: nonEmpty(env.SOLSTICE_SECRET_KEY),
    maxQueuedRows: parsePositive(env.SOLSTICE_MAX_QUEUED_ROWS, "SOLSTICE_MAX_QUEUED_ROWS", DEFAULTS.maxQueuedRows),
    maxCommitRows: parsePositive(env.SOLSTICE_MAX_COMMIT_ROWS, "SOLSTICE_MAX_COMMIT_ROWS", DEFAULTS.maxCommitRows),
    memoryLimit: memory(env.SOLSTICE_MEMORY_LIMIT),
    dbThreads:
      env.SOLSTICE_DB_THREADS === "0"
        ? 0
        : parsePositive(env.SOLSTICE_DB_THREADS, "SOLSTICE_DB_THREADS", DEFAULTS.dbThreads),
    rateLimit:
      env.SOLSTICE_RATE_LIMIT === "0"
        ? 0
        : parsePositive(env.SOLSTICE_RATE_LIMIT, "SOLSTICE_RATE_LIMIT", DEFAULTS.rateLimit),
    requestTimeoutMs: parsePositive(
      env.SOLSTICE_REQUEST_TIMEOUT_MS,
      "SOLSTICE_REQUEST_TIMEOUT_MS",
      DEFAULTS.requestTimeoutMs,
    ),
    sessionDays: parsePositive(env.SOLSTICE_SESSION_DAYS, "SOLSTICE_SESSION_DAYS", DEFAULTS.sessionDays),
    secureCookies: flag(env.SOLSTICE_SECURE_COOKIES, "SOLSTICE_SECURE_COOKIES", DEFAULTS.secureCookies),
  };
  const levels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
  if (!levels.includes(config.logLevel)) {
    throw new ConfigError(`SOLSTICE_LOG_LEVEL must be one of ${levels.join(", ")}, got "${config.logLevel}"`);
  }
  return Object.freeze(config);
}

/** Parses argv for a command, turning unknown flags into a ConfigError. */
export function parseFlags<T extends NonNullable<ParseArgsConfig["options"]>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}
