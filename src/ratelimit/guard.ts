import type { Logger } from "../log.js";
import type { Client, Phone } from "../login/model.js";
import type {
  AbuseGuard,
  Admitted,
  AdmittedCheck,
  AdmittedWrite,
  SendPermit,
  Verified,
} from "../login/ports.js";
import { isCluster, type RedisClient } from "../redis/client.js";
import { type Check, refund } from "./checks.js";
import { clusterSendDecision } from "./cluster-send-decision.js";
import type { LimitSettings } from "./config.js";
import { ipKey } from "./ip-key.js";
import { limitFactory } from "./limit.js";
import { type Refund, redisRefund } from "./refund.js";
import { type LockedFor, type LockKeys, memorySendDecision, redisSendDecision } from "./send-decision.js";
import { SendPolicy } from "./send-policy.js";
import { VerifyPolicy } from "./verify-policy.js";

/** SMS_BUDGET_SHARDS on a cluster when unset: enough to spread the hot counters over every master of a few. */
export const CLUSTER_BUDGET_SHARDS = 8;

/**
 * The abuse limits the login core consults, on Redis (shared by every instance) or, in the embedded mode,
 * in process memory.
 */
export class RateLimitGuard implements AbuseGuard {
  readonly #send: SendPolicy;
  readonly #verify: VerifyPolicy;
  readonly #exempt: (client: Client) => boolean;
  readonly #refund: Refund;

  constructor(opts: {
    limits: LimitSettings;
    redis: RedisClient | undefined;
    /**
     * The phone's failure lock, as the OTP store keeps it: its keys, read inside the send decision on Redis;
     * `lockedFor` in the embedded mode. Both take the client key, since the lock stops only clients that failed.
     */
    lock: { readonly keys: LockKeys; readonly lockedFor: LockedFor };
    log: Logger;
    /**
     * Callers on this machine (`Client.loopback`) skip the per-IP and per-phone limits and the cooldown. Only
     * for the development SMS provider, where a send costs nothing: a person trying the service locally should
     * not wait 30 s between codes. The attempt cap and the phone's lock still apply.
     */
    exemptLoopback?: boolean;
  }) {
    const make = limitFactory(opts.redis);
    const redis = opts.redis;
    this.#refund = redis && !isCluster(redis) ? redisRefund(redis) : refund;
    const decide = !redis
      ? memorySendDecision(opts.lock.lockedFor)
      : isCluster(redis)
        ? clusterSendDecision(redis, opts.lock.keys, opts.limits.smsBudgetShards ?? CLUSTER_BUDGET_SHARDS)
        : redisSendDecision(redis, opts.lock.keys, this.#refund);
    this.#send = new SendPolicy(opts.limits, make, decide, opts.log);
    this.#verify = new VerifyPolicy(opts.limits, make, decide);
    this.#exempt = opts.exemptLoopback ? (client) => client.loopback === true : () => false;
  }

  clientKey(client: Client): string {
    return ipKey(client.ip);
  }

  beforeSend<T>(phone: Phone, client: Client, then: AdmittedWrite<T>): Promise<Admitted<T>> {
    return this.#send.check(phone, client, then, this.#exempt(client));
  }

  beforeTestNumberSend(client: Client): Promise<void> {
    return this.#send.checkClientOnly(client);
  }

  beforeReroute(phone: Phone): Promise<SendPermit> {
    return this.#send.checkReroute(phone);
  }

  async beforeVerify<T>(_phone: Phone, client: Client, then: AdmittedCheck<T>): Promise<Verified<T>> {
    if (this.#exempt(client)) return { checked: await then.run(), givenBack: NOTHING };
    // A real user on a shared (carrier NAT) address must not use up the address for everyone behind it: a
    // verify that logs in gives back what the client asked for, so the per-IP limits count only what led
    // nowhere. On a single Redis the decision does it in its own step; elsewhere one refund starts here.
    const back = [this.#send.clientCheck(client), this.#verify.clientCheck(client)].filter(
      (c): c is Check => c !== undefined,
    );
    const { checked, refunded } = await this.#verify.check(client, then, back);
    const givenBack = refunded || back.length === 0 || !then.matched(checked) ? NOTHING : this.#refund(back);
    return { checked, givenBack };
  }
}

const NOTHING: Promise<void> = Promise.resolve();
