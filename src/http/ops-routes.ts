import type { Metrics } from "../ops/metrics.js";
import type { Readiness } from "../ops/readiness.js";
import { type Req, type Res, sendJson } from "./json.js";

type OpsRoute = (req: Req, res: Res) => void;

/**
 * The operator's plain-HTTP paths: `/healthz` (the process is up: liveness), `/readyz` (it should get
 * traffic: the same answer as gRPC health), and `/metrics` when metrics are on.
 */
export function opsRoutes(readiness: Readiness, metrics: Metrics | undefined): ReadonlyMap<string, OpsRoute> {
  const routes = new Map<string, OpsRoute>([
    ["/healthz", (_req, res) => sendJson(res, 200, { status: "ok" })],
    [
      "/readyz",
      (_req, res) => {
        void readiness
          .report()
          .then((r) =>
            sendJson(res, r.ready ? 200 : 503, { status: r.ready ? "ready" : "not ready", checks: r.checks }),
          );
      },
    ],
  ]);
  if (metrics) {
    routes.set("/metrics", (_req, res) => {
      void metrics.expose().then(
        ({ contentType, body }) => {
          res.writeHead(200, { "content-type": contentType, "cache-control": "no-store" });
          res.end(body);
        },
        () => sendJson(res, 503, { code: "unavailable", message: "metrics could not be collected" }),
      );
    });
  }
  // Probes and scrapers only read.
  return new Map(
    [...routes].map(([path, route]): [string, OpsRoute] => [
      path,
      (req, res) =>
        req.method === "GET" || req.method === "HEAD"
          ? route(req, res)
          : sendJson(
              res,
              405,
              { code: "invalid_argument", message: `use GET for ${path}` },
              { allow: "GET" },
            ),
    ]),
  );
}
