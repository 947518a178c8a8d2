import type { IncomingMessage, OutgoingHttpHeaders } from "node:http";
import type { Http2ServerRequest } from "node:http2";

export type Req = IncomingMessage | Http2ServerRequest;
/** What we need of an HTTP/1 or HTTP/2 response (connect-node's own response type is not exported). */
export interface Res {
  readonly headersSent: boolean;
  writeHead(status: number, headers?: OutgoingHttpHeaders): unknown;
  end(chunk?: string | Uint8Array): unknown;
}

/** A request that cannot be served, with the HTTP status and Connect-style code to answer with. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
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

/** `{"code","message","detail"}`: `detail` repeats the message for the seed's FastAPI-era clients. */
export function sendError(res: Res, err: HttpError): void {
  sendJson(res, err.status, { code: err.code, message: err.message, detail: err.message }, err.headers);
}

/** Reads a JSON object body, refusing wrong content types, oversized bodies and malformed JSON with a 4xx. */
export async function readJsonObject(req: Req, maxBytes: number): Promise<Record<string, unknown>> {
  const type = req.headers["content-type"] ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new HttpError(
      415,
      "invalid_argument",
      `content-type must be application/json, got "${type || "none"}"`,
    );
  }
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > maxBytes) {
    req.resume();
    throw new HttpError(413, "resource_exhausted", `request body is larger than ${maxBytes} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes)
      throw new HttpError(413, "resource_exhausted", `request body is larger than ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new HttpError(400, "invalid_argument", "request body is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HttpError(400, "invalid_argument", "request body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

export function stringField(body: Record<string, unknown>, name: string): string {
  const v = body[name];
  if (v === undefined || v === null || v === "")
    throw new HttpError(400, "invalid_argument", `${name} is required`);
  if (typeof v !== "string") throw new HttpError(400, "invalid_argument", `${name} must be a string`);
  return v;
}
