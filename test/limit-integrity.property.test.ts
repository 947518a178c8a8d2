import fc from "fast-check";
import type { Redis } from "ioredis";
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import type { Logger } from "../src/log.js";
import type { Client } from "../src/login/model.js";
import { LoginError } from "../src/login/reasons.js";
import { failureLockKeys } from "../src/otp/redis-store.js";
import { PhoneNormalizer } from "../src/phone/normalize.js";
import type { LimitSettings } from "../src/ratelimit/config.js";
import { type Limit, type LimitFactory, limitFactory } from "../src/ratelimit/limit.js";
import { memorySendDecision, redisSendDecision, type SendDecision } from "../src/ratelimit/send-decision.js";
import { SendPolicy } from "../src/ratelimit/send-policy.js";
import { uniquePhone } from "./support/capture-sms.js";
import { describeWithRedis } from "./support/redis.js";

// Issue 14, defect 3: a refused send must leave every counter but the client's own exactly as it found it,
// and create no key. Checked on the policy both stores share, with concurrent bursts.

const quiet = { info() {}, warn() {}, error() {}, debug() {}, child: () => quiet } as unknown as Logger;
const phones = new PhoneNormalizer("IN");

const settings: LimitSettings = loadConfig({
  RATE_LIMIT_IP_POINTS: "2",
  RATE_LIMIT_IP_DURATION_SECONDS: "3600",
  RATE_LIMIT_PHONE_SEND_POINTS: "3",
  RATE_LIMIT_PHONE_COOLDOWN_SECONDS: "3600",
  SMS_MAX_PER_PREFIX_PER_HOUR: "50",
  SMS_MAX_PER_COUNTRY_PER_HOUR: "100000",
  SMS_MAX_PER_HOUR: "100000",
}).limits;

let ipSeq = 0;
const freshClient = (): Client => {
  ipSeq += 1;
  return { ip: `10.${(ipSeq >> 16) & 255}.${(ipSeq >> 8) & 255}.${ipSeq & 255}` };
};

interface Store {
  make: LimitFactory;
  decide: SendDecision;
  /** Every counter's key and value, where the store can list them (Redis); undefined in memory. */
  keys(): Promise<Map<string, string> | undefined>;
}

/** The limits a policy made, so the test can read their counters without counting anything. */
function recording(make: LimitFactory): { make: LimitFactory; made: Limit[] } {
  const made: Limit[] = [];
  return {
    made,
    make: (spec) => {
      const limit = make(spec);
      made.push(limit);
      return limit;
    },
  };
}

async function counters(made: readonly Limit[], victims: readonly string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const limit of made) {
    if (limit.name === "send-ip") continue;
    const keys = new Set(
      victims.flatMap((e164) => {
        const phone = phones.parse(e164);
        return [phone.e164, phone.e164.slice(0, -4), phone.callingCode, "all"];
      }),
    );
    for (const key of keys) out[`${limit.name}:${key}`] = (await limit.peek(key)).count;
  }
  return out;
}

const burst = fc.record({
  victims: fc.integer({ min: 1, max: 4 }),
  sharePrefix: fc.boolean(),
  requests: fc.array(fc.record({ client: fc.nat(2), victim: fc.nat(3) }), { minLength: 1, maxLength: 25 }),
});

function integritySuite(name: string, store: () => Store) {
  describe(`refused sends leave other counters alone (${name})`, () => {
    it("bursts from clients over their IP limit: every phone, prefix and country counter unchanged, no key created", async () => {
      const { make, made } = recording(store().make);
      const policy = new SendPolicy(settings, make, store().decide, quiet);
      let refused = 0;
      await fc.assert(
        fc.asyncProperty(burst, async ({ victims: n, sharePrefix, requests }) => {
          const base = uniquePhone().slice(0, -4);
          const victims = Array.from({ length: n }, (_, i) =>
            sharePrefix ? `${base}${1000 + i}` : uniquePhone(),
          );
          // Some victims have counters already (a code went out from a real client), some have none.
          for (const v of victims.slice(0, Math.ceil(n / 2)))
            await policy.check(phones.parse(v), freshClient());
          // Three clients spend their IP limit on numbers of their own, then burst at the victims.
          const clients = [freshClient(), freshClient(), freshClient()];
          for (const c of clients) {
            for (let i = 0; i < settings.ipSend.points; i++)
              await policy.check(phones.parse(uniquePhone()), c);
          }
          const before = await counters(made, victims);
          const keysBefore = await store().keys();
          const results = await Promise.all(
            requests.map(({ client, victim }) =>
              policy.check(phones.parse(victims[victim % n] as string), clients[client] as Client).then(
                () => "sent",
                (err: unknown) => (err instanceof LoginError ? err.reason : err),
              ),
            ),
          );
          for (const r of results) expect(r).toBe("RATE_LIMIT_IP");
          refused += results.length;
          expect(await counters(made, victims)).toEqual(before);
          const keysAfter = await store().keys();
          if (keysBefore && keysAfter) {
            // Only the asking clients' own counters moved; no key appeared or went.
            expect([...keysAfter.keys()].sort()).toEqual([...keysBefore.keys()].sort());
            for (const [key, value] of keysAfter) {
              if (!key.startsWith("rl:send-ip:")) expect(value, key).toBe(keysBefore.get(key));
            }
          }
        }),
        { numRuns: 25 },
      );
      expect(refused).toBeGreaterThan(25);
    });

    it("bursts refused by a phone's own limits leave its range's, country's and budget's counters alone", async () => {
      const { make, made } = recording(store().make);
      const policy = new SendPolicy(settings, make, store().decide, quiet);
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 1, max: 20 }), async (n) => {
          const victim = uniquePhone();
          await policy.check(phones.parse(victim), freshClient());
          const before = await counters(made, [victim]);
          const keysBefore = await store().keys();
          const results = await Promise.all(
            Array.from({ length: n }, () =>
              policy.check(phones.parse(victim), freshClient()).then(
                () => "sent",
                (err: unknown) => (err instanceof LoginError ? err.reason : err),
              ),
            ),
          );
          for (const r of results) expect(r).toBe("OTP_COOLDOWN");
          expect(await counters(made, [victim])).toEqual(before);
          const keysAfter = await store().keys();
          if (keysBefore && keysAfter) {
            // The new clients' own IP counters are the only keys created.
            const created = [...keysAfter.keys()].filter((k) => !keysBefore.has(k));
            expect(created).toHaveLength(n);
            for (const k of created) expect(k).toMatch(/^rl:send-ip:/);
            for (const [key, value] of keysBefore) expect(keysAfter.get(key), key).toBe(value);
          }
        }),
        { numRuns: 15 },
      );
    });
  });
}

// One decision for the store, as the guard builds it: its chain is what keeps memory decisions atomic.
const memoryDecision = memorySendDecision(async () => 0);
integritySuite("memory", () => ({
  make: limitFactory(undefined),
  decide: memoryDecision,
  keys: async () => undefined,
}));

describeWithRedis("on Redis", (redis) => {
  let client: Redis;
  let decide: SendDecision;
  beforeAll(async () => {
    client = redis.client();
    await client.ping();
    decide = redisSendDecision(client, failureLockKeys);
  });

  it("every counter a send counts expires with its own window, started by its first hit", async () => {
    const policy = new SendPolicy(settings, limitFactory(client), decide, quiet);
    const c = freshClient();
    const phone = phones.parse(uniquePhone());
    await policy.check(phone, c);
    // A second send from the same client and to the same range and country: those counters exist already.
    const next = `${phone.e164.slice(0, -1)}${(Number(phone.e164.at(-1)) + 1) % 10}`;
    await policy.check(phones.parse(next), c);
    const windows: Record<string, number> = {
      "send-ip": settings.ipSend.durationSeconds,
      "send-cooldown": settings.phoneCooldownSeconds,
      "send-phone": settings.phoneSend.durationSeconds,
      "sms-prefix": 3600,
      "sms-country": 3600,
      "sms-global": 3600,
    };
    const counted = await redis.keys("rl:*");
    expect(counted.length).toBeGreaterThanOrEqual(Object.keys(windows).length);
    for (const key of counted) {
      const ttlMs = await client.pttl(key);
      const name = key.split(":")[1] ?? "";
      expect(ttlMs, key).toBeGreaterThan(0);
      if (name in windows) expect(ttlMs, key).toBeLessThanOrEqual((windows[name] ?? 0) * 1000);
    }
  });

  integritySuite("Redis", () => ({
    make: limitFactory(client),
    decide,
    // This run's keys only (its own server, or its own prefix on a given REDIS_URL).
    keys: async () => {
      const keys = await redis.keys("*");
      const values = keys.length > 0 ? await client.mget(...keys) : [];
      return new Map(keys.map((k, i) => [k, values[i] ?? ""]));
    },
  }));
});
