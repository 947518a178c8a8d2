import { timingSafeEqual } from "node:crypto";
import type { FailureLock, OtpStore, VerifyOutcome } from "../login/ports.js";
import { checkLock } from "./lock.js";

interface Entry {
  readonly digest: Buffer;
  attempts: number;
  /** Clock time (ms) from which the code is gone. */
  readonly expiresAt: number;
}

/**
 * A phone's consecutive wrong codes (gone from `countUntil` on) and its lock (until `lockedUntil`): two
 * keys with their own TTLs in Redis, so two clocks here.
 */
interface Failures {
  count: number;
  countUntil: number;
  lockedUntil: number;
}

const clientKey = (phone: string, client: string) => `${phone} ${client}`;

// Below this many entries a sweep is not worth its scan.
const MIN_SWEEP_SIZE = 1024;
const NO_LOCK: FailureLock = { maxFailures: 0, lockSeconds: 1 };

/**
 * The in-memory `OtpStore`, for development and tests, with the Redis store's semantics. Every method runs
 * to completion without awaiting, so each is atomic on Node's single thread.
 *
 * Expired codes are dropped when touched, and by a sweep that `put` runs whenever the map has doubled since
 * the last one: no timer keeps the process alive, the cost per `put` stays constant on average, and the map
 * never holds more than about twice the live codes. Failure counts only arise from wrong codes, which need
 * a code, so the same sweep keeps them bounded too.
 */
export class MemoryOtpStore implements OtpStore {
  readonly #codes = new Map<string, Entry>();
  readonly #failures = new Map<string, Failures>();
  /** Until when each (phone, client) pair counts as having failed, keyed `<phone> <client>`. */
  readonly #clientFailed = new Map<string, number>();
  readonly #now: () => number;
  #sweepAt = MIN_SWEEP_SIZE;

  /** @param now the clock in milliseconds; tests pass their own to make codes expire without waiting. */
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Entries held, expired ones not yet dropped included. */
  get size(): number {
    return this.#codes.size;
  }

  async put(phone: string, digest: string, ttlSeconds: number): Promise<void> {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
      throw new RangeError(`ttlSeconds must be a whole number >= 1, got ${ttlSeconds}`);
    }
    const now = this.#now();
    if (this.#codes.size + this.#failures.size + this.#clientFailed.size >= this.#sweepAt) this.#sweep(now);
    this.#codes.set(phone, { digest: Buffer.from(digest), attempts: 0, expiresAt: now + ttlSeconds * 1000 });
  }

  async verify(
    phone: string,
    digest: string | readonly string[],
    maxAttempts: number,
    lock: FailureLock = NO_LOCK,
    client?: string,
  ): Promise<VerifyOutcome> {
    checkLock(lock);
    const now = this.#now();
    const failures = this.#liveFailures(phone, now);
    // As in the script: the lock stops clients that failed on the phone (and unknown ones), not the others.
    const lockedMs = failures ? failures.lockedUntil - now : 0;
    if (lock.maxFailures > 0 && lockedMs > 0 && this.#hasFailed(phone, client, now))
      return { kind: "locked", retryAfterMs: lockedMs };
    const entry = this.#live(phone);
    if (!entry) return { kind: "missing" };
    // Counted before comparing, and the entry is kept once exhausted, exactly as the Redis script does.
    entry.attempts += 1;
    if (entry.attempts > maxAttempts) return { kind: "exhausted" };
    const candidates = typeof digest === "string" ? [digest] : digest;
    if (candidates.length > 2)
      throw new RangeError("at most two digests: the current and the previous secret's");
    // Every candidate is compared, as in the script.
    const matched = candidates
      .map((d) => {
        const given = Buffer.from(d);
        return given.length === entry.digest.length && timingSafeEqual(given, entry.digest);
      })
      .includes(true);
    if (matched) {
      this.#codes.delete(phone);
      // Clears the count, never a lock, as in the script.
      if (failures && lockedMs > 0) failures.count = 0;
      else this.#failures.delete(phone);
      if (client !== undefined) this.#clientFailed.delete(clientKey(phone, client));
      return { kind: "ok" };
    }
    if (lock.maxFailures > 0) {
      if (client !== undefined)
        this.#clientFailed.set(clientKey(phone, client), now + lock.lockSeconds * 1000);
      const count = (failures && now < failures.countUntil ? failures.count : 0) + 1;
      const until = now + lock.lockSeconds * 1000;
      // The count that reaches the limit turns into the lock (or renews it: a count rebuilt while locked by
      // clients that had not failed yet), as in the script.
      this.#failures.set(
        phone,
        count >= lock.maxFailures
          ? { count: 0, countUntil: 0, lockedUntil: until }
          : { count, countUntil: until, lockedUntil: failures?.lockedUntil ?? 0 },
      );
    }
    return { kind: "wrong", attemptsLeft: maxAttempts - entry.attempts };
  }

  async lockedFor(phone: string, client?: string): Promise<number> {
    const now = this.#now();
    const failures = this.#liveFailures(phone, now);
    const lockedMs = failures ? failures.lockedUntil - now : 0;
    return lockedMs > 0 && this.#hasFailed(phone, client, now) ? lockedMs : 0;
  }

  /** Whether the client has failed on the phone lately; an unknown client counts as one that has. */
  #hasFailed(phone: string, client: string | undefined, now: number): boolean {
    if (client === undefined) return true;
    const key = clientKey(phone, client);
    const until = this.#clientFailed.get(key);
    if (until === undefined) return false;
    if (now < until) return true;
    this.#clientFailed.delete(key);
    return false;
  }

  async discard(phone: string, digest: string): Promise<void> {
    const entry = this.#live(phone);
    if (entry?.digest.equals(Buffer.from(digest))) this.#codes.delete(phone);
  }

  #live(phone: string): Entry | undefined {
    const entry = this.#codes.get(phone);
    if (!entry || this.#now() < entry.expiresAt) return entry;
    this.#codes.delete(phone);
    return undefined;
  }

  #liveFailures(phone: string, now: number): Failures | undefined {
    const failures = this.#failures.get(phone);
    if (!failures || now < Math.max(failures.countUntil, failures.lockedUntil)) return failures;
    this.#failures.delete(phone);
    return undefined;
  }

  #sweep(now: number): void {
    for (const [phone, entry] of this.#codes) {
      if (now >= entry.expiresAt) this.#codes.delete(phone);
    }
    for (const [phone, failures] of this.#failures) {
      if (now >= Math.max(failures.countUntil, failures.lockedUntil)) this.#failures.delete(phone);
    }
    for (const [key, until] of this.#clientFailed) {
      if (now >= until) this.#clientFailed.delete(key);
    }
    this.#sweepAt = Math.max(
      MIN_SWEEP_SIZE,
      2 * (this.#codes.size + this.#failures.size + this.#clientFailed.size),
    );
  }
}
