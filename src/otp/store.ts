/** What a verification attempt found. */
export type VerifyOutcome =
  /** The code matched and has been consumed: it will never verify again. */
  | { readonly kind: "ok" }
  /** The code did not match; `attemptsLeft` more wrong tries are allowed before the code dies. */
  | { readonly kind: "wrong"; readonly attemptsLeft: number }
  /** No live code: never sent, expired, already used, or discarded. */
  | { readonly kind: "missing" }
  /** Too many wrong tries: the code is dead even if the right one follows. */
  | { readonly kind: "exhausted" };

/**
 * Holds at most one live code per phone, as an HMAC digest (never the code itself).
 * Implementations must make `verify` atomic: the attempt is counted before the comparison and a matching
 * code is consumed in the same step, so concurrent verifies of one code give exactly one "ok".
 */
export interface OtpStore {
  /** Stores a new code for the phone, replacing any earlier one and resetting its attempt count. */
  put(phone: string, digest: string, ttlSeconds: number): Promise<void>;
  /** Counts one attempt and compares; consumes the code on a match. */
  verify(phone: string, digest: string, maxAttempts: number): Promise<VerifyOutcome>;
  /**
   * Deletes the phone's code if it is still the one with this digest (a newer code is left alone). Used when
   * the SMS could not be sent, so there is never a live code that nobody received.
   */
  discard(phone: string, digest: string): Promise<void>;
}
