import type { Redis } from "ioredis";
import type { ReadinessCheck } from "./readiness.js";

/** The store answers: a Redis PING, or nothing to ask for the embedded in-memory store. */
export function storeCheck(redis: Redis | undefined): ReadinessCheck {
  return {
    name: "store",
    async probe() {
      if (!redis) return;
      // ioredis would queue the command until a reconnect; a probe wants the answer "not now" instead.
      if (redis.status !== "ready") throw new Error(`redis is ${redis.status}`);
      await redis.ping();
    },
  };
}
