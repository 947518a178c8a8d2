import type { RedisClient } from "../../redis/client.js";

/**
 * Remembers which (MessageSid, MessageStatus) pairs were counted, so a callback Twilio retries (or anyone
 * replays: a signed POST stays valid) is acknowledged without being counted again.
 */
export interface SeenCallbacks {
  /** True the first time a pair is seen within the window, false after; throws when it cannot tell. */
  firstTime(messageSid: string, status: string): Promise<boolean>;
  /** Forgets a pair seen by `firstTime` whose receipt could not be kept, so a retry counts as a first time. */
  forget?(messageSid: string, status: string): Promise<void>;
}

/** Long past Twilio's retries and a message's last status update. */
export const SEEN_TTL_SECONDS = 24 * 60 * 60;

/**
 * Cluster-wide: one `SET NX EX` per final status. The sid is the Redis Cluster hash tag, so a message's
 * statuses share a slot; the key expires after a day, so the set never outgrows a day of traffic.
 */
export class RedisSeenCallbacks implements SeenCallbacks {
  constructor(
    private readonly redis: RedisClient,
    private readonly ttlSeconds = SEEN_TTL_SECONDS,
  ) {}

  async firstTime(messageSid: string, status: string): Promise<boolean> {
    const set = await this.redis.set(`twstatus:{${messageSid}}:${status}`, "1", "EX", this.ttlSeconds, "NX");
    return set === "OK";
  }

  async forget(messageSid: string, status: string): Promise<void> {
    await this.redis.del(`twstatus:{${messageSid}}:${status}`);
  }
}

/**
 * Per instance (development, or no Redis): behind a load balancer a replay that reaches another instance is
 * counted there too. Bounded in time and in size; past `capacity` the oldest pairs are forgotten first.
 */
export class MemorySeenCallbacks implements SeenCallbacks {
  // Insertion order is expiry order (one TTL for all), so the oldest entries are always first.
  readonly #expiresAt = new Map<string, number>();

  constructor(
    private readonly capacity = 100_000,
    private readonly ttlMs = SEEN_TTL_SECONDS * 1000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Pairs remembered now. */
  get size(): number {
    return this.#expiresAt.size;
  }

  async firstTime(messageSid: string, status: string): Promise<boolean> {
    const now = this.now();
    for (const [key, expiresAt] of this.#expiresAt) {
      if (expiresAt > now && this.#expiresAt.size < this.capacity) break;
      this.#expiresAt.delete(key);
    }
    // A separator no sid or status contains, so two pairs never share a key.
    const key = `${messageSid}\n${status}`;
    if (this.#expiresAt.has(key)) return false;
    this.#expiresAt.set(key, now + this.ttlMs);
    return true;
  }

  async forget(messageSid: string, status: string): Promise<void> {
    this.#expiresAt.delete(`${messageSid}\n${status}`);
  }
}
