/**
 * A small closed-loop HTTP/1.1 load generator: N keep-alive connections, each sending its next request
 * as soon as the previous response is complete. It exists because the benchmark shares two cores with
 * the server, so the generator must spend as little CPU per request as it can:
 * - every connection owns its request buffers and stamps the request number into them in place;
 * - responses are parsed just enough to read the status and skip the body.
 * At the deadline it stops sending and waits for the answers in flight, so that every request sent is
 * either counted as answered or as failed, and the count of acknowledged events is exact.
 */
import net from "node:net";
import { ID_SLOT, type RequestNumbers } from "./payloads.js";

export interface LoadOptions {
  host: string;
  port: number;
  method: "POST";
  path: string;
  headers: Readonly<Record<string, string>>;
  /** Body templates holding ID_SLOT placeholders; a connection cycles through them. */
  bodies: readonly string[];
  numbers: RequestNumbers;
  connections: number;
  seconds: number;
  /** How long to wait for the answers in flight at the deadline before giving up on them. */
  drainSeconds?: number;
}

export interface LoadResult {
  /** From the first request sent to the last response read. */
  seconds: number;
  ok: number;
  non2xx: number;
  /** Requests that got no complete response: refused or reset connections, answers still missing after the drain. */
  failed: number;
  /** Connections that ended in an error (refused, reset, broken response). */
  socketErrors: number;
  /** Requests sent without being counted above; only a load generator that does not drain has these. */
  unknown: number;
  statuses: Map<number, number>;
  /** Latency of the 2xx responses, in ms. */
  p50: number;
  p99: number;
  /** CPU time of the load generator's process over the run, in seconds. */
  cpuSeconds: number;
}

const HEADER_END = Buffer.from("\r\n\r\n");

/** Latencies in a growable typed array: a few hundred thousand samples cost a few MB and one sort. */
class Samples {
  private data = new Float64Array(1 << 16);
  private size = 0;

  push(value: number): void {
    if (this.size === this.data.length) {
      const grown = new Float64Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.size++] = value;
  }

  percentiles(...ps: number[]): number[] {
    const sorted = this.data.subarray(0, this.size).sort();
    return ps.map((p) =>
      this.size === 0 ? Number.NaN : (sorted[Math.min(this.size - 1, Math.floor(p * this.size))] ?? 0),
    );
  }
}

/** One prepared request: the whole HTTP message, and where the request number goes in it. */
interface Prepared {
  buffer: Buffer;
  slots: number[];
}

function prepare(options: LoadOptions, body: string): Prepared {
  const head = [
    `${options.method} ${options.path} HTTP/1.1`,
    `Host: ${options.host}:${options.port}`,
    "Connection: keep-alive",
    ...Object.entries(options.headers).map(([name, value]) => `${name}: ${value}`),
    `Content-Length: ${Buffer.byteLength(body)}`,
    "",
    "",
  ].join("\r\n");
  const buffer = Buffer.from(head + body);
  const slots: number[] = [];
  for (let at = buffer.indexOf(ID_SLOT, head.length); at !== -1; at = buffer.indexOf(ID_SLOT, at + ID_SLOT.length)) {
    slots.push(at);
  }
  return { buffer, slots };
}

export function runLoad(options: LoadOptions): Promise<LoadResult> {
  const latencies = new Samples();
  const statuses = new Map<number, number>();
  let ok = 0;
  let non2xx = 0;
  let failed = 0;
  let socketErrors = 0;
  let lastResponse = 0;
  let stopping = false;
  let open = 0;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  const sockets = new Set<net.Socket>();

  return new Promise((resolve) => {
    let drainTimer: NodeJS.Timeout | undefined;
    const finish = () => {
      if (drainTimer) clearTimeout(drainTimer);
      const cpu = process.cpuUsage(cpuBefore);
      const [p50 = Number.NaN, p99 = Number.NaN] = latencies.percentiles(0.5, 0.99);
      resolve({
        seconds: ((lastResponse || performance.now()) - started) / 1000,
        ok,
        non2xx,
        failed,
        socketErrors,
        unknown: 0,
        statuses,
        p50,
        p99,
        cpuSeconds: (cpu.user + cpu.system) / 1e6,
      });
    };
    const stopTimer = setTimeout(
      () => {
        stopping = true;
        drainTimer = setTimeout(
          () => {
            for (const socket of sockets) socket.destroy();
          },
          (options.drainSeconds ?? 30) * 1000,
        );
      },
      Math.max(0, deadline - performance.now()),
    );

    const connectionDone = () => {
      if (--open === 0) {
        clearTimeout(stopTimer);
        finish();
      }
    };

    const connect = (prepared: Prepared[], offset: number) => {
      const socket = net.connect({ host: options.host, port: options.port, noDelay: true });
      sockets.add(socket);
      let next = offset;
      let inFlight = false;
      let sentAt = 0;
      let pending: Buffer | null = null;

      const send = () => {
        if (stopping || performance.now() >= deadline) {
          stopping = true;
          socket.end();
          return;
        }
        const request = prepared[next++ % prepared.length] as Prepared;
        const number = options.numbers.take();
        for (const slot of request.slots) request.buffer.write(number, slot, "latin1");
        inFlight = true;
        sentAt = performance.now();
        socket.write(request.buffer);
      };

      socket.on("connect", send);
      socket.on("data", (chunk: Buffer) => {
        pending = pending ? Buffer.concat([pending, chunk]) : chunk;
        const headerEnd = pending.indexOf(HEADER_END);
        if (headerEnd === -1) return;
        const head = pending.toString("latin1", 0, headerEnd);
        const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        if (!length) {
          // Both servers always send Content-Length; anything else is a broken response.
          socket.destroy(new Error(`response without Content-Length: ${head.split("\r\n")[0]}`));
          return;
        }
        const end = headerEnd + HEADER_END.length + Number(length[1]);
        if (pending.length < end) return;
        const status = Number(head.slice(9, 12));
        const rest = pending.length > end ? pending.subarray(end) : null;
        pending = rest;
        inFlight = false;
        lastResponse = performance.now();
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status >= 200 && status < 300) {
          ok++;
          latencies.push(lastResponse - sentAt);
        } else {
          non2xx++;
        }
        if (/\r\nconnection:\s*close/i.test(head)) {
          socket.end();
          return;
        }
        send();
      });
      socket.on("error", () => {
        // The request in flight, if any, is counted as failed on close.
        socketErrors++;
      });
      socket.on("close", () => {
        sockets.delete(socket);
        const lost = inFlight;
        if (lost) failed++;
        inFlight = false;
        if (!stopping && performance.now() < deadline) {
          // The server closed a keep-alive connection (or refused one): carry on with a new one, after a
          // pause when the connection never carried a request, so a refusing server is not spun on.
          setTimeout(() => connect(prepared, next), lost ? 0 : 10);
          return;
        }
        connectionDone();
      });
    };

    for (let i = 0; i < options.connections; i++) {
      open++;
      // Each connection gets its own copies, since it writes request numbers into them.
      connect(
        options.bodies.map((body) => prepare(options, body)),
        i,
      );
    }
  });
}
