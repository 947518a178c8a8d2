import type { LoginError } from "../login/reasons.js";
import type { Limit } from "./limit.js";

/** One limit applied to one request. */
export interface Check {
  readonly limit: Limit;
  readonly key: string;
  /** The refusal the caller gets when this check refuses, given the wait. */
  readonly refuse: (retryAfterMs: number) => LoginError;
  /**
   * A counter every send (to a country, or at all) touches: on a Redis Cluster it is split into shards on
   * several masters, so no one master takes every send. Elsewhere it is one counter.
   */
  readonly spread?: boolean;
}

export interface Refusal {
  /** The limit that refused; undefined for the phone's failure lock, which the OTP store keeps. */
  readonly limit: Limit | undefined;
  readonly refuse: (retryAfterMs: number) => LoginError;
  readonly retryAfterMs: number;
}

/** Every check must pass, so the refusal worth reporting is the one with the longest wait. */
export function byLongestWait(refusals: Refusal[]): Refusal[] {
  return refusals.sort((a, b) => b.retryAfterMs - a.retryAfterMs);
}

export async function refund(checks: readonly Check[]): Promise<void> {
  await Promise.all(checks.map((c) => c.limit.refund(c.key)));
}

export function refusalError(r: Refusal): LoginError {
  return r.refuse(r.retryAfterMs);
}
