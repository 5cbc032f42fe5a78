import fs from "node:fs";

/** The leading doc comment of a source file as plain text: a script's usage, kept in one place. */
export function headerComment(file: string): string {
  const source = fs.readFileSync(file, "utf8");
  const match = /^\s*\/\*\*([\s\S]*?)\*\//.exec(source);
  if (!match?.[1]) return "";
  const lines = match[1].split("\n").map((line) => line.replace(/^\s*\* ?/, ""));
  while (lines.length > 0 && lines[0]?.trim() === "") lines.shift();
  while (lines.length > 0 && lines.at(-1)?.trim() === "") lines.pop();
  return `${lines.join("\n")}\n`;
}

/**
 * For a script that takes its settings from the environment: -h or --help prints its usage (the
 * file's leading doc comment) and exits; any other argument is refused, so that a mistyped option
 * does not start a run of many minutes.
 */
export function environmentOnly(file: string, args: readonly string[] = process.argv.slice(2)): void {
  if (args.length === 0) return;
  const usage = headerComment(file);
  const unknown = args.find((arg) => arg !== "-h" && arg !== "--help");
  if (unknown === undefined) {
    process.stdout.write(usage);
    process.exit(0);
  }
  process.stderr.write(`unknown argument ${unknown}: settings come from the environment\n\n${usage}`);
  process.exit(2);
}
