import type { Redis } from "ioredis";
import { beforeAll, describe } from "vitest";
import { MemoryRefreshStore } from "../src/tokens/memory-refresh-store.js";
import { familyKey, RedisRefreshStore, sessionKey } from "../src/tokens/redis-refresh-store.js";
import { sessionStoreContract } from "./session-store.contract.js";
import { describeWithRedis } from "./support/redis.js";
import { until } from "./support/wait.js";

describe("MemoryRefreshStore sessions", () => {
  let now = 1_700_000_000_000;
  const store = new MemoryRefreshStore({ now: () => now });
  sessionStoreContract(
    () => ({
      store,
      shortTtlSeconds: 1,
      waitUntilExpired: async () => {
        now += 1000;
      },
      tick: async () => {
        now += 5;
      },
    }),
    5000,
  );
});

describeWithRedis("RedisRefreshStore sessions", (redis) => {
  let client: Redis;
  let store: RedisRefreshStore;
  beforeAll(() => {
    client = redis.client();
    store = new RedisRefreshStore(client);
  });
  sessionStoreContract(
    () => ({
      store,
      shortTtlSeconds: 1,
      waitUntilExpired: async (userId, family) => {
        await until(
          async () => (await client.exists(familyKey(userId, family), sessionKey(userId, family))) === 0,
          { what: "the session to expire" },
        );
      },
      tick: async () => {
        const [s, us] = await client.time();
        const start = Number(s) * 1000 + Math.floor(Number(us) / 1000);
        await until(async () => {
          const [s2, us2] = await client.time();
          return Number(s2) * 1000 + Math.floor(Number(us2) / 1000) > start;
        });
      },
    }),
    6000,
  );
});
