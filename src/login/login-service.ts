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
  type AuditEntry,
  type AuditLog,
  alongside,
  type FailureLock,
  type LoginEvents,
  type LoginLog,
  type NewCode,
  noAuditLog,
  noLoginEvents,
  type OtpStore,
  type PhoneParser,
  type PutResult,
  type RefreshStore,
  type SendAttempt,
  type SendPermit,
  type SessionStart,
  type SmsSender,
  type StoredVerification,
  type TokenIssuer,
  type UserStore,
  type VerificationStore,
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
  verificationNotFound,
} from "./reasons.js";
import { mintRefreshToken, parseRefreshToken, successorRefreshToken } from "./refresh-token.js";
import { requestLog } from "./request-log.js";
import { isVerificationId, newVerificationId } from "./verifications.js";

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
  /** How long a verification's record outlives its newest code (VERIFICATION_RETENTION_SECONDS). */
  readonly verificationRetentionSeconds?: number | undefined;
  /**
   * Numbers (E.164) that get a fixed code and no SMS, for app-store reviewers and end-to-end tests: exempt
   * from the phone's and the SMS limits, never from the client's or the attempt cap.
   */
  readonly testNumbers?: ReadonlyMap<string, string> | undefined;
  /** The provider a reroute after an undelivered receipt goes through (SMS_FALLBACK_PROVIDER). */
  readonly rerouteProvider?: string | undefined;
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
  /** Where each code's sends are recorded for GetVerification and receipts; nowhere by default. */
  readonly verifications?: VerificationStore | undefined;
  /** The audit stream; nowhere by default. */
  readonly audit?: AuditLog | undefined;
}

/** What a code check may name besides the phone and the code. */
export interface VerifyOptions {
  /** Only this verification's codes are checked; absent or "", the phone's pending one's. */
  readonly verificationId?: string | undefined;
  /** A label for the new session ("Asha's phone"); absent, the client's User-Agent names it. */
  readonly deviceName?: string | undefined;
}

const DEFAULT_RETENTION_SECONDS = 86_400;
const NO_PERMIT: SendPermit = { cancel: async () => {} };
/** The provider name a test number's sends are recorded under: nothing is sent. */
export const TEST_NUMBER_PROVIDER = "test";

/**
 * The login kernel: plain inputs, plain results, a `LoginError` from `reasons.ts` for every refusal. It knows
 * nothing of Connect, HTTP or Redis, so every transport calls it directly and tests build it from fakes.
 */
export class LoginService {
  readonly #events: LoginEvents;
  readonly #audit: AuditLog;
  /** Writes the answer does not wait for (a sent code's record), so shutdown and tests can. */
  readonly #pending = new Set<Promise<void>>();

  constructor(private readonly deps: LoginDeps) {
    this.#events = deps.events ?? noLoginEvents;
    this.#audit = deps.audit ?? noAuditLog;
  }

  /** Who hears about what the kernel does (metrics), for the verification flows to report to as well. */
  get events(): LoginEvents {
    return this.#events;
  }

  /** Resolves once every write made after an answer (send records) has finished. */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all(this.#pending);
  }

  /** Parses a phone the way every flow does; transports that need the `Phone` itself use this. */
  phone(raw: string): Phone {
    return this.deps.phones.parse(raw);
  }

  async sendOtp(rawPhone: string, client: Client): Promise<SentCode> {
    const { settings, codes, sms, guard } = this.deps;
    const log = requestLog(this.deps.log, client);
    const phone = this.deps.phones.parse(rawPhone);
    const e164 = phone.e164;
    const masked = maskedPhone(phone);
    const testCode = settings.testNumbers?.get(e164);
    const code = testCode ?? generateCode(settings.codeLength);
    const digest = codeDigest(settings.codeSecret, e164, code);
    // Limits first: a refused request costs no SMS and leaves the phone's current code alone. The code is
    // stored only once the send is admitted, by the guard, in the decision's own step where it can (one round
    // trip); a code drawn for a refused send is never stored.
    let permit: SendPermit;
    let filed: PutResult;
    if (testCode === undefined) {
      const put = codes.admittedPut(e164, digest, settings.codeTtlSeconds, this.#newCode(masked));
      ({ permit, written: filed } = await this.#limited(guard.beforeSend(phone, client, put), log));
    } else {
      await this.#limited(guard.beforeTestNumberSend(client), log);
      permit = NO_PERMIT;
      filed = await storeCall(this.#put(phone, digest), log);
    }
    const audit: AuditEntry = {
      event: "otp.sent",
      verificationId: filed.verificationId,
      phone: masked,
      clientIp: client.ip,
    };
    if (testCode !== undefined) {
      this.#afterAnswer(this.#recordSend(e164, filed, TEST_NUMBER_PROVIDER, ""), log);
      this.#audit.append({ ...audit, reason: TEST_NUMBER_PROVIDER });
      log.info({ phone: masked, verificationId: filed.verificationId }, "otp for a test number: not sent");
      return this.#sent(e164, filed);
    }
    try {
      const receipt = await sms.send({
        to: e164,
        text: this.deps.message(code),
        code,
        requestId: client.requestId,
      });
      this.#events.smsSend(receipt.provider, "sent");
      log.info({ phone: masked, provider: receipt.provider, messageId: receipt.id }, "otp sent");
      // The caller is answered as soon as the provider took the message; the record of it (for
      // GetVerification and the provider's receipts) follows without being waited on: not a third round trip.
      this.#afterAnswer(this.#recordSend(e164, filed, receipt.provider, receipt.id), log);
      this.#audit.append({ ...audit, reason: receipt.provider });
    } catch (err) {
      // A code nobody received must not stay live: delete it (only if it is still this one) before answering.
      // The limits give back what they counted for the SMS that did not go out.
      const provider = err instanceof SmsError ? err.provider : sms.name;
      await Promise.all([
        codes
          .discard(e164, digest)
          .catch((e: unknown) => log.error({ err: e }, "could not discard unsent code")),
        this.#recordSend(e164, filed, provider, "", "failed").catch((e: unknown) =>
          log.warn({ err: e }, "could not record the failed send"),
        ),
        permit.cancel().catch((e: unknown) => log.warn({ err: e }, "could not refund the send limits")),
      ]);
      this.#events.smsSend(provider, err instanceof SmsError ? err.kind : "error");
      this.#audit.append({ ...audit, reason: `failed:${provider}` });
      // The caller may look the verification up (failed_to_send, each provider's attempt) by its id.
      const refusal = smsFailure(err, phone, log);
      throw new LoginError(refusal.reason, refusal.message, refusal.retryAfterSeconds, {
        ...refusal.metadata,
        verification_id: filed.verificationId,
      });
    }
    this.#events.codeSent();
    return this.#sent(e164, filed);
  }

  /**
   * A receipt said the code never arrived, while its verification is pending: one fresh code through the
   * fallback provider, within the phone's and the SMS limits (no client asked, so no client limit, and no
   * cooldown, which is for people pressing "resend"). Recorded as another send attempt of the verification.
   */
  async reroute(v: StoredVerification): Promise<void> {
    const { settings, sms, guard, log } = this.deps;
    const via = settings.rerouteProvider;
    const last = v.sendAttempts.at(-1);
    if (via === undefined || !sms.sendVia || last?.provider === via) return;
    const phone = this.deps.phones.parse(v.phone);
    const permit = await this.#limited(guard.beforeReroute(phone), log);
    const code = generateCode(settings.codeLength);
    const digest = codeDigest(settings.codeSecret, phone.e164, code);
    const filed = await storeCall(this.#put(phone, digest), log);
    try {
      const receipt = await sms.sendVia(via, { to: phone.e164, text: this.deps.message(code), code });
      this.#events.smsSend(receipt.provider, "sent");
      await storeCall(this.#recordSend(phone.e164, filed, receipt.provider, receipt.id), log);
      this.#audit.append({
        event: "otp.sent",
        verificationId: filed.verificationId,
        phone: maskedPhone(phone),
        reason: `reroute:${receipt.provider}`,
      });
      log.info({ phone: maskedPhone(phone), provider: receipt.provider }, "undelivered otp rerouted");
    } catch (err) {
      await Promise.all([
        this.deps.codes.discard(phone.e164, digest),
        this.#recordSend(phone.e164, filed, via, "", "failed"),
        permit.cancel(),
      ]);
      throw err;
    }
  }

  #put(phone: Phone, digest: string): Promise<PutResult> {
    const code = this.#newCode(maskedPhone(phone));
    return this.deps.codes.put(phone.e164, digest, this.deps.settings.codeTtlSeconds, code);
  }

  /** `masked`: the phone as `maskedPhone` shows it, for the verification's record. */
  #newCode(masked: string): NewCode {
    return {
      verificationId: newVerificationId(),
      maxAttempts: this.deps.settings.maxAttempts,
      retentionSeconds: this.#retention(),
      maskedPhone: masked,
    };
  }

  #retention(): number {
    return this.deps.settings.verificationRetentionSeconds ?? DEFAULT_RETENTION_SECONDS;
  }

  #recordSend(
    e164: string,
    filed: PutResult,
    provider: string,
    messageId: string,
    deliveryStatus = "sent",
  ): Promise<void> {
    const store = this.deps.verifications;
    if (!store) return Promise.resolve();
    const attempt: SendAttempt = { provider, messageId, sentAtMs: Date.now(), deliveryStatus, errorCode: "" };
    return store.recordSend(
      e164,
      filed.verificationId,
      attempt,
      filed.expiresAtMs + this.#retention() * 1000,
    );
  }

  /** Runs a write after the answer: its failure is logged, and `settled()` waits for it. */
  #afterAnswer(write: Promise<void>, log: LoginLog): void {
    const tracked = write
      .catch((err: unknown) => log.warn({ err }, "could not record the send"))
      .finally(() => this.#pending.delete(tracked));
    this.#pending.add(tracked);
  }

  #sent(e164: string, filed: PutResult): SentCode {
    const { settings } = this.deps;
    return {
      phone: e164,
      expiresInSeconds: settings.codeTtlSeconds,
      codeLength: settings.codeLength,
      verificationId: filed.verificationId,
    };
  }

  /**
   * Checks a code against the phone's live codes (at most two: a resend keeps the previous one), or only
   * against those of `verificationId` when given; an id the phone never had is VERIFICATION_NOT_FOUND.
   * `deviceName` labels the new session (else the client's User-Agent does).
   */
  async verifyOtp(rawPhone: string, otp: string, client: Client, opts: VerifyOptions = {}): Promise<Session> {
    const { settings, codes, users, guard } = this.deps;
    const log = requestLog(this.deps.log, client);
    const phone = this.deps.phones.parse(rawPhone);
    const e164 = phone.e164;
    const code = otp.trim();
    if (!isCodeShaped(code, settings.codeLength)) throw invalidOtpFormat(settings.codeLength);
    const wanted = opts.verificationId?.trim() ?? "";
    if (wanted !== "" && !isVerificationId(wanted)) throw verificationNotFound();
    const digest = codeDigest(settings.codeSecret, e164, code);
    const digests = settings.previousCodeSecret
      ? [digest, codeDigest(settings.previousCodeSecret, e164, code)]
      : digest;
    // The limit first; the code is checked only once the limit admits the request, by the guard, in the
    // decision's own step where it can. The user lookup rides beside the check (`alongside`): on a single Redis
    // inside the same script, elsewhere in the same round trip; unused when the code is wrong.
    const check = alongside(
      codes.admittedVerify(
        e164,
        digests,
        settings.maxAttempts,
        settings.failureLock,
        guard.clientKey(client),
        wanted === "" ? undefined : wanted,
      ),
      users.admittedFind(e164),
    );
    const {
      checked: [outcome, existing],
      givenBack,
    } = await this.#limited(guard.beforeVerify(phone, client, check), log);
    // Settled already unless the guard could not give the client's points back in its decision's step; then
    // it rides in the token's round trip. A failed give-back only leaves the client's count a little high.
    const refund = givenBack.catch((e: unknown) => log.warn({ err: e }, "could not refund limits"));
    // Appended in the round trip that follows (the session's), or after a refusal is answered: never waited on.
    const checked = (reason: string, vid?: string): AuditEntry => ({
      event: "otp.checked",
      verificationId: vid,
      phone: maskedPhone(phone),
      clientIp: client.ip,
      reason,
    });
    switch (outcome.kind) {
      case "ok":
        this.#events.codeVerified();
        this.#audit.append(checked("ok", outcome.verificationId));
        break;
      case "wrong":
        this.#events.codeFailed("wrong");
        this.#audit.append(checked("wrong", outcome.verificationId));
        if (outcome.locked)
          this.#audit.append({ ...checked("lockout", outcome.verificationId), event: "phone.locked" });
        log.info({ phone: maskedPhone(phone), attemptsLeft: outcome.attemptsLeft }, "wrong otp");
        throw otpIncorrect(outcome.attemptsLeft);
      case "exhausted":
        this.#events.codeFailed("exhausted");
        this.#audit.append(checked("exhausted", outcome.verificationId));
        throw otpAttemptsExhausted();
      case "missing":
        this.#events.codeExpired();
        this.#audit.append(checked("expired", wanted === "" ? undefined : wanted));
        throw otpExpired();
      case "not_found":
        throw verificationNotFound();
      case "locked":
        log.warn({ phone: maskedPhone(phone) }, "verify refused: phone locked after too many wrong codes");
        this.#events.limitRefused("PHONE_LOCKED");
        this.#audit.append({ ...checked("locked"), event: "phone.locked" });
        throw phoneLocked(outcome.retryAfterMs);
    }
    const start = { ip: client.ip, label: sessionLabel(opts.deviceName, client.userAgent) };
    if (existing) {
      const [pair] = await Promise.all([this.#issue(existing, start, log), refund]);
      return { ...pair, user: existing };
    }
    // A first login: with the new user's id reserved up front, creating the user and storing its session
    // are independent and share one round trip.
    const id = await storeCall(users.reserveId(), log);
    const [user, draft] = await Promise.all([
      storeCall(users.create(e164, id), log),
      this.#issue(newUser(id, e164), start, log),
      refund,
    ]);
    if (user.id === id) {
      log.info({ userId: user.id, phone: maskedPhone(phone) }, "user created");
      this.#audit.append({
        event: "user.created",
        userId: user.id,
        phone: maskedPhone(phone),
        clientIp: client.ip,
      });
      return { ...draft, user };
    }
    // A concurrent first login of the same phone created the user first. The draft session names an id that
    // no user has; its token was never handed out, so it just expires. Issue one for the real user.
    return { ...(await this.#issue(user, start, log)), user };
  }

  /** Counts each limit's refusals by its reason, for metrics, and passes everything through unchanged. */
  async #limited<T>(decision: Promise<T>, log: LoginLog): Promise<T> {
    try {
      return await storeCall(decision, log);
    } catch (err) {
      if (err instanceof LoginError && err.kind !== "unavailable") this.#events.limitRefused(err.reason);
      throw err;
    }
  }

  /** `client`, when the transport knows it, is recorded as the session's last use. */
  async refresh(refreshToken: string, client?: Client): Promise<TokenPair> {
    const { refreshTokens, settings } = this.deps;
    const log = requestLog(this.deps.log, client);
    const presented = refreshToken.trim();
    const current = parseRefreshToken(presented);
    if (!current) throw refreshTokenInvalid();
    // The same token always rotates into the same successor, so an answer lost to a timeout (the rotation
    // may well have happened) can be asked for again and is the token the store already holds.
    const next = successorRefreshToken(presented, settings.refreshSecret);
    const outcome = await storeCall(
      refreshTokens.rotate(
        current,
        next.ref.hash,
        settings.refreshTtlSeconds,
        settings.refreshReuseGraceSeconds,
        client && { ip: client.ip },
      ),
      log,
    );
    if (outcome.kind === "reused") {
      log.warn({ userId: current.userId }, "refresh token reused: family revoked");
      this.#audit.append({ event: "token.reused", userId: current.userId, reason: "family revoked" });
      throw refreshTokenReused();
    }
    if (outcome.kind === "invalid") throw refreshTokenInvalid();
    const { record } = outcome;
    this.#audit.append({
      event: "token.refreshed",
      userId: record.userId,
      reason: outcome.repeated ? "repeated" : "rotated",
    });
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
  async logout(refreshToken: string, client?: Client): Promise<void> {
    const presented = refreshToken.trim();
    if (presented === "") throw refreshTokenInvalid();
    const current = parseRefreshToken(presented);
    if (!current) return;
    const known = await storeCall(
      this.deps.refreshTokens.revokeFamily(current),
      requestLog(this.deps.log, client),
    );
    if (known) this.#audit.append({ event: "session.logout", userId: current.userId });
  }

  async #issue(user: User, session: SessionStart, log: LoginLog): Promise<TokenPair> {
    const { refreshTokens, settings } = this.deps;
    const minted = mintRefreshToken(user.id);
    const [access] = await Promise.all([
      this.deps.accessTokens.sign(user, minted.ref.family),
      storeCall(
        refreshTokens.create(
          { ...minted.ref, phone: user.phone, role: user.role },
          settings.refreshTtlSeconds,
          session,
        ),
        log,
      ),
    ]);
    return { accessToken: access.token, refreshToken: minted.token, expiresIn: access.expiresIn };
  }
}

/**
 * A store that cannot answer fails the request closed as STORE_UNAVAILABLE, with the cause in the operator's
 * log. Anything else a store throws is a bug and travels on, to be answered `internal` with an error id.
 */
async function storeCall<T>(call: Promise<T>, log: LoginLog): Promise<T> {
  try {
    return await call;
  } catch (err) {
    if (!(err instanceof StoreUnavailableError)) throw err;
    log.error({ err: err.cause ?? err }, `store unavailable: ${err.message}`);
    throw storeUnavailable();
  }
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
