import type { Logger } from "../log.js";
import type { Client, Phone } from "../login/model.js";
import type { SendPermit } from "../login/ports.js";
import {
  countryNotAllowed,
  type LoginError,
  otpCooldown,
  phoneLocked,
  rateLimitIp,
  rateLimitPhone,
  smsBudgetExhausted,
  smsCountryLimit,
  smsPrefixLimit,
} from "../login/reasons.js";
import { type Check, consumeAll, refund, refusalError } from "./checks.js";
import type { LimitSettings } from "./config.js";
import { destinationOf } from "./destination.js";
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

  async check(phone: Phone, client: Client): Promise<SendPermit> {
    const destination = destinationOf(phone);
    if (this.#allowed.size > 0 && !(destination.country && this.#allowed.has(destination.country))) {
      throw countryNotAllowed(destination.country ?? `+${destination.callingCode}`);
    }
    const checks: Check[] = [];
    const add = (
      limit: Limit | undefined,
      key: string,
      refuse: (retryAfterMs: number) => LoginError,
      countsSms: boolean,
    ) => {
      if (limit) checks.push({ limit, key, refuse, countsSms });
    };
    add(this.#ip, ipKey(client.ip), (ms) => rateLimitIp(ms, "send"), false);
    add(this.#cooldown, phone.e164, otpCooldown, true);
    add(this.#phone, phone.e164, rateLimitPhone, true);
    add(this.#prefix, destination.prefix, smsPrefixLimit, true);
    add(this.#country, destination.callingCode, smsCountryLimit, true);
    add(this.#global, "all", smsBudgetExhausted, true);

    // The lock is read alongside the counters: same round trip.
    const [refusals, lockedMs] = await Promise.all([consumeAll(checks), this.lockedFor(phone.e164)]);
    const budget = refusals.find((r) => r.check.limit === this.#global);
    if (budget) this.#reportBudget(budget.retryAfterMs);
    const refusal = refusals[0];
    const sms = checks.filter((c) => c.countsSms);
    if (lockedMs > 0 && (!refusal || lockedMs > refusal.retryAfterMs)) {
      if (!refusal) await refund(sms);
      throw phoneLocked(lockedMs);
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
