import type { Client } from "./login-service.js";

/**
 * What the login core asks of abuse protection, kept free of any rate-limiting library. Refusals are thrown
 * as `LoginError`: "resource_exhausted" with `retryAfterSeconds`, or "failed_precondition" for a destination
 * that is never served. Anything else thrown means the limits could not be checked (the store is down), and
 * the core fails closed.
 */
export interface AbuseGuard {
  /** Decides every send limit before the code is touched; resolves with what the send was counted under. */
  beforeSend(phone: string, client: Client): Promise<SendPermit>;
  /** Decides the verify limits before the code is touched. */
  beforeVerify(phone: string, client: Client): Promise<void>;
  /** A login succeeded: the client has shown it is a real user, so its send and verify are given back. */
  afterLogin(phone: string, client: Client): Promise<void>;
}

export interface SendPermit {
  /** The code was not sent after all: gives back what was counted for the SMS. */
  cancel(): Promise<void>;
}
