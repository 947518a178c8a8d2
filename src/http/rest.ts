import { Code } from "@connectrpc/connect";
import type { Logger } from "../log.js";
import { LoginError } from "../login/errors.js";
import type { Client, LoginService, TokenPair } from "../login/login-service.js";
import { OTP_SENT_MESSAGE } from "../rpc/auth-service.js";
import { connectCodeOf } from "../rpc/errors.js";
import { HttpError, type Req, type Res, readJsonObject, sendError, sendJson, stringField } from "./json.js";

const MAX_BODY_BYTES = 16 * 1024;

// Connect's code -> HTTP status table (connectrpc.com/docs/protocol#error-codes), kept to the codes we answer.
const httpStatus: Partial<Record<Code, number>> = {
  [Code.InvalidArgument]: 400,
  [Code.FailedPrecondition]: 400,
  [Code.Unauthenticated]: 401,
  [Code.ResourceExhausted]: 429,
  [Code.Unavailable]: 503,
};

type Route = (body: Record<string, unknown>, client: Client) => Promise<unknown>;

/**
 * The seed's `/api/v1` JSON paths over the same login core. They take the short road (no Connect pipeline) and
 * answer in the seed's exact shapes: snake_case keys, numeric `user.id`, `"token_type":"bearer"`.
 */
export function restRoutes(login: LoginService): ReadonlyMap<string, Route> {
  const pair = (p: TokenPair) => ({
    access_token: p.accessToken,
    refresh_token: p.refreshToken,
    token_type: "bearer",
    expires_in: p.expiresIn,
  });
  return new Map<string, Route>([
    [
      "/api/v1/auth/send-otp",
      async (body, client) => {
        const sent = await login.sendOtp(stringField(body, "phone"), client);
        return { message: OTP_SENT_MESSAGE, phone: sent.phone, expires_in_seconds: sent.expiresInSeconds };
      },
    ],
    [
      "/api/v1/auth/verify-otp",
      async (body, client) => {
        const s = await login.verifyOtp(stringField(body, "phone"), stringField(body, "otp"), client);
        const u = s.user;
        return {
          ...pair(s),
          user: {
            id: u.id,
            phone: u.phone,
            name: u.name,
            role: u.role,
            is_phone_verified: u.isPhoneVerified,
          },
        };
      },
    ],
    ["/api/v1/auth/refresh", async (body) => pair(await login.refresh(stringField(body, "refresh_token")))],
    [
      "/api/v1/auth/logout",
      async (body) => {
        await login.logout(stringField(body, "refresh_token"));
        return { message: "logged out" };
      },
    ],
  ]);
}

/** Hears how each REST request ended (metrics); `code` is "ok" or the error's code. */
export interface RestObserver {
  done(code: string, startMs: number): void;
}

/** Serves one REST route; every failure becomes a JSON error with the status of its Connect code. */
export async function serveRest(
  route: Route,
  req: Req,
  res: Res,
  client: Client,
  log: Logger,
  observer?: RestObserver,
): Promise<void> {
  const start = performance.now();
  let code = "ok";
  try {
    if (req.method !== "POST") {
      throw new HttpError(405, "invalid_argument", `method ${req.method} is not allowed; use POST`, {
        allow: "POST",
      });
    }
    const body = await readJsonObject(req, MAX_BODY_BYTES);
    sendJson(res, 200, await route(body, client));
  } catch (err) {
    const e = toHttpError(err, log);
    code = e.code;
    sendError(res, e);
  } finally {
    observer?.done(code, start);
  }
}

export function toHttpError(err: unknown, log: Logger): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof LoginError) {
    const code = connectCodeOf(err.kind);
    const headers: Record<string, string> =
      err.retryAfterSeconds !== undefined ? { "retry-after": String(err.retryAfterSeconds) } : {};
    return new HttpError(httpStatus[code] ?? 500, err.kind, err.message, headers);
  }
  log.error({ err }, "unexpected error in REST handler");
  return new HttpError(500, "internal", "internal error");
}
