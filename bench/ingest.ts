/**
 * Ingestion benchmark: how many durable events per second Solstice takes, against a bare node:http
 * server that only parses the JSON, on the same machine, with the same requests.
 *
 *   npm run bench:ingest [-- --seconds 10 --warmup 2 --single-connections 50/400 --batch-connections 16/64]
 *
 * Each server runs in a child process; the load comes from this process. Scenarios run in pairs
 * (bare, then Solstice) so that both sides of a ratio see about the same machine noise. Run with
 * --help for every option; each also has a BENCH_* environment variable.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { runAutocannon } from "./autocannon-load.js";
import { freePort, sleep } from "./common.js";
import { type LoadOptions, type LoadResult, runLoad } from "./load.js";
import { batchBodies, RequestNumbers, singleEventBodies } from "./payloads.js";

const ROOT = path.resolve(import.meta.dirname, "..");
const HOST = "127.0.0.1";
const WRITE_KEY = "wk_bench_write_key_0123456789abcdef";
const SECRET_KEY = "sk_bench_secret_key_0123456789abcdef";

const TARGET_BATCH_EVENTS_PER_SECOND = 100_000;
const TARGET_SINGLE_RATIO = 0.6;
/** CPU of other processes, in cores, above which a run is flagged as disturbed. */
const NOISY_CPU = 0.15;

/**
 * Connections [bare, Solstice], each near that server's best throughput in a sweep (10 to 800) on a
 * machine of two cores shared with the load generator. The bare server is flat from 25 to 200
 * connections. Solstice keeps gaining up to about 400 single-event connections (9,178 requests/s at
 * 200, 11,476 at 400, 11,076 at 800), because concurrent requests share a commit and its fsync; for
 * batches it peaks at 64 (37,300 events/s at 32, 40,300 at 64, 37,700 at 128).
 */
const DEFAULT_CONNECTIONS = { single: [50, 400], batch: [16, 64] } as const;

const HELP = `Ingestion benchmark: Solstice against a bare node:http server.

Options (each also read from the environment variable in brackets):
  --seconds N              measured seconds per scenario (BENCH_SECONDS, default 10)
  --warmup N               unmeasured seconds before each scenario (BENCH_WARMUP_SECONDS, default 2)
  --single-connections N   connections for single-event requests, N for both servers or BARE/SOLSTICE
                           (BENCH_SINGLE_CONNECTIONS, default ${DEFAULT_CONNECTIONS.single.join("/")})
  --batch-connections N    connections for batch requests, likewise
                           (BENCH_BATCH_CONNECTIONS, default ${DEFAULT_CONNECTIONS.batch.join("/")})
  --batch-size N           events per batch request (BENCH_BATCH_SIZE, default 100)
  --client NAME            load generator: lean (default) or autocannon (BENCH_CLIENT)
  --log-level LEVEL        Solstice's SOLSTICE_LOG_LEVEL (BENCH_LOG_LEVEL, default info)
  --only LIST              scenarios to run, comma-separated, of bare-single, solstice-single,
                           bare-batch, solstice-batch (BENCH_ONLY, default all)
  --cpu-prof DIR           run Solstice under node --cpu-prof, writing the profile to DIR (BENCH_CPU_PROF)
  --skip-build             use dist/ as it is instead of running npm run build first (BENCH_SKIP_BUILD=1)
  -h, --help               show this help
`;

const SCENARIOS = ["bare-single", "solstice-single", "bare-batch", "solstice-batch"] as const;
type ScenarioName = (typeof SCENARIOS)[number];
type ServerKind = "bare" | "solstice";
type Shape = "single" | "batch";

interface Options {
  seconds: number;
  warmup: number;
  /** Connections of each scenario. */
  connections: Readonly<Record<ScenarioName, number>>;
  batchSize: number;
  client: "lean" | "autocannon";
  logLevel: string;
  only: ReadonlySet<ScenarioName>;
  cpuProf: string | undefined;
  build: boolean;
}

class UsageError extends Error {}

function number(value: string | undefined, name: string, fallback: number, min: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min)
    throw new UsageError(`${name} must be a number of at least ${min}, got "${value}"`);
  return n;
}

/**
 * Connections for the bare server and for Solstice: "N" for both, or "BARE/SOLSTICE". Each server gets
 * the count near its best throughput; Solstice gains from more connections than the bare server,
 * because concurrent requests share a commit.
 */
function connectionPair(
  value: string | undefined,
  name: string,
  fallback: readonly [number, number],
  shape: Shape,
): Partial<Record<ScenarioName, number>> {
  const parts = value === undefined || value === "" ? [] : value.split("/");
  if (parts.length > 2) throw new UsageError(`${name} must be N or BARE/SOLSTICE, got "${value}"`);
  const bare = Math.floor(number(parts[0], name, fallback[0], 1));
  const solstice = Math.floor(number(parts[1] ?? parts[0], name, fallback[1], 1));
  return { [`bare-${shape}`]: bare, [`solstice-${shape}`]: solstice };
}

function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: "string" },
      warmup: { type: "string" },
      "single-connections": { type: "string" },
      "batch-connections": { type: "string" },
      "batch-size": { type: "string" },
      client: { type: "string" },
      "log-level": { type: "string" },
      only: { type: "string" },
      "cpu-prof": { type: "string" },
      "skip-build": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) return null;
  const client = values.client ?? env.BENCH_CLIENT ?? "lean";
  if (client !== "lean" && client !== "autocannon") throw new UsageError(`--client must be lean or autocannon`);
  const onlyText = values.only ?? env.BENCH_ONLY ?? "";
  const only = new Set<ScenarioName>();
  for (const name of onlyText.split(",").filter((s) => s.trim() !== "")) {
    const trimmed = name.trim();
    if (!(SCENARIOS as readonly string[]).includes(trimmed)) {
      throw new UsageError(`--only: unknown scenario "${trimmed}"; use ${SCENARIOS.join(", ")}`);
    }
    only.add(trimmed as ScenarioName);
  }
  const cpuProf = values["cpu-prof"] ?? env.BENCH_CPU_PROF;
  return {
    seconds: number(values.seconds ?? env.BENCH_SECONDS, "--seconds", 10, 1),
    warmup: number(values.warmup ?? env.BENCH_WARMUP_SECONDS, "--warmup", 2, 0),
    connections: {
      ...connectionPair(
        values["single-connections"] ?? env.BENCH_SINGLE_CONNECTIONS,
        "--single-connections",
        DEFAULT_CONNECTIONS.single,
        "single",
      ),
      ...connectionPair(
        values["batch-connections"] ?? env.BENCH_BATCH_CONNECTIONS,
        "--batch-connections",
        DEFAULT_CONNECTIONS.batch,
        "batch",
      ),
    } as Record<ScenarioName, number>,
    batchSize: Math.floor(number(values["batch-size"] ?? env.BENCH_BATCH_SIZE, "--batch-size", 100, 1)),
    client,
    logLevel: values["log-level"] ?? env.BENCH_LOG_LEVEL ?? "info",
    only: only.size > 0 ? only : new Set(SCENARIOS),
    cpuProf: cpuProf ? path.resolve(cpuProf) : undefined,
    build: !(values["skip-build"] ?? ["1", "true"].includes(env.BENCH_SKIP_BUILD ?? "")),
  };
}

// ---------------------------------------------------------------------------------------------------
// Formatting

const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "n/a");
const ms = (n: number) => (Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n.toFixed(1)) : "n/a");
const pct = (n: number | undefined) => (n === undefined ? "n/a" : `${Math.round(n * 100)}%`);
const ratio = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : "n/a");

function table(rows: string[][], rightAligned: ReadonlySet<number>): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((cell, c) => (rightAligned.has(c) ? cell.padStart(widths[c] ?? 0) : cell.padEnd(widths[c] ?? 0)))
        .join("  "),
    )
    .join("\n");
}

// ---------------------------------------------------------------------------------------------------
// Processes

interface Server {
  kind: ServerKind;
  label: string;
  port: number;
  url: string;
  child: ChildProcess;
  exited: Promise<void>;
  logFile: string;
}

const children = new Set<Server>();

async function startChild(
  kind: ServerKind,
  label: string,
  args: (port: number) => string[],
  env: NodeJS.ProcessEnv,
  workDir: string,
): Promise<Server> {
  const port = await freePort(HOST);
  const logFile = path.join(workDir, `${kind}.log`);
  const log = fs.openSync(logFile, "a");
  // Logs go to a file, not a pipe: a pipe would make this process, which also generates the load,
  // spend CPU reading every access log line.
  const child = spawn(process.execPath, args(port), { cwd: ROOT, env, stdio: ["ignore", log, log] });
  fs.closeSync(log);
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const server: Server = { kind, label, port, url: `http://${HOST}:${port}`, child, exited, logFile };
  children.add(server);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${label} exited during start-up; its log:\n${tail(logFile)}`);
    }
    try {
      const res = await fetch(`${server.url}/healthz`);
      await res.arrayBuffer();
      if (res.status === 200) return server;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`${label} did not answer /healthz within 60 s`);
    await sleep(100);
  }
}

function tail(file: string, lines = 20): string {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

async function stopChild(server: Server): Promise<void> {
  children.delete(server);
  const { child } = server;
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const stopped = await Promise.race([server.exited.then(() => true), sleep(20_000).then(() => false)]);
  if (!stopped) {
    process.stderr.write(`${server.label} did not stop within 20 s of SIGTERM; killing it\n`);
    child.kill("SIGKILL");
    await server.exited;
  }
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds a process has used so far (user and system, all its threads), where /proc exists. */
function processCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** CPU seconds the whole machine has spent busy so far (all cores, all processes), where /proc exists. */
function machineCpuSeconds(): number | undefined {
  try {
    const line = fs.readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
    const busy = [user, nice, system, irq, softirq, steal].reduce<number>((sum, n) => sum + (n ?? 0), 0);
    return Number.isFinite(busy) ? busy / CLOCK_TICKS : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------
// Scenarios

interface Scenario {
  name: ScenarioName;
  server: Server;
  shape: Shape;
  path: string;
  eventsPerRequest: number;
  connections: number;
  bodies: readonly string[];
}

interface Measured {
  scenario: Scenario;
  result: LoadResult;
  requestsPerSecond: number;
  eventsPerSecond: number;
  serverCpu: number | undefined;
  generatorCpu: number;
  /** CPU used by everything else on the machine during the run, in cores: noise that skews the numbers. */
  otherCpu: number | undefined;
  warmupOk: number;
  warmupUnknown: number;
}

async function runScenario(scenario: Scenario, options: Options, numbers: RequestNumbers): Promise<Measured> {
  const load = options.client === "lean" ? runLoad : runAutocannon;
  const base: Omit<LoadOptions, "seconds"> = {
    host: HOST,
    port: scenario.server.port,
    method: "POST",
    path: scenario.path,
    headers: {
      "Content-Type": "application/json",
      Authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString("base64")}`,
      "User-Agent": "solstice-bench",
    },
    bodies: scenario.bodies,
    numbers,
    connections: scenario.connections,
  };
  let warmupOk = 0;
  let warmupUnknown = 0;
  if (options.warmup > 0) {
    const warm = await load({ ...base, seconds: options.warmup });
    warmupOk = warm.ok;
    warmupUnknown = warm.unknown;
  }
  const cpuBefore = processCpuSeconds(scenario.server.child.pid);
  const machineBefore = machineCpuSeconds();
  const result = await load({ ...base, seconds: options.seconds });
  const cpuAfter = processCpuSeconds(scenario.server.child.pid);
  const machineAfter = machineCpuSeconds();
  const requestsPerSecond = result.ok / result.seconds;
  const serverCpu =
    cpuBefore === undefined || cpuAfter === undefined ? undefined : (cpuAfter - cpuBefore) / result.seconds;
  const generatorCpu = result.cpuSeconds / result.seconds;
  return {
    scenario,
    result,
    requestsPerSecond,
    eventsPerSecond: requestsPerSecond * scenario.eventsPerRequest,
    serverCpu,
    generatorCpu,
    otherCpu:
      machineBefore === undefined || machineAfter === undefined || serverCpu === undefined
        ? undefined
        : Math.max(0, (machineAfter - machineBefore) / result.seconds - serverCpu - generatorCpu),
    warmupOk,
    warmupUnknown,
  };
}

function describeStatuses(result: LoadResult): string {
  const other = [...result.statuses].filter(([status]) => status < 200 || status >= 300);
  const parts = other.map(([status, count]) => `${status}×${int(count)}`);
  if (result.failed > 0) parts.push(`no answer×${int(result.failed)}`);
  if (result.socketErrors > 0) parts.push(`socket errors×${int(result.socketErrors)}`);
  return parts.length > 0 ? ` (${parts.join(", ")})` : "";
}

/**
 * Server CPU time per acknowledged event: it moves much less than throughput when other processes take
 * CPU from the run, so it is the better number to compare builds with on a shared machine.
 */
function cpuPerEvent(m: Measured): string {
  return m.serverCpu === undefined || m.eventsPerSecond === 0
    ? "n/a"
    : `${((m.serverCpu * 1e6) / m.eventsPerSecond).toFixed(1)}`;
}

const noisy = (m: Measured) => (m.otherCpu ?? 0) > NOISY_CPU;

function printMeasured(m: Measured): void {
  const r = m.result;
  process.stdout.write(
    `  ${m.scenario.name.padEnd(16)} ${String(m.scenario.connections).padStart(3)} conn  ${r.seconds.toFixed(1)} s  ` +
      `${int(m.requestsPerSecond).padStart(7)} req/s  ${int(m.eventsPerSecond).padStart(8)} events/s  ` +
      `p50 ${ms(r.p50)} ms  p99 ${ms(r.p99)} ms  non-2xx ${int(r.non2xx)}${describeStatuses(r)}  ` +
      `CPU: server ${pct(m.serverCpu)} (${cpuPerEvent(m)} µs/event), load generator ${pct(m.generatorCpu)}, ` +
      `other processes ${pct(m.otherCpu)}${noisy(m) ? "  <- machine busy with other work: unreliable" : ""}\n`,
  );
}

// ---------------------------------------------------------------------------------------------------
// Main

function gitDescription(): string {
  try {
    const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src", "schemas"], {
      cwd: ROOT,
      encoding: "utf8",
    }).trim();
    return dirty ? `${commit} with uncommitted changes in src/ or schemas/` : commit;
  } catch {
    return "unknown (not a git checkout)";
  }
}

function machineDescription(): { lines: string[]; short: string } {
  const cpus = os.cpus();
  const model = cpus[0]?.model.trim() ?? "unknown CPU";
  const memory = `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`;
  const load = os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
  return {
    lines: [
      `CPUs:      ${cpus.length} × ${model}`,
      `memory:    ${memory}`,
      `node:      ${process.version} on ${os.platform()} ${os.release()} (${os.arch()})`,
      `load avg:  ${load} (1, 5, 15 min) at start`,
      `solstice:  ${gitDescription()}`,
    ],
    short: `${cpus.length} × ${model}, ${memory} RAM, Node ${process.version}`,
  };
}

async function fetchStats(server: Server): Promise<{ messages: number; events: number; duplicates: number }> {
  const res = await fetch(`${server.url}/api/v1/stats`, { headers: { Authorization: `Bearer ${SECRET_KEY}` } });
  if (res.status !== 200) throw new Error(`GET /api/v1/stats answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as { messages: number; events: number; duplicates: number };
}

function build(): void {
  const started = Date.now();
  process.stdout.write("building dist/ (npm run build) … ");
  const result = spawnSync("npm", ["run", "--silent", "build"], { cwd: ROOT, encoding: "utf8" });
  if (result.status !== 0) {
    process.stdout.write("failed\n");
    throw new Error(`npm run build failed:\n${result.stdout}${result.stderr}`);
  }
  process.stdout.write(`done in ${((Date.now() - started) / 1000).toFixed(1)} s\n\n`);
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2), process.env);
  if (!options) {
    process.stdout.write(HELP);
    return 0;
  }
  const machine = machineDescription();
  process.stdout.write(`# Solstice ingestion benchmark\n\n${machine.lines.join("\n")}\n\n`);
  process.stdout.write(
    `load: ${options.client === "lean" ? "bench/load.ts (this process)" : "autocannon (this process)"}, ` +
      `${options.seconds} s per scenario after ${options.warmup} s of warm-up; ` +
      `connections (bare/Solstice): single events ${options.connections["bare-single"]}/` +
      `${options.connections["solstice-single"]}, ${options.batchSize}-event batches ` +
      `${options.connections["bare-batch"]}/${options.connections["solstice-batch"]}; ` +
      `Solstice log level ${options.logLevel}\n\n`,
  );
  if (options.build) build();
  const main = path.join(ROOT, "dist", "cli", "main.js");
  if (!fs.existsSync(main)) throw new Error(`${path.relative(ROOT, main)} is missing; run npm run build`);

  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "solstice-bench-"));
  const cleanup = async () => {
    for (const server of [...children]) await stopChild(server);
    fs.rmSync(workDir, { recursive: true, force: true });
  };
  const interrupted = () => {
    process.stderr.write("\ninterrupted; stopping the servers\n");
    void cleanup().finally(() => process.exit(130));
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);

  try {
    const wanted = (kind: ServerKind) => [...options.only].some((name) => name.startsWith(`${kind}-`));
    const bare = wanted("bare")
      ? await startChild(
          "bare",
          "bare node:http server",
          (port) => ["--import", "tsx", path.join(ROOT, "bench", "bare-server.ts"), String(port), HOST],
          process.env,
          workDir,
        )
      : undefined;
    if (options.cpuProf) fs.mkdirSync(options.cpuProf, { recursive: true });
    const solstice = wanted("solstice")
      ? await startChild(
          "solstice",
          "Solstice",
          (port) => [
            ...(options.cpuProf ? ["--cpu-prof", `--cpu-prof-dir=${options.cpuProf}`] : []),
            main,
            "serve",
            "--port",
            String(port),
            "--host",
            HOST,
            "--data",
            path.join(workDir, "data"),
          ],
          {
            ...process.env,
            SOLSTICE_WRITE_KEY: WRITE_KEY,
            SOLSTICE_SECRET_KEY: SECRET_KEY,
            SOLSTICE_LOG_LEVEL: options.logLevel,
          },
          workDir,
        )
      : undefined;

    const singles = singleEventBodies(64);
    const batches = batchBodies(8, options.batchSize);
    const numbers = new RequestNumbers();
    const scenarios: Scenario[] = [];
    for (const name of SCENARIOS) {
      if (!options.only.has(name)) continue;
      const server = name.startsWith("bare-") ? bare : solstice;
      if (!server) continue;
      const single = name.endsWith("-single");
      scenarios.push({
        name,
        server,
        shape: single ? "single" : "batch",
        path: single ? "/v1/track" : "/v1/batch",
        eventsPerRequest: single ? 1 : options.batchSize,
        connections: options.connections[name],
        bodies: single ? singles : batches,
      });
    }
    const bodyBytes = (bodies: readonly string[]) =>
      int(bodies.reduce((sum, b) => sum + Buffer.byteLength(b), 0) / bodies.length);
    process.stdout.write(
      `bodies: single event ≈ ${bodyBytes(singles)} B, ${options.batchSize}-event batch ≈ ${bodyBytes(batches)} B\n\n`,
    );

    process.stdout.write("## Runs\n\n");
    const measured: Measured[] = [];
    for (const scenario of scenarios) {
      const m = await runScenario(scenario, options, numbers);
      measured.push(m);
      printMeasured(m);
      const { child } = scenario.server;
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `${scenario.server.label} exited during ${scenario.name}; its log:\n${tail(scenario.server.logFile)}`,
        );
      }
    }

    let checkFailed = false;
    const durability: string[] = [];
    if (solstice) {
      const runs = measured.filter((m) => m.scenario.server === solstice);
      const acked = runs.reduce((sum, m) => sum + (m.warmupOk + m.result.ok) * m.scenario.eventsPerRequest, 0);
      const unknown = runs.reduce(
        (sum, m) => sum + (m.warmupUnknown + m.result.unknown) * m.scenario.eventsPerRequest,
        0,
      );
      const stats = await fetchStats(solstice);
      // A lean run waits for every answer, so the counts must match exactly; autocannon drops the answers
      // in flight at its deadline, whose events may be stored without having been counted as acknowledged.
      const ok = stats.events >= acked && stats.events <= acked + unknown && stats.duplicates === 0;
      checkFailed = !ok;
      durability.push(
        `events acknowledged with 2xx (warm-ups included): ${int(acked)}`,
        `events stored (GET /api/v1/stats):                ${int(stats.events)}  ` +
          `(messages ${int(stats.messages)}, duplicates ${int(stats.duplicates)})`,
        unknown > 0 ? `events in requests whose answer was not read:     ${int(unknown)}` : "",
        ok
          ? stats.events === acked
            ? "OK: every acknowledged event is stored, and nothing else"
            : "OK: stored events lie between the acknowledged ones and those plus the unread answers"
          : "!!! MISMATCH: the stored events differ from the acknowledged events !!!",
      );
    }

    const find = (name: ScenarioName) => measured.find((m) => m.scenario.name === name);
    const bareSingle = find("bare-single");
    const solSingle = find("solstice-single");
    const bareBatch = find("bare-batch");
    const solBatch = find("solstice-batch");
    const singleRatio =
      bareSingle && solSingle ? solSingle.requestsPerSecond / bareSingle.requestsPerSecond : Number.NaN;
    const batchRatio = bareBatch && solBatch ? solBatch.eventsPerSecond / bareBatch.eventsPerSecond : Number.NaN;
    const batchEvents = solBatch?.eventsPerSecond ?? Number.NaN;
    const verdict = (value: number, target: number) =>
      Number.isFinite(value) ? (value >= target ? "met" : "MISSED") : "not measured";

    process.stdout.write("\n## Results\n\n");
    const header = [
      "scenario",
      "conn",
      "req/s",
      "events/s",
      "p50 ms",
      "p99 ms",
      "non-2xx",
      "server CPU",
      "µs CPU/event",
      "load CPU",
      "other CPU",
    ];
    process.stdout.write(
      `${table(
        [
          header,
          ...measured.map((m) => [
            `${m.scenario.name}${noisy(m) ? " *" : ""}`,
            String(m.scenario.connections),
            int(m.requestsPerSecond),
            int(m.eventsPerSecond),
            ms(m.result.p50),
            ms(m.result.p99),
            int(m.result.non2xx),
            pct(m.serverCpu),
            cpuPerEvent(m),
            pct(m.generatorCpu),
            pct(m.otherCpu),
          ]),
        ],
        new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
      )}\n`,
    );
    if (measured.some(noisy)) {
      process.stdout.write(
        `* other processes used more than ${NOISY_CPU} of a core during this run: its throughput and latency ` +
          "are low by an unknown amount. CPU per event moves much less, though Solstice's grows a little when " +
          "starved, as its commits get smaller.\n",
      );
    }
    process.stdout.write("\n");
    process.stdout.write(
      `${table(
        [
          ["measure", "value", "target", "verdict"],
          [
            "Solstice single-event req/s ÷ bare req/s",
            ratio(singleRatio),
            `≥ ${TARGET_SINGLE_RATIO.toFixed(2)}×`,
            verdict(singleRatio, TARGET_SINGLE_RATIO),
          ],
          [
            `Solstice ${options.batchSize}-event batches, durable events/s`,
            int(batchEvents),
            `≥ ${int(TARGET_BATCH_EVENTS_PER_SECOND)}`,
            options.batchSize === 100 ? verdict(batchEvents, TARGET_BATCH_EVENTS_PER_SECOND) : "n/a (not 100)",
          ],
          ["Solstice batch events/s ÷ bare batch events/s", ratio(batchRatio), "none", ""],
        ],
        new Set([1]),
      )}\n`,
    );
    if (durability.length > 0) {
      process.stdout.write(`\n## Durability check\n\n${durability.filter((l) => l !== "").join("\n")}\n`);
    }

    const server = (m: Measured) => (m.scenario.server.kind === "bare" ? "bare node:http" : "Solstice");
    const shape = (m: Measured) =>
      m.scenario.shape === "single" ? "1 event / request" : `${m.scenario.eventsPerRequest} events / request`;
    process.stdout.write(
      [
        "",
        "## Markdown",
        "",
        "| Load | Server | Connections | Requests/s | Events/s | p50 (ms) | p99 (ms) | Non-2xx |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ...measured.map(
          (m) =>
            `| ${shape(m)} | ${server(m)} | ${m.scenario.connections} | ${int(m.requestsPerSecond)} | ` +
            `${int(m.eventsPerSecond)} | ${ms(m.result.p50)} | ${ms(m.result.p99)} | ${int(m.result.non2xx)} |`,
        ),
        "",
        `Solstice ÷ bare: ${ratio(singleRatio)} the requests/s for single events (target ≥ ${TARGET_SINGLE_RATIO}×), ` +
          `${ratio(batchRatio)} the events/s for ${options.batchSize}-event batches, ` +
          `${int(batchEvents)} durable events/s (target ≥ ${int(TARGET_BATCH_EVENTS_PER_SECOND)}).`,
        `Machine: ${machine.short}; server and load generator share it. ` +
          `${options.seconds} s per scenario after a ${options.warmup} s warm-up.`,
        "",
      ].join("\n"),
    );
    return checkFailed ? 1 : 0;
  } finally {
    process.off("SIGINT", interrupted);
    process.off("SIGTERM", interrupted);
    await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`bench: ${(err as Error).message}\n${HELP}`);
      process.exit(2);
    }
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
