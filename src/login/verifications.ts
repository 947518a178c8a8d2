import { StoreUnavailableError } from "./failures.js";
import type {
  AuditLog,
  DeliveryReceipt,
  LoginEvents,
  LoginLog,
  SendAttempt,
  StoredVerification,
  VerificationStatus,
  VerificationStore,
} from "./ports.js";
import { randomHex } from "./random-pool.js";
import { LoginError, storeUnavailable, verificationNotFound } from "./reasons.js";
import { requestLog } from "./request-log.js";

/** "VE" and 32 hex digits: 128 bits from the CSPRNG, so an id is a capability nobody can guess. */
export function newVerificationId(): string {
  return `VE${randomHex(16)}`;
}

const ID_SHAPE = /^VE[0-9a-f]{32}$/;

export function isVerificationId(id: string): boolean {
  return ID_SHAPE.test(id);
}

/** How codes reach the phone; the only channel so far. */
export const CHANNEL = "sms";

/** A verification as callers see it: the phone masked, the status as of now, the checks left. */
export interface VerificationView {
  readonly id: string;
  readonly status: VerificationStatus;
  readonly maskedPhone: string;
  readonly channel: string;
  readonly createdAtMs: number;
  readonly expiresAtMs: number;
  readonly attemptsUsed: number;
  readonly attemptsLeft: number;
  readonly sendAttempts: readonly SendAttempt[];
}

/** The status as of `nowMs`: a pending verification whose newest code has expired is expired. */
export function statusAt(v: StoredVerification, nowMs: number): VerificationStatus {
  return v.status === "pending" && nowMs >= v.expiresAtMs ? "expired" : v.status;
}

export function viewOf(v: StoredVerification, maxAttempts: number, nowMs: number): VerificationView {
  return {
    id: v.id,
    status: statusAt(v, nowMs),
    maskedPhone: v.maskedPhone,
    channel: CHANNEL,
    createdAtMs: v.createdAtMs,
    expiresAtMs: v.expiresAtMs,
    attemptsUsed: v.attemptsUsed,
    attemptsLeft: Math.max(0, maxAttempts - v.attemptsUsed),
    sendAttempts: v.sendAttempts,
  };
}

/** Receipt statuses after which a code will not arrive: worth a second try through another provider. */
const UNDELIVERED = new Set(["undelivered", "failed", "rejected"]);

export function isUndelivered(status: string): boolean {
  return UNDELIVERED.has(status);
}

export interface VerificationDeps {
  readonly store: VerificationStore;
  readonly maxAttempts: number;
  readonly log: LoginLog;
  readonly audit: AuditLog;
  readonly events: LoginEvents;
  /** The ISO region of an E.164 number, for metrics by country; "" when it has none. */
  readonly regionOf: (e164: string) => string;
  /**
   * Sends a fresh code once through the fallback provider after a receipt says the first did not arrive;
   * absent unless SMS_REROUTE_UNDELIVERED=true.
   */
  readonly reroute?: ((v: StoredVerification) => Promise<void>) | undefined;
  readonly now?: () => number;
}

/**
 * The verification lifecycle beside the login flows: status by id, cancel, and delivery receipts. The id is
 * the capability: an id that is unknown, malformed or past its retention is VERIFICATION_NOT_FOUND, the
 * same refusal whichever, so an answer tells nothing about other people's verifications.
 */
export class VerificationService {
  readonly #now: () => number;

  constructor(private readonly deps: VerificationDeps) {
    this.#now = deps.now ?? Date.now;
  }

  /** `requestId`, on every method: the request's id, for the log lines written while serving it. */
  async get(id: string, requestId?: string): Promise<VerificationView> {
    const v = isVerificationId(id) ? await this.#store(this.deps.store.get(id), requestId) : undefined;
    if (!v) throw verificationNotFound();
    return viewOf(v, this.deps.maxAttempts, this.#now());
  }

  async cancel(id: string, requestId?: string): Promise<VerificationView> {
    const v = isVerificationId(id) ? await this.#store(this.deps.store.cancel(id), requestId) : undefined;
    if (!v) throw verificationNotFound();
    if (v.status === "canceled") {
      this.deps.audit.append({
        event: "verification.canceled",
        verificationId: v.id,
        phone: v.maskedPhone,
      });
    }
    return viewOf(v, this.deps.maxAttempts, this.#now());
  }

  /**
   * A provider's delivery receipt (already authenticated by its webhook): updates the send attempt it belongs
   * to, counts it, audits it, and, when it says the code never arrived while the verification is pending,
   * reroutes once. Answers false for a message that is none of ours (or whose record has expired).
   */
  async receipt(receipt: DeliveryReceipt, requestId?: string): Promise<boolean> {
    const { store, events, audit } = this.deps;
    const log = requestLog(this.deps.log, { requestId });
    const v = await this.#store(store.recordReceipt(receipt), requestId);
    events.deliveryReported(receipt.provider, v ? this.deps.regionOf(v.phone) : "", receipt.status);
    if (!v) return false;
    audit.append({
      event: "otp.delivery",
      verificationId: v.id,
      phone: v.maskedPhone,
      reason: receipt.errorCode ? `${receipt.status}:${receipt.errorCode}` : receipt.status,
    });
    const rerouted = v.sendAttempts.length > 1;
    if (
      this.deps.reroute &&
      isUndelivered(receipt.status) &&
      !rerouted &&
      statusAt(v, this.#now()) === "pending"
    ) {
      await this.deps.reroute(v).catch((err: unknown) => {
        log.warn({ err, verificationId: v.id }, "could not reroute an undelivered code");
      });
    }
    return true;
  }

  async #store<T>(call: Promise<T>, requestId: string | undefined): Promise<T> {
    try {
      return await call;
    } catch (err) {
      if (!(err instanceof StoreUnavailableError) || err instanceof LoginError) throw err;
      requestLog(this.deps.log, { requestId }).error(
        { err: err.cause ?? err },
        `store unavailable: ${err.message}`,
      );
      throw storeUnavailable();
    }
  }
}
