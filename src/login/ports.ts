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

/**
 * Holds at most one live code per phone (keyed by E.164), as an HMAC digest (never the code itself), and the
 * phone's consecutive-failure count and lock.
 * Implementations must make `verify` atomic: the lock is checked first, the attempt is counted before the
 * comparison, and a matching code is consumed in the same step, so concurrent verifies of one code give
 * exactly one "ok" and a burst of guesses cannot outrun the lock.
 */
export interface OtpStore {
  /** Stores a new code for the phone, replacing any earlier one and resetting its attempt count. */
  put(phone: string, digest: string, ttlSeconds: number): Promise<void>;
  /**
   * Checks the lock, counts one attempt and compares; consumes the code on a match. `client` (the key the
   * limits know the asker by, `AbuseGuard.clientKey`) has its own failures on the phone counted: a locked
   * phone still lets a client that never failed on it try, so guesses from elsewhere cannot lock its owner
   * out. Without a client, the lock stops everyone.
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
  ): Promise<VerifyOutcome>;
  /**
   * Milliseconds until the phone's failure lock ends for this client: 0 when it is not locked, or when the
   * client has never failed on it. Without a client, for everyone.
   */
  lockedFor(phone: string, client?: string): Promise<number>;
  /**
   * Deletes the phone's code if it is still the one with this digest (a newer code is left alone). Used when
   * the SMS could not be sent, so there is never a live code that nobody received.
   */
  discard(phone: string, digest: string): Promise<void>;
}

// ---- users ---------------------------------------------------------------------------------------------

/** Users are identified by their verified phone number (E.164). */
export interface UserStore {
  findByPhone(phone: string): Promise<User | undefined>;
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
  /** Decides every send limit before the code is touched; resolves with what the send was counted under. */
  beforeSend(phone: Phone, client: Client): Promise<SendPermit>;
  /** Decides the verify limits before the code is touched. */
  beforeVerify(phone: Phone, client: Client): Promise<void>;
  /** A login succeeded: the client has shown it is a real user, so its send and verify are given back. */
  afterLogin(phone: Phone, client: Client): Promise<void>;
}

export interface SendPermit {
  /** The code was not sent after all: gives back what was counted for the SMS. */
  cancel(): Promise<void>;
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
}

const nothing = (): void => {};

export const noLoginEvents: LoginEvents = {
  codeSent: nothing,
  codeVerified: nothing,
  codeFailed: nothing,
  codeExpired: nothing,
  smsSend: nothing,
  limitRefused: nothing,
};

/** The log lines the kernel writes: pino's (fields, message) shape, so pino satisfies it as is. */
export interface LoginLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}
