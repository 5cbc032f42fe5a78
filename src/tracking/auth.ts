/**
 * The write key candidates of a request, in the order to try them. The June and Segment clients send
 * the key four ways: `Basic base64("key:")`, `Basic base64("key")`, `Basic key` (not encoded), or a
 * `writeKey` field in the JSON body. A header, when present, wins over the body.
 */
export function writeKeyCandidates(authorization: string | undefined, body: unknown): string[] {
  if (authorization !== undefined && authorization !== "") {
    const match = /^\s*(basic|bearer)\s+(\S+)\s*$/i.exec(authorization);
    if (!match) return [];
    const token = match[2] as string;
    if (match[1]?.toLowerCase() === "bearer") return [token];
    const candidates: string[] = [];
    if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(token)) {
      const decoded = Buffer.from(token, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      const user = colon === -1 ? decoded : decoded.slice(0, colon);
      if (user !== "") candidates.push(user);
    }
    candidates.push(token);
    return candidates;
  }
  if (typeof body === "object" && body !== null && typeof (body as { writeKey?: unknown }).writeKey === "string") {
    return [(body as { writeKey: string }).writeKey];
  }
  return [];
}

/** The secret key of a query API request: `Authorization: Bearer <secretKey>`. */
export function bearerToken(authorization: string | undefined): string | undefined {
  const match = /^\s*bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
  return match?.[1];
}
