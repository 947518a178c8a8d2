import type { FailureLock } from "../login/ports.js";

/** Refuses lock settings the script would misread (EXPIRE rejects fractions and deletes on 0). */
export function checkLock(lock: FailureLock): void {
  if (!Number.isInteger(lock.maxFailures) || lock.maxFailures < 0) {
    throw new RangeError(`maxFailures must be a whole number >= 0, got ${lock.maxFailures}`);
  }
  if (!Number.isInteger(lock.lockSeconds) || lock.lockSeconds < 1) {
    throw new RangeError(`lockSeconds must be a whole number >= 1, got ${lock.lockSeconds}`);
  }
}
