import { setImmediate as nextTurn } from "node:timers/promises";
import fc from "fast-check";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { connectRedis, untilReady } from "../src/redis/connect.js";
import { describeWithRedis } from "./support/redis.js";

/**
 * The single-Redis client writes the commands of one turn of the event loop in one socket write
 * (src/redis/one-write-per-turn.ts) and still pairs every reply with its own command. Only ECHO is sent: no
 * key is created, so a REDIS_URL given to the tests is left exactly as it was.
 */
describeWithRedis("the Redis client writes one turn's commands together", (redis) => {
  let client: Redis;
  /** Socket writes the client made (each `_write` or `_writev` is one write to the kernel), and their commands. */
  const writes: number[] = [];

  beforeAll(async () => {
    client = connectRedis({ kind: "single", url: redis.url }) as Redis;
    expect(await untilReady(client, 5_000)).toBe(true);
    const stream = client.stream as unknown as {
      _write: (chunk: unknown, encoding: string, cb: () => void) => void;
      _writev: (chunks: unknown[], cb: () => void) => void;
    };
    const write = stream._write;
    const writev = stream._writev;
    stream._write = function (chunk, encoding, cb) {
      writes.push(1);
      return write.call(this, chunk, encoding, cb);
    };
    stream._writev = function (chunks, cb) {
      writes.push(chunks.length);
      return writev.call(this, chunks, cb);
    };
  });
  afterAll(() => client?.quit());

  it("commands issued together leave in one write; a command of a later turn in a write of its own", async () => {
    writes.length = 0;
    const together = await Promise.all([client.echo("a"), client.echo("b"), client.echo("c")]);
    expect(together).toEqual(["a", "b", "c"]);
    expect(writes).toEqual([3]);

    writes.length = 0;
    expect(await client.echo("d")).toBe("d");
    expect(await client.echo("e")).toBe("e");
    expect(writes).toEqual([1, 1]);
  });

  it("commands issued by separate callbacks of one turn leave together", async () => {
    // Two immediates queued together run in the same check phase, each a callback of its own (process.nextTick
    // runs between them). Two timers would be the likelier case in the service, but their due times are read
    // from the clock one call apart, so on a loaded machine they can fall into different turns.
    writes.length = 0;
    const replies = await Promise.all(
      ["t1", "t2"].map(
        (tag) =>
          new Promise<string>((resolve, reject) => {
            setImmediate(() => client.echo(tag).then(resolve, reject));
          }),
      ),
    );
    expect(replies).toEqual(["t1", "t2"]);
    expect(writes).toEqual([2]);
  });

  it("every reply reaches its own command, however batches and turns interleave (property)", async () => {
    // A batch is issued in one turn; before the next one the test either awaits the replies so far or only
    // yields a turn of the event loop, so later batches are written while earlier replies are in flight.
    const batch = fc.record({ size: fc.integer({ min: 1, max: 12 }), awaitBefore: fc.boolean() });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(batch, { minLength: 1, maxLength: 8 }), async (batches) => {
        run += 1;
        writes.length = 0;
        const pending: Promise<string>[] = [];
        const expected: string[] = [];
        for (const [b, { size, awaitBefore }] of batches.entries()) {
          if (awaitBefore) await Promise.all(pending);
          else await nextTurn();
          for (let i = 0; i < size; i++) {
            const tag = `${run}:${b}:${i}`;
            expected.push(tag);
            pending.push(client.echo(tag));
          }
        }
        expect(await Promise.all(pending)).toEqual(expected);
        expect(writes).toEqual(batches.map((b) => b.size));
      }),
      { numRuns: 100 },
    );
  });
});
