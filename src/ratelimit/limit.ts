import {
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
} from "rate-limiter-flexible";
import type { RedisClient } from "../redis/client.js";
import { classifyRedisError } from "../redis/errors.js";

/** One counter: `points` per fixed window of `durationSeconds`, keyed by the caller (an IP, a phone, …). */
export interface LimitSpec {
  /** Names the counter in keys (`rl:<name>:<key>`) and logs. */
  readonly name: string;
  readonly points: number;
  readonly durationSeconds: number;
}

export type Consumed = { readonly ok: true } | { readonly ok: false; readonly retryAfterMs: number };

/** A rate-limiter-flexible limiter behind the two operations the policies use. */
export class Limit {
  readonly #limiter: RateLimiterAbstract;
  readonly #memory: boolean;

  constructor(
    readonly spec: LimitSpec,
    limiter: RateLimiterAbstract,
  ) {
    this.#limiter = limiter;
    this.#memory = limiter instanceof RateLimiterMemory;
  }

  get name(): string {
    return this.spec.name;
  }

  /** The counter's store key (`rl:<name>:<key>`), for scripts that read it alongside other counters. */
  storeKey(key: string): string {
    return this.#limiter.getKey(key);
  }

  /** The count so far in the key's window and the time left in it, without counting anything. */
  async peek(key: string): Promise<{ readonly count: number; readonly msLeft: number }> {
    const res = await this.#limiter.get(key).catch((err: unknown) => {
      throw classifyRedisError(err);
    });
    // A window that has just ended may not have been dropped yet: it counts nothing.
    if (!res || res.msBeforeNext === 0 || res.msBeforeNext < -1) return { count: 0, msLeft: 0 };
    return {
      count: res.consumedPoints,
      msLeft: res.msBeforeNext > 0 ? res.msBeforeNext : this.spec.durationSeconds * 1000,
    };
  }

  /** Counts one request. Refused when the window is full; rejects only when the store fails. */
  consume(key: string): Promise<Consumed> {
    return this.#limiter.consume(key).then(
      () => ({ ok: true }),
      (err: unknown) => {
        if (err instanceof RateLimiterRes) return { ok: false, retryAfterMs: err.msBeforeNext };
        throw classifyRedisError(err);
      },
    );
  }

  /** Gives one point back, never below zero (so a refund after the window ended grants nothing extra). */
  async refund(key: string): Promise<void> {
    const res = await this.#limiter.reward(key).catch((err: unknown) => {
      throw classifyRedisError(err);
    });
    // The Redis script clamps by itself; the in-memory limiter cannot, so the overshoot is taken back.
    if (this.#memory && res.consumedPoints < 0) await this.#limiter.penalty(key, -res.consumedPoints);
  }
}

// rate-limiter-flexible's increment script, except that a reward never takes the count below zero: a
// refund for a window that has since ended must not hand out an extra point in the next one. ioredis keeps
// one definition per command name per client, so every limiter on the client shares this script.
const INCR_CLAMPED = `
redis.call('set', KEYS[1], 0, 'EX', ARGV[2], 'NX')
local consumed = redis.call('incrby', KEYS[1], ARGV[1])
if consumed < 0 then
  redis.call('incrby', KEYS[1], -consumed)
  consumed = 0
end
local ttl = redis.call('pttl', KEYS[1])
if ttl == -1 then
  redis.call('expire', KEYS[1], ARGV[2])
  ttl = 1000 * ARGV[2]
end
return {consumed, ttl}
`;

/** Builds limits on the service's store: Redis when there is one, process memory in the embedded mode. */
export type LimitFactory = (spec: LimitSpec) => Limit;

export function limitFactory(redis: RedisClient | undefined): LimitFactory {
  return (spec) => {
    const opts = { keyPrefix: `rl:${spec.name}`, points: spec.points, duration: spec.durationSeconds };
    const limiter = redis
      ? new RateLimiterRedis({
          ...opts,
          storeClient: redis,
          customIncrTtlLuaScript: INCR_CLAMPED,
          // Without a connection, fail at once instead of queueing: the caller answers Unavailable.
          rejectIfRedisNotReady: true,
        })
      : new RateLimiterMemory(opts);
    return new Limit(spec, limiter);
  };
}
