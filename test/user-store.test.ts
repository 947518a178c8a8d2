import type { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { StoreUnavailableError } from "../src/login/failures.js";
import { ReplicaAck } from "../src/redis/replica-ack.js";
import { MemoryUserStore } from "../src/users/memory-store.js";
import { RedisUserStore, USER_ID_BLOCK } from "../src/users/redis-store.js";
import { describeWithRedis } from "./support/redis.js";
import { describeWithRedisCluster } from "./support/redis-cluster.js";
import { until } from "./support/wait.js";
import { uniquePhone, userStoreContract } from "./user-store.contract.js";

userStoreContract("memory", async () => ({ store: new MemoryUserStore() }), {
  numRuns: 100,
  makeEmptyStore: async () => new MemoryUserStore(),
});

describeWithRedis("RedisUserStore", (redis) => {
  let client: Redis;
  beforeAll(() => {
    client = redis.client();
  });

  userStoreContract("redis", async () => ({ store: new RedisUserStore(client) }), {
    numRuns: 30,
    // An empty keyspace rather than a wiped database, so this runs on a given REDIS_URL too.
    makeEmptyStore: async () => new RedisUserStore(redis.fresh().client()),
  });

  /** Phone of every `user:id:*` index entry, by key. */
  async function index(): Promise<Map<string, string | null>> {
    const keys = await redis.keys("user:id:*");
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
    expect(Date.parse(fields.created_at ?? "")).toBeGreaterThanOrEqual(before - 1000);
    expect(await client.get(`user:id:${user.id}`)).toBe(phone);
    expect(Number(await client.get("user:seq"))).toBeGreaterThanOrEqual(user.id);
  });

  it("leaves no index entry for an id lost to a race or an existing user, and deletes none", async () => {
    const store = new RedisUserStore(client);
    const phone = uniquePhone();
    const del = vi.spyOn(client, "del");
    try {
      const users = await Promise.all(Array.from({ length: 20 }, () => store.create(phone)));
      await store.create(phone);
      const entries = [...(await index())].filter(([, p]) => p === phone).map(([k]) => k);
      expect(entries).toEqual([`user:id:${users[0]?.id}`]);
      // On a single Redis only the call that creates the user writes its entry: nothing to take back.
      expect(del).not.toHaveBeenCalled();
    } finally {
      del.mockRestore();
    }
  });

  it("finds in one round trip and, with ids in hand, creates in one", async () => {
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
      // The first create reserves a block of ids; ioredis sends a script's first call on a connection as EVAL.
      // The steady state is what is measured.
      await store.create(uniquePhone());
      expect(log.slice(0, 2)).toEqual(["incrby", "reply incrby"]);
      log.length = 0;
      await store.findByPhone(phone);
      expect(log.splice(0)).toEqual(["hgetall", "reply hgetall"]);
      await store.create(phone);
      // The record and its index entry in one script call on a single Redis.
      expect(log.splice(0)).toEqual(["evalsha", "reply evalsha"]);
    } finally {
      spy.mockRestore();
    }
  });

  describe("ids reserved in blocks", () => {
    // Each test counts ids from an empty store: a keyspace of its own.
    let db: Redis;
    beforeEach(() => {
      db = redis.fresh().client();
    });

    it("takes one INCRBY per block and hands out 1, 2, 3, …", async () => {
      const store = new RedisUserStore(db, 3);
      const ids: number[] = [];
      for (let i = 0; i < 7; i++) ids.push((await store.create(uniquePhone())).id);
      expect(ids).toEqual([1, 2, 3, 4, 5, 6, 7]);
      // Three blocks of three reserved: 7 used, 8 and 9 skipped if the process stopped now.
      expect(await db.get("user:seq")).toBe("9");
    });

    it("concurrent creates share one reservation", async () => {
      const store = new RedisUserStore(db, 100);
      const users = await Promise.all(Array.from({ length: 50 }, () => store.create(uniquePhone())));
      expect(users.map((u) => u.id).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
      expect(await db.get("user:seq")).toBe("100");
    });

    it("processes get disjoint ids, continuing a counter left by one-at-a-time INCRs", async () => {
      await db.set("user:seq", "41");
      const a = new RedisUserStore(db, 5);
      const b = new RedisUserStore(db, 5);
      const users = await Promise.all(
        Array.from({ length: 24 }, (_, i) => (i % 2 ? a : b).create(uniquePhone())),
      );
      const ids = users.map((u) => u.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(Math.min(...ids)).toBe(42);
      for (const u of users) expect(await db.get(`user:id:${u.id}`)).toBe(u.phone);
    });

    it("fetches the next block ahead, so first logins do not wait when a block runs out", async () => {
      const store = new RedisUserStore(db, 4);
      for (let i = 0; i < 3; i++) await store.create(uniquePhone());
      // Half the block is used: the next one is on its way without anyone waiting for it.
      await until(async () => (await db.get("user:seq")) === "8", { what: "the next block to be fetched" });
      const spy = vi.spyOn(db, "incrby");
      try {
        const ids = [(await store.create(uniquePhone())).id, (await store.create(uniquePhone())).id];
        expect(ids).toEqual([4, 5]);
        expect(spy).not.toHaveBeenCalled();
      } finally {
        spy.mockRestore();
      }
    });

    it("refuses a block size that is not a whole number >= 1", () => {
      expect(() => new RedisUserStore(client, 0)).toThrow(RangeError);
      expect(() => new RedisUserStore(client, 1.5)).toThrow(RangeError);
    });

    it("a failed reservation fails the create and the next create tries again", async () => {
      const store = new RedisUserStore(client, 10);
      const spy = vi.spyOn(client, "incrby").mockRejectedValueOnce(new Error("connection lost"));
      try {
        await expect(store.create(uniquePhone())).rejects.toThrow("connection lost");
        const user = await store.create(uniquePhone());
        expect(user.id).toBeGreaterThanOrEqual(1);
      } finally {
        spy.mockRestore();
      }
    });
  });
});

describeWithRedisCluster("RedisUserStore", (cluster) => {
  let client: Cluster;
  beforeAll(() => {
    client = cluster.client();
  });

  userStoreContract("redis cluster", async () => ({ store: new RedisUserStore(client) }), {
    numRuns: 20,
    makeEmptyStore: async () => new RedisUserStore(cluster.fresh().client()),
  });

  userStoreContract(
    "redis cluster, waiting for a replica",
    async () => ({ store: durableStore(client, undefined) }),
    { numRuns: 10, makeEmptyStore: async () => durableStore(cluster.fresh().client(), undefined) },
  );

  // Generous: on a loaded 2-core machine a replica can take well over the production default to acknowledge.
  function durableStore(c: Cluster, minReplicas: number | undefined, timeoutMs = 5_000) {
    const ack = new ReplicaAck(c, { minReplicas, timeoutMs });
    acks.push(ack);
    return new RedisUserStore(c, USER_ID_BLOCK, ack);
  }
  const acks: ReplicaAck[] = [];
  afterAll(() => Promise.all(acks.map((a) => a.close())));

  /** The record as the master's replica holds it. */
  async function onReplica(key: string): Promise<Record<string, string>> {
    const master = await cluster.masterOf(key);
    const replica = (await cluster.topology()).find((n) => n.masterId === master.id);
    if (!replica) throw new Error(`no replica of ${master.port}`);
    const node = cluster.node(replica.port);
    await node.call("READONLY");
    return node.hgetall(key);
  }

  it("answers a new user only once its record is on a replica (WAIT, 1 by default on a cluster)", async () => {
    const ack = new ReplicaAck(client, { minReplicas: undefined, timeoutMs: 500 });
    acks.push(ack);
    expect(await ack.required()).toBe(1);
    const store = new RedisUserStore(client, USER_ID_BLOCK, ack);
    const phone = uniquePhone();
    const user = await store.create(phone);
    // No wait here: WAIT already had the replica acknowledge the write.
    expect(await onReplica(`user:{${phone}}`)).toMatchObject({ id: String(user.id), phone });
  });

  it("a durable write is one command: two are refused before anything is sent", async () => {
    const ack = new ReplicaAck(client, { minReplicas: 1, timeoutMs: 500 });
    acks.push(ack);
    const key = `durable-two:{${uniquePhone()}}`;
    await expect(ack.write((p) => p.set(key, "1").set(`${key}:b`, "2"))).rejects.toThrow(
      "a durable write is one command, not 2",
    );
    expect(await client.exists(key)).toBe(0);
    expect(await ack.write((p) => p.set(key, "1"))).toEqual(["OK"]);
    await client.del(key);
  });

  it("not acknowledged in time: Unavailable, and the next login finds the same user, one id", async () => {
    const phone = uniquePhone();
    // Two replicas asked of a shard that has one: never acknowledged.
    await expect(durableStore(client, 2, 100).create(phone)).rejects.toBeInstanceOf(StoreUnavailableError);
    const store = durableStore(client, 1);
    const found = await store.findByPhone(phone);
    const again = await store.create(phone);
    if (found) expect(again.id).toBe(found.id);
    expect(await store.create(phone)).toEqual(again);
  });
});
