import { cors as connectCors } from "@connectrpc/connect";
import type { Req } from "./json.js";

export interface CorsOptions {
  /** Exact origins allowed to call from a browser, e.g. `https://app.example.com`. */
  readonly origins: readonly string[];
  /** Also allow any `http://localhost:*` / `http://127.0.0.1:*` origin (development: local front-end servers). */
  readonly loopback: boolean;
}

/** What we need of a response to add headers before the real handler writes it. */
interface HeaderRes {
  setHeader(name: string, value: string): unknown;
  writeHead(status: number, headers?: Record<string, string>): unknown;
  end(): unknown;
}

const LOOPBACK_ORIGIN = /^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$/;

// Connect's lists, plus what our own errors carry and what an authenticated browser call would send.
const ALLOWED_HEADERS = [...connectCors.allowedHeaders, "Authorization"].join(", ");
const EXPOSED_HEADERS = [...connectCors.exposedHeaders, "X-Error-Reason", "Retry-After"].join(", ");
const ALLOWED_METHODS = connectCors.allowedMethods.join(", ");
// Browsers cap this (Chromium at 2 hours); it saves a preflight per call.
const MAX_AGE_SECONDS = "7200";

/**
 * CORS for browser callers (Connect-Web, gRPC-Web, the `/api/v1` paths). `handle` answers preflights itself
 * and adds the response headers to allowed cross-origin calls; an origin not allowed gets no CORS headers at
 * all, so the browser refuses to show it anything.
 */
export function createCors(options: CorsOptions, paths: readonly string[]) {
  const origins = new Set(options.origins);
  const allowed = (origin: string) =>
    origins.has(origin) || (options.loopback && LOOPBACK_ORIGIN.test(origin));
  const covered = (path: string) => paths.some((p) => path.startsWith(p));

  return {
    /** Adds CORS headers; returns true when it answered the request (a preflight) itself. */
    handle(req: Req, res: HeaderRes, path: string): boolean {
      const origin = req.headers.origin;
      if (origin === undefined || !covered(path)) return false;
      const preflight =
        req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
      if (!allowed(origin)) {
        if (!preflight) return false;
        res.writeHead(204, { vary: "Origin" });
        res.end();
        return true;
      }
      if (preflight) {
        res.writeHead(204, {
          "access-control-allow-origin": origin,
          "access-control-allow-methods": ALLOWED_METHODS,
          "access-control-allow-headers": ALLOWED_HEADERS,
          "access-control-max-age": MAX_AGE_SECONDS,
          vary: "Origin",
        });
        res.end();
        return true;
      }
      res.setHeader("access-control-allow-origin", origin);
      res.setHeader("access-control-expose-headers", EXPOSED_HEADERS);
      res.setHeader("vary", "Origin");
      return false;
    },
  };
}
