import type { IncomingMessage, OutgoingHttpHeaders } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import { REASONS, type Reason } from "../login/reasons.js";

export type Req = IncomingMessage | Http2ServerRequest;
/** What we need of an HTTP/1 or HTTP/2 response (connect-node's own response type is not exported). */
export interface Res {
  readonly headersSent: boolean;
  writeHead(status: number, headers?: OutgoingHttpHeaders): unknown;
  end(chunk?: string | Uint8Array): unknown;
}

/**
 * A request that cannot be served: the HTTP status, the refusal reason (whose class is the Connect-style
 * `code` of the body) and what the caller may act on.
 */
export class HttpError extends Error {
  readonly code: string;
  constructor(
    readonly status: number,
    readonly reason: Reason,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
    readonly extra: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
    this.code = REASONS[reason].kind;
  }
}

export function sendJson(
  res: Res,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  // Already answered (Unavailable, by a shutdown that hit its deadline): the late result has nowhere to go.
  if (res.headersSent) return;
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(payload),
    "cache-control": "no-store",
    ...headers,
  });
  res.end(payload);
}

/**
 * `{"code","message","detail","reason"}` and whatever helps the caller act (`retry_after_seconds`,
 * `metadata`): `detail` repeats the message for the seed's FastAPI-era clients.
 */
export function sendError(res: Res, err: HttpError): void {
  sendJson(
    res,
    err.status,
    { code: err.code, message: err.message, detail: err.message, reason: err.reason, ...err.extra },
    { "x-error-reason": err.reason, ...err.headers },
  );
}

/**
 * A request body as UTF-8 text, refused with REQUEST_TOO_LARGE (413) once it passes `maxBytes`, without
 * reading the rest. Read with stream events rather than `for await`: the async iterator's promise per chunk
 * cost ~2 % of a small JSON request. Rejects when the stream fails or closes before its end (the caller hung
 * up).
 */
export function readBody(req: Req, maxBytes: number): Promise<string> {
  // Nothing left to wait for: no 'end' or 'close' would come.
  if (req.readableEnded) return Promise.resolve("");
  if (req.destroyed) return Promise.reject(new Error("the request closed before its body ended"));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        // The rest is never read: an HTTP/1 connection closes once the 413 is out (Node would otherwise read
        // and discard the rest to reuse it); an HTTP/2 stream stays paused, held by flow control, until the
        // caller resets it or the session's bounds end it.
        done();
        req.pause();
        const close: Record<string, string> = req.httpVersionMajor === 1 ? { connection: "close" } : {};
        reject(
          new HttpError(413, "REQUEST_TOO_LARGE", `request body is larger than ${maxBytes} bytes`, close),
        );
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      const [only] = chunks;
      resolve(chunks.length === 1 && only ? only.toString("utf8") : Buffer.concat(chunks).toString("utf8"));
    };
    const onError = (err: Error) => {
      done();
      reject(err);
    };
    const onClose = () => {
      done();
      reject(new Error("the request closed before its body ended"));
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}

/** Reads a JSON object body, refusing wrong content types, oversized bodies and malformed JSON with a 4xx. */
export async function readJsonObject(req: Req, maxBytes: number): Promise<Record<string, unknown>> {
  const type = req.headers["content-type"] ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new HttpError(
      415,
      "MALFORMED_REQUEST",
      `content-type must be application/json, got "${type || "none"}"`,
    );
  }
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > maxBytes) {
    req.resume();
    throw new HttpError(413, "REQUEST_TOO_LARGE", `request body is larger than ${maxBytes} bytes`);
  }
  const body = await readBody(req, maxBytes);
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new HttpError(400, "MALFORMED_REQUEST", "request body is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HttpError(400, "MALFORMED_REQUEST", "request body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

export function stringField(body: Record<string, unknown>, name: string): string {
  const v = body[name];
  if (v === undefined || v === null || v === "")
    throw new HttpError(400, "MALFORMED_REQUEST", `${name} is required`);
  if (typeof v !== "string") throw new HttpError(400, "MALFORMED_REQUEST", `${name} must be a string`);
  return v;
}

/** A field that may be left out (absent, null or ""), but is a string when given. */
export function optionalStringField(body: Record<string, unknown>, name: string): string | undefined {
  const v = body[name];
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string") throw new HttpError(400, "MALFORMED_REQUEST", `${name} must be a string`);
  return v;
}
