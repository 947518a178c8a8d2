import type { Client } from "../login/model.js";
import { rateLimitIp } from "../login/reasons.js";
import { consumeAll, refusalError } from "./checks.js";
import type { LimitSettings } from "./config.js";
import { ipKey } from "./ip-key.js";
import type { Limit, LimitFactory } from "./limit.js";

/**
 * The limit on checking a code per client IP. The per-code attempts and the per-phone failure lock live in
 * the OTP store's verify itself, so the lock, the attempt and the comparison are one atomic step.
 */
export class VerifyPolicy {
  readonly #ip: Limit | undefined;

  constructor(limits: LimitSettings, make: LimitFactory) {
    const { points, durationSeconds } = limits.ipVerify;
    this.#ip = points > 0 ? make({ name: "verify-ip", points, durationSeconds }) : undefined;
  }

  async check(client: Client): Promise<void> {
    if (!this.#ip) return;
    const [refusal] = await consumeAll([
      {
        limit: this.#ip,
        key: ipKey(client.ip),
        refuse: (ms) => rateLimitIp(ms, "verify"),
      },
    ]);
    if (refusal) throw refusalError(refusal);
  }

  /** Gives back the client's point after a successful login. */
  async refundClient(client: Client): Promise<void> {
    await this.#ip?.refund(ipKey(client.ip));
  }
}
