import type { Redis } from "ioredis";

/** What `/readyz` reports: whether this instance can serve logins now, and the store's state. */
export interface ReadinessState {
  readonly ready: boolean;
  readonly store: "redis" | "memory";
  /** The store's connection state when it is not ready ("reconnecting", "timeout", …). */
  readonly state?: string;
}

/**
 * A readiness check. Kept a plain function so more checks (e.g. "shutting down") can be combined with it
 * without the handler knowing.
 */
export type Readiness = () => Promise<ReadinessState>;

/** Ready when the store answers: a PING on Redis (bounded by the client's command timeout). */
export function storeReadiness(redis: Redis | undefined): Readiness {
  if (!redis) return async () => ({ ready: true, store: "memory" });
  return async () => {
    if (redis.status !== "ready") return { ready: false, store: "redis", state: redis.status };
    try {
      await redis.ping();
      return { ready: true, store: "redis" };
    } catch {
      return { ready: false, store: "redis", state: "not answering" };
    }
  };
}
