import type { Redis } from "ioredis";
import { beforeAll, describe, expect, it } from "vitest";
import { type LimitFactory, limitFactory } from "../src/ratelimit/limit.js";
import { describeWithRedis } from "./support/redis.js";

let seq = 0;
const uniqueName = () => `t${process.pid}-${++seq}`;

function limitSuite(name: string, make: () => LimitFactory) {
  describe(`Limit (${name})`, () => {
    it("allows points per window, then refuses with the time left in the window", async () => {
      const limit = make()({ name: uniqueName(), points: 2, durationSeconds: 60 });
      expect(await limit.consume("k")).toEqual({ ok: true });
      expect(await limit.consume("k")).toEqual({ ok: true });
      const refused = await limit.consume("k");
      expect(refused.ok).toBe(false);
      const ms = refused.ok ? 0 : refused.retryAfterMs;
      expect(ms).toBeGreaterThan(55_000);
      expect(ms).toBeLessThanOrEqual(60_000);
      expect(await limit.consume("other")).toEqual({ ok: true });
    });

    it("a refund gives a point back but never takes the count below zero", async () => {
      const limit = make()({ name: uniqueName(), points: 1, durationSeconds: 60 });
      await limit.consume("k");
      await limit.refund("k");
      expect(await limit.consume("k")).toEqual({ ok: true });
      // Refunds with nothing consumed (e.g. after the window ended) grant nothing extra.
      await limit.refund("fresh");
      await limit.refund("fresh");
      expect(await limit.consume("fresh")).toEqual({ ok: true });
      expect((await limit.consume("fresh")).ok).toBe(false);
    });
  });
}

limitSuite("memory", () => limitFactory(undefined));

describeWithRedis("on Redis", (redis) => {
  let client: Redis;
  beforeAll(async () => {
    client = redis.client();
    // Limits refuse to queue: start once the connection is up.
    await client.ping();
  });
  limitSuite("redis", () => limitFactory(client));

  it("fails (rather than queueing) when the client is not connected", async () => {
    const limit = limitFactory(client)({ name: uniqueName(), points: 1, durationSeconds: 60 });
    const offline = redis.client();
    await offline.quit();
    const detached = limitFactory(offline)({ name: uniqueName(), points: 1, durationSeconds: 60 });
    await expect(detached.consume("k")).rejects.toThrow(/not ready/);
    expect(await limit.consume("k")).toEqual({ ok: true });
  });
});
