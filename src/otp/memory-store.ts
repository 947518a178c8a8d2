import { timingSafeEqual } from "node:crypto";
import {
  type AdmittedCheck,
  type AdmittedWrite,
  codeMatched,
  type DeliveryReceipt,
  type FailureLock,
  type NewCode,
  type OtpStore,
  type PutResult,
  type SendAttempt,
  type StoredVerification,
  type VerificationStore,
  type VerifyOutcome,
} from "../login/ports.js";
import { checkLock } from "./lock.js";

interface Entry {
  readonly digest: Buffer;
  attempts: number;
  /** Clock time (ms) from which the code is gone. */
  readonly expiresAt: number;
  /** The previous code, live beside this one until its own expiry. */
  readonly late?: { readonly digest: Buffer; readonly expiresAt: number } | undefined;
  readonly verificationId: string;
}

/** A verification's record, and until when it is kept. */
interface Verification {
  record: StoredVerification;
  keepUntil: number;
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
export class MemoryOtpStore implements OtpStore, VerificationStore {
  readonly #codes = new Map<string, Entry>();
  readonly #verifications = new Map<string, Verification>();
  /** `<provider> <message id>` -> verification id, for receipts. */
  readonly #messages = new Map<string, { id: string; keepUntil: number }>();
  readonly #failures = new Map<string, Failures>();
  /** Until when each (phone, client) pair counts as having failed, keyed `<phone> <client>`. */
  readonly #clientFailed = new Map<string, number>();
  readonly #now: () => number;
  #sweepAt = MIN_SWEEP_SIZE;
  #recordSweepAt = MIN_SWEEP_SIZE;

  /** @param now the clock in milliseconds; tests pass their own to make codes expire without waiting. */
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Entries held, expired ones not yet dropped included. */
  get size(): number {
    return this.#codes.size;
  }

  admittedPut(...put: Parameters<OtpStore["put"]>): AdmittedWrite<PutResult> {
    return { run: () => this.put(...put) };
  }

  async put(phone: string, digest: string, ttlSeconds: number, code: NewCode): Promise<PutResult> {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
      throw new RangeError(`ttlSeconds must be a whole number >= 1, got ${ttlSeconds}`);
    }
    const now = this.#now();
    if (this.#codes.size + this.#failures.size + this.#clientFailed.size >= this.#sweepAt) this.#sweep(now);
    // Records outlive their codes by the retention, so they are swept on a count of their own.
    if (this.#verifications.size >= this.#recordSweepAt) this.#sweepRecords(now);
    const expiresAt = now + ttlSeconds * 1000;
    const keepUntil = expiresAt + code.retentionSeconds * 1000;
    const current = this.#live(phone);
    const pending = current && this.#verifications.get(current.verificationId);
    // As in the script: a pending verification with checks left continues, its current code kept as the late
    // one on the same attempt count; anything else starts a new verification.
    if (current && pending?.record.status === "pending" && current.attempts < code.maxAttempts) {
      this.#codes.set(phone, {
        digest: Buffer.from(digest),
        attempts: current.attempts,
        expiresAt,
        late: { digest: current.digest, expiresAt: current.expiresAt },
        verificationId: current.verificationId,
      });
      pending.record = { ...pending.record, expiresAtMs: expiresAt };
      pending.keepUntil = keepUntil;
      return { verificationId: current.verificationId, expiresAtMs: expiresAt };
    }
    const id = code.verificationId;
    this.#codes.set(phone, { digest: Buffer.from(digest), attempts: 0, expiresAt, verificationId: id });
    this.#verifications.set(id, {
      keepUntil,
      record: {
        id,
        phone,
        maskedPhone: code.maskedPhone,
        status: "pending",
        createdAtMs: now,
        expiresAtMs: expiresAt,
        attemptsUsed: 0,
        sendAttempts: [],
      },
    });
    return { verificationId: id, expiresAtMs: expiresAt };
  }

  admittedVerify(...verify: Parameters<OtpStore["verify"]>): AdmittedCheck<VerifyOutcome> {
    return { run: () => this.verify(...verify), matched: codeMatched };
  }

  async verify(
    phone: string,
    digest: string | readonly string[],
    maxAttempts: number,
    lock: FailureLock = NO_LOCK,
    client?: string,
    verificationId?: string,
  ): Promise<VerifyOutcome> {
    checkLock(lock);
    const now = this.#now();
    const failures = this.#liveFailures(phone, now);
    // As in the script: the lock stops clients that failed on the phone (and unknown ones), not the others.
    const lockedMs = failures ? failures.lockedUntil - now : 0;
    if (lock.maxFailures > 0 && lockedMs > 0 && this.#hasFailed(phone, client, now))
      return { kind: "locked", retryAfterMs: lockedMs };
    if (verificationId !== undefined && this.#liveVerification(verificationId, now)?.record.phone !== phone)
      return { kind: "not_found" };
    const entry = this.#live(phone);
    if (!entry) return { kind: "missing" };
    if (verificationId !== undefined && entry.verificationId !== verificationId) return { kind: "missing" };
    const vid = entry.verificationId;
    const v = this.#verifications.get(vid);
    // Counted before comparing, and the entry is kept once exhausted, exactly as the Redis script does.
    entry.attempts += 1;
    if (v) v.record = { ...v.record, attemptsUsed: Math.min(entry.attempts, maxAttempts) };
    if (entry.attempts > maxAttempts) return { kind: "exhausted", verificationId: vid };
    const candidates = typeof digest === "string" ? [digest] : digest;
    if (candidates.length > 2)
      throw new RangeError("at most two digests: the current and the previous secret's");
    const late = entry.late && now < entry.late.expiresAt ? entry.late.digest : undefined;
    // Every candidate against both live codes, whatever the first comparisons answered, as the script does.
    const hit = candidates
      .flatMap((d) => {
        const given = Buffer.from(d);
        const matches = (stored: Buffer) => given.length === stored.length && timingSafeEqual(given, stored);
        return [matches(entry.digest), late !== undefined && matches(late)];
      })
      .includes(true);
    if (hit) {
      this.#codes.delete(phone);
      if (v) v.record = { ...v.record, status: "approved" };
      // Clears the count, never a lock, as in the script.
      if (failures && lockedMs > 0) failures.count = 0;
      else this.#failures.delete(phone);
      if (client !== undefined) this.#clientFailed.delete(clientKey(phone, client));
      return { kind: "ok", verificationId: vid };
    }
    if (v && entry.attempts >= maxAttempts) v.record = { ...v.record, status: "max_attempts_reached" };
    let lockedNow = false;
    if (lock.maxFailures > 0) {
      if (client !== undefined)
        this.#clientFailed.set(clientKey(phone, client), now + lock.lockSeconds * 1000);
      const count = (failures && now < failures.countUntil ? failures.count : 0) + 1;
      const until = now + lock.lockSeconds * 1000;
      lockedNow = count >= lock.maxFailures;
      // The count that reaches the limit turns into the lock (or renews it: a count rebuilt while locked by
      // clients that had not failed yet), as in the script.
      this.#failures.set(
        phone,
        count >= lock.maxFailures
          ? { count: 0, countUntil: 0, lockedUntil: until }
          : { count, countUntil: until, lockedUntil: failures?.lockedUntil ?? 0 },
      );
    }
    return {
      kind: "wrong",
      attemptsLeft: maxAttempts - entry.attempts,
      verificationId: vid,
      locked: lockedNow,
    };
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
    if (!entry?.digest.equals(Buffer.from(digest))) return;
    // As in the script: the previous code, which went out, is current again; no code left is failed_to_send.
    if (entry.late) {
      const { late, ...rest } = entry;
      this.#codes.set(phone, { ...rest, digest: late.digest, expiresAt: late.expiresAt });
      return;
    }
    this.#codes.delete(phone);
    const v = this.#verifications.get(entry.verificationId);
    if (v?.record.status === "pending") v.record = { ...v.record, status: "failed_to_send" };
  }

  async get(id: string): Promise<StoredVerification | undefined> {
    return this.#liveVerification(id, this.#now())?.record;
  }

  async cancel(id: string): Promise<StoredVerification | undefined> {
    const now = this.#now();
    const v = this.#liveVerification(id, now);
    if (!v) return undefined;
    if (v.record.status === "pending" && now < v.record.expiresAtMs) {
      v.record = { ...v.record, status: "canceled" };
      if (this.#codes.get(v.record.phone)?.verificationId === id) this.#codes.delete(v.record.phone);
    }
    return v.record;
  }

  async recordSend(_phone: string, id: string, attempt: SendAttempt, keepUntilMs: number): Promise<void> {
    const v = this.#verifications.get(id);
    if (!v) return;
    v.record = { ...v.record, sendAttempts: [...v.record.sendAttempts, attempt] };
    v.keepUntil = Math.max(v.keepUntil, keepUntilMs);
    if (attempt.messageId !== "")
      this.#messages.set(`${attempt.provider} ${attempt.messageId}`, { id, keepUntil: keepUntilMs });
  }

  async recordReceipt(receipt: DeliveryReceipt): Promise<StoredVerification | undefined> {
    const now = this.#now();
    const index = `${receipt.provider} ${receipt.messageId}`;
    const found = this.#messages.get(index);
    if (!found || now >= found.keepUntil) {
      this.#messages.delete(index);
      return undefined;
    }
    const v = this.#liveVerification(found.id, now);
    if (!v) return undefined;
    v.record = {
      ...v.record,
      sendAttempts: v.record.sendAttempts.map((a) =>
        a.provider === receipt.provider && a.messageId === receipt.messageId
          ? { ...a, deliveryStatus: receipt.status, errorCode: receipt.errorCode }
          : a,
      ),
    };
    return v.record;
  }

  #liveVerification(id: string, now: number): Verification | undefined {
    const v = this.#verifications.get(id);
    if (!v || now < v.keepUntil) return v;
    this.#verifications.delete(id);
    return undefined;
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

  #sweepRecords(now: number): void {
    for (const [id, v] of this.#verifications) {
      if (now >= v.keepUntil) this.#verifications.delete(id);
    }
    for (const [key, m] of this.#messages) {
      if (now >= m.keepUntil) this.#messages.delete(key);
    }
    this.#recordSweepAt = Math.max(MIN_SWEEP_SIZE, 2 * this.#verifications.size);
  }
}
