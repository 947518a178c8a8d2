import { createContextValues } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";
import { AuthService } from "../../gen/auth/v1/auth_pb.js";
import type { Logger } from "../log.js";
import type { LoginService } from "../login/login-service.js";
import type { SessionService } from "../login/session-service.js";
import type { VerificationService } from "../login/verifications.js";
import { registerOpsServices } from "../ops/grpc-services.js";
import type { Metrics } from "../ops/metrics.js";
import { rpcProtocolOf } from "../ops/protocol.js";
import type { Readiness } from "../ops/readiness.js";
import type { AuditWatchSettings } from "../rpc/audit-watch.js";
import { authCalls } from "../rpc/auth-calls.js";
import { clientKey } from "../rpc/client-context.js";
import { refuseUndecodable, refusingCorrupt } from "../rpc/malformed-requests.js";
import { routes } from "../rpc/routes.js";
import type { AccessTokens } from "../tokens/access-tokens.js";
import { clientResolver, type TrustedProxies } from "./client-ip.js";
import { type CorsOptions, createCors } from "./cors.js";
import type { DevPage } from "./dev-page.js";
import { fastRoutes, grpcFastPath } from "./grpc-fast-path.js";
import { specEncodeGrpcMessage } from "./grpc-message.js";
import { HttpError, sendError } from "./json.js";
import { MSG91_DLR_PREFIX, type Msg91DlrSettings, serveMsg91Dlr } from "./msg91-dlr-route.js";
import { openApiJson } from "./openapi.js";
import { type OpsRoute, opsRoutes } from "./ops-routes.js";
import { requestIdFrom } from "./request-id.js";
import {
  restRoutes,
  serveRest,
  serveVerification,
  VERIFICATION_REST_PATHS,
  verificationRouteOf,
} from "./rest.js";
import { SESSION_REST_PATHS, serveSessionRoute, sessionRoute } from "./rest-sessions.js";
import type { StreamHandler } from "./stream-handler.js";
import { serveTwilioStatus, type TwilioWebhookSettings } from "./twilio-webhook-route.js";

export const TWILIO_STATUS_PATH = "/webhooks/twilio/status";

export interface HandlerDeps {
  readonly login: LoginService;
  /** The session RPCs and `/api/v1/auth/sessions…`; absent, neither is served. */
  readonly sessions?: SessionService | undefined;
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
  /** GetVerification and CancelVerification, and their REST paths. */
  readonly verifications?: VerificationService | undefined;
  /** WatchAuditEvents; unimplemented when absent or without a token. */
  readonly audit?: AuditWatchSettings | undefined;
  /** MSG91's delivery reports; mounted only when MSG91_DLR_SECRET is set. */
  readonly msg91Dlr?: Msg91DlrSettings | undefined;
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
  const restObservers = new Map(
    [
      ...rest.keys(),
      ...(deps.sessions ? SESSION_REST_PATHS : []),
      ...(deps.verifications ? VERIFICATION_REST_PATHS : []),
    ].map((path) => [path, deps.metrics?.rest(path)]),
  );
  const ops = opsRoutes(deps.readiness, deps.metricsRoute);
  const jwks = JSON.stringify(deps.accessTokens.jwks());
  // Read at start-up, so a missing or broken openapi.yaml stops a deploy instead of a caller's request.
  const openapi = openApiJson();
  const clientOf = clientResolver(deps.trustedProxies);
  const unrouted = deps.metrics?.unrouted();
  const adapter = connectNodeAdapter({
    routes: (router) => {
      routes(deps.login, deps.log, deps.sessions, {
        verifications: deps.verifications,
        audit: deps.audit,
      })(router);
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
      const sessionPath = deps.sessions && sessionRoute(deps.sessions, path);
      if (sessionPath) {
        void serveSessionRoute(sessionPath, req, res, deps.log, restObservers.get(sessionPath.path));
        return;
      }
      const verificationRoute = deps.verifications ? verificationRouteOf(path) : undefined;
      if (verificationRoute && deps.verifications) {
        void serveVerification(
          deps.verifications,
          path,
          req,
          res,
          deps.log,
          restObservers.get(verificationRoute),
        );
        return;
      }
      if (path.startsWith(MSG91_DLR_PREFIX) && deps.msg91Dlr) {
        void serveMsg91Dlr(req, res, path, deps.msg91Dlr).catch((err: unknown) => {
          deps.log.warn({ reqId: requestIdFrom(req), err }, "msg91 delivery report failed");
          if (!res.headersSent) sendError(res, new HttpError(503, "STORE_UNAVAILABLE", "try again"));
        });
        return;
      }
      if (path === "/.well-known/jwks.json" && (req.method === "GET" || req.method === "HEAD")) {
        res.writeHead(200, { "content-type": "application/json", "cache-control": "public, max-age=300" });
        res.end(req.method === "HEAD" ? "" : jwks);
        return;
      }
      if (path === "/openapi.json" && (req.method === "GET" || req.method === "HEAD")) {
        res.writeHead(200, { "content-type": "application/json", "cache-control": "public, max-age=300" });
        res.end(req.method === "HEAD" ? "" : openapi);
        return;
      }
      if (path === TWILIO_STATUS_PATH && deps.twilioWebhook) {
        void serveTwilioStatus(req, res, deps.twilioWebhook).catch((err: unknown) => {
          deps.log.warn({ reqId: requestIdFrom(req), err }, "twilio status callback failed");
          // Not a 2xx, so Twilio retries a receipt we could not keep.
          if (!res.headersSent)
            sendError(res, new HttpError(503, "STORE_UNAVAILABLE", "could not keep the callback"));
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
  return (req, res) => {
    // Only browsers send Origin: server-to-server calls (gRPC, curl) skip CORS without parsing the path.
    if (req.headers.origin !== undefined && cors.handle(req, res, pathOf(req.url))) return;
    if (isGrpc(req.headers["content-type"])) specEncodeGrpcMessage(res);
    adapter(req, res);
  };
}

/**
 * The gRPC fast path (GRPC_FAST_PATH): AuthService's unary calls taken on their HTTP/2 streams, ahead of
 * Node's compatibility layer and connect-node (src/http/grpc-fast-path.ts); undefined when it is off.
 */
export function createStreamHandler(deps: HandlerDeps): StreamHandler | undefined {
  if (!deps.grpcFastPath) return undefined;
  return grpcFastPath({
    routes: fastRoutes(authCalls(deps.login)),
    clientOf: clientResolver(deps.trustedProxies),
    log: deps.log,
    metrics: deps.metrics,
    readMaxBytes: READ_MAX_BYTES,
  });
}

/** gRPC proper (`application/grpc`, `application/grpc+proto`, …), not gRPC-Web. */
function isGrpc(contentType: string | undefined): boolean {
  return contentType !== undefined && /^application\/grpc(?![-\w])/i.test(contentType);
}

function pathOf(url: string | undefined): string {
  return (url ?? "/").split("?", 1)[0] ?? "/";
}
