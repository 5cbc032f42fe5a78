/**
 * Code shared by the benchmarks: timing and its summary, figures formatted for the tables, the
 * lines that describe the machine and its load, Solstice's engine opened as the server opens it,
 * free ports and pauses for the benchmarks that drive server processes, and the entry point's
 * error handling.
 */
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import type { DuckDBEngine } from "../src/storage/duckdb/engine.js";

// ---------------------------------------------------------------------------------------------
// Timing

/** Milliseconds per call over the measured runs. */
export interface Timing {
  median: number;
  p90: number;
  runs: number;
}

/** The q-quantile of sorted values, interpolated between the two nearest; NaN for no values. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (at - lo);
}

export function summarise(ms: readonly number[]): Timing {
  const sorted = [...ms].sort((a, b) => a - b);
  return { median: quantile(sorted, 0.5), p90: quantile(sorted, 0.9), runs: sorted.length };
}

/**
 * Calls `call(i)` for i = 0 .. warmups - 1 untimed, then for i = warmups .. warmups + runs - 1 timed,
 * so that a benchmark can pick a different entity for every call; returns the timing and the last
 * result.
 */
export async function time<T>(
  runs: number,
  warmups: number,
  call: (i: number) => Promise<T>,
): Promise<{ timing: Timing; result: T }> {
  if (runs < 1) throw new Error("at least one measured run is needed");
  for (let i = 0; i < warmups; i++) await call(i);
  const ms: number[] = [];
  let result: T | undefined;
  for (let i = warmups; i < warmups + runs; i++) {
    const started = performance.now();
    result = await call(i);
    ms.push(performance.now() - started);
  }
  return { timing: summarise(ms), result: result as T };
}

// ---------------------------------------------------------------------------------------------
// Figures and tables

/** Milliseconds with three significant figures or so; a dash for none. */
export function formatMs(ms: number | undefined): string {
  if (ms === undefined || Number.isNaN(ms)) return "–";
  return ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0);
}

export function formatBytes(count: number): string {
  return count >= 2 ** 30 ? `${(count / 2 ** 30).toFixed(2)} GiB` : `${(count / 2 ** 20).toFixed(0)} MiB`;
}

/** The size of a file in bytes; 0 when there is none. */
export function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** The bytes a DuckDB database takes on disk: the file and its write-ahead log. */
export function databaseSize(file: string): number {
  return fileSize(file) + fileSize(`${file}.wal`);
}

export type Align = "left" | "right" | "center";

const RULES: Record<Align, string> = { left: "---", right: "---:", center: ":---:" };

/** A Markdown table; `align` holds one entry per column. */
export function markdownTable(header: readonly string[], rows: readonly string[][], align: readonly Align[]): string {
  const line = (row: readonly string[]) => `| ${row.map((cell) => cell.replaceAll("|", "\\|")).join(" | ")} |`;
  return [line(header), `|${header.map((_, i) => RULES[align[i] ?? "left"]).join("|")}|`, ...rows.map(line)].join("\n");
}

// ---------------------------------------------------------------------------------------------
// The machine

/** Cores, CPU model, memory, operating system and Node version, as one line. */
export function machineLine(): string {
  const cpus = os.cpus();
  return `Machine: ${cpus.length} cores (${cpus[0]?.model.trim() ?? "unknown CPU"}), ${formatBytes(os.totalmem())} memory, ${os.platform()} ${os.release()}, Node ${process.version}`;
}

/** The 1-minute load average: other work on the machine skews every figure, and this says how much there was. */
export const load1 = (): string => os.loadavg()[0]?.toFixed(2) ?? "?";

/** The 1-, 5- and 15-minute load averages. */
export const loadAverages = (): string =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(", ");

// ---------------------------------------------------------------------------------------------
// Engines and processes

/**
 * Opens Solstice's engine on a data directory with the server's default settings; returns it with
 * the milliseconds the open took. The engine's module is loaded here, on first use, so that the
 * benchmarks that only drive a server process never load DuckDB themselves.
 */
export async function openEngine(dataDir: string): Promise<{ engine: DuckDBEngine; openMs: number }> {
  const [{ DEFAULTS }, { DuckDBEngine }] = await Promise.all([
    import("../src/config/index.js"),
    import("../src/storage/duckdb/engine.js"),
  ]);
  const engine = new DuckDBEngine({
    dataDir,
    maxQueuedRows: DEFAULTS.maxQueuedRows,
    maxCommitRows: DEFAULTS.maxCommitRows,
  });
  const opened = performance.now();
  await engine.open();
  return { engine, openMs: performance.now() - opened };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A TCP port free on `host` at the time of asking. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no free port")),
      );
    });
  });
}

/** Runs a benchmark's main function; on failure prints the stack and exits with status 1. */
export function runMain(main: () => Promise<void>): void {
  main().catch((err) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
