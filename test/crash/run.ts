/**
 * The long crash loop, outside vitest:
 *   node --import tsx test/crash/run.ts [--cycles N] [--seed S] [--clients N] [--max-batch N]
 *     [--kill-min-ms MS] [--kill-max-ms MS] [--full-check-every N] [--keep] [--help]
 * Exits 1 when any cycle lost, duplicated or miscounted a message. --keep leaves the data directory
 * in place for inspection.
 */
import fs from "node:fs";
import { parseArgs } from "node:util";
import { headerComment } from "../../bench/usage.js";
import { tempDataDir } from "../helpers/server.js";
import { crashSeed, runCrashLoop, ServerProcesses } from "./loop.js";

const { values } = parseArgs({
  options: {
    cycles: { type: "string", default: "50" },
    seed: { type: "string" },
    clients: { type: "string", default: "8" },
    "max-batch": { type: "string", default: "50" },
    "kill-min-ms": { type: "string", default: "50" },
    "kill-max-ms": { type: "string", default: "4000" },
    "full-check-every": { type: "string", default: "10" },
    keep: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  process.stdout.write(headerComment(import.meta.filename));
  process.exit(0);
}

const dataDir = tempDataDir("solstice-crash");
const processes = new ServerProcesses();
// Exiting runs the exit hook of ServerProcesses, which kills the server.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    console.log(`interrupted; data kept in ${dataDir}`);
    process.exit(130);
  });
}
let failed = true;
try {
  const report = await runCrashLoop({
    dataDir,
    cycles: Number(values.cycles),
    seed: crashSeed(values.seed ?? process.env.SOLSTICE_CRASH_SEED),
    clients: Number(values.clients),
    maxBatch: Number(values["max-batch"]),
    killAfterMs: [Number(values["kill-min-ms"]), Number(values["kill-max-ms"])],
    fullCheckEvery: Number(values["full-check-every"]),
    processes,
  });
  failed = report.totals.problems > 0;
} finally {
  await processes.killAll();
  if (values.keep || failed) console.log(`data kept in ${dataDir}`);
  else fs.rmSync(dataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
