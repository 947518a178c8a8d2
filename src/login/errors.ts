/**
 * The ways a login step can be refused. The login core speaks only these; each transport maps them to its
 * own vocabulary (Connect codes, HTTP statuses) in one place.
 */
export type LoginErrorKind =
  | "invalid_argument"
  | "failed_precondition"
  | "unauthenticated"
  | "resource_exhausted"
  | "unavailable";

export class LoginError extends Error {
  override readonly name = "LoginError";
  constructor(
    readonly kind: LoginErrorKind,
    message: string,
    /** For resource_exhausted: whole seconds until a retry can succeed (always >= 1). */
    readonly retryAfterSeconds?: number,
    /** A stable machine-readable reason, e.g. "OTP_EXPIRED", for clients that branch on it. */
    readonly reason?: string,
  ) {
    super(message);
  }
}
