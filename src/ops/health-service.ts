import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type Health,
  HealthCheckResponse_ServingStatus as Status,
} from "../../gen/grpc/health/v1/health_pb.js";
import type { Readiness } from "./readiness.js";

/**
 * `grpc.health.v1.Health` over the service's readiness, for Kubernetes gRPC probes and load balancers.
 * Every service name we answer for ("" is the whole server) has the same status: there is one store and one
 * login core behind them all.
 */
export function healthServiceImpl(
  readiness: Readiness,
  services: readonly string[],
  /** How often a Watch re-checks; shutdown is announced at once regardless. */
  watchIntervalMs = 5_000,
): ServiceImpl<typeof Health> {
  const known = new Set(["", ...services]);
  const status = async () => ((await readiness.report()).ready ? Status.SERVING : Status.NOT_SERVING);
  return {
    async check(req) {
      if (!known.has(req.service)) throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
      return { status: await status() };
    },
    async *watch(req, ctx: HandlerContext) {
      if (!known.has(req.service)) {
        // The protocol says: say SERVICE_UNKNOWN and keep the call open; our set of services never changes,
        // so there is nothing more to say until the caller goes away or we shut down.
        yield { status: Status.SERVICE_UNKNOWN };
        while (!ctx.signal.aborted && !readiness.shuttingDown)
          await readiness.changedOrAfter(60_000, ctx.signal);
        return;
      }
      let last: Status | undefined;
      while (!ctx.signal.aborted) {
        const now = await status();
        if (now !== last) {
          yield { status: now };
          last = now;
        }
        // After NOT_SERVING for shutdown the stream ends, so a graceful drain does not wait on watchers.
        if (readiness.shuttingDown) return;
        await readiness.changedOrAfter(watchIntervalMs, ctx.signal);
      }
    },
    async list() {
      const s = await status();
      return { statuses: Object.fromEntries([...known].map((name) => [name, { status: s }])) };
    },
  };
}
