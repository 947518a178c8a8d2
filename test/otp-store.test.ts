import { randomBytes } from "node:crypto";
import type { Cluster, Redis } from "ioredis";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { newVerificationId } from "../src/login/verifications.js";
import { MemoryOtpStore } from "../src/otp/memory-store.js";
import { RedisOtpStore } from "../src/otp/redis-store.js";
import { otpStoreContract, uniquePhone } from "./otp-store.contract.js";
import { describeWithRedis } from "./support/redis.js";
import { describeWithRedisCluster } from "./support/redis-cluster.js";
import { until } from "./support/wait.js";

const code = () => ({
  verificationId: newVerificationId(),
  maxAttempts: 3,
  retentionSeconds: 60,
  maskedPhone: "+91******0000",
});

function memoryStore() {
  let now = Date.UTC(2030, 0, 1);
  const store = new MemoryOtpStore(() => now);
  const advance = (ms: number) => {
    now += ms;
  };
  return { store, advance };
}

otpStoreContract(
  "memory",
  async () => {
    const { store, advance } = memoryStore();
    return { store, expire: async (_phone, ttlSeconds) => advance(ttlSeconds * 1000) };
  },
  { numRuns: 100 },
);

describe("MemoryOtpStore", () => {
  const digest = randomBytes(32).toString("base64url");

  it("keeps a code until the last millisecond of its TTL", async () => {
    const { store, advance } = memoryStore();
    const [a, b] = [uniquePhone(), uniquePhone()];
    await store.put(a, digest, 60, code());
    await store.put(b, digest, 60, code());
    advance(60_000 - 1);
    expect(await store.verify(a, digest, 3)).toMatchObject({ kind: "ok" });
    advance(1);
    expect(await store.verify(b, digest, 3)).toEqual({ kind: "missing" });
  });

  it("drops an expired code when it is touched", async () => {
    const { store, advance } = memoryStore();
    const phone = uniquePhone();
    await store.put(phone, digest, 1, code());
    advance(1000);
    expect(store.size).toBe(1);
    await store.discard(phone, "another digest");
    expect(store.size).toBe(0);
  });

  it("does not grow without bound when codes expire untouched", async () => {
    const { store, advance } = memoryStore();
    const perRound = 5_000;
    let largest = 0;
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < perRound; i++) {
        await store.put(uniquePhone(), digest, 1, code());
        largest = Math.max(largest, store.size);
      }
      advance(1000);
    }
    // 100,000 codes were put; at most one round's worth plus a doubling is ever held.
    expect(largest).toBeLessThanOrEqual(2 * perRound + 2);
  });
});

describeWithRedis("RedisOtpStore", (redis) => {
  let client: Redis;
  beforeAll(() => {
    client = redis.client();
  });

  const keyOf = (phone: string) => `otp:{${phone}}`;

  otpStoreContract(
    "redis",
    async () => ({
      store: new RedisOtpStore(client),
      expire: async (phone, ttlSeconds) => {
        await until(async () => (await client.exists(keyOf(phone), `otplock:{${phone}}`)) === 0, {
          what: `${keyOf(phone)} and its lock to expire`,
          timeoutMs: ttlSeconds * 1000 + 5_000,
          intervalMs: 50,
        });
      },
      keys: () => redis.keys(),
    }),
    { numRuns: 30 },
  );

  it("stores the digest and a zero attempt count under the TTL", async () => {
    const store = new RedisOtpStore(client);
    const phone = uniquePhone();
    const digest = randomBytes(32).toString("base64url");
    await store.put(phone, digest, 300, code());
    expect(await client.hgetall(keyOf(phone))).toMatchObject({ h: digest, a: "0" });
    const pttl = await client.pttl(keyOf(phone));
    expect(pttl).toBeGreaterThan(290_000);
    expect(pttl).toBeLessThanOrEqual(300_000);
    await store.verify(phone, "wrong", 3);
    expect(await client.pttl(keyOf(phone))).toBeGreaterThan(290_000);
  });

  it("sends one command per operation: each is a single round trip", async () => {
    const store = new RedisOtpStore(client);
    const phone = uniquePhone();
    const digest = randomBytes(32).toString("base64url");
    const spy = vi.spyOn(client, "sendCommand");
    // Names as written to the socket: ioredis turns a script's first call on a connection into EVAL.
    const sent = async (op: () => Promise<unknown>) => {
      spy.mockClear();
      await op();
      return spy.mock.calls.map(([command]) => command.name);
    };
    try {
      for (const name of ["eval", "evalsha"]) {
        expect(await sent(() => store.put(phone, digest, 60, code()))).toEqual([name]);
        expect(await sent(() => store.verify(phone, "wrong", 3))).toEqual([name]);
        expect(await sent(() => store.discard(phone, "wrong"))).toEqual([name]);
      }
      expect(await sent(() => store.verify(phone, digest, 3))).toEqual(["evalsha"]);
    } finally {
      spy.mockRestore();
    }
  });

  it("records the sends of one turn of the event loop with one command, each with its indexes", async () => {
    const store = new RedisOtpStore(client);
    const phones = [uniquePhone(), uniquePhone(), uniquePhone()];
    const filed = await Promise.all(
      phones.map((p) => store.put(p, randomBytes(32).toString("base64url"), 60, code())),
    );
    // The third send has no message id (a failed one): it gets no message index.
    const attempt = (i: number) => ({
      provider: "twilio",
      messageId: i === 2 ? "" : `SM${filed[i]?.verificationId}`,
      sentAtMs: 1_000 + i,
      deliveryStatus: i === 2 ? "failed" : "sent",
      errorCode: "",
    });
    const keepUntilMs = Date.now() + 60_000;
    const spy = vi.spyOn(client, "sendCommand");
    try {
      await Promise.all(
        phones.map((p, i) => store.recordSend(p, filed[i]?.verificationId ?? "", attempt(i), keepUntilMs)),
      );
      expect(spy.mock.calls.map(([command]) => command.name)).toEqual([
        expect.stringMatching(/^eval(sha)?$/),
      ]);
    } finally {
      spy.mockRestore();
    }
    for (const [i, p] of phones.entries()) {
      const id = filed[i]?.verificationId ?? "";
      expect((await store.get(id))?.sendAttempts).toEqual([attempt(i)]);
      expect(await client.get(`verid:{${id}}`)).toBe(p);
      const ttl = await client.pttl(`verid:{${id}}`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(60_000);
    }
    const [first] = filed;
    expect(await client.get(`vermsg:{twilio:SM${first?.verificationId}}`)).toBe(
      `${phones[0]} ${first?.verificationId}`,
    );
    expect(await client.exists("vermsg:{twilio:}")).toBe(0);
  });
});

describeWithRedisCluster("RedisOtpStore", (cluster) => {
  let client: Cluster;
  beforeAll(() => {
    client = cluster.client();
  });

  otpStoreContract(
    "redis cluster",
    async () => ({
      store: new RedisOtpStore(client),
      // Both keys carry the phone's hash tag: one slot, so one EXISTS may name them together.
      expire: async (phone, ttlSeconds) => {
        await until(async () => (await client.exists(`otp:{${phone}}`, `otplock:{${phone}}`)) === 0, {
          what: `otp:{${phone}} and its lock to expire`,
          timeoutMs: ttlSeconds * 1000 + 5_000,
          intervalMs: 50,
        });
      },
      keys: () => cluster.keys(),
    }),
    { numRuns: 20 },
  );
});
