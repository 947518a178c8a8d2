import type { Client } from "../login/model.js";
import type { AdmittedCheck } from "../login/ports.js";
import { rateLimitIp } from "../login/reasons.js";
import { type Check, refusalError } from "./checks.js";
import type { LimitSettings } from "./config.js";
import { ipKey } from "./ip-key.js";
import type { Limit, LimitFactory } from "./limit.js";
import { type SendDecision, writeOf } from "./send-decision.js";

/**
 * The limit on checking a code per client IP. The per-code attempts and the per-phone failure lock live in
 * the OTP store's verify itself, so the lock, the attempt and the comparison are one atomic step. The limit
 * is decided by the same decision as a send's (a request counter, counted whether or not it passes), so on a
 * single Redis the store's check runs inside the decision's script once the limit admits it.
 */
export class VerifyPolicy {
  readonly #ip: Limit | undefined;

  constructor(
    limits: LimitSettings,
    make: LimitFactory,
    private readonly decide: SendDecision,
  ) {
    const { points, durationSeconds } = limits.ipVerify;
    this.#ip = points > 0 ? make({ name: "verify-ip", points, durationSeconds }) : undefined;
  }

  /**
   * Counts the client's request and, once admitted, runs `then`. `giveBack` are the counters a match gives a
   * point back to: `refunded` says the decision did so in its own step (else the caller does).
   */
  async check<T>(
    client: Client,
    then: AdmittedCheck<T>,
    giveBack: readonly Check[],
  ): Promise<{ checked: T; refunded: boolean }> {
    const own = this.clientCheck(client);
    if (!own) return { checked: await then.run(), refunded: false };
    const { refusals, written, refunded } = await this.decide({
      requests: [own],
      sms: [],
      then,
      refundOnMatch: giveBack,
    });
    const refusal = refusals[0];
    if (refusal) throw refusalError(refusal);
    // A failed check leaves the client's request counted (it asked); nothing else was.
    return { checked: await writeOf(written, then), refunded: refunded === true };
  }

  /**
   * The client's own counter (its checks per IP): counted by every verify, given back after a login. None
   * when the limit is off.
   */
  clientCheck(client: Client): Check | undefined {
    return this.#ip && { limit: this.#ip, key: ipKey(client.ip), refuse: (ms) => rateLimitIp(ms, "verify") };
  }
}
