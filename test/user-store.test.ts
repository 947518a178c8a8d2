import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { MemoryUserStore } from "../src/users/memory-store.js";
import { RedisUserStore } from "../src/users/redis-store.js";
import { redisReason, startTestRedis, type TestRedis } from "./support/redis.js";
import { uniquePhone, userStoreContract } from "./user-store.contract.js";

userStoreContract("memory", async () => ({ store: new MemoryUserStore() }), {
  numRuns: 100,
  makeEmptyStore: async () => new MemoryUserStore(),
});

const skip = redisReason();
describe.skipIf(skip)("RedisUserStore", () => {
  let redis: TestRedis;
  let client: Redis;
  beforeAll(async () => {
    redis = await startTestRedis();
    client = redis.client();
  });
  afterAll(() => redis.close());

  userStoreContract("redis", async () => ({ store: new RedisUserStore(client) }), {
    numRuns: 30,
    // Only a server of our own may be wiped; a given REDIS_URL keeps its data, and this check is skipped.
    makeEmptyStore: process.env.REDIS_URL
      ? undefined
      : async () => {
          const empty = redis.client();
          await empty.select(1);
          await empty.flushdb();
          return new RedisUserStore(empty);
        },
  });

  /** Phone of every `user:id:*` index entry, by key. */
  async function index(): Promise<Map<string, string | null>> {
    const keys = await client.keys("user:id:*");
    const phones = keys.length ? await client.mget(keys) : [];
    return new Map(keys.map((k, i) => [k, phones[i] ?? null]));
  }

  it("keeps a hash under the phone's hash tag and an id -> phone index", async () => {
    const store = new RedisUserStore(client);
    const phone = uniquePhone();
    const before = Date.now();
    const user = await store.create(phone);
    const fields = await client.hgetall(`user:{${phone}}`);
    expect(fields).toEqual({
      id: String(user.id),
      phone,
      name: `User ${phone.slice(-4)}`,
      role: "consumer",
      verified: "1",
      created_at: expect.any(String),
    });
    expect(Date.parse(fields.created_at)).toBeGreaterThanOrEqual(before - 1000);
    expect(await client.get(`user:id:${user.id}`)).toBe(phone);
    expect(Number(await client.get("user:seq"))).toBeGreaterThanOrEqual(user.id);
  });

  it("takes back the index entry of an id lost to a race or an existing user", async () => {
    const store = new RedisUserStore(client);
    const phone = uniquePhone();
    const users = await Promise.all(Array.from({ length: 20 }, () => store.create(phone)));
    await store.create(phone);
    const entries = [...(await index())].filter(([, p]) => p === phone).map(([k]) => k);
    expect(entries).toEqual([`user:id:${users[0]?.id}`]);
  });

  it("finds in one round trip and creates in two", async () => {
    const store = new RedisUserStore(client);
    const phone = uniquePhone();
    const send = client.sendCommand.bind(client);
    // Logs each command as it is written and each reply as it arrives, so overlap shows in the order.
    const log: string[] = [];
    const spy = vi.spyOn(client, "sendCommand").mockImplementation((command, stream) => {
      log.push(command.name);
      command.promise.then(
        () => log.push(`reply ${command.name}`),
        () => log.push(`error ${command.name}`),
      );
      return send(command, stream);
    });
    try {
      // ioredis sends a script's first call on a connection as EVAL; the steady state is what is measured.
      await store.create(uniquePhone());
      log.length = 0;
      await store.findByPhone(phone);
      expect(log.splice(0)).toEqual(["hgetall", "reply hgetall"]);
      await store.create(phone);
      // Both go out before either reply is in: one round trip after the INCR's. (The replies' order as seen
      // here depends on promise chaining inside ioredis, not on the wire.)
      const sent = log.splice(0);
      expect(sent.slice(0, 4)).toEqual(["incr", "reply incr", "evalsha", "set"]);
      expect(sent.slice(4).sort()).toEqual(["reply evalsha", "reply set"]);
    } finally {
      spy.mockRestore();
    }
  });
});
