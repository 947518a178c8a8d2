import { StoreUnavailableError } from "../login/failures.js";

// What ioredis (and rate-limiter-flexible over it) say when Redis is away or slow: no connection, a connection
// lost mid-command, the command timeout, or a node that is loading, failing over or not serving this slot.
const UNREACHABLE_MESSAGES = [
  "Command timed out",
  "Stream isn't writeable",
  "Connection is closed",
  "Redis connection is not ready",
  "connect ETIMEDOUT",
  // A cluster between states: every node unreachable, the slot map not yet refreshed after a failover, or a
  // slot redirected again and again while masters change (a MOVED storm).
  "Cluster isn't ready",
  "Failed to refresh slots cache",
  "Too many Cluster redirections",
  "None of startup nodes is available",
  "Node is disconnected",
  // ioredis's auto-pipelining on a cluster groups a tick's commands by the nodes serving their slots when they
  // were queued; if a slot-map refresh lands before the batch leaves (a failover, while an earlier batch to
  // that node is in flight), the batch now spans two groups and ioredis refuses all of it. The map moved, not
  // our keys (seen in test/cluster-drills.test.ts as a 500). Our own pipelines cannot produce it: a durable
  // write is one keyed command (ReplicaAck.write). A command whose keys span slots is still a bug (CROSSSLOT,
  // "All the keys in a pipeline command should belong to the same slot").
  "All keys in the pipeline should belong to the same slots allocation group",
];
const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTCONN",
  "EHOSTUNREACH",
]);
const UNREACHABLE_NAMES = new Set(["MaxRetriesPerRequestError", "ClusterAllFailedError", "AbortError"]);
// Replies a healthy command can get while the cluster moves under it: retrying later helps. NOSCRIPT too: a
// node that has just become a master may not have a script (Redis 7 replicates a script's effects, not the
// script), and ioredis answers a NOSCRIPT by resending the script as EVAL only once, so in a failover one can
// reach us (seen in test/cluster-drills.test.ts as a 500); ioredis then sends EVAL on that connection.
const TRANSIENT_REPLY =
  /^(LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|READONLY|NOREPLICAS|MOVED|ASK|BUSY|NOSCRIPT)\b/;

/**
 * Sorts a Redis failure: unreachable or transiently refusing becomes `StoreUnavailableError` (503, retry);
 * anything else (a script error, WRONGTYPE, a reply we did not expect) is returned as is, a bug to be answered
 * `internal`, never disguised as an outage.
 */
export function classifyRedisError(err: unknown): unknown {
  if (err instanceof StoreUnavailableError || !(err instanceof Error)) return err;
  const code = (err as { code?: unknown }).code;
  if (
    UNREACHABLE_NAMES.has(err.name) ||
    (typeof code === "string" && UNREACHABLE_CODES.has(code)) ||
    UNREACHABLE_MESSAGES.some((m) => err.message.startsWith(m)) ||
    TRANSIENT_REPLY.test(err.message)
  ) {
    return new StoreUnavailableError(`redis: ${err.message}`, { cause: err });
  }
  return err;
}

/** Runs one store operation, rejecting with the classified error. */
export async function redisCall<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    throw classifyRedisError(err);
  }
}
