import { LoginError } from "./errors.js";

/** A limit's refusal: "resource_exhausted" with whole seconds to wait (always >= 1) and when, in words. */
export function tooMany(reason: string, what: string, retryAfterMs: number): LoginError {
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new LoginError("resource_exhausted", `${what}; try again in ${inWords(seconds)}`, seconds, reason);
}

/** "1 second", "27 seconds", "10 minutes", "1 hour": exact below two minutes, rounded up above. */
export function inWords(seconds: number): string {
  const unit = (n: number, name: string) => `${n} ${name}${n === 1 ? "" : "s"}`;
  if (seconds < 120) return unit(seconds, "second");
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 120) return unit(minutes, "minute");
  return unit(Math.ceil(minutes / 60), "hour");
}
