import net from "node:net";

/** One HTTP answer read off a raw connection. */
export interface Answer {
  status: number;
  headers: Record<string, string>;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: Record<string, unknown> | undefined;
  /** From the first byte sent to the end of the answer. */
  ms: number;
}

export interface RawRequest {
  method?: string;
  path: string;
  /** Header names in lower case; a value of null drops one of the defaults. */
  headers?: Record<string, string | null>;
  body?: string | Buffer;
}

/**
 * The bytes of an HTTP/1.1 request, written by hand so that nothing checks them: a Content-Length
 * that lies, a header fetch refuses, a body in any encoding. Defaults: Connection: close, JSON, and a
 * Content-Length matching the body.
 */
export function requestBytes(r: RawRequest): Buffer {
  const body = typeof r.body === "string" ? Buffer.from(r.body, "utf8") : (r.body ?? Buffer.alloc(0));
  const headers: Record<string, string | null> = {
    host: "127.0.0.1",
    connection: "close",
    "content-type": "application/json",
    "content-length": String(body.length),
    ...r.headers,
  };
  let head = `${r.method ?? "POST"} ${r.path} HTTP/1.1\r\n`;
  for (const [name, value] of Object.entries(headers)) if (value !== null) head += `${name}: ${value}\r\n`;
  return Buffer.concat([Buffer.from(`${head}\r\n`, "utf8"), body]);
}

function parse(bytes: Buffer): { status: number; headers: Record<string, string>; body: Buffer } | null {
  const end = bytes.indexOf("\r\n\r\n");
  if (end === -1) return null;
  const [statusLine = "", ...lines] = bytes.subarray(0, end).toString("latin1").split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine.split(" ")[1]), headers, body: bytes.subarray(end + 4) };
}

/**
 * Sends `chunks` on a new connection (`gapMs` apart when given, else at once) and reads one answer.
 * Rejects when none has come within `deadlineMs`, or the server closed without one.
 */
export function exchange(
  port: number,
  chunks: Buffer | readonly Buffer[],
  options: { gapMs?: number; deadlineMs?: number } = {},
): Promise<Answer> {
  const parts = Buffer.isBuffer(chunks) ? [chunks] : chunks;
  const deadlineMs = options.deadlineMs ?? 5000;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = net.connect(port, "127.0.0.1");
    const received: Buffer[] = [];
    let done = false;
    let drip: NodeJS.Timeout | undefined;
    const finish = (error?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      clearTimeout(drip);
      socket.destroy();
      const answer = parse(Buffer.concat(received));
      if (!answer) {
        reject(error ?? new Error("the connection closed without an answer"));
        return;
      }
      const text = answer.body.toString("utf8");
      let json: Record<string, unknown> | undefined;
      try {
        json = JSON.parse(text) as Record<string, unknown>;
      } catch {
        json = undefined;
      }
      resolve({ status: answer.status, headers: answer.headers, text, json, ms: performance.now() - started });
    };
    const deadline = setTimeout(() => finish(new Error(`no answer within ${deadlineMs} ms`)), deadlineMs);
    socket.on("data", (data: Buffer) => {
      received.push(data);
      const answer = parse(Buffer.concat(received));
      const length = Number(answer?.headers["content-length"]);
      if (answer && Number.isInteger(length) && answer.body.length >= length) finish();
    });
    // A server that answers before reading the whole body closes on the rest: EPIPE or ECONNRESET.
    socket.on("error", () => {});
    socket.on("close", () => finish());
    if (options.gapMs === undefined) {
      socket.write(Buffer.concat(parts));
      return;
    }
    const gap = options.gapMs;
    let next = 0;
    const send = () => {
      if (done || socket.destroyed) return;
      const part = parts[next++];
      if (part === undefined) return;
      socket.write(part);
      drip = setTimeout(send, gap);
    };
    send();
  });
}

/** Splits bytes into one-byte chunks, for a client that sends them one at a time. */
export function bytewise(bytes: Buffer): Buffer[] {
  return Array.from(bytes, (b) => Buffer.from([b]));
}
