import type { Logger } from "../log.js";
import type { SendPermit } from "../login/abuse-guard.js";
import { LoginError } from "../login/errors.js";
import type { Client } from "../login/login-service.js";
import { type Check, consumeAll, refund, refusalError } from "./checks.js";
import type { LimitSettings } from "./config.js";
import { Destinations } from "./destination.js";
import { ipKey } from "./ip-key.js";
import type { Limit, LimitFactory } from "./limit.js";

const HOUR = 3600;

/**
 * The limits on sending a code: per client IP; per phone (a window and a cooldown); the SMS-pumping caps
 * (per number prefix, per country calling code, a global hourly budget) and the destination allow-list; and
 * the phone's failure lock (sending a code nobody may enter only costs money).
 */
export class SendPolicy {
  readonly #ip: Limit | undefined;
  readonly #cooldown: Limit | undefined;
  readonly #phone: Limit | undefined;
  readonly #prefix: Limit | undefined;
  readonly #country: Limit | undefined;
  readonly #global: Limit | undefined;
  readonly #allowed: ReadonlySet<string>;
  readonly #destinations = new Destinations();
  /** Until when the exhausted global budget has been reported: once per window, not per request. */
  #budgetReportedUntil = 0;

  constructor(
    limits: LimitSettings,
    make: LimitFactory,
    private readonly lockedFor: (phone: string) => Promise<number>,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    const limit = (name: string, points: number, durationSeconds: number) =>
      points > 0 ? make({ name, points, durationSeconds }) : undefined;
    this.#ip = limit("send-ip", limits.ipSend.points, limits.ipSend.durationSeconds);
    // One code per cooldown; a zero cooldown is off (a zero duration would mean "forever" to the limiter).
    this.#cooldown = limit(
      "send-cooldown",
      limits.phoneCooldownSeconds > 0 ? 1 : 0,
      limits.phoneCooldownSeconds,
    );
    this.#phone = limit("send-phone", limits.phoneSend.points, limits.phoneSend.durationSeconds);
    this.#prefix = limit("sms-prefix", limits.smsPerPrefixPerHour, HOUR);
    this.#country = limit("sms-country", limits.smsPerCountryPerHour, HOUR);
    this.#global = limit("sms-global", limits.smsPerHour, HOUR);
    this.#allowed = new Set(limits.smsAllowedCountries);
  }

  async check(phone: string, client: Client): Promise<SendPermit> {
    const destination = this.#destinations.of(phone);
    if (this.#allowed.size > 0 && !(destination.country && this.#allowed.has(destination.country))) {
      throw new LoginError(
        "failed_precondition",
        `codes are not sent to ${destination.country ?? `+${destination.callingCode}`} numbers`,
        undefined,
        "SMS_COUNTRY_NOT_ALLOWED",
      );
    }
    const checks: Check[] = [];
    const add = (limit: Limit | undefined, key: string, reason: string, what: string, countsSms: boolean) => {
      if (limit) checks.push({ limit, key, reason, what, countsSms });
    };
    add(this.#ip, ipKey(client.ip), "RATE_LIMIT_IP", "too many codes requested from your network", false);
    add(this.#cooldown, phone, "OTP_COOLDOWN", "a code was just sent to this phone", true);
    add(this.#phone, phone, "RATE_LIMIT_PHONE", "too many codes requested for this phone", true);
    add(
      this.#prefix,
      destination.prefix,
      "SMS_PREFIX_LIMIT",
      "too many codes sent to numbers like this",
      true,
    );
    add(
      this.#country,
      destination.callingCode,
      "SMS_COUNTRY_LIMIT",
      "too many codes sent to this country",
      true,
    );
    add(this.#global, "all", "SMS_BUDGET_EXHAUSTED", "too many codes are being sent right now", true);

    // The lock is read alongside the counters: same round trip.
    const [refusals, lockedMs] = await Promise.all([consumeAll(checks), this.lockedFor(phone)]);
    const budget = refusals.find((r) => r.reason === "SMS_BUDGET_EXHAUSTED");
    if (budget) this.#reportBudget(budget.retryAfterMs);
    const refusal = refusals[0];
    const sms = checks.filter((c) => c.countsSms);
    if (lockedMs > 0 && (!refusal || lockedMs > refusal.retryAfterMs)) {
      if (!refusal) await refund(sms);
      throw refusalError({
        reason: "PHONE_LOCKED",
        what: "too many incorrect codes for this phone",
        retryAfterMs: lockedMs,
      });
    }
    if (refusal) throw refusalError(refusal);
    return { cancel: () => refund(sms) };
  }

  /** Gives back the client's point after a successful login. */
  async refundClient(client: Client): Promise<void> {
    await this.#ip?.refund(ipKey(client.ip));
  }

  #reportBudget(retryAfterMs: number): void {
    const now = this.now();
    if (now < this.#budgetReportedUntil) return;
    this.#budgetReportedUntil = now + retryAfterMs;
    this.log.error(
      { limit: this.#global?.spec.points, retryAfterSeconds: Math.ceil(retryAfterMs / 1000) },
      "SMS budget exhausted (SMS_MAX_PER_HOUR): refusing every send until the window ends",
    );
  }
}
