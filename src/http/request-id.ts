import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";

/** What we accept from a caller's `x-request-id`: a short token, nothing that could forge a log line. */
const SANE = /^[A-Za-z0-9._:/+=-]{1,128}$/;

/** The caller's request id when it is a sane token (so a trace spans proxies), else a fresh UUID. */
export function requestIdOf(header: string | string[] | undefined): string {
  return typeof header === "string" && SANE.test(header) ? header : randomUUID();
}

/**
 * The id a request is served under. The one-port server decides it (`requestIdOf`) and writes it back into the
 * request's `x-request-id` header before any handler runs, so every layer reads the same id from the request
 * itself; undefined only for a request that did not come through that server (a handler tested alone).
 */
export function requestIdFrom(req: { readonly headers: IncomingHttpHeaders }): string | undefined {
  const id = req.headers["x-request-id"];
  return typeof id === "string" ? id : undefined;
}

/**
 * Decides the id a request is served under (`requestIdOf` its `x-request-id`) and writes it back into its
 * headers, where `requestIdFrom` and every layer after it read it. The one-port server does this for each
 * request, the gRPC fast path for each stream it takes.
 */
export function assignRequestId(headers: IncomingHttpHeaders): string {
  const id = requestIdOf(headers["x-request-id"]);
  headers["x-request-id"] = id;
  return id;
}
