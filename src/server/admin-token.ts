import { randomBytes, timingSafeEqual } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

/** The file in the data directory holding the token of server-wide operations such as backup. */
export const ADMIN_TOKEN_FILE = "admin.token";

/**
 * The admin token: made once, kept in the data directory readable by its owner only, so that whoever
 * can read the data can also run the server-wide operations, and nobody else.
 */
export function loadAdminToken(dataDir: string): string {
  const file = path.join(dataDir, ADMIN_TOKEN_FILE);
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch {
    const token = randomBytes(32).toString("base64url");
    fs.writeFileSync(file, `${token}\n`, { mode: 0o600, flag: "wx" });
    return token;
  }
}

export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
