import { Code } from "@connectrpc/connect";
import { codeFromString, codeToHttpStatus } from "@connectrpc/connect/protocol-connect";
import type { Logger } from "../log.js";
import type { LoginService } from "../login/login-service.js";
import { type Client, OTP_SENT_MESSAGE, type TokenPair } from "../login/model.js";
import type { LoginLog } from "../login/ports.js";
import { internalError, REASONS } from "../login/reasons.js";
import { requestLog } from "../login/request-log.js";
import type { VerificationService, VerificationView } from "../login/verifications.js";
import {
  HttpError,
  optionalStringField,
  type Req,
  type Res,
  readJsonObject,
  sendError,
  sendJson,
  stringField,
} from "./json.js";
import { requestIdFrom } from "./request-id.js";

const MAX_BODY_BYTES = 16 * 1024;

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
        return {
          message: OTP_SENT_MESSAGE,
          phone: sent.phone,
          expires_in_seconds: sent.expiresInSeconds,
          verification_id: sent.verificationId,
        };
      },
    ],
    [
      "/api/v1/auth/verify-otp",
      async (body, client) => {
        const s = await login.verifyOtp(stringField(body, "phone"), stringField(body, "otp"), client, {
          verificationId: optionalStringField(body, "verification_id"),
          deviceName: optionalStringField(body, "device_name"),
        });
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
    [
      "/api/v1/auth/refresh",
      async (body, client) => pair(await login.refresh(stringField(body, "refresh_token"), client)),
    ],
    [
      "/api/v1/auth/logout",
      async (body, client) => {
        await login.logout(stringField(body, "refresh_token"), client);
        return { message: "logged out" };
      },
    ],
  ]);
}

/** `/api/v1/auth/verifications/{id}` (GET) and `/api/v1/auth/verifications/{id}/cancel` (POST). */
const VERIFICATION_PATH = /^\/api\/v1\/auth\/verifications\/([^/]+)(\/cancel)?$/;

/** The verification paths as documented (openapi.yaml) and counted by metrics, the id left out. */
export const VERIFICATION_REST_PATHS = [
  "/api/v1/auth/verifications/{id}",
  "/api/v1/auth/verifications/{id}/cancel",
] as const;

/** The REST path a metric counts a verification request under, the id left out. */
export function verificationRouteOf(path: string): string | undefined {
  const m = VERIFICATION_PATH.exec(path);
  if (!m) return undefined;
  return m[2] ? VERIFICATION_REST_PATHS[1] : VERIFICATION_REST_PATHS[0];
}

/** Serves the verification paths: GET reads one, POST .../cancel cancels it. */
export async function serveVerification(
  verifications: VerificationService,
  path: string,
  req: Req,
  res: Res,
  log: Logger,
  observer?: RestObserver,
): Promise<void> {
  const start = performance.now();
  let code = "ok";
  const [, rawId = "", cancel] = VERIFICATION_PATH.exec(path) ?? [];
  const requestId = requestIdFrom(req);
  const method = cancel ? "POST" : "GET";
  try {
    if (req.method !== method && !(method === "GET" && req.method === "HEAD")) {
      throw new HttpError(405, "MALFORMED_REQUEST", `method ${req.method} is not allowed; use ${method}`, {
        allow: method,
      });
    }
    // Nothing is read from a body: the id in the path is the whole request.
    req.resume();
    const id = decodeURIComponent(rawId);
    const v = cancel ? await verifications.cancel(id, requestId) : await verifications.get(id, requestId);
    sendJson(res, 200, verificationJson(v));
  } catch (err) {
    const e = toHttpError(
      err instanceof URIError ? new HttpError(400, "MALFORMED_REQUEST", "bad id") : err,
      requestLog(log, { requestId }),
    );
    code = e.code;
    sendError(res, e);
  } finally {
    observer?.done(code, start);
  }
}

function verificationJson(v: VerificationView) {
  return {
    verification_id: v.id,
    status: v.status,
    phone: v.maskedPhone,
    channel: v.channel,
    created_at: new Date(v.createdAtMs).toISOString(),
    expires_at: new Date(v.expiresAtMs).toISOString(),
    check_attempts_used: v.attemptsUsed,
    check_attempts_left: v.attemptsLeft,
    send_attempts: v.sendAttempts.map((a) => ({
      provider: a.provider,
      message_id: a.messageId,
      sent_at: new Date(a.sentAtMs).toISOString(),
      delivery_status: a.deliveryStatus,
      error_code: a.errorCode,
    })),
  };
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
      throw new HttpError(405, "MALFORMED_REQUEST", `method ${req.method} is not allowed; use POST`, {
        allow: "POST",
      });
    }
    const body = await readJsonObject(req, MAX_BODY_BYTES);
    sendJson(res, 200, await route(body, client));
  } catch (err) {
    // The caller hung up or timed out mid-upload: nobody to answer, and no server fault to log or alert on.
    if (req.readableAborted) {
      code = "canceled";
      log.debug({ reqId: client.requestId, err }, "client closed request");
      return;
    }
    const e = toHttpError(err, requestLog(log, client));
    code = e.code;
    sendError(res, e);
  } finally {
    observer?.done(code, start);
  }
}

/**
 * A refusal in REST terms: the status Connect gives its code (connectrpc.com/docs/protocol#error-codes), the
 * reason, and what the caller can act on; anything else is `internal` with an error id.
 */
export function toHttpError(err: unknown, log: LoginLog): HttpError {
  if (err instanceof HttpError) return err;
  const refusal = internalError(err, log);
  const entry = REASONS[refusal.reason];
  const status =
    "httpStatus" in entry
      ? entry.httpStatus
      : codeToHttpStatus(codeFromString(refusal.kind) ?? Code.Internal);
  const wait = refusal.retryAfterSeconds;
  const metadata = Object.keys(refusal.metadata).length > 0 ? { metadata: refusal.metadata } : {};
  return wait === undefined
    ? new HttpError(status, refusal.reason, refusal.message, {}, metadata)
    : new HttpError(
        status,
        refusal.reason,
        refusal.message,
        { "retry-after": String(wait) },
        {
          retry_after_seconds: wait,
          ...metadata,
        },
      );
}
