import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LoginError } from "../src/login/reasons.js";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { describeWithRedis } from "./support/redis.js";

// Windows far longer than the test: every count below lives in one window, so "within its window" is "ever".
const WINDOW = 3600;

interface Limits {
  ip: number;
  phone: number;
  cooldown: boolean;
  prefix: number;
  country: number;
  global: number;
  failures: number;
}

// Chosen so that each limit is the one that binds somewhere: the global budget in the first, the country cap
// in the second; the prefix cap below two phones' worth in the first, the cooldown in the second.
const configs: Record<string, Limits> = {
  "no cooldown, tight windows": {
    ip: 4,
    phone: 3,
    cooldown: false,
    prefix: 2,
    country: 120,
    global: 90,
    failures: 3,
  },
  "with a cooldown": { ip: 3, phone: 5, cooldown: true, prefix: 4, country: 50, global: 70, failures: 4 },
};

const op = fc.record({
  kind: fc.constantFrom("send", "send", "verify-right", "verify-wrong"),
  ip: fc.nat(2),
  phone: fc.nat(3),
});
// Each batch runs concurrently: random interleavings of sends and verifies.
const scenario = fc.array(fc.array(op, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 6 });

let ipSeq = 0;
const freshIp = () => {
  ipSeq += 1;
  return `100.${64 + ((ipSeq >> 16) & 63)}.${(ipSeq >> 8) & 255}.${ipSeq & 255}`;
};

/** Counts per key of one kind; the invariants compare them with the limits. */
class Counter {
  readonly #n = new Map<string, number>();
  add(key: string, by = 1): void {
    this.#n.set(key, (this.#n.get(key) ?? 0) + by);
  }
  get(key: string): number {
    return this.#n.get(key) ?? 0;
  }
  max(): number {
    return Math.max(0, ...this.#n.values());
  }
  entries() {
    return this.#n.entries();
  }
}

describeWithRedis("property: abuse limits on Redis", (redis) => {
  for (const [name, limits] of Object.entries(configs)) {
    describe(name, () => {
      let s: RunningApp;
      beforeAll(async () => {
        // A keyspace per configuration, so the service-wide counters of one never meet the other's.
        s = await startApp({
          REDIS_URL: redis.fresh().url,
          OTP_MAX_ATTEMPTS: "3",
          RATE_LIMIT_IP_POINTS: String(limits.ip),
          RATE_LIMIT_IP_DURATION_SECONDS: String(WINDOW),
          RATE_LIMIT_PHONE_SEND_POINTS: String(limits.phone),
          RATE_LIMIT_PHONE_SEND_DURATION_SECONDS: String(WINDOW),
          RATE_LIMIT_PHONE_COOLDOWN_SECONDS: limits.cooldown ? String(WINDOW) : "0",
          RATE_LIMIT_PHONE_FAILURES: String(limits.failures),
          SMS_MAX_PER_PREFIX_PER_HOUR: String(limits.prefix),
          SMS_MAX_PER_COUNTRY_PER_HOUR: String(limits.country),
          SMS_MAX_PER_HOUR: String(limits.global),
        });
      });
      afterAll(() => s?.close());

      it("no key ever exceeds its limit, and every refusal says to wait at least a second", async () => {
        const sendOk = {
          ip: new Counter(),
          phone: new Counter(),
          prefix: new Counter(),
          country: new Counter(),
        };
        const verifyPassed = new Counter();
        const logins = new Counter();
        const wrongBeforeOk = new Counter();
        // Which addresses guessed wrong on each phone: a locked phone still gives a never-failed address one try.
        const wrongFrom = new Map<string, Set<string>>();
        const everOk = new Set<string>();
        let globalOk = 0;
        let refusals = 0;

        await fc.assert(
          fc.asyncProperty(scenario, async (batches) => {
            const ips = [freshIp(), freshIp(), freshIp()];
            // Two pairs of numbers that share all but their last 4 digits, as pumping targets do.
            const [p, q] = [uniquePhone().slice(0, -4), uniquePhone().slice(0, -4)];
            const phones = [`${p}1001`, `${p}2002`, `${q}3003`, `${q}4004`];
            for (const batch of batches) {
              const smsBefore = s.sms.sent.length;
              const known = new Map(phones.map((ph) => [ph, s.sms.sent.findLast((m) => m.to === ph)?.code]));
              const results = await Promise.all(
                batch.map(async (o) => {
                  const phone = phones[o.phone] as string;
                  const client = { ip: ips[o.ip] as string };
                  const right = known.get(phone);
                  const otp =
                    o.kind === "verify-right" && right ? right : right === "000000" ? "111111" : "000000";
                  try {
                    if (o.kind === "send") await s.app.login.sendOtp(phone, client);
                    else await s.app.login.verifyOtp(phone, otp, client);
                    return { o, phone, client, err: undefined };
                  } catch (err) {
                    if (!(err instanceof LoginError)) throw err;
                    return { o, phone, client, err };
                  }
                }),
              );
              let sent = 0;
              for (const { o, phone, client, err } of results) {
                if (err?.kind === "resource_exhausted") {
                  refusals += 1;
                  expect(Number.isInteger(err.retryAfterSeconds)).toBe(true);
                  expect(err.retryAfterSeconds).toBeGreaterThanOrEqual(1);
                  expect(err.retryAfterSeconds).toBeLessThanOrEqual(WINDOW);
                } else if (err) {
                  // Nothing else may happen here: no Unavailable, no Internal.
                  expect(err.kind).toBe("unauthenticated");
                }
                if (o.kind === "send") {
                  if (err) continue;
                  sent += 1;
                  sendOk.ip.add(client.ip);
                  sendOk.phone.add(phone);
                  sendOk.prefix.add(phone.slice(0, -4));
                  sendOk.country.add("91");
                  globalOk += 1;
                  continue;
                }
                if (err?.reason !== "RATE_LIMIT_IP") verifyPassed.add(client.ip);
                if (!err) {
                  logins.add(client.ip);
                  everOk.add(phone);
                }
                if (err?.reason === "OTP_INCORRECT") {
                  wrongBeforeOk.add(phone);
                  wrongFrom.set(phone, (wrongFrom.get(phone) ?? new Set()).add(client.ip));
                }
                // The last code a phone received always works unless something else in the batch replaced it:
                // a refused send must never have touched it.
                const replaced = results.some((r) => r.o.kind === "send" && r.phone === phone && !r.err);
                if (o.kind === "verify-right" && known.get(phone) && !replaced) {
                  expect(err?.reason).not.toBe("OTP_INCORRECT");
                }
              }
              // A refused request costs no SMS.
              expect(s.sms.sent.length - smsBefore).toBe(sent);

              // The invariants, after every batch. A completed login gives its address a send and a verify back.
              for (const [ip, n] of sendOk.ip.entries())
                expect(n - logins.get(ip)).toBeLessThanOrEqual(limits.ip);
              for (const [ip, n] of verifyPassed.entries()) {
                expect(n - logins.get(ip)).toBeLessThanOrEqual(limits.ip);
              }
              expect(sendOk.phone.max()).toBeLessThanOrEqual(limits.cooldown ? 1 : limits.phone);
              expect(sendOk.prefix.max()).toBeLessThanOrEqual(limits.prefix);
              expect(sendOk.country.max()).toBeLessThanOrEqual(limits.country);
              expect(globalOk).toBeLessThanOrEqual(limits.global);
              // The phone lock is per client (README, Abuse protection): once locked, only an address that never
              // failed on the phone may still guess, once. So a phone takes at most its failure limit of wrong
              // codes, plus one for every further address that guessed.
              for (const [phone, n] of wrongBeforeOk.entries()) {
                const others = Math.max(0, (wrongFrom.get(phone)?.size ?? 0) - 1);
                if (!everOk.has(phone)) expect(n).toBeLessThanOrEqual(limits.failures + others);
              }
            }
          }),
          { numRuns: 40 },
        );
        // The runs reached the limits rather than staying politely below them.
        expect(refusals).toBeGreaterThan(0);
        expect(globalOk).toBeGreaterThan(Math.min(limits.global, limits.country) / 2);
      });
    });
  }
});
