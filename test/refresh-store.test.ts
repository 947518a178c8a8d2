import type { Cluster, Redis } from "ioredis";
import { beforeAll, describe, expect, it } from "vitest";
import type { TokenRef } from "../src/login/model.js";
import { mintRefreshToken } from "../src/login/refresh-token.js";
import { MemoryRefreshStore } from "../src/tokens/memory-refresh-store.js";
import {
  familyKey,
  RedisRefreshStore,
  sessionIndexKey,
  sessionKey,
  tokenKey,
} from "../src/tokens/redis-refresh-store.js";
import { refreshStoreContract } from "./refresh-store.contract.js";
import { describeWithRedis } from "./support/redis.js";
import { describeWithRedisCluster } from "./support/redis-cluster.js";
import { until } from "./support/wait.js";

const PHONE = "+919876543210";
const ROLE = "consumer";

describe("MemoryRefreshStore", () => {
  let now = 1_700_000_000_000;
  const store = new MemoryRefreshStore({ now: () => now });

  refreshStoreContract(() => ({
    store,
    racers: (n) => Array.from({ length: n }, () => store),
    shortTtlSeconds: 1,
    waitUntilExpired: async () => {
      now += 1000;
    },
    waitPastGrace: async (_spent, graceSeconds) => {
      now += graceSeconds * 1000;
    },
  }));

  it("extends the family on rotation, while a token's own TTL is fixed", async () => {
    const first = mintRefreshToken(1);
    await store.create({ ...first.ref, phone: PHONE, role: ROLE }, 10);
    now += 8000;
    const second = mintRefreshToken(1, first.ref.family);
    expect((await store.rotate(first.ref, second.ref.hash, 10, 0)).kind).toBe("ok");
    now += 8000; // past the first token's and the family's original expiry
    const third = mintRefreshToken(1, first.ref.family);
    expect((await store.rotate(second.ref, third.ref.hash, 10, 0)).kind).toBe("ok");
    expect((await store.rotate(first.ref, mintRefreshToken(1, first.ref.family).ref.hash, 10, 0)).kind).toBe(
      "invalid",
    );
  });

  it("does not grow without bound when tokens expire", async () => {
    const local = new MemoryRefreshStore({ now: () => now });
    for (let i = 0; i < 20_000; i++) {
      await local.create({ ...mintRefreshToken(i).ref, phone: PHONE, role: ROLE }, 1);
      now += 2000;
    }
    expect(local.size).toBeLessThan(3 * 1024);
  });
});

describeWithRedis("RedisRefreshStore", (redis) => {
  let client: Redis;
  let store: RedisRefreshStore;

  beforeAll(() => {
    client = redis.client();
    store = new RedisRefreshStore(client);
  });

  refreshStoreContract(() => ({
    store,
    racers: (n) => Array.from({ length: n }, () => new RedisRefreshStore(redis.client())),
    shortTtlSeconds: 1,
    waitUntilExpired: (ref) =>
      waitUntilGone(client, [tokenKey(ref.userId, ref.hash), familyKey(ref.userId, ref.family)]),
    // The script times the grace by Redis's clock, so the wait reads that clock too.
    waitPastGrace: async (spent, graceSeconds) => {
      const spentAt = Number(await client.hget(tokenKey(spent.userId, spent.hash), "spentAt"));
      if (!Number.isSafeInteger(spentAt)) throw new Error("the token was never spent");
      await until(async () => (await redisNowMs(client)) >= spentAt + graceSeconds * 1000, {
        what: "the grace to pass on the Redis clock",
      });
    },
  }));

  it("keeps every key of a user under one hash tag and never stores the token itself", async () => {
    const userId = 424242;
    const first = mintRefreshToken(userId);
    await store.create({ ...first.ref, phone: PHONE, role: ROLE }, 60);
    const second = mintRefreshToken(userId, first.ref.family);
    expect((await store.rotate(first.ref, second.ref.hash, 60, 0)).kind).toBe("ok");

    const keys = await redis.keys(`*{u${userId}}*`);
    expect(keys.sort()).toEqual(
      [
        tokenKey(userId, first.ref.hash),
        tokenKey(userId, second.ref.hash),
        familyKey(userId, first.ref.family),
        sessionKey(userId, first.ref.family),
        sessionIndexKey(userId),
      ].sort(),
    );
    for (const key of keys) {
      // Redis Cluster hashes only the first {...} of a key: it must be the user's tag in every key.
      expect(key.match(/\{([^}]*)\}/)?.[1]).toBe(`u${userId}`);
      // Nothing is kept for ever.
      expect(await client.ttl(key), key).toBeGreaterThan(0);
    }
    const stored = JSON.stringify([
      keys,
      await client.hgetall(tokenKey(userId, first.ref.hash)),
      await client.hgetall(tokenKey(userId, second.ref.hash)),
      await client.get(familyKey(userId, first.ref.family)),
    ]);
    // What the grace needs of a spent token: the successor's hash (never the successor) and Redis's time.
    expect(await client.hgetall(tokenKey(userId, first.ref.hash))).toMatchObject({
      spent: "1",
      next: second.ref.hash,
      spentAt: expect.stringMatching(/^\d{13}$/),
    });
    for (const token of [first.token, second.token]) {
      expect(stored).not.toContain(token);
      expect(stored).not.toContain(token.split(".")[2]);
    }
  });

  it("sets TTLs: the family's is pushed out on rotation, a spent token keeps its own", async () => {
    const userId = 515151;
    const first = mintRefreshToken(userId);
    await store.create({ ...first.ref, phone: PHONE, role: ROLE }, 100);
    const second = mintRefreshToken(userId, first.ref.family);
    expect((await store.rotate(first.ref, second.ref.hash, 1000, 0)).kind).toBe("ok");

    const ttl = (key: string) => client.ttl(key);
    expect(await ttl(tokenKey(userId, first.ref.hash))).toBeLessThanOrEqual(100);
    expect(await ttl(tokenKey(userId, first.ref.hash))).toBeGreaterThan(0);
    expect(await ttl(tokenKey(userId, second.ref.hash))).toBeGreaterThan(900);
    expect(await ttl(familyKey(userId, first.ref.family))).toBeGreaterThan(900);

    // Revocation keeps the family's TTL, so a revoked family never lingers forever.
    expect(await store.revokeFamily(second.ref)).toBe(true);
    expect(await client.get(familyKey(userId, first.ref.family))).toBe("revoked");
    expect(await ttl(familyKey(userId, first.ref.family))).toBeGreaterThan(900);
  });

  it("rotates in one round trip (one EVALSHA once the script is cached)", async () => {
    const userId = 616161;
    const first = mintRefreshToken(userId);
    await store.create({ ...first.ref, phone: PHONE, role: ROLE }, 60);
    const monitor = await client.monitor();
    const seen: string[] = [];
    monitor.on("monitor", (_time: string, args: string[], source: string) => {
      // Commands a script runs are reported too, with source "lua"; only what the client sent counts.
      if (source !== "lua" && args.some((a) => a.includes(`{u${userId}}`)))
        seen.push(String(args[0]).toLowerCase());
    });
    const ref: TokenRef = first.ref;
    const next = mintRefreshToken(userId, ref.family);
    expect((await store.rotate(ref, next.ref.hash, 60, 0)).kind).toBe("ok");
    await until(() => seen.length > 0, { what: "MONITOR to report the rotation" });
    await monitor.disconnect();
    expect(seen).toEqual(["evalsha"]);
  });
});

async function redisNowMs(client: Redis): Promise<number> {
  const [seconds, micros] = await client.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

async function waitUntilGone(client: Redis | Cluster, keys: string[]): Promise<void> {
  await until(async () => (await client.exists(...keys)) === 0, { what: `${keys.join(", ")} to expire` });
}

describeWithRedisCluster("RedisRefreshStore", (cluster) => {
  let client: Cluster;
  let store: RedisRefreshStore;
  beforeAll(() => {
    client = cluster.client();
    store = new RedisRefreshStore(client);
  });

  refreshStoreContract(() => ({
    store,
    racers: (n) => Array.from({ length: n }, () => new RedisRefreshStore(cluster.client())),
    shortTtlSeconds: 1,
    waitUntilExpired: (ref) =>
      waitUntilGone(client, [tokenKey(ref.userId, ref.hash), familyKey(ref.userId, ref.family)]),
    waitPastGrace: async (spent, graceSeconds) => {
      const spentAt = Number(await client.hget(tokenKey(spent.userId, spent.hash), "spentAt"));
      if (!Number.isSafeInteger(spentAt)) throw new Error("the token was never spent");
      // The user's master timed the grace: read that master's clock, through a key of its slot.
      const master = await cluster.masterOf(tokenKey(spent.userId, spent.hash));
      await until(
        async () => (await redisNowMs(cluster.node(master.port))) >= spentAt + graceSeconds * 1000,
        {
          what: "the grace to pass on the Redis clock",
        },
      );
    },
  }));
});
