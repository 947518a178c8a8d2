import type { Cluster, Redis } from "ioredis";
import { isCluster, type RedisClient } from "../redis/client.js";
import type { ReadinessCheck } from "./readiness.js";

/**
 * The store answers: a Redis PING; on a cluster, `cluster_state:ok` and a PING from every master within
 * `masterTimeoutMs` (one frozen master holds a share of every limit and of the users, so the service is not
 * ready without it); nothing to ask for the embedded in-memory store.
 */
export function storeCheck(redis: RedisClient | undefined, masterTimeoutMs = 800): ReadinessCheck {
  return {
    name: "store",
    async probe() {
      if (!redis) return;
      // ioredis would queue the command until a reconnect; a probe wants the answer "not now" instead.
      if (redis.status !== "ready") throw new Error(`redis is ${redis.status}`);
      if (isCluster(redis)) await probeCluster(redis, masterTimeoutMs);
      else await redis.ping();
    },
  };
}

async function probeCluster(cluster: Cluster, timeoutMs: number): Promise<void> {
  const masters = cluster.nodes("master");
  if (masters.length === 0) throw new Error("redis cluster: no master known");
  const answers = await Promise.all(
    masters.map((node) =>
      within(timeoutMs, askMaster(node)).then(
        (problem) => problem,
        (err: unknown) => `${nodeName(node)}: ${err instanceof Error ? err.message : String(err)}`,
      ),
    ),
  );
  const problems = answers.filter((p): p is string => p !== undefined);
  if (problems.length > 0) throw new Error(`redis cluster: ${problems.join("; ")}`);
}

/** Undefined when the master answers and sees the cluster as whole; otherwise what is wrong. */
async function askMaster(node: Redis): Promise<string | undefined> {
  // "wait": a node the cluster client has not needed yet (it connects lazily); asking connects it.
  if (node.status !== "ready" && node.status !== "wait") return `${nodeName(node)} is ${node.status}`;
  const info = String(await node.cluster("INFO"));
  const state = /cluster_state:(\w+)/.exec(info)?.[1];
  return state === "ok" ? undefined : `${nodeName(node)} says cluster_state:${state ?? "unknown"}`;
}

function nodeName(node: Redis): string {
  return `${node.options.host}:${node.options.port}`;
}

function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
