import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { AuthService } from "../../gen/auth/v1/auth_pb.js";
import type { SessionService } from "../login/session-service.js";
import { clientKey } from "./client-context.js";

type SessionMethods = Pick<
  ServiceImpl<typeof AuthService>,
  "listSessions" | "revokeSession" | "revokeOtherSessions" | "revokeAllSessions"
>;

/**
 * The session RPCs over `SessionService`, authenticated by the request's `Authorization` header. `call` turns
 * refusals into Connect errors as for every other RPC. Without a service (a router built for tests of the
 * login flows alone) they answer Unimplemented.
 */
export function sessionHandlers(
  sessions: SessionService | undefined,
  call: <T>(ctx: HandlerContext, fn: () => Promise<T>) => Promise<T>,
): SessionMethods {
  const service = (): SessionService => {
    if (!sessions) throw new ConnectError("sessions are not served here", Code.Unimplemented);
    return sessions;
  };
  return {
    async listSessions(_req, ctx) {
      const listed = await call(ctx, () => service().list(bearer(ctx), requestId(ctx)));
      return {
        sessions: listed.map((s) => ({
          id: s.id,
          deviceName: s.label,
          ip: s.ip,
          createdAt: timestampFromMs(s.createdAt),
          lastUsedAt: timestampFromMs(s.lastUsedAt),
          current: s.current,
        })),
      };
    },
    async revokeSession(req, ctx) {
      await call(ctx, () => service().revoke(bearer(ctx), req.sessionId, requestId(ctx)));
      return {};
    },
    async revokeOtherSessions(_req, ctx) {
      return { revokedCount: await call(ctx, () => service().revokeOthers(bearer(ctx), requestId(ctx))) };
    },
    async revokeAllSessions(_req, ctx) {
      return { revokedCount: await call(ctx, () => service().revokeAll(bearer(ctx), requestId(ctx))) };
    },
  };
}

/** The id the request is served under, as the client context carries it for every RPC. */
function requestId(ctx: HandlerContext): string | undefined {
  return ctx.values.get(clientKey).requestId;
}

function bearer(ctx: HandlerContext): string | undefined {
  return ctx.requestHeader.get("authorization") ?? undefined;
}
