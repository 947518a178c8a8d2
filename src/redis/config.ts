import { type EnvReader, IN_PRODUCTION } from "../env-reader.js";

/** Where the store is: one Redis, or a Redis Cluster reached through its seed nodes. */
export type RedisTarget =
  | { readonly kind: "single"; readonly url: string }
  | { readonly kind: "cluster"; readonly nodes: readonly string[] };

export interface RedisConfig {
  readonly target: RedisTarget;
  /**
   * Replicas a new user record must reach before the login that created it is answered (`WAIT`); undefined:
   * 1 when the store has replicas, 0 otherwise (decided when it is needed, as replicas come and go).
   */
  readonly minReplicasAck: number | undefined;
  /** How long `WAIT` may take before the login is answered Unavailable. */
  readonly replicaAckTimeoutMs: number;
}

const URL_PATTERN = /^rediss?:\/\//;

/**
 * REDIS_URL or REDIS_CLUSTER_NODES (exactly one), and the durability of new identities; undefined in
 * development, where the embedded in-memory store is used instead.
 */
export function readRedisConfig(r: EnvReader): RedisConfig | undefined {
  const url = r.optional("REDIS_URL");
  const nodes = r.list("REDIS_CLUSTER_NODES");
  const minReplicasRaw = r.optional("REDIS_MIN_REPLICAS_ACK");
  const minReplicasAck = minReplicasRaw === undefined ? undefined : r.int("REDIS_MIN_REPLICAS_ACK", 0, 0, 16);
  const replicaAckTimeoutMs = r.int("REDIS_REPLICA_ACK_TIMEOUT_MS", 500, 1, 60_000);
  if (url !== undefined && nodes.length > 0) {
    r.problems.push(
      "REDIS_URL and REDIS_CLUSTER_NODES are both set: set REDIS_URL for one Redis or REDIS_CLUSTER_NODES for a cluster, not both",
    );
    return undefined;
  }
  if (url === undefined && nodes.length === 0) {
    if (r.production) {
      r.problems.push(
        `REDIS_URL is required ${IN_PRODUCTION}, or REDIS_CLUSTER_NODES for a Redis Cluster (the in-memory store loses codes, users and sessions on restart)`,
      );
    }
    return undefined;
  }
  if (url !== undefined) {
    if (!URL_PATTERN.test(url))
      r.problems.push(`REDIS_URL must start with redis:// or rediss://, got "${url}"`);
    return { target: { kind: "single", url }, minReplicasAck, replicaAckTimeoutMs };
  }
  for (const node of nodes) {
    if (!URL_PATTERN.test(node)) {
      r.problems.push(`REDIS_CLUSTER_NODES must list redis:// or rediss:// URLs, got "${node}"`);
      continue;
    }
    // A cluster has one database; a /db elsewhere would be silently ignored, so data would not be where meant.
    const db = new URL(node).pathname.replace(/^\//, "");
    if (db !== "" && db !== "0") {
      r.problems.push(
        `REDIS_CLUSTER_NODES: "${node}" names database ${db}, but a Redis Cluster has only database 0`,
      );
    }
  }
  return { target: { kind: "cluster", nodes }, minReplicasAck, replicaAckTimeoutMs };
}
