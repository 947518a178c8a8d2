import type { LoginError } from "../login/reasons.js";
import type { Limit } from "./limit.js";

/** One limit applied to one request. */
export interface Check {
  readonly limit: Limit;
  readonly key: string;
  /** The refusal the caller gets when this check refuses, given the wait. */
  readonly refuse: (retryAfterMs: number) => LoginError;
  /** Counts codes that go out (not requests): given back when the code is not sent after all. */
  readonly countsSms: boolean;
}

export interface Refusal {
  readonly check: Check;
  readonly retryAfterMs: number;
}

/**
 * Consumes every check at once (ioredis auto-pipelining puts them in one round trip) and returns the
 * refusals, longest wait first: the first is the one to report, since every check must pass. When any
 * refuses, the SMS-counting checks that passed are given back, so a refused request costs no SMS budget: a
 * cooldown refusal must not eat the hourly caps. Request-counting checks (per IP) keep their point: asking
 * is what they count. Rejects if the store fails.
 */
export async function consumeAll(checks: readonly Check[]): Promise<Refusal[]> {
  const results = await Promise.all(checks.map((c) => c.limit.consume(c.key)));
  const refusals: Refusal[] = [];
  results.forEach((r, i) => {
    const check = checks[i] as Check;
    if (!r.ok) refusals.push({ check, retryAfterMs: r.retryAfterMs });
  });
  if (refusals.length > 0) {
    refusals.sort((a, b) => b.retryAfterMs - a.retryAfterMs);
    await refund(checks.filter((c, i) => c.countsSms && results[i]?.ok));
  }
  return refusals;
}

export async function refund(checks: readonly Check[]): Promise<void> {
  await Promise.all(checks.map((c) => c.limit.refund(c.key)));
}

export function refusalError(r: Refusal): LoginError {
  return r.check.refuse(r.retryAfterMs);
}
