import type { Cluster, Redis } from "ioredis";
import { beforeAll, describe } from "vitest";
import { MemoryRefreshStore } from "../src/tokens/memory-refresh-store.js";
import { familyKey, RedisRefreshStore, sessionKey } from "../src/tokens/redis-refresh-store.js";
import { sessionStoreContract } from "./session-store.contract.js";
import { describeWithRedis } from "./support/redis.js";
import { describeWithRedisCluster } from "./support/redis-cluster.js";
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

describeWithRedisCluster("RedisRefreshStore sessions", (cluster) => {
  let client: Cluster;
  let store: RedisRefreshStore;
  beforeAll(() => {
    client = cluster.client();
    store = new RedisRefreshStore(client);
  });
  sessionStoreContract(
    () => ({
      store,
      shortTtlSeconds: 1,
      waitUntilExpired: async (userId, family) => {
        // One user's keys share a slot, so one EXISTS names both.
        await until(
          async () => (await client.exists(familyKey(userId, family), sessionKey(userId, family))) === 0,
          { what: "the session to expire" },
        );
      },
      tick: async () => {
        // Each master times its own users' sessions: every master's clock must have moved on.
        const masters = (await cluster.topology()).filter((n) => n.role === "master");
        const starts = await Promise.all(masters.map((m) => nodeNowMs(cluster.node(m.port))));
        await until(async () => {
          const nows = await Promise.all(masters.map((m) => nodeNowMs(cluster.node(m.port))));
          return nows.every((n, i) => n > (starts[i] ?? Number.POSITIVE_INFINITY));
        });
      },
    }),
    7000,
  );
});

async function nodeNowMs(node: Redis): Promise<number> {
  const [s, us] = await node.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}
