/**
 * Summarises a V8 .cpuprofile (from node --cpu-prof, e.g. `npm run bench:ingest -- --cpu-prof DIR`):
 * the functions with the most self time, and self time by package or source folder. Only the main
 * JavaScript thread is profiled: work that DuckDB does on its own threads shows up as (idle) here.
 *
 * Usage: node --import tsx bench/profile-summary.ts FILE.cpuprofile [TOP]
 */
import fs from "node:fs";
import path from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Where a function lives, short enough to read: a package name, or a path inside this repository. */
function place(url: string): string {
  if (url === "") return "(native or V8)";
  const modules = url.lastIndexOf("/node_modules/");
  if (modules !== -1) {
    const rest = url.slice(modules + "/node_modules/".length).split("/");
    return rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1] ?? ""}` : (rest[0] ?? url);
  }
  if (url.startsWith("node:")) return "node core";
  const file = url.replace(/^file:\/\//, "");
  const root = path.resolve(import.meta.dirname, "..");
  return file.startsWith(root) ? path.relative(root, file) : file;
}

function folder(where: string): string {
  if (!where.includes("/") || where.startsWith("@")) return where;
  return path.dirname(where);
}

function main(): void {
  const [file, topText] = process.argv.slice(2);
  if (!file) {
    process.stderr.write("usage: node --import tsx bench/profile-summary.ts FILE.cpuprofile [TOP]\n");
    process.exit(2);
  }
  const top = Number(topText ?? "25");
  const profile = JSON.parse(fs.readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMicros = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const total = profile.endTime - profile.startTime;

  const byFunction = new Map<string, number>();
  const byPlace = new Map<string, number>();
  let idle = 0;
  for (const [id, micros] of selfMicros) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === "(idle)") idle += micros;
    const where = place(url);
    const key = url === "" ? functionName : `${functionName || "(anonymous)"}  ${where}:${lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + micros);
    const group = url === "" ? functionName : folder(where);
    byPlace.set(group, (byPlace.get(group) ?? 0) + micros);
  }

  const busy = total - idle;
  const share = (micros: number) => `${((micros / total) * 100).toFixed(1).padStart(5)}%`;
  const busyShare = (micros: number, key: string) =>
    key === "(idle)" ? "     -" : `${((micros / busy) * 100).toFixed(1).padStart(5)}%`;
  const rows = (map: Map<string, number>, n: number) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(
        ([key, micros]) =>
          `  ${share(micros)}  ${busyShare(micros, key)}  ${(micros / 1000).toFixed(0).padStart(7)} ms  ${key}`,
      )
      .join("\n");

  process.stdout.write(
    `${path.basename(file)}: ${(total / 1e6).toFixed(1)} s profiled, main thread busy ${((busy / total) * 100).toFixed(0)}%\n\n` +
      `  % total  % busy     self  function\n${rows(byFunction, top)}\n\n` +
      `  % total  % busy     self  package or folder\n${rows(byPlace, 15)}\n`,
  );
}

main();
