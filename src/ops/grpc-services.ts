import type { ConnectRouter } from "@connectrpc/connect";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { healthServiceImpl } from "./health-service.js";
import type { Readiness } from "./readiness.js";
import { registerReflection } from "./reflection-service.js";

/**
 * gRPC health and server reflection, added after the service's own routes: health answers for each service
 * already on the router, reflection describes everything on it (itself included, as grpc-go does).
 */
export function registerOpsServices(router: ConnectRouter, readiness: Readiness): void {
  const served = [...new Set(router.handlers.map((h) => h.service.typeName))];
  router.service(Health, healthServiceImpl(readiness, served));
  registerReflection(router);
}
