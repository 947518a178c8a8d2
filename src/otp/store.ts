/** What a verification attempt found. */
export type VerifyOutcome =
  /** The code matched and has been consumed: it will never verify again. */
  | { readonly kind: "ok" }
  /** The code did not match; `attemptsLeft` more wrong tries are allowed before the code dies. */
  | { readonly kind: "wrong"; readonly attemptsLeft: number }
  /** No live code: never sent, expired, already used, or discarded. */
  | { readonly kind: "missing" }
  /** Too many wrong tries: the code is dead even if the right one follows. */
  | { readonly kind: "exhausted" }
  /** The phone is locked after too many consecutive wrong codes; nothing was compared or counted. */
  | { readonly kind: "locked"; readonly retryAfterMs: number };

/**
 * The per-phone lock against guessing across resends: `maxFailures` consecutive wrong codes, whichever code
 * they were aimed at, lock the phone for `lockSeconds`. A match clears the count; a new code does not. The
 * count itself is forgotten `lockSeconds` after the last wrong code. `maxFailures` 0 turns the lock off.
 */
export interface FailureLock {
  readonly maxFailures: number;
  readonly lockSeconds: number;
}

/** Refuses lock settings the script would misread (EXPIRE rejects fractions and deletes on 0). */
export function checkLock(lock: FailureLock): void {
  if (!Number.isInteger(lock.maxFailures) || lock.maxFailures < 0) {
    throw new RangeError(`maxFailures must be a whole number >= 0, got ${lock.maxFailures}`);
  }
  if (!Number.isInteger(lock.lockSeconds) || lock.lockSeconds < 1) {
    throw new RangeError(`lockSeconds must be a whole number >= 1, got ${lock.lockSeconds}`);
  }
}

/**
 * Holds at most one live code per phone, as an HMAC digest (never the code itself), and the phone's
 * consecutive-failure count and lock.
 * Implementations must make `verify` atomic: the lock is checked first, the attempt is counted before the
 * comparison, and a matching code is consumed in the same step, so concurrent verifies of one code give
 * exactly one "ok" and a burst of guesses cannot outrun the lock.
 */
export interface OtpStore {
  /** Stores a new code for the phone, replacing any earlier one and resetting its attempt count. */
  put(phone: string, digest: string, ttlSeconds: number): Promise<void>;
  /** Checks the lock, counts one attempt and compares; consumes the code on a match. */
  verify(phone: string, digest: string, maxAttempts: number, lock?: FailureLock): Promise<VerifyOutcome>;
  /** Milliseconds until the phone's failure lock ends; 0 when it is not locked. */
  lockedFor(phone: string): Promise<number>;
  /**
   * Deletes the phone's code if it is still the one with this digest (a newer code is left alone). Used when
   * the SMS could not be sent, so there is never a live code that nobody received.
   */
  discard(phone: string, digest: string): Promise<void>;
}
