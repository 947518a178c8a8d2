import { AsyncLocalStorage } from "node:async_hooks";
import type { AuditEntry, AuditLog, LoginLog } from "../login/ports.js";
import { isCluster, type RedisClient } from "../redis/client.js";
import { type AuditRecord, fieldsOf, recordOf } from "./record.js";

const STREAM = "audit:stream";
/** How long one XREAD waits for new events before asking again (and noticing a watcher that left). */
const BLOCK_MS = 2_000;
const BATCH = 100;

// Appends a batch: ARGV is MAXLEN, the retention in ms, then per entry its field count and its fields. One
// command for the events of one turn of the event loop, where an XADD each cost a command each (ioredis builds,
// writes and parses every one: ~2 % of a SendOtp). Then the retention: entries older than it are trimmed (stream
// ids are Redis's clock in ms) and the key expires that long after the last append, so the stream is bounded in
// time as well as in length and no key of the service outlives its use (users aside).
const APPEND_BATCH = `
local i = 3
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('XTRIM', KEYS[1], 'MINID', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
`;

/** The batch script as `defineCommand` installs it: one EVALSHA per call. */
interface AuditCommands {
  auditAppendBatch(stream: string, ...args: (string | number)[]): Promise<number>;
}

/**
 * The audit log on a Redis Stream. An append is queued and never awaited by the request; the queue goes out at
 * the end of the event loop's turn as one script call, so under load the events of many requests cost one
 * command. `MAXLEN ~` keeps the stream about `maxLen` long at the cost of trimming whole nodes; `retentionMs`
 * bounds the age of what it keeps. Each event keeps the time it was appended at (`t`); the stream id is when it
 * was written.
 *
 * The write runs in the async context the log was built in, not a request's: it is the log's write, which
 * no request waits on (an outcome's event follows the round trip that decided it), so tracing that follows a
 * request's context (the bench's round-trip tracer) does not count it as one of the request's round trips.
 */
export class RedisAuditLog implements AuditLog {
  readonly #detached = AsyncLocalStorage.snapshot();
  #queue: { readonly event: string; readonly fields: string[] }[] = [];

  readonly #redis: RedisClient & AuditCommands;

  constructor(
    private readonly redis: RedisClient,
    private readonly maxLen: number,
    private readonly retentionMs: number,
    private readonly log: LoginLog,
    private readonly now: () => number = Date.now,
  ) {
    redis.defineCommand("auditAppendBatch", { numberOfKeys: 1, lua: APPEND_BATCH });
    this.#redis = redis as RedisClient & AuditCommands;
  }

  append(entry: AuditEntry): void {
    this.#queue.push({ event: entry.event, fields: fieldsOf(entry, this.now()) });
    if (this.#queue.length === 1) this.#detached(() => setImmediate(this.#flush));
  }

  readonly #flush = (): void => {
    const batch = this.#queue;
    this.#queue = [];
    const failed = (err: unknown) =>
      this.log.warn(
        { err, events: batch.length, event: batch[0]?.event },
        "could not append to the audit stream",
      );
    const args: (string | number)[] = [this.maxLen, this.retentionMs];
    for (const { fields } of batch) args.push(fields.length, ...fields);
    this.#redis.auditAppendBatch(STREAM, ...args).catch(failed);
  };

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
