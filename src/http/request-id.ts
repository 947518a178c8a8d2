import { randomUUID } from "node:crypto";

/** What we accept from a caller's `x-request-id`: a short token, nothing that could forge a log line. */
const SANE = /^[A-Za-z0-9._:/+=-]{1,128}$/;

/** The caller's request id when it is a sane token (so a trace spans proxies), else a fresh UUID. */
export function requestIdOf(header: string | string[] | undefined): string {
  return typeof header === "string" && SANE.test(header) ? header : randomUUID();
}
