import type { Logger } from "../log.js";
import type { Client, Phone } from "../login/model.js";
import type { AbuseGuard, SendPermit } from "../login/ports.js";
import { isCluster, type RedisClient } from "../redis/connect.js";
import { clusterSendDecision } from "./cluster-send-decision.js";
import type { LimitSettings } from "./config.js";
import { ipKey } from "./ip-key.js";
import { limitFactory } from "./limit.js";
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

  constructor(opts: {
    limits: LimitSettings;
    redis: RedisClient | undefined;
    /**
     * The phone's failure lock, as the OTP store keeps it: its keys, read inside the send decision on Redis;
     * `lockedFor` in the embedded mode. Both take the client key, since the lock stops only clients that failed.
     */
    lock: { readonly keys: LockKeys; readonly lockedFor: LockedFor };
    log: Logger;
  }) {
    const make = limitFactory(opts.redis);
    const redis = opts.redis;
    const decide = !redis
      ? memorySendDecision(opts.lock.lockedFor)
      : isCluster(redis)
        ? clusterSendDecision(redis, opts.lock.keys, opts.limits.smsBudgetShards ?? CLUSTER_BUDGET_SHARDS)
        : redisSendDecision(redis, opts.lock.keys);
    this.#send = new SendPolicy(opts.limits, make, decide, opts.log);
    this.#verify = new VerifyPolicy(opts.limits, make);
  }

  clientKey(client: Client): string {
    return ipKey(client.ip);
  }

  beforeSend(phone: Phone, client: Client): Promise<SendPermit> {
    return this.#send.check(phone, client);
  }

  beforeVerify(_phone: Phone, client: Client): Promise<void> {
    return this.#verify.check(client);
  }

  async afterLogin(_phone: Phone, client: Client): Promise<void> {
    // A real user on a shared (carrier NAT) address must not use up the address for everyone behind it:
    // what a completed login asked for is given back, so the per-IP limits count only what led nowhere.
    await Promise.all([this.#send.refundClient(client), this.#verify.refundClient(client)]);
  }
}
