import type { Cluster, Redis } from "ioredis";

// Types and helpers only: every module the embedded mode loads may import this one, since it brings no
// ioredis code at run time (src/redis/connect.ts, which does, is imported lazily by src/app.ts).

/** The service's store client: one Redis or a Redis Cluster; every store and limiter takes either. */
export type RedisClient = Redis | Cluster;

/** ioredis marks each client (`isCluster`), so no `instanceof` is needed and ioredis need not be loaded. */
export function isCluster(redis: RedisClient): redis is Cluster {
  return redis.isCluster;
}

/**
 * Resolves once the client is ready, or after `timeoutMs` either way: with the offline queue off, the first
 * requests must not race the connection, but a Redis that is down at start-up must not stop the service from
 * starting (it answers Unavailable and `/readyz` says why until Redis comes).
 */
export async function untilReady(redis: RedisClient, timeoutMs: number): Promise<boolean> {
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
