import { randomUUID } from "node:crypto";
import type { LoginLog } from "./ports.js";

/**
 * The closed catalogue of refusals. A reason is a stable id clients branch on (it travels as
 * `google.rpc.ErrorInfo.reason`, the `x-error-reason` header and the REST body's `reason`); the wording of the
 * message may change, the id may not. Each reason has one status class (`kind`, named as Connect names its
 * codes), which every transport maps to its own vocabulary in one place.
 *
 * README "Refusal reasons" lists every entry with its code and HTTP status; test/reasons.test.ts checks that
 * the two agree.
 */
export const REASONS = {
  INVALID_PHONE: { kind: "invalid_argument", what: "the phone is missing or not a mobile number" },
  INVALID_OTP_FORMAT: { kind: "invalid_argument", what: "the code is not exactly OTP_LENGTH digits" },
  COUNTRY_NOT_ALLOWED: { kind: "failed_precondition", what: "codes are not sent to this country" },
  SMS_INVALID_NUMBER: { kind: "invalid_argument", what: "the SMS provider says the number does not exist" },
  SMS_UNREACHABLE_NUMBER: {
    kind: "failed_precondition",
    what: "the number cannot receive SMS (landline, opted out, region blocked)",
  },
  OTP_INCORRECT: { kind: "unauthenticated", what: "wrong code; metadata attempts_left" },
  OTP_EXPIRED: { kind: "unauthenticated", what: "no live code: expired, used, or never sent" },
  OTP_ATTEMPTS_EXHAUSTED: { kind: "unauthenticated", what: "too many wrong codes; request a new one" },
  REFRESH_TOKEN_INVALID: { kind: "unauthenticated", what: "unknown, expired or revoked refresh token" },
  REFRESH_TOKEN_REUSED: { kind: "unauthenticated", what: "a spent refresh token came back; session revoked" },
  ACCESS_TOKEN_INVALID: {
    kind: "unauthenticated",
    what: "missing, malformed, expired or foreign access token, or its session was revoked",
  },
  SESSION_NOT_FOUND: { kind: "not_found", what: "no live session of the caller's has this id" },
  OTP_COOLDOWN: { kind: "resource_exhausted", what: "a code was just sent to this phone" },
  PHONE_LOCKED: { kind: "resource_exhausted", what: "too many wrong codes for this phone" },
  RATE_LIMIT_IP: { kind: "resource_exhausted", what: "too many requests from the client's network" },
  RATE_LIMIT_PHONE: { kind: "resource_exhausted", what: "too many codes for this phone" },
  SMS_PREFIX_LIMIT: { kind: "resource_exhausted", what: "too many codes to numbers of one range" },
  SMS_COUNTRY_LIMIT: { kind: "resource_exhausted", what: "too many codes to one country" },
  SMS_BUDGET_EXHAUSTED: { kind: "resource_exhausted", what: "the service's hourly SMS budget is spent" },
  SMS_UNAVAILABLE: { kind: "unavailable", what: "no SMS provider could send the code" },
  STORE_UNAVAILABLE: { kind: "unavailable", what: "the store (Redis) did not answer" },
  VERIFICATION_NOT_FOUND: {
    kind: "not_found",
    what: "no such verification: unknown, another phone's, or past its retention",
  },
  INTERNAL: { kind: "internal", what: "a bug; metadata error_id matches the log line" },
  // Refused by a transport before the kernel saw the request (REST body, path).
  MALFORMED_REQUEST: {
    kind: "invalid_argument",
    what: "REST: body is not a JSON object of strings, wrong content type (415) or method (405)",
  },
  REQUEST_TOO_LARGE: { kind: "resource_exhausted", what: "REST: body over 16 KiB", httpStatus: 413 },
  NOT_FOUND: { kind: "not_found", what: "REST: no route for this path" },
} as const satisfies Record<string, { kind: LoginErrorKind; what: string; httpStatus?: number }>;

export type Reason = keyof typeof REASONS;

/** The status classes refusals fall in, spelled as Connect's code names so transports can look them up. */
export type LoginErrorKind =
  | "invalid_argument"
  | "failed_precondition"
  | "unauthenticated"
  | "resource_exhausted"
  | "unavailable"
  | "not_found"
  | "internal";

/** A refusal: made only by the factories below, so every one carries a catalogued reason. */
export class LoginError extends Error {
  override readonly name = "LoginError";
  readonly kind: LoginErrorKind;

  constructor(
    readonly reason: Reason,
    message: string,
    /** Whole seconds until a retry can succeed (always >= 1); only where waiting helps. */
    readonly retryAfterSeconds?: number,
    /** Facts a client can act on (`attempts_left`, `error_id`); strings, as ErrorInfo carries them. */
    readonly metadata: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.kind = REASONS[reason].kind;
  }
}

// ---- input ---------------------------------------------------------------------------------------------

export const invalidPhone = (message: string) => new LoginError("INVALID_PHONE", message);

export const invalidOtpFormat = (length: number) =>
  new LoginError("INVALID_OTP_FORMAT", `otp must be exactly ${length} digits`);

export const countryNotAllowed = (destination: string) =>
  new LoginError("COUNTRY_NOT_ALLOWED", `codes are not sent to ${destination} numbers`);

export const smsInvalidNumber = (message: string) => new LoginError("SMS_INVALID_NUMBER", message);

export const smsUnreachableNumber = (message: string) => new LoginError("SMS_UNREACHABLE_NUMBER", message);

// ---- codes ---------------------------------------------------------------------------------------------

export const otpIncorrect = (attemptsLeft: number) =>
  new LoginError(
    "OTP_INCORRECT",
    attemptsLeft > 0
      ? `incorrect code; ${attemptsLeft} ${attemptsLeft === 1 ? "attempt" : "attempts"} left`
      : "incorrect code; no attempts left, request a new code",
    undefined,
    { attempts_left: String(attemptsLeft) },
  );

export const otpExpired = () =>
  new LoginError(
    "OTP_EXPIRED",
    "no active code for this phone: it expired or was already used; request a new code",
  );

export const otpAttemptsExhausted = () =>
  new LoginError("OTP_ATTEMPTS_EXHAUSTED", "too many incorrect attempts; request a new code");

export const verificationNotFound = () =>
  new LoginError("VERIFICATION_NOT_FOUND", "no such verification; it may have expired from the records");

// ---- tokens --------------------------------------------------------------------------------------------

export const refreshTokenInvalid = () =>
  new LoginError("REFRESH_TOKEN_INVALID", "refresh token is invalid, expired or revoked; log in again");

export const refreshTokenReused = () =>
  new LoginError(
    "REFRESH_TOKEN_REUSED",
    "refresh token was already used; the session has been revoked, log in again",
  );

// ---- sessions ------------------------------------------------------------------------------------------

/** One message for every cause, so a refusal tells an attacker nothing about which check a forgery failed. */
export const accessTokenInvalid = () =>
  new LoginError(
    "ACCESS_TOKEN_INVALID",
    "a valid access token is required (Authorization: Bearer <token>); refresh it or log in again",
  );

export const sessionNotFound = () =>
  new LoginError("SESSION_NOT_FOUND", "no such session: it is not yours, or it has already ended");

// ---- limits --------------------------------------------------------------------------------------------

/** A limit's refusal: whole seconds to wait (always >= 1) and when, in words. */
function tooMany(reason: Reason, what: string, retryAfterMs: number): LoginError {
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new LoginError(reason, `${what}; try again in ${inWords(seconds)}`, seconds);
}

export const otpCooldown = (retryAfterMs: number) =>
  tooMany("OTP_COOLDOWN", "a code was just sent to this phone", retryAfterMs);

export const phoneLocked = (retryAfterMs: number) =>
  tooMany("PHONE_LOCKED", "too many incorrect codes for this phone", retryAfterMs);

export const rateLimitIp = (retryAfterMs: number, asking: "send" | "verify") =>
  tooMany(
    "RATE_LIMIT_IP",
    asking === "send"
      ? "too many codes requested from your network"
      : "too many codes checked from your network",
    retryAfterMs,
  );

export const rateLimitPhone = (retryAfterMs: number) =>
  tooMany("RATE_LIMIT_PHONE", "too many codes requested for this phone", retryAfterMs);

export const smsPrefixLimit = (retryAfterMs: number) =>
  tooMany("SMS_PREFIX_LIMIT", "too many codes sent to numbers like this", retryAfterMs);

export const smsCountryLimit = (retryAfterMs: number) =>
  tooMany("SMS_COUNTRY_LIMIT", "too many codes sent to this country", retryAfterMs);

export const smsBudgetExhausted = (retryAfterMs: number) =>
  tooMany("SMS_BUDGET_EXHAUSTED", "too many codes are being sent right now", retryAfterMs);

// ---- outages and bugs ----------------------------------------------------------------------------------

export const smsUnavailable = () =>
  new LoginError("SMS_UNAVAILABLE", "could not send the code right now; try again shortly");

export const storeUnavailable = () =>
  new LoginError("STORE_UNAVAILABLE", "the login service is temporarily unavailable; try again shortly");

/**
 * What a caller gets for anything that is not a refusal (a bug, a malformed record, an unexpected reply): the
 * cause goes to the log under an error id, and only the id to the caller, so a report can be matched to it.
 */
export function internalError(cause: unknown, log: LoginLog): LoginError {
  if (cause instanceof LoginError) return cause;
  const errorId = randomUUID();
  log.error({ err: cause, errorId }, "internal error");
  return new LoginError("INTERNAL", `internal error (error id ${errorId})`, undefined, { error_id: errorId });
}

/** "1 second", "27 seconds", "10 minutes", "1 hour": exact below two minutes, rounded up above. */
export function inWords(seconds: number): string {
  const unit = (n: number, name: string) => `${n} ${name}${n === 1 ? "" : "s"}`;
  if (seconds < 120) return unit(seconds, "second");
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 120) return unit(minutes, "minute");
  return unit(Math.ceil(minutes / 60), "hour");
}
