import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { loadConfig } from "../../src/config/index.js";
import { type RunningServer, startServer } from "../../src/server/start.js";

export const WRITE_KEY = "wk_test_write_key_0123456789abcdef";
export const SECRET_KEY = "sk_test_secret_key_0123456789abcdef";

/** A fresh data directory under the system's temp folder. */
export function tempDataDir(label = "solstice-test"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `${label}-`));
}

export interface TestServer {
  url: string;
  dataDir: string;
  server: RunningServer;
  close(): Promise<void>;
}

/**
 * Starts Solstice in this process on a free loopback port, with known keys for the default workspace;
 * `env` adds SOLSTICE_* settings (a rate limit, a request timeout).
 */
export async function startTestServer(
  dataDir: string = tempDataDir(),
  options: { now?: () => number; env?: Record<string, string> } = {},
): Promise<TestServer> {
  const config = loadConfig(
    { port: "0", host: "127.0.0.1", data: dataDir },
    {
      SOLSTICE_WRITE_KEY: WRITE_KEY,
      SOLSTICE_SECRET_KEY: SECRET_KEY,
      ...options.env,
    },
  );
  const server = await startServer(config, pino({ level: "silent" }), options.now ? { now: options.now } : {});
  return { url: server.url, dataDir, server, close: () => server.close() };
}

/** Basic auth header for the test write key, as the June and Segment SDKs send it. */
export const basicAuth = (key: string = WRITE_KEY) => `Basic ${Buffer.from(`${key}:`).toString("base64")}`;

/** GET a query API route with the test secret key; returns the parsed JSON body. */
export async function query<T = unknown>(url: string, route: string, key: string = SECRET_KEY): Promise<T> {
  const res = await fetch(`${url}${route}`, { headers: { authorization: `Bearer ${key}` } });
  if (res.status !== 200) throw new Error(`GET ${route}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** POST JSON to the Tracking API with the test write key. */
export async function post(url: string, route: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}${route}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: basicAuth(), ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** PUT the workspace settings with the test secret key; returns the status and the parsed JSON body. */
export async function putSettings(url: string, settings: unknown, key: string = SECRET_KEY) {
  const res = await fetch(`${url}/api/v1/settings`, {
    method: "PUT",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(settings),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const ROOT = path.resolve(import.meta.dirname, "../..");

export interface ChildServer {
  url: string;
  child: ChildProcess;
  /** Resolves with the exit code (or signal) once the process has ended. */
  exited: Promise<number | string | null>;
}

/** Starts `solstice serve` as a separate process (from the TypeScript sources) and waits for /healthz. */
export async function spawnServer(
  dataDir: string,
  port: number,
  env: Record<string, string> = {},
): Promise<ChildServer> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "src/cli/main.ts", "serve", "--port", String(port), "--host", "127.0.0.1", "--data", dataDir],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        SOLSTICE_WRITE_KEY: WRITE_KEY,
        SOLSTICE_SECRET_KEY: SECRET_KEY,
        SOLSTICE_LOG_LEVEL: "warn",
        ...env,
      },
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  const exited = new Promise<number | string | null>((resolve) =>
    child.on("exit", (code, signal) => resolve(code ?? signal)),
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`server exited early (${child.exitCode ?? child.signalCode})`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.status === 200) return { url, child, exited };
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      // The caller never gets a handle on this process, so it must not outlive the failure.
      child.kill("SIGKILL");
      throw new Error("server did not become healthy in 30 s");
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A free TCP port on loopback. */
export async function freePort(): Promise<number> {
  const net = await import("node:net");
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      srv.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}
