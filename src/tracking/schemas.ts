import fs from "node:fs";
import type { MessageType } from "../storage/types.js";

/** The folder of JSON Schemas, at the package root; the same relative path from src/ and dist/. */
const SCHEMA_DIR = new URL("../../schemas/", import.meta.url);

function load(name: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(new URL(`${name}.schema.json`, SCHEMA_DIR), "utf8"));
}

/** The request schema of each call, `group` being June's published schema as it is. */
export const MESSAGE_SCHEMAS: Readonly<Record<MessageType, Record<string, unknown>>> = Object.freeze({
  track: load("track"),
  identify: load("identify"),
  group: load("group"),
  page: load("page"),
  screen: load("screen"),
  alias: load("alias"),
});

/** The envelope of a batch request. */
export const BATCH_SCHEMA = load("batch");
