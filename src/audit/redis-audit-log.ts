import { AsyncLocalStorage } from "node:async_hooks";
import type { AuditEntry, AuditLog, LoginLog } from "../login/ports.js";
import { isCluster, type RedisClient } from "../redis/client.js";
import { type AuditRecord, fieldsOf, recordOf } from "./record.js";

const STREAM = "audit:stream";
/** How long one XREAD waits for new events before asking again (and noticing a watcher that left). */
const BLOCK_MS = 2_000;
const BATCH = 100;

/**
 * The audit log on a Redis Stream. An append is an XADD issued at once and never awaited by the request:
 * auto-pipelining sends it in the write that is going out anyway, so it costs the request no round trip.
 * `MAXLEN ~` keeps the stream about `maxLen` long at the cost of trimming whole nodes.
 *
 * The XADD runs in the async context the log was built in, not the request's: it is the log's write, which
 * the request never waits on (an outcome's event follows the round trip that decided it), so tracing that
 * follows a request's context (the bench's round-trip tracer, per-request log fields) does not count it as
 * one of the request's round trips.
 */
export class RedisAuditLog implements AuditLog {
  readonly #detached = AsyncLocalStorage.snapshot();

  constructor(
    private readonly redis: RedisClient,
    private readonly maxLen: number,
    private readonly log: LoginLog,
    private readonly now: () => number = Date.now,
  ) {}

  append(entry: AuditEntry): void {
    const fields = fieldsOf(entry, this.now());
    this.#detached(() => {
      this.redis
        .xadd(STREAM, "MAXLEN", "~", this.maxLen, "*", ...fields)
        .catch((err: unknown) =>
          this.log.warn({ err, event: entry.event }, "could not append to the audit stream"),
        );
    });
  }

  /**
   * Events after `fromId` ("" for only new ones, "0" for the oldest kept), then live, until `signal` aborts.
   * Each watcher blocks in XREAD on a connection of its own, so it never holds up the service's commands.
   */
  async *watch(fromId: string, signal: AbortSignal): AsyncIterable<AuditRecord> {
    // A client of its own (a Cluster of its own on a cluster, whose options nest the per-node ones).
    const commandTimeout = BLOCK_MS + 3_000;
    const conn = isCluster(this.redis)
      ? this.redis.duplicate([], {
          enableAutoPipelining: false,
          lazyConnect: true,
          redisOptions: { ...this.redis.options.redisOptions, commandTimeout },
        })
      : this.redis.duplicate({ enableAutoPipelining: false, commandTimeout, lazyConnect: true });
    const stop = () => conn.disconnect();
    signal.addEventListener("abort", stop, { once: true });
    try {
      await conn.connect();
      let last = fromId;
      if (last === "") {
        const [newest] = await conn.xrevrange(STREAM, "+", "-", "COUNT", 1);
        last = newest?.[0] ?? "0-0";
      }
      while (!signal.aborted) {
        const answer = await conn.xread("COUNT", BATCH, "BLOCK", BLOCK_MS, "STREAMS", STREAM, last);
        for (const [, entries] of answer ?? []) {
          for (const [id, fields] of entries) {
            last = id;
            yield recordOf(id, fields);
          }
        }
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    } finally {
      signal.removeEventListener("abort", stop);
      conn.disconnect();
    }
  }
}
