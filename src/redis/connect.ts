import { Cluster, type RedisOptions } from "ioredis";
import type { RedisClient } from "./client.js";
import type { RedisTarget } from "./config.js";
import { OneWritePerTurnRedis } from "./one-write-per-turn.js";

// The one module that loads ioredis; src/app.ts imports it only when a Redis is configured.
export { isCluster, type RedisClient, untilReady } from "./client.js";

const COMMAND_TIMEOUT_MS = 800;
const CONNECT_TIMEOUT_MS = 1_000;
const backoff = (attempt: number) => Math.min(attempt * 100, 1_000);

/**
 * The service's Redis client. Independent commands of a request are issued together (`Promise.all`), so they
 * are all in flight before any reply and share a round trip, and the commands of one turn of the event loop
 * leave in one socket write (`OneWritePerTurnRedis`). ioredis's auto-pipelining is off: it would also coalesce
 * them, but it builds a `Pipeline` per tick that copies every defined script onto itself (about 10 KB per
 * request at our rates); measured under load, that was half of what the client allocated per request and most
 * of the GC time at half of peak, and the tail latency with it.
 *
 * Tuned to fail fast rather than hang when Redis is away (callers answer Unavailable, the process stays up):
 * no offline queue, so a command without a connection is refused at once; in-flight commands are failed as
 * soon as the connection drops instead of being retried; and every command is bounded by `commandTimeout`
 * (a Redis that hangs rather than closes). Reconnection never gives up, with a backoff capped at one second,
 * so service resumes by itself when Redis returns.
 */
export function connectRedis(target: RedisTarget): RedisClient {
  if (target.kind === "cluster") return connectCluster(target.nodes);
  return new OneWritePerTurnRedis(target.url, {
    enableAutoPipelining: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: COMMAND_TIMEOUT_MS,
    retryStrategy: backoff,
    lazyConnect: false,
  });
}

/**
 * The same behaviour on a cluster. The seed URLs only find the cluster: the nodes it reports are reached with
 * the first URL's credentials and TLS, since CLUSTER SLOTS carries neither. Redirections during a failover
 * are followed a few times, each after a short pause, and then fail: a request waits at most about a second
 * for a new master, never for the whole election.
 */
function connectCluster(urls: readonly string[]): Cluster {
  const seeds = urls.map((u) => new URL(u));
  const first = seeds[0];
  if (!first) throw new Error("REDIS_CLUSTER_NODES names no node");
  const keyPrefix = first.searchParams.get("keyPrefix") ?? undefined;
  const nodeOptions: RedisOptions = {
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
    ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
    ...(first.protocol === "rediss:" ? { tls: {} } : {}),
  };
  return new Cluster(
    seeds.map((u) => ({ host: u.hostname, port: Number(u.port || 6379) })),
    {
      enableAutoPipelining: true,
      enableOfflineQueue: false,
      // Reads go to masters: a replica may lag, and a code or a token must be read where it was written.
      scaleReads: "master",
      clusterRetryStrategy: backoff,
      maxRedirections: 6,
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      retryDelayOnTryAgain: 100,
      slotsRefreshTimeout: CONNECT_TIMEOUT_MS,
      // A failover moves slots without telling clients that are not redirected: look every few seconds.
      slotsRefreshInterval: 5_000,
      ...(keyPrefix ? { keyPrefix } : {}),
      redisOptions: nodeOptions,
    },
  );
}
