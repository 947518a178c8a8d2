import { Redis } from "ioredis";

/**
 * The service's Redis client. Auto-pipelining sends commands issued in the same tick as one write, so the
 * independent commands of a request share a round trip.
 *
 * Tuned to fail fast rather than hang when Redis is away (callers answer Unavailable, the process stays up):
 * no offline queue, so a command without a connection is refused at once; in-flight commands are failed as
 * soon as the connection drops instead of being retried; and every command is bounded by `commandTimeout`
 * (a Redis that hangs rather than closes). Reconnection never gives up, with a backoff capped at one second,
 * so service resumes by itself when Redis returns.
 */
export function connectRedis(url: string): Redis {
  return new Redis(url, {
    enableAutoPipelining: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 1_000,
    commandTimeout: 800,
    retryStrategy: (attempt) => Math.min(attempt * 100, 1_000),
    lazyConnect: false,
  });
}

/**
 * Resolves once the client is ready, or after `timeoutMs` either way: with the offline queue off, the first
 * requests must not race the connection, but a Redis that is down at start-up must not stop the service from
 * starting (it answers Unavailable and `/readyz` says why until Redis comes).
 */
export async function untilReady(redis: Redis, timeoutMs: number): Promise<boolean> {
  if (redis.status === "ready") return true;
  return new Promise((resolve) => {
    const done = (ready: boolean) => {
      clearTimeout(timer);
      redis.off("ready", onReady);
      resolve(ready);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    redis.once("ready", onReady);
  });
}
