import { codeDigest, generateCode, isCodeShaped } from "./code.js";
import { SmsError, StoreUnavailableError } from "./failures.js";
import {
  type Client,
  maskedPhone,
  newUser,
  type Phone,
  type SentCode,
  type Session,
  sessionLabel,
  type TokenPair,
  type User,
} from "./model.js";
import {
  type AbuseGuard,
  type FailureLock,
  type LoginEvents,
  type LoginLog,
  noLoginEvents,
  type OtpStore,
  type PhoneParser,
  type RefreshStore,
  type SessionStart,
  type SmsSender,
  type TokenIssuer,
  type UserStore,
} from "./ports.js";
import {
  invalidOtpFormat,
  LoginError,
  otpAttemptsExhausted,
  otpExpired,
  otpIncorrect,
  phoneLocked,
  refreshTokenInvalid,
  refreshTokenReused,
  smsInvalidNumber,
  smsUnavailable,
  smsUnreachableNumber,
  storeUnavailable,
} from "./reasons.js";
import { mintRefreshToken, parseRefreshToken, successorRefreshToken } from "./refresh-token.js";

export interface LoginSettings {
  readonly codeLength: number;
  readonly codeTtlSeconds: number;
  readonly maxAttempts: number;
  /** Consecutive wrong codes across resends that lock the phone. */
  readonly failureLock: FailureLock;
  /** The HMAC key codes are stored under. */
  readonly codeSecret: Buffer;
  /**
   * The key codes were stored under before the last secret rotation (OTP_SECRET_PREVIOUS): codes sent before
   * it still verify until they expire; no new code is stored under it.
   */
  readonly previousCodeSecret?: Buffer | undefined;
  readonly refreshTtlSeconds: number;
  /** The HMAC key a refresh token's successor is derived under (`successorRefreshToken`). */
  readonly refreshSecret: Buffer;
  /**
   * How long a rotated refresh token may come back and be answered with the successor it was already rotated
   * into, while that successor is unspent: a retry after a lost answer, or two tabs refreshing at once. After
   * it, reuse revokes the family. 0 turns it off.
   */
  readonly refreshReuseGraceSeconds: number;
}

export interface LoginDeps {
  readonly settings: LoginSettings;
  readonly phones: PhoneParser;
  readonly codes: OtpStore;
  readonly users: UserStore;
  readonly refreshTokens: RefreshStore;
  readonly accessTokens: TokenIssuer;
  readonly sms: SmsSender;
  /** The abuse limits, decided before a code is touched. */
  readonly guard: AbuseGuard;
  /** Renders the SMS text for a code. */
  readonly message: (code: string) => string;
  readonly log: LoginLog;
  /** Who hears about sends, verifications and failures (metrics); nobody by default. */
  readonly events?: LoginEvents | undefined;
}

/**
 * The login kernel: plain inputs, plain results, a `LoginError` from `reasons.ts` for every refusal. It knows
 * nothing of Connect, HTTP or Redis, so every transport calls it directly and tests build it from fakes.
 */
export class LoginService {
  readonly #events: LoginEvents;
  readonly #store: <T>(call: Promise<T>) => Promise<T>;

  constructor(private readonly deps: LoginDeps) {
    this.#events = deps.events ?? noLoginEvents;
    this.#store = storeCall(deps.log);
  }

  /** Parses a phone the way every flow does; transports that need the `Phone` itself use this. */
  phone(raw: string): Phone {
    return this.deps.phones.parse(raw);
  }

  async sendOtp(rawPhone: string, client: Client): Promise<SentCode> {
    const { settings, codes, sms, guard, log } = this.deps;
    const phone = this.deps.phones.parse(rawPhone);
    const e164 = phone.e164;
    // Limits first: a refused request costs no SMS and leaves the phone's current code alone.
    const permit = await this.#limited(guard.beforeSend(phone, client));
    const code = generateCode(settings.codeLength);
    const digest = codeDigest(settings.codeSecret, e164, code);
    try {
      await this.#store(codes.put(e164, digest, settings.codeTtlSeconds));
    } catch (err) {
      await permit.cancel().catch((e: unknown) => log.warn({ err: e }, "could not refund the send limits"));
      throw err;
    }
    try {
      const receipt = await sms.send({ to: e164, text: this.deps.message(code), code });
      this.#events.smsSend(receipt.provider, "sent");
      log.info({ phone: maskedPhone(phone), provider: receipt.provider, messageId: receipt.id }, "otp sent");
    } catch (err) {
      // A code nobody received must not stay live: delete it (only if it is still this one) before answering.
      // The limits give back what they counted for the SMS that did not go out.
      await Promise.all([
        codes
          .discard(e164, digest)
          .catch((e: unknown) => log.error({ err: e }, "could not discard unsent code")),
        permit.cancel().catch((e: unknown) => log.warn({ err: e }, "could not refund the send limits")),
      ]);
      this.#events.smsSend(
        err instanceof SmsError ? err.provider : sms.name,
        err instanceof SmsError ? err.kind : "error",
      );
      throw smsFailure(err, phone, log);
    }
    this.#events.codeSent();
    return { phone: e164, expiresInSeconds: settings.codeTtlSeconds, codeLength: settings.codeLength };
  }

  /** `deviceName` labels the new session (else the client's User-Agent does). */
  async verifyOtp(rawPhone: string, otp: string, client: Client, deviceName?: string): Promise<Session> {
    const { settings, codes, users, guard, log } = this.deps;
    const phone = this.deps.phones.parse(rawPhone);
    const e164 = phone.e164;
    const code = otp.trim();
    if (!isCodeShaped(code, settings.codeLength)) throw invalidOtpFormat(settings.codeLength);
    await this.#limited(guard.beforeVerify(phone, client));
    const digest = codeDigest(settings.codeSecret, e164, code);
    const digests = settings.previousCodeSecret
      ? [digest, codeDigest(settings.previousCodeSecret, e164, code)]
      : digest;
    // Independent commands go out together (ioredis auto-pipelining): the user lookup rides along with the
    // verification in the same round trip, and is simply unused when the code is wrong.
    const [outcome, existing] = await this.#store(
      Promise.all([
        codes.verify(e164, digests, settings.maxAttempts, settings.failureLock, guard.clientKey(client)),
        users.findByPhone(e164),
      ]),
    );
    switch (outcome.kind) {
      case "ok":
        this.#events.codeVerified();
        break;
      case "wrong":
        this.#events.codeFailed("wrong");
        log.info({ phone: maskedPhone(phone), attemptsLeft: outcome.attemptsLeft }, "wrong otp");
        throw otpIncorrect(outcome.attemptsLeft);
      case "exhausted":
        this.#events.codeFailed("exhausted");
        throw otpAttemptsExhausted();
      case "missing":
        this.#events.codeExpired();
        throw otpExpired();
      case "locked":
        log.warn({ phone: maskedPhone(phone) }, "verify refused: phone locked after too many wrong codes");
        this.#events.limitRefused("PHONE_LOCKED");
        throw phoneLocked(outcome.retryAfterMs);
    }
    // Rides in the token's round trip; a failed refund only leaves the client's count a little high.
    const refund = guard
      .afterLogin(phone, client)
      .catch((e: unknown) => log.warn({ err: e }, "could not refund limits"));
    const start = { ip: client.ip, label: sessionLabel(deviceName, client.userAgent) };
    if (existing) {
      const [pair] = await Promise.all([this.#issue(existing, start), refund]);
      return { ...pair, user: existing };
    }
    // A first login: with the new user's id reserved up front, creating the user and storing its session
    // are independent and share one round trip.
    const id = await this.#store(users.reserveId());
    const [user, draft] = await Promise.all([
      this.#store(users.create(e164, id)),
      this.#issue(newUser(id, e164), start),
      refund,
    ]);
    if (user.id === id) {
      log.info({ userId: user.id, phone: maskedPhone(phone) }, "user created");
      return { ...draft, user };
    }
    // A concurrent first login of the same phone created the user first. The draft session names an id that
    // no user has; its token was never handed out, so it just expires. Issue one for the real user.
    return { ...(await this.#issue(user, start)), user };
  }

  /** Counts each limit's refusals by its reason, for metrics, and passes everything through unchanged. */
  async #limited<T>(decision: Promise<T>): Promise<T> {
    try {
      return await this.#store(decision);
    } catch (err) {
      if (err instanceof LoginError && err.kind !== "unavailable") this.#events.limitRefused(err.reason);
      throw err;
    }
  }

  /** `client`, when the transport knows it, is recorded as the session's last use. */
  async refresh(refreshToken: string, client?: Client): Promise<TokenPair> {
    const { refreshTokens, settings, log } = this.deps;
    const presented = refreshToken.trim();
    const current = parseRefreshToken(presented);
    if (!current) throw refreshTokenInvalid();
    // The same token always rotates into the same successor, so an answer lost to a timeout (the rotation
    // may well have happened) can be asked for again and is the token the store already holds.
    const next = successorRefreshToken(presented, settings.refreshSecret);
    const outcome = await this.#store(
      refreshTokens.rotate(
        current,
        next.ref.hash,
        settings.refreshTtlSeconds,
        settings.refreshReuseGraceSeconds,
        client && { ip: client.ip },
      ),
    );
    if (outcome.kind === "reused") {
      log.warn({ userId: current.userId }, "refresh token reused: family revoked");
      throw refreshTokenReused();
    }
    if (outcome.kind === "invalid") throw refreshTokenInvalid();
    const { record } = outcome;
    if (outcome.repeated) {
      log.info({ userId: record.userId }, "spent refresh token back within the grace: same successor");
    }
    const access = await this.deps.accessTokens.sign(
      { id: record.userId, phone: record.phone, role: record.role },
      record.family,
    );
    return { accessToken: access.token, refreshToken: next.token, expiresIn: access.expiresIn };
  }

  /**
   * Revokes the family of the token, and succeeds whether or not the token was known, live, spent or revoked
   * (RFC 7009 §2.2): the caller learns nothing about a token by logging out with it, and a logout retried
   * after a lost answer is not an error. Only a blank token, a missing parameter, is refused.
   */
  async logout(refreshToken: string): Promise<void> {
    const presented = refreshToken.trim();
    if (presented === "") throw refreshTokenInvalid();
    const current = parseRefreshToken(presented);
    if (!current) return;
    await this.#store(this.deps.refreshTokens.revokeFamily(current));
  }

  async #issue(user: User, session: SessionStart): Promise<TokenPair> {
    const { refreshTokens, settings } = this.deps;
    const minted = mintRefreshToken(user.id);
    const [access] = await Promise.all([
      this.deps.accessTokens.sign(user, minted.ref.family),
      this.#store(
        refreshTokens.create(
          { ...minted.ref, phone: user.phone, role: user.role },
          settings.refreshTtlSeconds,
          session,
        ),
      ),
    ]);
    return { accessToken: access.token, refreshToken: minted.token, expiresIn: access.expiresIn };
  }
}

/**
 * A store that cannot answer fails the request closed as STORE_UNAVAILABLE, with the cause in the operator's
 * log. Anything else a store throws is a bug and travels on, to be answered `internal` with an error id.
 */
function storeCall(log: LoginLog) {
  return async <T>(call: Promise<T>): Promise<T> => {
    try {
      return await call;
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
      log.error({ err: err.cause ?? err }, `store unavailable: ${err.message}`);
      throw storeUnavailable();
    }
  };
}

function smsFailure(err: unknown, phone: Phone, log: LoginLog): LoginError {
  if (!(err instanceof SmsError)) {
    // Provider SDKs throw what they like; the code did not go out either way, and a retry may well succeed.
    log.error({ err, phone: maskedPhone(phone) }, "sms send failed unexpectedly");
    return smsUnavailable();
  }
  switch (err.kind) {
    case "invalid_number":
      return smsInvalidNumber(err.message);
    case "unreachable_number":
      return smsUnreachableNumber(err.message);
    default:
      log.error(
        { provider: err.provider, kind: err.kind, detail: err.detail, phone: maskedPhone(phone) },
        "sms send failed",
      );
      return smsUnavailable();
  }
}
