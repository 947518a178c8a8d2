import fc from "fast-check";
import type { Redis } from "ioredis";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../src/config.js";
import type { Logger } from "../src/log.js";
import type { Client } from "../src/login/model.js";
import {
  type AdmittedCheck,
  type AdmittedWrite,
  alongside,
  codeMatched,
  type NewCode,
  type VerifyOutcome,
} from "../src/login/ports.js";
import { LoginError, rateLimitIp } from "../src/login/reasons.js";
import { newVerificationId } from "../src/login/verifications.js";
import { failureLockKeys, RedisOtpStore } from "../src/otp/redis-store.js";
import { PhoneNormalizer } from "../src/phone/normalize.js";
import type { LimitSettings } from "../src/ratelimit/config.js";
import { RateLimitGuard } from "../src/ratelimit/guard.js";
import { type Limit, type LimitFactory, limitFactory } from "../src/ratelimit/limit.js";
import { redisRefund } from "../src/ratelimit/refund.js";
import { memorySendDecision, redisSendDecision, type SendDecision } from "../src/ratelimit/send-decision.js";
import { SendPolicy } from "../src/ratelimit/send-policy.js";
import { VerifyPolicy } from "../src/ratelimit/verify-policy.js";
import { RedisUserStore } from "../src/users/redis-store.js";
import { uniquePhone } from "./support/capture-sms.js";
import { describeWithRedis } from "./support/redis.js";

/** A send's write that writes nothing: these tests are about the limits alone. */
const nothing: AdmittedWrite<void> = { run: async () => {} };

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
            await policy.check(phones.parse(v), freshClient(), nothing);
          // Three clients spend their IP limit on numbers of their own, then burst at the victims.
          const clients = [freshClient(), freshClient(), freshClient()];
          for (const c of clients) {
            for (let i = 0; i < settings.ipSend.points; i++)
              await policy.check(phones.parse(uniquePhone()), c, nothing);
          }
          const before = await counters(made, victims);
          const keysBefore = await store().keys();
          const results = await Promise.all(
            requests.map(({ client, victim }) =>
              policy
                .check(phones.parse(victims[victim % n] as string), clients[client] as Client, nothing)
                .then(
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
          await policy.check(phones.parse(victim), freshClient(), nothing);
          const before = await counters(made, [victim]);
          const keysBefore = await store().keys();
          const results = await Promise.all(
            Array.from({ length: n }, () =>
              policy.check(phones.parse(victim), freshClient(), nothing).then(
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
    await policy.check(phone, c, nothing);
    // A second send from the same client and to the same range and country: those counters exist already.
    const next = `${phone.e164.slice(0, -1)}${(Number(phone.e164.at(-1)) + 1) % 10}`;
    await policy.check(phones.parse(next), c, nothing);
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

  describe("an admitted send's code, stored by the decision's own script", () => {
    let store: RedisOtpStore;
    beforeAll(() => {
      store = new RedisOtpStore(client);
    });
    const code = (): NewCode => ({
      verificationId: newVerificationId(),
      maxAttempts: 3,
      retentionSeconds: 60,
      maskedPhone: "+91******0000",
    });
    const policy = () => new SendPolicy(settings, limitFactory(client), decide, quiet);

    it("one command for the decision and the put, and the code is live", async () => {
      const p = policy();
      const phone = phones.parse(uniquePhone());
      const digest = "a".repeat(64);
      const sent = vi.spyOn(client, "sendCommand");
      try {
        const { written } = await p.check(
          phone,
          freshClient(),
          store.admittedPut(phone.e164, digest, 60, code()),
        );
        expect(sent.mock.calls.map(([command]) => command.name)).toHaveLength(1);
        expect(written.verificationId).toMatch(/^VE[0-9a-f]{32}$/);
        expect(written.expiresAtMs).toBeGreaterThan(Date.now());
      } finally {
        sent.mockRestore();
      }
      expect(await store.verify(phone.e164, digest, 3)).toMatchObject({ kind: "ok" });
    });

    it("a refused send stores nothing: no code for a new phone, the current code left alone", async () => {
      const p = policy();
      const c = freshClient();
      const phone = phones.parse(uniquePhone());
      await p.check(phone, c, store.admittedPut(phone.e164, "a".repeat(64), 60, code()));
      // The cooldown refuses the resend: the first code stays the phone's code.
      const again = await p
        .check(phone, freshClient(), store.admittedPut(phone.e164, "b".repeat(64), 60, code()))
        .catch((e: unknown) => e);
      expect((again as LoginError).reason).toBe("OTP_COOLDOWN");
      // Over its IP limit (2), the client's third send is refused: the new phone gets no key at all.
      await p.check(phones.parse(uniquePhone()), c, nothing);
      const fresh = phones.parse(uniquePhone());
      const over = await p
        .check(fresh, c, store.admittedPut(fresh.e164, "c".repeat(64), 60, code()))
        .catch((e: unknown) => e);
      expect((over as LoginError).reason).toBe("RATE_LIMIT_IP");
      expect(await client.exists(`otp:{${fresh.e164}}`, `vers:{${fresh.e164}}`)).toBe(0);
      expect(await store.verify(phone.e164, "b".repeat(64), 3)).toMatchObject({ kind: "wrong" });
      expect(await store.verify(phone.e164, "a".repeat(64), 3)).toMatchObject({ kind: "ok" });
    });

    it("a put that fails inside the script gives back what the send counted and throws its error", async () => {
      const made = recording(limitFactory(client));
      const p = new SendPolicy(settings, made.make, decide, quiet);
      const phone = phones.parse(uniquePhone());
      // The phone's code key holding a string: the put's HMGET fails (WRONGTYPE), after the counting.
      await client.set(`otp:{${phone.e164}}`, "not a hash", "EX", 60);
      const before = await counters(made.made, [phone.e164]);
      const err = await p
        .check(phone, freshClient(), store.admittedPut(phone.e164, "a".repeat(64), 60, code()))
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err).not.toBeInstanceOf(LoginError);
      expect(String(err)).toMatch(/WRONGTYPE/);
      // Shared counters (the country's, the budget) carry earlier tests' sends: unchanged, not zero.
      expect(await counters(made.made, [phone.e164])).toEqual(before);
      await client.del(`otp:{${phone.e164}}`);
    });
  });

  describe("a verify's code check, run by its limit's own script", () => {
    const verifySettings: LimitSettings = { ...settings, ipVerify: { points: 2, durationSeconds: 3600 } };
    const digest = "d".repeat(64);
    const store = () => new RedisOtpStore(client);
    const stored = async () => {
      const store = new RedisOtpStore(client);
      const phone = uniquePhone();
      await store.put(phone, digest, 60, {
        verificationId: newVerificationId(),
        maxAttempts: 5,
        retentionSeconds: 60,
        maskedPhone: "+91******0000",
      });
      return { store, phone };
    };

    it("one command for the limit and the check; over the limit, the code's attempts are untouched", async () => {
      const { store, phone } = await stored();
      const policy = new VerifyPolicy(verifySettings, limitFactory(client), decide);
      const c = freshClient();
      const sent = vi.spyOn(client, "sendCommand");
      try {
        expect((await policy.check(c, store.admittedVerify(phone, "wrong", 5), [])).checked).toMatchObject({
          kind: "wrong",
        });
        expect(sent.mock.calls).toHaveLength(1);
      } finally {
        sent.mockRestore();
      }
      expect(await client.hget(`otp:{${phone}}`, "a")).toBe("1");
      await policy.check(c, store.admittedVerify(phone, "wrong", 5), []);
      const over = await policy.check(c, store.admittedVerify(phone, digest, 5), []).catch((e: unknown) => e);
      expect((over as LoginError).reason).toBe("RATE_LIMIT_IP");
      // The refused check never reached the code: two attempts counted, and the right code still works.
      expect(await client.hget(`otp:{${phone}}`, "a")).toBe("2");
      expect(
        (await policy.check(freshClient(), store.admittedVerify(phone, digest, 5), [])).checked,
      ).toMatchObject({
        kind: "ok",
      });
    });

    it("gives back in the same command exactly when the store's check calls it a match", async () => {
      const policy = new VerifyPolicy(
        { ...settings, ipVerify: { points: 100, durationSeconds: 3600 } },
        limitFactory(client),
        decide,
      );
      const back = limitFactory(client)({ name: "match-back", points: 1000, durationSeconds: 3600 });
      const lock = { maxFailures: 1, lockSeconds: 60 };
      // Each case: a fresh code and client, then the verifies that lead to the outcome; the last is judged.
      const cases: Record<
        VerifyOutcome["kind"],
        (phone: string, c: string) => AdmittedCheck<VerifyOutcome>[]
      > = {
        ok: (p) => [store().admittedVerify(p, digest, 5)],
        wrong: (p) => [store().admittedVerify(p, "wrong", 5)],
        missing: () => [store().admittedVerify(uniquePhone(), digest, 5)],
        not_found: (p) => [store().admittedVerify(p, digest, 5, undefined, undefined, newVerificationId())],
        exhausted: (p) => [store().admittedVerify(p, "wrong", 1), store().admittedVerify(p, digest, 1)],
        locked: (p, c) => [
          store().admittedVerify(p, "wrong", 5, lock, c),
          store().admittedVerify(p, digest, 5, lock, c),
        ],
      };
      for (const [kind, steps] of Object.entries(cases)) {
        const { phone } = await stored();
        const c = freshClient();
        const own = { limit: back, key: c.ip, refuse: (ms: number) => rateLimitIp(ms, "verify") };
        expect((await decide({ requests: [own], sms: [] })).refusals).toEqual([]);
        let last: { checked: VerifyOutcome; refunded: boolean } | undefined;
        for (const check of steps(phone, c.ip)) last = await policy.check(c, check, [own]);
        expect(last?.checked.kind, kind).toBe(kind);
        expect(last?.refunded, kind).toBe(codeMatched(last?.checked as VerifyOutcome));
        expect(await client.get(back.storeKey(c.ip)), kind).toBe(kind === "ok" ? "0" : "1");
      }
    });
  });

  describe("refunds: every counter in one command, never below zero, no key created", () => {
    const loginSettings: LimitSettings = { ...settings, ipVerify: { points: 5, durationSeconds: 3600 } };
    const guard = () =>
      new RateLimitGuard({
        limits: loginSettings,
        redis: client,
        lock: { keys: failureLockKeys, lockedFor: async () => 0 },
        log: quiet,
      });

    it("a verify that logs in gives back the client's send and verify points in its own command", async () => {
      const g = guard();
      const store = new RedisOtpStore(client);
      const digest = "e".repeat(64);
      const code = (phone: string) =>
        store.put(phone, digest, 60, {
          verificationId: newVerificationId(),
          maxAttempts: 5,
          retentionSeconds: 60,
          maskedPhone: "+91******0000",
        });
      const verify = (phone: string, c: Client, d = digest) =>
        g.beforeVerify(phones.parse(phone), c, store.admittedVerify(phone, d, 5, undefined, g.clientKey(c)));
      const c = freshClient();
      const phone = phones.parse(uniquePhone());
      await g.beforeSend(phone, c, nothing);
      await code(phone.e164);
      await verify(phone.e164, c, "wrong");
      const keys = [`rl:send-ip:${c.ip}`, `rl:verify-ip:${c.ip}`];
      expect(await client.mget(...keys)).toEqual(["1", "1"]);
      const sent = vi.spyOn(client, "sendCommand");
      try {
        const login = await verify(phone.e164, c);
        await login.givenBack;
        expect(login.checked.kind).toBe("ok");
        expect(sent.mock.calls).toHaveLength(1);
      } finally {
        sent.mockRestore();
      }
      // The matching verify counted and gave its own point back, and the send's.
      expect(await client.mget(...keys)).toEqual(["0", "1"]);
      await code(phone.e164);
      await (await verify(phone.e164, c)).givenBack;
      expect(await client.mget(...keys)).toEqual(["0", "1"]);
      // A client that never sent gets no send counter to spend later.
      const stranger = freshClient();
      await code(phone.e164);
      await (await verify(phone.e164, stranger)).givenBack;
      expect(await client.exists(`rl:send-ip:${stranger.ip}`)).toBe(0);
      expect(await client.get(`rl:verify-ip:${stranger.ip}`)).toBe("0");
    });

    it("a verify's user lookup rides inside its decision's command, after the check", async () => {
      const g = guard();
      const store = new RedisOtpStore(client);
      const users = new RedisUserStore(client);
      const digest = "d".repeat(64);
      const c = freshClient();
      const phone = uniquePhone();
      const user = await users.create(phone, await users.reserveId());
      const verify = (d: string) =>
        g.beforeVerify(
          phones.parse(phone),
          c,
          alongside(store.admittedVerify(phone, d, 5, undefined, g.clientKey(c)), users.admittedFind(phone)),
        );
      await store.put(phone, digest, 60, {
        verificationId: newVerificationId(),
        maxAttempts: 5,
        retentionSeconds: 60,
        maskedPhone: "+91******0000",
      });
      const sent = vi.spyOn(client, "sendCommand");
      try {
        const wrong = await verify("wrong");
        expect(wrong.checked[0].kind).toBe("wrong");
        const login = await verify(digest);
        await login.givenBack;
        expect(login.checked).toEqual([expect.objectContaining({ kind: "ok" }), user]);
        // One command each: the limit, the check, the give-back and the lookup.
        expect(sent.mock.calls).toHaveLength(2);
        // A phone without a user: the lookup finds none.
        const nobody = uniquePhone();
        const alone = alongside(store.admittedVerify(nobody, digest, 5), users.admittedFind(nobody));
        expect(await alone.run()).toEqual([expect.objectContaining({ kind: "missing" }), undefined]);
        expect(sent.mock.calls).toHaveLength(3);
      } finally {
        sent.mockRestore();
      }
      // The match gave the client's verify points back in that same command.
      expect(await client.get(`rl:verify-ip:${c.ip}`)).toBe("1");
    });

    it("any run of counts and refunds leaves each counter at the clamped count, within its window", async () => {
      const limits = [1, 2, 3].map((i) =>
        limitFactory(client)({ name: `refund-${i}`, points: 1000, durationSeconds: 3600 }),
      );
      const refundAll = redisRefund(client);
      const op = fc.oneof(
        fc.record({ count: fc.constant(true as const), which: fc.nat(2) }),
        fc.record({ count: fc.constant(false as const), which: fc.subarray([0, 1, 2]) }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(op, { maxLength: 20 }), async (ops) => {
          const key = freshClient().ip;
          const model = [0, 0, 0];
          const check = (i: number) => ({
            limit: limits[i] as Limit,
            key,
            refuse: (ms: number) => rateLimitIp(ms, "send"),
          });
          for (const o of ops) {
            if (o.count) {
              expect((await decide({ requests: [check(o.which)], sms: [] })).refusals).toEqual([]);
              model[o.which] = (model[o.which] ?? 0) + 1;
            } else {
              await refundAll(o.which.map(check));
              for (const i of o.which) model[i] = Math.max(0, (model[i] ?? 0) - 1);
            }
          }
          for (const [i, limit] of limits.entries()) {
            const stored = limit.storeKey(key);
            const counted = ops.some((o) => o.count && o.which === i);
            // Only counting creates a counter; a refund alone never does.
            expect(await client.exists(stored), stored).toBe(counted ? 1 : 0);
            if (!counted) continue;
            expect(Number(await client.get(stored)), stored).toBe(model[i]);
            const ttl = await client.pttl(stored);
            expect(ttl).toBeGreaterThan(0);
            expect(ttl).toBeLessThanOrEqual(3_600_000);
          }
        }),
        { numRuns: 30 },
      );
    });
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
