import type { SmsErrorKind } from "./failures.js";
import type { Client, Phone, SessionInfo, TokenRef, User } from "./model.js";

/**
 * The interfaces the login kernel needs, declared beside the code that uses them. Adapters (otp/, users/,
 * tokens/, sms/, ratelimit/, phone/) implement them; the kernel never imports an adapter.
 *
 * Store methods reject with `StoreUnavailableError` when the store cannot answer; any other rejection is a bug.
 */

// ---- phone ---------------------------------------------------------------------------------------------

/** Turns what a user typed into a `Phone`, or throws the INVALID_PHONE refusal naming the problem. */
export interface PhoneParser {
  parse(input: string): Phone;
}

// ---- codes ---------------------------------------------------------------------------------------------

/** What a verification attempt found. `verificationId` names the verification the code belonged to. */
export type VerifyOutcome =
  /** The code matched and has been consumed, with the phone's other live code: neither will verify again. */
  | { readonly kind: "ok"; readonly verificationId?: string | undefined }
  /**
   * No live code matched; `attemptsLeft` more wrong tries are allowed before the codes die. `locked`: this
   * wrong code was the one that locked the phone.
   */
  | {
      readonly kind: "wrong";
      readonly attemptsLeft: number;
      readonly verificationId?: string | undefined;
      readonly locked?: boolean | undefined;
    }
  /** No live code: never sent, expired, already used, canceled, or discarded. */
  | { readonly kind: "missing" }
  /** Too many wrong tries: the codes are dead even if the right one follows. */
  | { readonly kind: "exhausted"; readonly verificationId?: string | undefined }
  /** A verification id was given that this phone never had (or whose record has expired). */
  | { readonly kind: "not_found" }
  /** The phone is locked after too many consecutive wrong codes; nothing was compared or counted. */
  | { readonly kind: "locked"; readonly retryAfterMs: number };

/** The outcome that logs the client in: every store's check says so by this. */
export function codeMatched(outcome: VerifyOutcome): boolean {
  return outcome.kind === "ok";
}

/**
 * The per-phone lock against guessing across resends: `maxFailures` consecutive wrong codes, whichever code
 * they were aimed at, lock the phone for `lockSeconds`. A match clears the count; a new code does not. The
 * count itself is forgotten `lockSeconds` after the last wrong code. `maxFailures` 0 turns the lock off.
 */
export interface FailureLock {
  readonly maxFailures: number;
  readonly lockSeconds: number;
}

/** What a new code is filed under. */
export interface NewCode {
  /** The id the verification gets when the phone has none pending to continue (see `newVerificationId`). */
  readonly verificationId: string;
  /** A pending verification with this many checks used is dead: a new code starts a new one. */
  readonly maxAttempts: number;
  /** How long a verification's record outlives its newest code. */
  readonly retentionSeconds: number;
  /** "+91******3210", for the record. */
  readonly maskedPhone: string;
}

/** Where a new code was filed. */
export interface PutResult {
  /** The pending verification it continues, or the new one it started. */
  readonly verificationId: string;
  /** When the new code expires (ms since the epoch). */
  readonly expiresAtMs: number;
}

/**
 * Holds at most two live codes per phone (keyed by E.164), each as an HMAC digest (never the code itself): a
 * resend keeps the previous code valid until its own expiry, and both share one attempt count, so a resend
 * never adds guesses. Both belong to the phone's one pending verification, whose record (status, checks, sends)
 * the store keeps too. It also holds the phone's consecutive-failure count and lock.
 * Implementations must make `verify` atomic: the lock is checked first, the attempt is counted before the
 * comparison, and a matching code is consumed in the same step, so concurrent verifies of one code give
 * exactly one "ok" and a burst of guesses cannot outrun the lock.
 */
export interface OtpStore {
  /**
   * Stores a new code for the phone. While the phone's verification is pending (and not out of attempts) the
   * new code continues it: the previous code stays live beside it until its own expiry, on the same attempt
   * count. Otherwise a new verification starts with `code.verificationId`, its attempt count at zero.
   */
  put(phone: string, digest: string, ttlSeconds: number, code: NewCode): Promise<PutResult>;
  /**
   * The same `put`, for `AbuseGuard.beforeSend` to run only once the send is admitted: in the decision's own
   * step when both live on one store (a Redis store's script is folded into the decision's), else after it.
   */
  admittedPut(...put: Parameters<OtpStore["put"]>): AdmittedWrite<PutResult>;
  /**
   * Checks the lock, counts one attempt and compares; consumes the code on a match. `client` (the key the
   * limits know the asker by, `AbuseGuard.clientKey`) has its own failures on the phone counted: a locked
   * phone still lets a client that never failed on it try, so guesses from elsewhere cannot lock its owner
   * out. Without a client, the lock stops everyone. With a `verificationId`, only that verification's codes
   * are compared, and an id the phone never had is `not_found` (nothing counted).
   */
  verify(
    phone: string,
    /**
     * The code's digest, or two: under the current secret and under the previous one, during a secret
     * rotation. Either matching is a match; both are always compared.
     */
    digest: string | readonly string[],
    maxAttempts: number,
    lock?: FailureLock,
    client?: string,
    verificationId?: string,
  ): Promise<VerifyOutcome>;
  /** The same `verify`, for `AbuseGuard.beforeVerify` to run only once the check is admitted (see `admittedPut`). */
  admittedVerify(...verify: Parameters<OtpStore["verify"]>): AdmittedCheck<VerifyOutcome>;
  /**
   * Milliseconds until the phone's failure lock ends for this client: 0 when it is not locked, or when the
   * client has never failed on it. Without a client, for everyone.
   */
  lockedFor(phone: string, client?: string): Promise<number>;
  /**
   * Deletes the phone's code if it is still the one with this digest (a newer code is left alone); the
   * previous code, which was sent, becomes the current one again. Used when the SMS could not be sent, so
   * there is never a live code that nobody received. A verification left with no code is `failed_to_send`.
   */
  discard(phone: string, digest: string): Promise<void>;
}

// ---- verifications -------------------------------------------------------------------------------------

/** Where a verification stands, as its record says; `expired` is derived from the time when read. */
export type VerificationStatus =
  | "pending"
  | "approved"
  | "canceled"
  | "expired"
  | "max_attempts_reached"
  | "failed_to_send";

/** One SMS handed to a provider for a verification, or refused by all of them. */
export interface SendAttempt {
  readonly provider: string;
  /** The provider's message id; "" when nothing was sent. */
  readonly messageId: string;
  readonly sentAtMs: number;
  /** "sent" until a receipt says more; "failed" when no provider took it. */
  readonly deliveryStatus: string;
  readonly errorCode: string;
}

/** A verification's record as stored. */
export interface StoredVerification {
  readonly id: string;
  /** E.164: the store knows it; transports only ever show `maskedPhone`. */
  readonly phone: string;
  readonly maskedPhone: string;
  /** As stored: a pending one past `expiresAtMs` is reported expired by the kernel. */
  readonly status: VerificationStatus;
  readonly createdAtMs: number;
  readonly expiresAtMs: number;
  readonly attemptsUsed: number;
  readonly sendAttempts: readonly SendAttempt[];
}

/** A delivery receipt, as the provider's webhook reported it. */
export interface DeliveryReceipt {
  readonly provider: string;
  readonly messageId: string;
  /** The provider's word: "delivered", "undelivered", "failed", ... */
  readonly status: string;
  readonly errorCode: string;
}

/**
 * Verification records, by id. Implemented by the OTP store, whose scripts keep each record's status and
 * attempt count in step with its codes. Knowing an id is what allows reading or canceling it.
 */
export interface VerificationStore {
  get(id: string): Promise<StoredVerification | undefined>;
  /**
   * Cancels a pending verification (its codes are deleted); anything else is left as it is. Answers the
   * record after, or undefined for an unknown id.
   */
  cancel(id: string): Promise<StoredVerification | undefined>;
  /**
   * Appends a send attempt and keeps the id (and the attempt's message id, for receipts) findable until
   * `keepUntilMs`.
   */
  recordSend(phone: string, id: string, attempt: SendAttempt, keepUntilMs: number): Promise<void>;
  /** Sets the delivery status of the send attempt with this message id; undefined when no record has it. */
  recordReceipt(receipt: DeliveryReceipt): Promise<StoredVerification | undefined>;
}

// ---- audit ---------------------------------------------------------------------------------------------

/** What the audit log records. Never a code, a token or a full phone number. */
export interface AuditEntry {
  readonly event:
    | "otp.sent"
    | "otp.delivery"
    | "otp.checked"
    | "phone.locked"
    | "verification.canceled"
    | "user.created"
    | "token.refreshed"
    | "token.reused"
    | "session.logout";
  readonly verificationId?: string | undefined;
  readonly userId?: number | undefined;
  /** Masked: "+91******3210". */
  readonly phone?: string | undefined;
  readonly clientIp?: string | undefined;
  /** The outcome or cause ("ok", "wrong", "delivered", a provider). */
  readonly reason?: string | undefined;
}

/**
 * An append-only log of what happened, for internal services (fraud, support). `append` must not throw and
 * must not make the request wait: adapters send it with the request's other commands or after it.
 */
export interface AuditLog {
  append(entry: AuditEntry): void;
}

export const noAuditLog: AuditLog = { append: () => {} };

// ---- users ---------------------------------------------------------------------------------------------

/** Users are identified by their verified phone number (E.164). */
export interface UserStore {
  findByPhone(phone: string): Promise<User | undefined>;
  /**
   * `findByPhone` as a read that can ride beside a check (`alongside`): on a single Redis, inside the verify
   * decision's own script.
   */
  admittedFind(phone: string): AdmittedWrite<User | undefined>;
  /**
   * Reserves an id for a user about to be created. Usually answered without a round trip, so a first login
   * can store the session for the new id in the same round trip that creates the user.
   */
  reserveId(): Promise<number>;
  /**
   * Creates the user for this phone (with `reservedId` when given, else a fresh id), or returns the existing
   * one if another request created it first: two concurrent first logins of one phone end with one user, and
   * the loser's reserved id is simply never used.
   */
  create(phone: string, reservedId?: number): Promise<User>;
}

// ---- tokens --------------------------------------------------------------------------------------------

/**
 * A refresh token's server-side record. The token itself is never stored, only its SHA-256 (`hash`).
 * All tokens minted from one login share a `family`; rotation keeps the family, reuse or logout revokes it.
 */
export interface RefreshRecord extends TokenRef {
  /** Claims re-issued on refresh without another user lookup. */
  readonly phone: string;
  readonly role: string;
}

export type RotateOutcome =
  /**
   * `record` is the successor's, live in the same family. `repeated` false: the old token was live and is now
   * spent. `repeated` true: the old token had been rotated into this same successor within the grace and the
   * successor is still unspent, so nothing changed (a retry whose answer was lost, or a concurrent duplicate).
   */
  | { readonly kind: "ok"; readonly record: RefreshRecord; readonly repeated: boolean }
  /** Unknown, expired, or its family is revoked. */
  | { readonly kind: "invalid" }
  /** The old token had already been rotated, outside the grace: the whole family has now been revoked. */
  | { readonly kind: "reused" };

export interface RefreshStore {
  /**
   * Starts a new family with its first token, and its session record (`SessionStore`) from `session`, in the
   * same step; created and last-used are the store's now.
   */
  create(record: RefreshRecord, ttlSeconds: number, session?: SessionStart): Promise<void>;
  /**
   * Atomically spends `current` and stores `nextHash` in its family, recording on `current` which successor
   * it was spent for and when. A spent token presented again is a reuse, and revokes the family, unless all of
   * these hold: it was spent less than `graceSeconds` ago (0: never), for this same `nextHash`, and that
   * successor has not been rotated itself; then the answer is the successor's record, `repeated`.
   * `graceSeconds` is per call, so a deploy that changes it applies to tokens already spent.
   * A rotation that spends the token also records the use on the family's session in the same step (last used
   * now, from `use.ip` when given), and keeps the session as long as the family.
   */
  rotate(
    current: TokenRef,
    nextHash: string,
    ttlSeconds: number,
    graceSeconds: number,
    use?: SessionUse,
  ): Promise<RotateOutcome>;
  /**
   * Revokes the family of a known token, and ends its session. Returns false when the token was never issued
   * (or has expired).
   */
  revokeFamily(current: TokenRef): Promise<boolean>;
}

/** Signs access tokens. `sessionId` (the refresh family) becomes the `sid` claim. */
export interface TokenIssuer {
  sign(
    user: Pick<User, "id" | "phone" | "role">,
    sessionId?: string,
  ): Promise<{ token: string; expiresIn: number }>;
}

// ---- sessions ------------------------------------------------------------------------------------------

/** What a login tells about the client that started a session. */
export interface SessionStart {
  readonly ip: string;
  readonly label: string;
}

/** What a refresh tells about the client that used a session. */
export interface SessionUse {
  readonly ip: string;
}

/** How revoking one session ended. */
export type SessionRevokeOutcome =
  | "revoked"
  /** The user has no live session with that id (another user's session is, to this user, none). */
  | "not_found"
  /** The asking session itself is no longer live: it may revoke nothing. */
  | "caller_revoked";

/**
 * A user's sessions: one per refresh family, created by `RefreshStore.create` and touched by `rotate`, kept as
 * long as the family and gone when it is revoked. Every method works inside one user's records: a family id of
 * another user is simply not found. `caller` is the family of the asking access token: a caller whose own
 * session has ended revokes nothing.
 */
export interface SessionStore {
  /** The user's live sessions, in no particular order. */
  list(userId: number): Promise<SessionInfo[]>;
  /** Revokes one session (its refresh family). */
  revoke(userId: number, caller: string, sessionId: string): Promise<SessionRevokeOutcome>;
  /** Revokes every live session of the user (but the caller's when `keepCaller`); how many it revoked. */
  revokeAll(userId: number, caller: string, keepCaller: boolean): Promise<number | "caller_revoked">;
}

/** Who an access token speaks for: the user, and the session (refresh family) it was issued in. */
export interface Caller {
  readonly userId: number;
  readonly sessionId: string;
}

/** Checks the service's own access tokens, locally. */
export interface AccessTokenVerifier {
  /** The caller a valid token names; undefined for anything else (forged, expired, foreign, no `sid`). */
  authenticate(token: string): Promise<Caller | undefined>;
}

// ---- sms -----------------------------------------------------------------------------------------------

/** One OTP message to one phone. */
export interface SmsMessage {
  /** E.164. */
  readonly to: string;
  /** The full text to deliver. */
  readonly text: string;
  /** The code alone, for providers that template it themselves (MSG91 DLT variables) and for development. */
  readonly code: string;
  /** The id of the request that asked for it (`Client.requestId`): the SMS layer's log lines carry it. */
  readonly requestId?: string | undefined;
}

export interface SmsReceipt {
  /** The provider's name, e.g. "twilio". */
  readonly provider: string;
  /** The provider's message id, for support and delivery callbacks. */
  readonly id: string;
}

/** Delivers OTP messages. Failures are thrown as `SmsError`. */
export interface SmsSender {
  readonly name: string;
  send(message: SmsMessage): Promise<SmsReceipt>;
  /** Sends through the named provider only (a reroute after an undelivered receipt); absent when single. */
  sendVia?(provider: string, message: SmsMessage): Promise<SmsReceipt>;
}

// ---- abuse limits --------------------------------------------------------------------------------------

/**
 * What the login core asks of abuse protection, kept free of any rate-limiting library. Refusals are thrown
 * as `LoginError`s from `reasons.ts`; `StoreUnavailableError` means the limits could not be checked, and the
 * core fails closed.
 */
export interface AbuseGuard {
  /** The key a client is known by to the limits (an IPv6 client by its /64), for per-client failure counts. */
  clientKey(client: Client): string;
  /**
   * Decides every send limit and, only when the send is admitted, runs `then` (the code's put): in the same
   * step as the decision where the store allows it, so one round trip and no window between the two. Resolves
   * with what the send was counted under and what `then` returned; when `then` fails, what was counted is
   * given back before its error is thrown.
   */
  beforeSend<T>(phone: Phone, client: Client, then: AdmittedWrite<T>): Promise<Admitted<T>>;
  /**
   * A send to a configured test number: only the client's own limit applies (nothing goes to a provider, so
   * the phone's and the SMS caps have nothing to protect).
   */
  beforeTestNumberSend(client: Client): Promise<void>;
  /**
   * A code we send again by ourselves after an undelivered receipt: the phone's window and the SMS caps
   * apply (the cooldown does not: it paces people pressing "resend", and this is no one's request).
   */
  beforeReroute(phone: Phone): Promise<SendPermit>;
  /**
   * Decides the verify limits and, only when the check is admitted, runs `then` (the code's check), in the
   * decision's own step where the store allows it, as `beforeSend` does. A check that matched logs the client
   * in: it has shown it is a real user, so its send and verify points are given back, in that same step where
   * it can, else started at once (`givenBack`).
   */
  beforeVerify<T>(phone: Phone, client: Client, then: AdmittedCheck<T>): Promise<Verified<T>>;
}

/** What an admitted verify's check returned, and the give-back of the client's points when it matched. */
export interface Verified<T> {
  readonly checked: T;
  /**
   * Settles when the points are given back (at once when there was nothing to give, or the decision's own step
   * did it). Never waited on before answering: a give-back that fails only leaves the client's count high.
   */
  readonly givenBack: Promise<void>;
}

export interface SendPermit {
  /** The code was not sent after all: gives back what was counted for the SMS. */
  cancel(): Promise<void>;
}

/**
 * A store write that must happen only if a send is admitted. Any guard can `run` it after deciding; a guard
 * on the same store as the write may instead recognise it and do it inside its decision.
 */
export interface AdmittedWrite<T> {
  run(): Promise<T>;
}

/** A code's check as an `AdmittedWrite`: `matched` tells an outcome that logs the client in. */
export interface AdmittedCheck<T> extends AdmittedWrite<T> {
  matched(outcome: T): boolean;
  /** The check with `read` right after it as one step, when its store can do that; else undefined. */
  beside?<R>(read: AdmittedWrite<R>): AdmittedCheck<[T, R]> | undefined;
}

/**
 * A check with a read beside it: the read's result comes back with the check's outcome, and a match is the
 * check's. One step where the check's store can take the read in (`beside`: on a single Redis, one script, so
 * a decision that folds the check in folds the read in too); else both run side by side when the check runs.
 */
export function alongside<T, R>(check: AdmittedCheck<T>, read: AdmittedWrite<R>): AdmittedCheck<[T, R]> {
  return (
    check.beside?.(read) ?? {
      run: () => Promise.all([check.run(), read.run()]),
      matched: ([outcome]) => check.matched(outcome),
    }
  );
}

/** An admitted send: what it was counted under, and what its write returned. */
export interface Admitted<T> {
  readonly permit: SendPermit;
  readonly written: T;
}

// ---- events and logs -----------------------------------------------------------------------------------

/** Why a verification failed with a code still live: a wrong guess, or the attempts were used up. */
export type CodeFailure = "wrong" | "exhausted";

/** How one SMS send ended: delivered to the provider, the provider's reason for refusing, or an unknown error. */
export type SmsOutcome = "sent" | SmsErrorKind | "error";

/**
 * What the login core reports as it works, for metrics. The core calls these and knows nothing of what
 * listens (Prometheus, a test); the default does nothing. Every method must be cheap and must not throw.
 */
export interface LoginEvents {
  codeSent(): void;
  codeVerified(): void;
  codeFailed(reason: CodeFailure): void;
  /** A verify found no live code: it expired, was already used, or was never sent. */
  codeExpired(): void;
  smsSend(provider: string, outcome: SmsOutcome): void;
  /** A rate limit refused a request; `reason` is its refusal reason (e.g. "RATE_LIMIT_PHONE"). */
  limitRefused(reason: string): void;
  /** A delivery receipt for one of our messages; `country` is the ISO region, or "" when unknown. */
  deliveryReported(provider: string, country: string, status: string): void;
}

const nothing = (): void => {};

export const noLoginEvents: LoginEvents = {
  codeSent: nothing,
  codeVerified: nothing,
  codeFailed: nothing,
  codeExpired: nothing,
  smsSend: nothing,
  limitRefused: nothing,
  deliveryReported: nothing,
};

/** The log lines the kernel writes: pino's (fields, message) shape, so pino satisfies it as is. */
export interface LoginLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}
