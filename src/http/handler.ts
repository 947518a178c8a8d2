import { createContextValues } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";
import { AuthService } from "../../gen/auth/v1/auth_pb.js";
import type { Logger } from "../log.js";
import type { LoginService } from "../login/login-service.js";
import { registerOpsServices } from "../ops/grpc-services.js";
import type { Metrics } from "../ops/metrics.js";
import { rpcProtocolOf } from "../ops/protocol.js";
import type { Readiness } from "../ops/readiness.js";
import { authCalls } from "../rpc/auth-calls.js";
import { clientKey } from "../rpc/client-context.js";
import { refuseUndecodable, refusingCorrupt } from "../rpc/malformed-requests.js";
import { routes } from "../rpc/routes.js";
import type { AccessTokens } from "../tokens/access-tokens.js";
import { clientResolver, type TrustedProxies } from "./client-ip.js";
import { type CorsOptions, createCors } from "./cors.js";
import type { DevPage } from "./dev-page.js";
import { fastRoutes, grpcFastPath } from "./grpc-fast-path.js";
import { HttpError, sendError } from "./json.js";
import { type OpsRoute, opsRoutes } from "./ops-routes.js";
import { restRoutes, serveRest } from "./rest.js";
import { serveTwilioStatus, type TwilioWebhookSettings } from "./twilio-webhook-route.js";

export const TWILIO_STATUS_PATH = "/webhooks/twilio/status";

export interface HandlerDeps {
  readonly login: LoginService;
  readonly accessTokens: AccessTokens;
  readonly log: Logger;
  /** Whose X-Forwarded-For to believe when finding the client's address. */
  readonly trustedProxies: TrustedProxies;
  readonly readiness: Readiness;
  /** Absent when METRICS_ENABLED=false: nothing counted. */
  readonly metrics: Metrics | undefined;
  /** `/metrics` on this port; absent when METRICS_ENABLED=false or when METRICS_PORT serves it elsewhere. */
  readonly metricsRoute?: OpsRoute | undefined;
  /** Browser origins allowed to call cross-origin; none when absent. */
  readonly cors?: CorsOptions | undefined;
  /** Twilio's delivery status callback; mounted only when TWILIO_STATUS_CALLBACK_URL is set. */
  readonly twilioWebhook?: TwilioWebhookSettings | undefined;
  /** The development login page at `/`; absent in production. */
  readonly devPage?: DevPage | undefined;
  /** Serve AuthService's unary gRPC calls without connect-node's pipeline (GRPC_FAST_PATH); off when absent. */
  readonly grpcFastPath?: boolean | undefined;
}

/**
 * One request handler for every protocol: connect-node serves gRPC, gRPC-Web and Connect; everything else
 * (the `/api/v1` aliases, JWKS) goes through its fallback, not a second framework.
 */
export type Handler = ReturnType<typeof connectNodeAdapter>;

/** RPC requests are tiny; refusing large ones early protects memory. */
const READ_MAX_BYTES = 64 * 1024;

/** connect-node's defaults, with a body that does not inflate answered as the caller's mistake. */
const COMPRESSIONS = [refusingCorrupt(compressionGzip), refusingCorrupt(compressionBrotli)];

/** Content types of the RPC protocols: a request for a path nothing serves is an unknown RPC, not a REST 404. */
const RPC_CONTENT_TYPE = /^application\/(grpc|proto|connect\+)/i;

export function createHandler(deps: HandlerDeps): Handler {
  const rest = restRoutes(deps.login);
  const restObservers = new Map([...rest.keys()].map((path) => [path, deps.metrics?.rest(path)]));
  const ops = opsRoutes(deps.readiness, deps.metricsRoute);
  const jwks = JSON.stringify(deps.accessTokens.jwks());
  const clientOf = clientResolver(deps.trustedProxies);
  const unrouted = deps.metrics?.unrouted();
  const adapter = connectNodeAdapter({
    routes: (router) => {
      routes(deps.login, deps.log)(router);
      registerOpsServices(router, deps.readiness);
      // Both wrap connect-node's per-RPC handlers in place: its routing and protocols stay its own.
      refuseUndecodable(router, COMPRESSIONS, READ_MAX_BYTES);
      deps.metrics?.countRefusals(router);
    },
    interceptors: deps.metrics ? [deps.metrics.interceptor()] : [],
    acceptCompression: COMPRESSIONS,
    readMaxBytes: READ_MAX_BYTES,
    contextValues: (req) => createContextValues().set(clientKey, clientOf(req)),
    fallback(req, res) {
      const path = pathOf(req.url);
      const route = rest.get(path);
      if (route) {
        void serveRest(route, req, res, clientOf(req), deps.log, restObservers.get(path));
        return;
      }
      if (path === "/.well-known/jwks.json" && (req.method === "GET" || req.method === "HEAD")) {
        res.writeHead(200, { "content-type": "application/json", "cache-control": "public, max-age=300" });
        res.end(req.method === "HEAD" ? "" : jwks);
        return;
      }
      if (path === TWILIO_STATUS_PATH && deps.twilioWebhook) {
        void serveTwilioStatus(req, res, deps.twilioWebhook).catch((err: unknown) => {
          deps.log.warn({ err }, "twilio status callback failed");
          sendError(res, new HttpError(400, "MALFORMED_REQUEST", "could not read the callback"));
        });
        return;
      }
      if (deps.devPage?.handle(req, res, path)) return;
      const op = ops.get(path);
      if (op) {
        op(req, res);
        return;
      }
      const type = req.headers["content-type"];
      const rpc = type !== undefined && RPC_CONTENT_TYPE.test(type);
      unrouted?.done(
        rpc ? rpcProtocolOf(type) : "rest",
        rpc ? "unimplemented" : "not_found",
        performance.now(),
      );
      sendError(res, new HttpError(404, "NOT_FOUND", `no route for ${req.method} ${path}`));
    },
  });
  // CORS covers what browsers call (RPCs and /api/v1), and must run before connect-node sees a preflight.
  const cors = createCors(deps.cors ?? { origins: [], loopback: false }, [
    `/${AuthService.typeName}/`,
    "/api/v1/",
  ]);
  const fast = deps.grpcFastPath
    ? grpcFastPath({
        routes: fastRoutes(authCalls(deps.login)),
        clientOf,
        log: deps.log,
        metrics: deps.metrics,
        readMaxBytes: READ_MAX_BYTES,
      })
    : undefined;
  return (req, res) => {
    // Only browsers send Origin: server-to-server calls (gRPC, curl) skip CORS without parsing the path.
    if (req.headers.origin !== undefined && cors.handle(req, res, pathOf(req.url))) return;
    if (fast && "stream" in req && "stream" in res && fast(req, res)) return;
    adapter(req, res);
  };
}

function pathOf(url: string | undefined): string {
  return (url ?? "/").split("?", 1)[0] ?? "/";
}
