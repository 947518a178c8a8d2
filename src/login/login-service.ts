import { type Logger, maskPhone } from "../log.js";
import { codeDigest, generateCode, isCodeShaped } from "../otp/code.js";
import type { FailureLock, OtpStore } from "../otp/store.js";
import type { PhoneNormalizer } from "../phone/normalize.js";
import { SmsError } from "../sms/errors.js";
import type { SmsSender } from "../sms/sender.js";
import type { AccessTokens } from "../tokens/access-tokens.js";
import type { RefreshStore } from "../tokens/refresh-store.js";
import { mintRefreshToken, parseRefreshToken } from "../tokens/refresh-token.js";
import { newUser, type User, type UserStore } from "../users/store.js";
import type { AbuseGuard } from "./abuse-guard.js";
import { LoginError } from "./errors.js";
import { type LoginEvents, noLoginEvents } from "./events.js";
import { tooMany } from "./too-many.js";

/** Who is asking: the transports fill this in; limits (per IP) are keyed on it. */
export interface Client {
  readonly ip: string;
}

export interface LoginSettings {
  readonly codeLength: number;
  readonly codeTtlSeconds: number;
  readonly maxAttempts: number;
  /** Consecutive wrong codes across resends that lock the phone. */
  readonly failureLock: FailureLock;
  /** The HMAC key codes are stored under. */
  readonly codeSecret: Buffer;
  readonly refreshTtlSeconds: number;
}

export interface LoginDeps {
  readonly settings: LoginSettings;
  readonly phones: PhoneNormalizer;
  readonly codes: OtpStore;
  readonly users: UserStore;
  readonly refreshTokens: RefreshStore;
  readonly accessTokens: AccessTokens;
  readonly sms: SmsSender;
  /** The abuse limits, decided before a code is touched. */
  readonly guard: AbuseGuard;
  /** Renders the SMS text for a code. */
  readonly message: (code: string) => string;
  readonly log: Logger;
  /** Who hears about sends, verifications and failures (metrics); nobody by default. */
  readonly events?: LoginEvents;
}

export interface SentCode {
  readonly phone: string;
  readonly expiresInSeconds: number;
  readonly codeLength: number;
}

export interface TokenPair {
  readonly accessToken: string;
  readonly refreshToken: string;
  /** Seconds until the access token expires. */
  readonly expiresIn: number;
}

export interface Session extends TokenPair {
  readonly user: User;
}

/**
 * The login core: plain inputs, plain results, `LoginError` for every refusal. It knows nothing of Connect or
 * HTTP, so every transport calls it directly.
 */
export class LoginService {
  readonly #events: LoginEvents;

  constructor(private readonly deps: LoginDeps) {
    this.#events = deps.events ?? noLoginEvents;
  }

  async sendOtp(rawPhone: string, client: Client): Promise<SentCode> {
    const { settings, codes, sms, guard, log } = this.deps;
    const phone = this.deps.phones.normalize(rawPhone);
    // Limits first: a refused request costs no SMS and leaves the phone's current code alone.
    const permit = await this.#limited(
      storeCall(log, "check the send limits", () => guard.beforeSend(phone, client)),
    );
    const code = generateCode(settings.codeLength);
    const digest = codeDigest(settings.codeSecret, phone, code);
    await storeCall(log, "store the code", () => codes.put(phone, digest, settings.codeTtlSeconds));
    try {
      const receipt = await sms.send({ to: phone, text: this.deps.message(code), code });
      this.#events.smsSend(receipt.provider, "sent");
      log.info({ phone: maskPhone(phone), provider: receipt.provider, messageId: receipt.id }, "otp sent");
    } catch (err) {
      // A code nobody received must not stay live: delete it (only if it is still this one) before answering.
      // The limits give back what they counted for the SMS that did not go out.
      await Promise.all([
        codes
          .discard(phone, digest)
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
    return { phone, expiresInSeconds: settings.codeTtlSeconds, codeLength: settings.codeLength };
  }

  async verifyOtp(rawPhone: string, otp: string, client: Client): Promise<Session> {
    const { settings, codes, users, guard, log } = this.deps;
    const phone = this.deps.phones.normalize(rawPhone);
    const code = otp.trim();
    if (!isCodeShaped(code, settings.codeLength)) {
      throw new LoginError(
        "invalid_argument",
        `otp must be exactly ${settings.codeLength} digits`,
        undefined,
        "INVALID_OTP_FORMAT",
      );
    }
    await this.#limited(storeCall(log, "check the verify limits", () => guard.beforeVerify(phone, client)));
    const digest = codeDigest(settings.codeSecret, phone, code);
    // Independent commands go out together (ioredis auto-pipelining): the user lookup rides along with the
    // verification in the same round trip, and is simply unused when the code is wrong.
    const [outcome, existing] = await storeCall(log, "verify the code", () =>
      Promise.all([
        codes.verify(phone, digest, settings.maxAttempts, settings.failureLock),
        users.findByPhone(phone),
      ]),
    );
    switch (outcome.kind) {
      case "ok":
        this.#events.codeVerified();
        break;
      case "wrong":
        this.#events.codeFailed("wrong");
        log.info({ phone: maskPhone(phone), attemptsLeft: outcome.attemptsLeft }, "wrong otp");
        throw new LoginError(
          "unauthenticated",
          outcome.attemptsLeft > 0
            ? `incorrect code; ${outcome.attemptsLeft} ${outcome.attemptsLeft === 1 ? "attempt" : "attempts"} left`
            : "incorrect code; no attempts left, request a new code",
          undefined,
          "OTP_INCORRECT",
        );
      case "exhausted":
        this.#events.codeFailed("exhausted");
        throw new LoginError(
          "unauthenticated",
          "too many incorrect attempts; request a new code",
          undefined,
          "OTP_ATTEMPTS_EXHAUSTED",
        );
      case "missing":
        this.#events.codeExpired();
        throw new LoginError(
          "unauthenticated",
          "no active code for this phone: it expired or was already used; request a new code",
          undefined,
          "OTP_EXPIRED",
        );
      case "locked":
        log.warn({ phone: maskPhone(phone) }, "verify refused: phone locked after too many wrong codes");
        this.#events.limitRefused("PHONE_LOCKED");
        throw tooMany("PHONE_LOCKED", "too many incorrect codes for this phone", outcome.retryAfterMs);
    }
    // Rides in the token's round trip; a failed refund only leaves the client's count a little high.
    const refund = guard
      .afterLogin(phone, client)
      .catch((e: unknown) => log.warn({ err: e }, "could not refund limits"));
    if (existing) {
      const [pair] = await Promise.all([this.#issue(existing), refund]);
      return { ...pair, user: existing };
    }
    // A first login: with the new user's id reserved up front, creating the user and storing its session
    // are independent and share one round trip.
    const id = await storeCall(log, "reserve a user id", () => users.reserveId());
    const [user, draft] = await Promise.all([
      storeCall(log, "create the user", () => users.create(phone, id)),
      this.#issue(newUser(id, phone)),
      refund,
    ]);
    if (user.id === id) {
      log.info({ userId: user.id, phone: maskPhone(phone) }, "user created");
      return { ...draft, user };
    }
    // A concurrent first login of the same phone created the user first. The draft session names an id that
    // no user has; its token was never handed out, so it just expires. Issue one for the real user.
    return { ...(await this.#issue(user)), user };
  }

  /** Counts each limit's refusals by its reason, for metrics, and passes everything through unchanged. */
  async #limited<T>(decision: Promise<T>): Promise<T> {
    try {
      return await decision;
    } catch (err) {
      if (err instanceof LoginError && err.kind !== "unavailable")
        this.#events.limitRefused(err.reason ?? err.kind);
      throw err;
    }
  }

  async refresh(refreshToken: string): Promise<TokenPair> {
    const { refreshTokens, settings, log } = this.deps;
    const current = parseRefreshToken(refreshToken.trim());
    if (!current) throw invalidRefreshToken();
    const next = mintRefreshToken(current.userId, current.family);
    const outcome = await storeCall(log, "rotate the refresh token", () =>
      refreshTokens.rotate(current, next.ref.hash, settings.refreshTtlSeconds),
    );
    if (outcome.kind === "reused") {
      log.warn({ userId: current.userId }, "refresh token reused: family revoked");
      throw new LoginError(
        "unauthenticated",
        "refresh token was already used; the session has been revoked, log in again",
        undefined,
        "REFRESH_TOKEN_REUSED",
      );
    }
    if (outcome.kind === "invalid") throw invalidRefreshToken();
    const { record } = outcome;
    const access = await this.deps.accessTokens.sign({
      id: record.userId,
      phone: record.phone,
      role: record.role,
    });
    return { accessToken: access.token, refreshToken: next.token, expiresIn: access.expiresIn };
  }

  async logout(refreshToken: string): Promise<void> {
    const current = parseRefreshToken(refreshToken.trim());
    if (!current) throw invalidRefreshToken();
    const known = await storeCall(this.deps.log, "revoke the session", () =>
      this.deps.refreshTokens.revokeFamily(current),
    );
    if (!known) throw invalidRefreshToken();
  }

  async #issue(user: User): Promise<TokenPair> {
    const { refreshTokens, settings, log } = this.deps;
    const minted = mintRefreshToken(user.id);
    const [access] = await Promise.all([
      this.deps.accessTokens.sign(user),
      storeCall(log, "store the refresh token", () =>
        refreshTokens.create(
          { ...minted.ref, phone: user.phone, role: user.role },
          settings.refreshTtlSeconds,
        ),
      ),
    ]);
    return { accessToken: access.token, refreshToken: minted.token, expiresIn: access.expiresIn };
  }
}

function invalidRefreshToken(): LoginError {
  return new LoginError(
    "unauthenticated",
    "refresh token is invalid, expired or revoked; log in again",
    undefined,
    "REFRESH_TOKEN_INVALID",
  );
}

/** Store failures become Unavailable: fail closed, never a 500, and the operator gets the cause in the log. */
async function storeCall<T>(log: Logger, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof LoginError) throw err;
    log.error({ err }, `store unavailable: could not ${what}`);
    throw new LoginError(
      "unavailable",
      "the login service is temporarily unavailable; try again shortly",
      undefined,
      "STORE_UNAVAILABLE",
    );
  }
}

function smsFailure(err: unknown, phone: string, log: Logger): LoginError {
  if (!(err instanceof SmsError)) {
    log.error({ err, phone: maskPhone(phone) }, "sms send failed unexpectedly");
    return new LoginError(
      "unavailable",
      "could not send the code right now; try again shortly",
      undefined,
      "SMS_UNAVAILABLE",
    );
  }
  switch (err.kind) {
    case "invalid_number":
      return new LoginError("invalid_argument", err.message, undefined, "SMS_INVALID_NUMBER");
    case "unreachable_number":
      return new LoginError("failed_precondition", err.message, undefined, "SMS_UNREACHABLE_NUMBER");
    default:
      log.error(
        { provider: err.provider, kind: err.kind, detail: err.detail, phone: maskPhone(phone) },
        "sms send failed",
      );
      return new LoginError(
        "unavailable",
        "could not send the code right now; try again shortly",
        undefined,
        "SMS_UNAVAILABLE",
      );
  }
}
