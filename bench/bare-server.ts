/**
 * The baseline of the ingestion benchmark: the least a Node HTTP server can do for a tracking call.
 * It reads the body, parses it as JSON and answers 200, storing nothing, so the gap between this
 * server and Solstice is the price of authentication, validation, normalisation and durable storage.
 *
 * Usage: node --import tsx bench/bare-server.ts PORT [HOST]
 */
import http from "node:http";

const port = Number(process.argv[2] ?? "0");
const host = process.argv[3] ?? "127.0.0.1";
const OK = Buffer.from('{"success":true}');
const BAD = Buffer.from('{"success":false}');

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    let status = 200;
    if (req.method === "POST") {
      try {
        JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        status = 400;
      }
    }
    const body = status === 200 ? OK : BAD;
    res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": body.length });
    res.end(body);
  });
});
// Same keep-alive window as Solstice, so neither server closes the load generator's idle connections.
server.keepAliveTimeout = 65_000;
server.listen(port, host, () => {
  const address = server.address();
  process.stdout.write(`listening on ${typeof address === "object" && address ? address.port : port}\n`);
});

const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
