import type { Logger } from "../log.js";
import { requestLog } from "../login/request-log.js";
import type { SessionService } from "../login/session-service.js";
import { HttpError, type Req, type Res, sendError, sendJson } from "./json.js";
import { requestIdFrom } from "./request-id.js";
import { type RestObserver, toHttpError } from "./rest.js";

const BASE = "/api/v1/auth/sessions";

/** The session paths as metrics name them: one series per route, never one per session id. */
export const SESSION_REST_PATHS = [
  BASE,
  `${BASE}/{id}`,
  `${BASE}/revoke-others`,
  `${BASE}/revoke-all`,
] as const;
type SessionPath = (typeof SESSION_REST_PATHS)[number];

interface SessionRoute {
  readonly path: SessionPath;
  readonly method: "GET" | "POST" | "DELETE";
  /** `requestId`: the request's, for the log lines written while serving it. */
  readonly run: (bearer: string | undefined, requestId: string | undefined) => Promise<unknown>;
}

/**
 * `/api/v1/auth/sessions…`: the session RPCs in the seed's REST style (snake_case, times as RFC 3339),
 * authenticated by `Authorization: Bearer <access token>`. They take no body: whatever is sent is not read.
 * Returns undefined for a path that is not one of them.
 */
export function sessionRoute(sessions: SessionService, path: string): SessionRoute | undefined {
  if (path === BASE) {
    return {
      path: BASE,
      method: "GET",
      run: async (bearer, requestId) => ({
        sessions: (await sessions.list(bearer, requestId)).map((s) => ({
          id: s.id,
          device_name: s.label,
          ip: s.ip,
          created_at: new Date(s.createdAt).toISOString(),
          last_used_at: new Date(s.lastUsedAt).toISOString(),
          current: s.current,
        })),
      }),
    };
  }
  if (path === `${BASE}/revoke-others`) {
    return {
      path: `${BASE}/revoke-others`,
      method: "POST",
      run: async (bearer, requestId) => ({ revoked_count: await sessions.revokeOthers(bearer, requestId) }),
    };
  }
  if (path === `${BASE}/revoke-all`) {
    return {
      path: `${BASE}/revoke-all`,
      method: "POST",
      run: async (bearer, requestId) => ({ revoked_count: await sessions.revokeAll(bearer, requestId) }),
    };
  }
  const id = path.startsWith(`${BASE}/`) ? path.slice(BASE.length + 1) : undefined;
  if (id === undefined || id === "" || id.includes("/")) return undefined;
  return {
    path: `${BASE}/{id}`,
    method: "DELETE",
    run: async (bearer, requestId) => {
      await sessions.revoke(bearer, id, requestId);
      return { message: "session revoked" };
    },
  };
}

/** Serves one session route: its method only, then the same JSON errors as every `/api/v1` path. */
export async function serveSessionRoute(
  route: SessionRoute,
  req: Req,
  res: Res,
  log: Logger,
  observer?: RestObserver,
): Promise<void> {
  const start = performance.now();
  const requestId = requestIdFrom(req);
  let code = "ok";
  try {
    if (req.method !== route.method) {
      throw new HttpError(
        405,
        "MALFORMED_REQUEST",
        `method ${req.method} is not allowed; use ${route.method}`,
        {
          allow: route.method,
        },
      );
    }
    // The body is never read; draining it lets a kept-alive connection carry the next request.
    req.resume();
    sendJson(res, 200, await route.run(req.headers.authorization, requestId));
  } catch (err) {
    const e = toHttpError(err, requestLog(log, { requestId }));
    code = e.code;
    sendError(res, e);
  } finally {
    observer?.done(code, start);
  }
}
