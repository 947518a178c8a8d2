import type { ChainableCommander } from "ioredis";
import { StoreUnavailableError } from "../login/failures.js";
import { isCluster, type RedisClient, untilReady } from "./client.js";
import { classifyRedisError } from "./errors.js";

const REPLICAS_TTL_MS = 5_000;

export interface ReplicaAckSettings {
  /** Replicas a write must reach; undefined: 1 when a cluster has replicas, else 0. */
  readonly minReplicas: number | undefined;
  readonly timeoutMs: number;
}

/**
 * Writes that must survive a failover: sent as one pipeline followed by `WAIT`, on a connection of their
 * own. `WAIT` counts the replicas that have every earlier write of its connection, so it must follow the
 * write on the same connection (a cluster pipeline goes to its keys' master); and it blocks that connection
 * until the replicas answer, which must not hold up the service's other commands behind it.
 *
 * `WAIT` makes a write survive the failure of its master, not a failure of the whole shard: a replica that
 * acknowledged may still be the one that dies next, and Redis replication stays asynchronous.
 */
export class ReplicaAck {
  /** Whether writes on `redis` may have to wait for replicas: a cluster, or a count configured above 0. */
  static needed(redis: RedisClient, settings: ReplicaAckSettings): boolean {
    return settings.minReplicas === undefined ? isCluster(redis) : settings.minReplicas > 0;
  }

  #client: RedisClient | undefined;
  #replicas: number | undefined;
  #replicasAt = 0;
  #looking: Promise<void> | undefined;
  readonly #defines: [string, { numberOfKeys: number; lua: string }][] = [];

  constructor(
    private readonly redis: RedisClient,
    private readonly settings: ReplicaAckSettings,
  ) {
    // Connected ahead when writes may need it, so the first new user does not wait for the connection.
    if (settings.minReplicas !== 0 && (isCluster(redis) || (settings.minReplicas ?? 0) > 0))
      this.#connection();
  }

  /**
   * How many replicas a write needs now: as configured, or 1 while the cluster has a replica (looked up in
   * CLUSTER NODES at most every few seconds: replicas come and go, and CLUSTER SLOTS, which the client's slot
   * map comes from, leaves out a replica until it has replicated a write).
   */
  async required(): Promise<number> {
    if (this.settings.minReplicas !== undefined) return this.settings.minReplicas;
    if (!isCluster(this.redis)) return 0;
    const stale = Date.now() - this.#replicasAt > REPLICAS_TTL_MS;
    if (stale) {
      this.#replicasAt = Date.now();
      this.#looking = this.#countReplicas().then(
        (n) => {
          this.#replicas = n;
        },
        () => {
          // Unknown: keep the last answer (and ask again next time).
          this.#replicasAt = 0;
        },
      );
    }
    if (this.#replicas === undefined) await this.#looking;
    return (this.#replicas ?? 1) > 0 ? 1 : 0;
  }

  async #countReplicas(): Promise<number> {
    const [master] = isCluster(this.redis) ? this.redis.nodes("master") : [];
    if (!master) throw new Error("no master known");
    const nodes = String(await master.cluster("NODES"));
    return nodes.split("\n").filter((line) => / (slave|replica)[ ,]/.test(line) && !/fail/.test(line)).length;
  }

  /** A script the pipelines may call by name, as `defineCommand` would add it. */
  define(name: string, definition: { numberOfKeys: number; lua: string }): void {
    this.#defines.push([name, definition]);
    this.#client?.defineCommand(name, definition);
  }

  /**
   * Runs `build`'s one command in a pipeline, then `WAIT replicas timeout` when replicas are required;
   * resolves with the commands' replies, or rejects with StoreUnavailableError when fewer replicas
   * acknowledged in time (the write may or may not survive a failover: the caller answers 503, and a retry
   * finds whatever survived).
   */
  async write(build: (p: ChainableCommander) => ChainableCommander): Promise<unknown[]> {
    const replicas = await this.required().catch((err: unknown) => {
      throw classifyRedisError(err);
    });
    const connection = this.#connection();
    if (connection.status !== "ready") await untilReady(connection, 1_000);
    const pipeline = build(connection.pipeline());
    // One keyed command (WAIT has no key), so a cluster pipeline's keys are in one slot: the "same slots
    // allocation group" refusal classifyRedisError takes for a moved slot map can only be that.
    if (pipeline.length !== 1) throw new Error(`a durable write is one command, not ${pipeline.length}`);
    if (replicas > 0) pipeline.wait(replicas, this.settings.timeoutMs);
    let results: [Error | null, unknown][] | null;
    try {
      results = await pipeline.exec();
    } catch (err) {
      throw classifyRedisError(err);
    }
    if (!results) throw new StoreUnavailableError("redis: a durable write was discarded");
    const replies = results.map(([err, reply]) => {
      if (err) throw classifyRedisError(err);
      return reply;
    });
    if (replicas === 0) return replies;
    const acked = Number(replies.pop());
    if (!(acked >= replicas)) {
      throw new StoreUnavailableError(
        `redis: ${acked} of ${replicas} replicas acknowledged within ${this.settings.timeoutMs} ms`,
      );
    }
    return replies;
  }

  async close(): Promise<void> {
    const c = this.#client;
    this.#client = undefined;
    if (c) await c.quit().catch(() => c.disconnect());
  }

  #connection(): RedisClient {
    if (!this.#client) {
      // WAIT may take its whole timeout: the command timeout must not cut it short.
      const commandTimeout = this.settings.timeoutMs + 800;
      const r = this.redis;
      const c: RedisClient = isCluster(r)
        ? r.duplicate(undefined, { redisOptions: { ...r.options.redisOptions, commandTimeout } })
        : r.duplicate({ commandTimeout });
      c.on("error", () => {});
      for (const [name, definition] of this.#defines) c.defineCommand(name, definition);
      this.#client = c;
    }
    return this.#client;
  }
}
