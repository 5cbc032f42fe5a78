import { isUtf8 } from "node:buffer";
import zlib from "node:zlib";
import type { FastifyInstance } from "fastify";
import { LIMITS, nestsDeeperThan } from "../tracking/limits.js";
import { HttpError } from "./errors.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Bytes of the body after decompression. */
    bodyBytes: number;
    /** Whether the body's JSON text escapes a surrogate (\\uD800 to \\uDFFF): only then can a string in it be unpaired. */
    surrogateEscapes: boolean;
  }
}

const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F][0-9a-fA-F]{2}/;

/**
 * Every body is read as JSON whatever its Content-Type (browser SDKs send text/plain), may be gzip
 * or deflate compressed, and is held to the request limit after decompression, so a decompression
 * bomb stops at the limit instead of filling memory.
 */
export function registerBodyParsing(app: FastifyInstance): void {
  app.decorateRequest("bodyBytes", 0);
  app.decorateRequest("surrogateEscapes", false);
  app.addHook("preParsing", async (request, _reply, payload) => {
    const encoding = request.headers["content-encoding"]?.trim().toLowerCase();
    if (!encoding || encoding === "identity") return payload;
    let inflate: zlib.Gunzip | zlib.Inflate;
    if (encoding === "gzip" || encoding === "x-gzip") inflate = zlib.createGunzip();
    else if (encoding === "deflate") inflate = zlib.createInflate();
    else throw new HttpError(415, "unsupported_encoding", `Content-Encoding "${encoding}" is not supported; use gzip`);
    // Fastify stops listening to the stream once it has answered a body over the limit, and the
    // destroy below then raises an 'error' that, with no listener left, would end the process.
    inflate.on("error", () => {});
    let inflated = 0;
    inflate.on("data", (chunk: Buffer) => {
      inflated += chunk.length;
      if (inflated > LIMITS.requestBytes) {
        const err = Object.assign(new Error("too large"), { code: "FST_ERR_CTP_BODY_TOO_LARGE", statusCode: 400 });
        inflate.destroy(err);
      }
    });
    payload.on("error", (err) => inflate.destroy(err));
    const length = Number(request.headers["content-length"]);
    (inflate as unknown as { receivedEncodedLength: number }).receivedEncodedLength = Number.isNaN(length) ? 0 : length;
    return payload.pipe(inflate);
  });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: LIMITS.requestBytes }, (request, body, done) => {
    const bytes = body as Buffer;
    request.bodyBytes = bytes.length;
    if (bytes.length === 0) {
      done(new HttpError(400, "invalid_json", "request body is empty; expected JSON"), undefined);
      return;
    }
    if (nestsDeeperThan(bytes, LIMITS.depth)) {
      done(new HttpError(400, "too_deep", `JSON nests deeper than the limit of ${LIMITS.depth} levels`), undefined);
      return;
    }
    // Decoding would turn bytes that are not UTF-8 into U+FFFD, silently altering ids and merging distinct ones.
    if (!isUtf8(bytes)) {
      done(new HttpError(400, "invalid_json", "request body is not valid UTF-8"), undefined);
      return;
    }
    try {
      const text = bytes.toString("utf8");
      // Valid UTF-8 cannot encode a surrogate, so an unpaired one can only arrive escaped.
      request.surrogateEscapes = text.includes("\\u") && SURROGATE_ESCAPE.test(text);
      done(null, JSON.parse(text));
    } catch (err) {
      done(new HttpError(400, "invalid_json", `request body is not valid JSON: ${(err as Error).message}`), undefined);
    }
  });
}
