import { setTimeout as sleep } from "node:timers/promises";

export interface UntilOptions {
  /** Generous by default: a loaded 2-core machine is slow, and a deadline only matters when something is wrong. */
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
  /** Named in the timeout error, so a failure says what never happened (a function: as it was at the end). */
  readonly what?: string | (() => string);
}

/**
 * Polls `cond` until it returns a truthy value and resolves with that value; rejects once `timeoutMs` has
 * passed. Tests wait for the condition they need instead of sleeping a fixed time and hoping it held.
 * `cond` may throw to stop waiting at once (a child that exited, say).
 */
export async function until<T>(
  cond: () => T | Promise<T>,
  { timeoutMs = 15_000, intervalMs = 20, what = "a condition" }: UntilOptions = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await cond();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${typeof what === "function" ? what() : what}`,
      );
    }
    await sleep(intervalMs);
  }
}
