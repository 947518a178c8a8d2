import { createHash, timingSafeEqual } from "node:crypto";
import type { Metrics } from "../ops/metrics.js";
import type { Readiness } from "../ops/readiness.js";
import { type Req, type Res, sendJson } from "./json.js";

export type OpsRoute = (req: Req, res: Res) => void;

/**
 * The operator's plain-HTTP paths: `/healthz` (the process is up: liveness), `/readyz` (it should get
 * traffic: the same answer as gRPC health), and `/metrics` when it is served on this port (`metrics`, from
 * `metricsRoute`; absent when METRICS_ENABLED=false or METRICS_PORT moves it to a listener of its own).
 */
export function opsRoutes(
  readiness: Readiness,
  metrics: OpsRoute | undefined,
): ReadonlyMap<string, OpsRoute> {
  const routes = new Map<string, OpsRoute>([
    ["/healthz", getOnly("/healthz", (_req, res) => sendJson(res, 200, { status: "ok" }))],
    [
      "/readyz",
      getOnly("/readyz", (_req, res) => {
        void readiness
          .report()
          .then((r) =>
            sendJson(res, r.ready ? 200 : 503, { status: r.ready ? "ready" : "not ready", checks: r.checks }),
          );
      }),
    ],
  ]);
  if (metrics) routes.set(METRICS_PATH, metrics);
  return routes;
}

export const METRICS_PATH = "/metrics";

/** `GET /metrics`: the exposition text; with `token` (METRICS_TOKEN), only for `Authorization: Bearer <token>`. */
export function metricsRoute(metrics: Metrics, token: string | undefined): OpsRoute {
  // Digests are compared, not the strings: equal lengths for timingSafeEqual, and no length leaked.
  const expected = token === undefined ? undefined : digest(token);
  return getOnly(METRICS_PATH, (req, res) => {
    if (expected !== undefined && !bearerMatches(req.headers.authorization, expected)) {
      sendJson(
        res,
        401,
        { code: "unauthenticated", message: "metrics need Authorization: Bearer <METRICS_TOKEN>" },
        { "www-authenticate": 'Bearer realm="metrics"' },
      );
      return;
    }
    void metrics.expose().then(
      ({ contentType, body }) => {
        res.writeHead(200, { "content-type": contentType, "cache-control": "no-store" });
        res.end(body);
      },
      () => sendJson(res, 503, { code: "unavailable", message: "metrics could not be collected" }),
    );
  });
}

function bearerMatches(header: string | undefined, expected: Buffer): boolean {
  const given = /^Bearer +(\S+) *$/i.exec(header ?? "")?.[1];
  // Digested even when absent, so a missing header costs what a wrong one does.
  return timingSafeEqual(digest(given ?? ""), expected) && given !== undefined;
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/** Probes and scrapers only read. */
function getOnly(path: string, route: OpsRoute): OpsRoute {
  return (req, res) =>
    req.method === "GET" || req.method === "HEAD"
      ? route(req, res)
      : sendJson(res, 405, { code: "invalid_argument", message: `use GET for ${path}` }, { allow: "GET" });
}
