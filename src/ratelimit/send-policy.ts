import type { Logger } from "../log.js";
import type { Client, Phone } from "../login/model.js";
import type { Admitted, AdmittedWrite, SendPermit } from "../login/ports.js";
import {
  countryNotAllowed,
  invalidPhone,
  type LoginError,
  otpCooldown,
  rateLimitIp,
  rateLimitPhone,
  smsBudgetExhausted,
  smsCountryLimit,
  smsPrefixLimit,
} from "../login/reasons.js";
import { reqIdField } from "../login/request-log.js";
import { type Check, refusalError } from "./checks.js";
import type { LimitSettings } from "./config.js";
import { destinationOf } from "./destination.js";
import { ipKey } from "./ip-key.js";
import type { Limit, LimitFactory } from "./limit.js";
import { type SendDecision, writeOf } from "./send-decision.js";

const HOUR = 3600;

/**
 * The limits on sending a code: per client IP; per phone (a window and a cooldown); the SMS-pumping caps
 * (per number prefix, per country calling code, a global hourly budget) and the destination allow-list; and
 * the phone's failure lock (sending a code nobody may enter only costs money), which stops only the clients
 * that failed on the phone. The client's limit is decided first and is all a refused request may count: the
 * phone's, its range's and the service's counters move only for a code that goes out (see send-decision.ts).
 * Numbers that are never a person's mobile (satellite, pager, personal-number ranges) are refused up front.
 */
export class SendPolicy {
  readonly #ip: Limit | undefined;
  readonly #cooldown: Limit | undefined;
  readonly #phone: Limit | undefined;
  readonly #prefix: Limit | undefined;
  readonly #country: Limit | undefined;
  readonly #global: Limit | undefined;
  readonly #allowed: ReadonlySet<string>;
  readonly #blockedTypes: ReadonlySet<string>;
  /** Digits after "+", e.g. "8816". */
  readonly #blockedPrefixes: readonly string[];
  readonly #lockOn: boolean;
  /** Until when the exhausted global budget has been reported: once per window, not per request. */
  #budgetReportedUntil = 0;

  constructor(
    limits: LimitSettings,
    make: LimitFactory,
    private readonly decide: SendDecision,
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
    this.#blockedTypes = new Set(limits.smsBlockedNumberTypes);
    this.#blockedPrefixes = limits.smsBlockedPrefixes;
    this.#lockOn = limits.phoneFailures > 0;
  }

  /**
   * @param exempt the caller skips the limits on asking (per IP, per phone, the cooldown): a person on this
   * machine while nothing real is sent. The SMS-pumping caps, the destination rules and the lock still apply.
   */
  async check<T>(phone: Phone, client: Client, then: AdmittedWrite<T>, exempt = false): Promise<Admitted<T>> {
    const destination = destinationOf(phone);
    if (this.#allowed.size > 0 && !(destination.country && this.#allowed.has(destination.country))) {
      throw countryNotAllowed(destination.country ?? `+${destination.callingCode}`);
    }
    this.#refuseNeverMobile(phone);
    const requests: Check[] = [];
    const sms: Check[] = [];
    const add = (
      to: Check[],
      limit: Limit | undefined,
      key: string,
      refuse: (retryAfterMs: number) => LoginError,
      spread = false,
    ) => {
      if (limit) to.push({ limit, key, refuse, ...(spread ? { spread } : {}) });
    };
    const clientKey = ipKey(client.ip);
    if (!exempt) {
      const own = this.clientCheck(client);
      if (own) requests.push(own);
      add(sms, this.#cooldown, phone.e164, otpCooldown);
      add(sms, this.#phone, phone.e164, rateLimitPhone);
    }
    add(sms, this.#prefix, destination.prefix, smsPrefixLimit);
    // Every send to a country, and every send at all, counts on these two: on a cluster they are spread.
    add(sms, this.#country, destination.callingCode, smsCountryLimit, true);
    add(sms, this.#global, "all", smsBudgetExhausted, true);

    const { refusals, giveBack, written } = await this.decide({
      requests,
      sms,
      lock: this.#lockOn ? { phone: phone.e164, client: clientKey } : undefined,
      then,
    });
    const budget = refusals.find((r) => r.limit !== undefined && r.limit === this.#global);
    if (budget) this.#reportBudget(budget.retryAfterMs, client.requestId);
    const refusal = refusals[0];
    if (refusal) throw refusalError(refusal);
    // The decision did the write in its own step (one Redis), or it follows now (memory, a cluster); if it
    // failed either way, the send never happened and what was counted for it is given back.
    try {
      return { permit: { cancel: giveBack }, written: await writeOf(written, then) };
    } catch (err) {
      await giveBack().catch((e: unknown) =>
        this.log.warn({ ...reqIdField(client.requestId), err: e }, "could not refund the send limits"),
      );
      throw err;
    }
  }

  /** A send to a test number: the client's own limit only, decided the same way. */
  async checkClientOnly(client: Client): Promise<void> {
    const own = this.clientCheck(client);
    const requests: Check[] = own ? [own] : [];
    const {
      refusals: [refusal],
    } = await this.decide({ requests, sms: [], lock: undefined });
    if (refusal) throw refusalError(refusal);
  }

  /**
   * A code we send again by ourselves (a reroute after an undelivered receipt): the phone's window and the
   * SMS caps, which protect the budget; no client limit (no client asked) and no cooldown (no one pressed
   * "resend").
   */
  async checkReroute(phone: Phone): Promise<SendPermit> {
    const destination = destinationOf(phone);
    const sms: Check[] = [];
    const add = (
      limit: Limit | undefined,
      key: string,
      refuse: (retryAfterMs: number) => LoginError,
      spread = false,
    ) => {
      if (limit) sms.push({ limit, key, refuse, ...(spread ? { spread } : {}) });
    };
    add(this.#phone, phone.e164, rateLimitPhone);
    add(this.#prefix, destination.prefix, smsPrefixLimit);
    // Spread on a cluster, as for every send (see check).
    add(this.#country, destination.callingCode, smsCountryLimit, true);
    add(this.#global, "all", smsBudgetExhausted, true);
    const { refusals, giveBack } = await this.decide({ requests: [], sms, lock: undefined });
    const budget = refusals.find((r) => r.limit !== undefined && r.limit === this.#global);
    if (budget) this.#reportBudget(budget.retryAfterMs);
    const refusal = refusals[0];
    if (refusal) throw refusalError(refusal);
    return { cancel: giveBack };
  }

  /** Number types and ranges that are never a person's mobile: a code sent there only costs money. */
  #refuseNeverMobile(phone: Phone): void {
    if (phone.type !== undefined && this.#blockedTypes.has(phone.type)) {
      throw invalidPhone(
        `phone ${phone.e164} is a ${phone.type.toLowerCase().replaceAll("_", " ")} number; codes are sent to mobiles only`,
      );
    }
    const digits = phone.e164.slice(1);
    const prefix = this.#blockedPrefixes.find((p) => digits.startsWith(p));
    if (prefix !== undefined) {
      throw invalidPhone(`phone ${phone.e164} is in the +${prefix} range, which codes are not sent to`);
    }
  }

  /**
   * The client's own counter (its sends per IP): counted by every send it asks for, given back after a login.
   * None when the limit is off.
   */
  clientCheck(client: Client): Check | undefined {
    return this.#ip && { limit: this.#ip, key: ipKey(client.ip), refuse: (ms) => rateLimitIp(ms, "send") };
  }

  /** `requestId`: the request that found the budget spent, when one did (not a reroute). */
  #reportBudget(retryAfterMs: number, requestId?: string): void {
    const now = this.now();
    if (now < this.#budgetReportedUntil) return;
    this.#budgetReportedUntil = now + retryAfterMs;
    this.log.error(
      {
        ...reqIdField(requestId),
        limit: this.#global?.spec.points,
        retryAfterSeconds: Math.ceil(retryAfterMs / 1000),
      },
      "SMS budget exhausted (SMS_MAX_PER_HOUR): refusing every send until the window ends",
    );
  }
}
