/** Segment's published limits, which June's SDKs assume too. */
export const LIMITS = Object.freeze({
  /** Bytes of one message's JSON. */
  messageBytes: 32_768,
  /** Bytes of a request body after decompression. */
  requestBytes: 512_000,
  /** Messages in one batch. */
  batchMessages: 2_500,
  /** Nesting of objects and arrays; deeper JSON overflows the stack when it is serialised again. */
  depth: 64,
});

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Whether JSON text nests objects and arrays deeper than `limit`. Scans the bytes without parsing, so
 * hostile nesting never reaches a recursive parser or serialiser.
 */
export function nestsDeeperThan(bytes: Uint8Array, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) {
      inString = true;
    } else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      if (++depth > limit) return true;
    } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

/** Whether a string's UTF-8 encoding is longer than `limit` bytes, encoding it only when its length leaves doubt. */
export function exceedsBytes(text: string, limit: number): boolean {
  if (text.length > limit) return true;
  if (text.length * 3 <= limit) return false;
  return Buffer.byteLength(text, "utf8") > limit;
}
