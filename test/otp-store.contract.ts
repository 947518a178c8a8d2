import { randomBytes, randomInt } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { codeDigest } from "../src/login/code.js";
import type { FailureLock, NewCode, OtpStore, VerifyOutcome } from "../src/login/ports.js";
import { newVerificationId } from "../src/login/verifications.js";

/** One store to test, with what the suite needs to reach beyond the interface. */
export interface OtpStoreUnderTest {
  readonly store: OtpStore;
  /**
   * Resolves once a code put for `phone` with `ttlSeconds` has expired: an injected clock jumps, a real server
   * is polled until the code and the phone's lock are gone (never a fixed sleep, which is slow or flaky).
   */
  expire(phone: string, ttlSeconds: number): Promise<void>;
  /** Every key the backing server holds; only for stores that have keys. */
  keys?(): Promise<string[]>;
}

export interface OtpStoreContractOptions {
  /** Runs per fast-check property: a store behind a socket affords fewer than one in memory. */
  readonly numRuns: number;
}

const SECRET = randomBytes(32);
const LONG_TTL = 600;
const MAX = 3;

// Random start, so reruns against a shared REDIS_URL never meet an earlier run's phones.
const phoneBase = randomInt(100_000_000, 800_000_000);
let phoneSeq = 0;
/** A phone number no other test uses. */
export function uniquePhone(): string {
  phoneSeq += 1;
  return `+919${phoneBase + phoneSeq}`;
}

const digest = (phone: string, code: string) => codeDigest(SECRET, phone, code);
const PREVIOUS_SECRET = randomBytes(32);

/** How the kernel files a code: a fresh id, which a pending verification's resend does not use. */
const newCode = (maxAttempts = MAX): NewCode => ({
  verificationId: newVerificationId(),
  maxAttempts,
  retentionSeconds: 60,
  maskedPhone: "+91******0000",
});

/**
 * The behaviour every `OtpStore` must have; run for each implementation so the in-memory store used in
 * development and tests cannot drift from the Redis one used in production.
 */
export function otpStoreContract(
  name: string,
  makeStore: () => Promise<OtpStoreUnderTest>,
  opts: OtpStoreContractOptions,
): void {
  describe(`OtpStore contract: ${name}`, () => {
    it("verifies a matching code once, then it is gone", async () => {
      const { store } = await makeStore();
      const phone = uniquePhone();
      await store.put(phone, digest(phone, "123456"), LONG_TTL, newCode());
      expect(await store.verify(phone, digest(phone, "123456"), MAX)).toMatchObject({ kind: "ok" });
      expect(await store.verify(phone, digest(phone, "123456"), MAX)).toMatchObject({ kind: "missing" });
    });

    it("reports missing for a phone that never had a code", async () => {
      const { store } = await makeStore();
      const phone = uniquePhone();
      expect(await store.verify(phone, digest(phone, "123456"), MAX)).toMatchObject({ kind: "missing" });
      await store.discard(phone, digest(phone, "123456"));
      expect(await store.verify(phone, digest(phone, "123456"), MAX)).toMatchObject({ kind: "missing" });
    });

    it("counts wrong codes down without consuming the right one", async () => {
      const { store } = await makeStore();
      const phone = uniquePhone();
      await store.put(phone, digest(phone, "123456"), LONG_TTL, newCode());
      expect(await store.verify(phone, digest(phone, "000000"), MAX)).toMatchObject({
        kind: "wrong",
        attemptsLeft: 2,
      });
      expect(await store.verify(phone, digest(phone, "000001"), MAX)).toMatchObject({
        kind: "wrong",
        attemptsLeft: 1,
      });
      expect(await store.verify(phone, digest(phone, "123456"), MAX)).toMatchObject({ kind: "ok" });
    });

    // The two tests that wait for a real TTL run side by side, so the suite waits once. This one's TTL leaves
    // a second of slack for its six steps before the code may expire under it.
    it.concurrent("after maxAttempts wrong tries even the right code is exhausted", async ({ expect }) => {
      const { store, expire } = await makeStore();
      const phone = uniquePhone();
      await store.put(phone, digest(phone, "123456"), 2, newCode());
      for (const left of [2, 1, 0]) {
        expect(await store.verify(phone, digest(phone, "999999"), MAX)).toMatchObject({
          kind: "wrong",
          attemptsLeft: left,
        });
      }
      expect(await store.verify(phone, digest(phone, "123456"), MAX)).toMatchObject({ kind: "exhausted" });
      // Still "exhausted", not "missing": the caller can say "too many attempts" rather than "expired".
      expect(await store.verify(phone, digest(phone, "123456"), MAX)).toMatchObject({ kind: "exhausted" });
      await expire(phone, 2);
      expect(await store.verify(phone, digest(phone, "123456"), MAX)).toMatchObject({ kind: "missing" });
    });

    it.concurrent("an expired code is missing", async ({ expect }) => {
      const { store, expire } = await makeStore();
      const phone = uniquePhone();
      await store.put(phone, digest(phone, "123456"), 1, newCode());
      await expire(phone, 1);
      expect(await store.verify(phone, digest(phone, "123456"), MAX)).toMatchObject({ kind: "missing" });
    });

    it("a digest of another length is simply wrong", async () => {
      const { store } = await makeStore();
      const phone = uniquePhone();
      const right = digest(phone, "123456");
      await store.put(phone, right, LONG_TTL, newCode());
      expect(await store.verify(phone, right.slice(0, -1), MAX)).toMatchObject({
        kind: "wrong",
        attemptsLeft: 2,
      });
      expect(await store.verify(phone, `${right}A`, MAX)).toMatchObject({ kind: "wrong", attemptsLeft: 1 });
      expect(await store.verify(phone, "", MAX)).toMatchObject({ kind: "wrong", attemptsLeft: 0 });
    });

    it("a resend keeps the previous code live beside the new one, on one shared attempt count", async () => {
      const { store } = await makeStore();
      const phone = uniquePhone();
      const first = await store.put(phone, digest(phone, "111111"), LONG_TTL, newCode());
      expect(await store.verify(phone, digest(phone, "999999"), MAX)).toMatchObject({
        kind: "wrong",
        attemptsLeft: 2,
        verificationId: first.verificationId,
      });
      const second = await store.put(phone, digest(phone, "222222"), LONG_TTL, newCode());
      // The same verification continues: a resend adds no guesses.
      expect(second.verificationId).toBe(first.verificationId);
      expect(await store.verify(phone, digest(phone, "999998"), MAX)).toMatchObject({
        kind: "wrong",
        attemptsLeft: 1,
      });
      // The late code works, and takes the new one with it.
      expect(await store.verify(phone, digest(phone, "111111"), MAX)).toMatchObject({
        kind: "ok",
        verificationId: first.verificationId,
      });
      expect(await store.verify(phone, digest(phone, "222222"), MAX)).toMatchObject({ kind: "missing" });
    });

    it("two candidate digests (OTP_SECRET_PREVIOUS) match the late code too, and a miss of both is one try", async () => {
      const { store } = await makeStore();
      const phone = uniquePhone();
      const old = (code: string) => codeDigest(PREVIOUS_SECRET, phone, code);
      // Sent before the rotation (under the previous secret), then resent after it (under the current one).
      const first = await store.put(phone, old("111111"), LONG_TTL, newCode());
      await store.put(phone, digest(phone, "222222"), LONG_TTL, newCode());
      expect(await store.verify(phone, [digest(phone, "999999"), old("999999")], MAX)).toMatchObject({
        kind: "wrong",
        attemptsLeft: 2,
      });
      expect(await store.verify(phone, [digest(phone, "111111"), old("111111")], MAX)).toMatchObject({
        kind: "ok",
        verificationId: first.verificationId,
      });
      expect(await store.verify(phone, [digest(phone, "222222"), old("222222")], MAX)).toMatchObject({
        kind: "missing",
      });
    });

    it("keeps at most two live codes: a third send retires the first", async () => {
      const { store } = await makeStore();
      const phone = uniquePhone();
      for (const code of ["111111", "222222", "333333"]) {
        await store.put(phone, digest(phone, code), LONG_TTL, newCode(10));
      }
      expect(await store.verify(phone, digest(phone, "111111"), 10)).toMatchObject({ kind: "wrong" });
      expect(await store.verify(phone, digest(phone, "222222"), 10)).toMatchObject({ kind: "ok" });
    });

    it("a send after the attempts ran out starts a new verification, its count at zero", async () => {
      const { store } = await makeStore();
      const phone = uniquePhone();
      const first = await store.put(phone, digest(phone, "111111"), LONG_TTL, newCode());
      for (let i = 0; i < MAX; i++) await store.verify(phone, digest(phone, "999999"), MAX);
      const second = await store.put(phone, digest(phone, "222222"), LONG_TTL, newCode());
      expect(second.verificationId).not.toBe(first.verificationId);
      // The dead verification's code is not carried over.
      expect(await store.verify(phone, digest(phone, "111111"), MAX)).toMatchObject({
        kind: "wrong",
        attemptsLeft: 2,
      });
    });

    it("with a verification id, only that verification's codes are checked", async () => {
      const { store } = await makeStore();
      const phone = uniquePhone();
      const other = uniquePhone();
      const mine = await store.put(phone, digest(phone, "111111"), LONG_TTL, newCode());
      const theirs = await store.put(other, digest(other, "111111"), LONG_TTL, newCode());
      expect(
        await store.verify(phone, digest(phone, "111111"), MAX, undefined, undefined, theirs.verificationId),
      ).toEqual({ kind: "not_found" });
      expect(
        await store.verify(phone, digest(phone, "111111"), MAX, undefined, undefined, newVerificationId()),
      ).toEqual({ kind: "not_found" });
      expect(
        await store.verify(phone, digest(phone, "111111"), MAX, undefined, undefined, mine.verificationId),
      ).toMatchObject({ kind: "ok", verificationId: mine.verificationId });
    });

    it("a new put revives an exhausted phone", async () => {
      const { store } = await makeStore();
      const phone = uniquePhone();
      await store.put(phone, digest(phone, "111111"), LONG_TTL, newCode());
      for (let i = 0; i <= MAX; i++) await store.verify(phone, digest(phone, "999999"), MAX);
      await store.put(phone, digest(phone, "222222"), LONG_TTL, newCode());
      expect(await store.verify(phone, digest(phone, "222222"), MAX)).toMatchObject({ kind: "ok" });
    });

    it("refuses a TTL that is not a whole number of seconds >= 1", async () => {
      const { store } = await makeStore();
      const phone = uniquePhone();
      for (const ttl of [0, -1, 1.5, Number.NaN]) {
        await expect(store.put(phone, digest(phone, "123456"), ttl, newCode())).rejects.toThrow(RangeError);
      }
      expect(await store.verify(phone, digest(phone, "123456"), MAX)).toMatchObject({ kind: "missing" });
    });

    it("discard removes the code only when the digest matches", async () => {
      const { store } = await makeStore();
      const phone = uniquePhone();

      await store.put(phone, digest(phone, "111111"), LONG_TTL, newCode());
      await store.discard(phone, digest(phone, "222222"));
      expect(await store.verify(phone, digest(phone, "111111"), MAX)).toMatchObject({ kind: "ok" });

      await store.put(phone, digest(phone, "111111"), LONG_TTL, newCode());
      await store.discard(phone, digest(phone, "111111"));
      expect(await store.verify(phone, digest(phone, "111111"), MAX)).toMatchObject({ kind: "missing" });

      // The unsent older code's cleanup must not remove the newer one that was sent since.
      await store.put(phone, digest(phone, "111111"), LONG_TTL, newCode());
      await store.put(phone, digest(phone, "222222"), LONG_TTL, newCode());
      await store.discard(phone, digest(phone, "111111"));
      expect(await store.verify(phone, digest(phone, "222222"), MAX)).toMatchObject({ kind: "ok" });
    });

    it("50 concurrent verifies of one code give exactly one ok", async () => {
      const { store } = await makeStore();
      const phone = uniquePhone();
      await store.put(phone, digest(phone, "123456"), LONG_TTL, newCode());
      const outcomes = await Promise.all(
        Array.from({ length: 50 }, () => store.verify(phone, digest(phone, "123456"), 100)),
      );
      expect(outcomes.filter((o) => o.kind === "ok")).toHaveLength(1);
      expect(outcomes.filter((o) => o.kind === "missing")).toHaveLength(49);
    });

    it("concurrent wrong guesses never get more than maxAttempts tries", async () => {
      const { store } = await makeStore();
      const phone = uniquePhone();
      await store.put(phone, digest(phone, "123456"), LONG_TTL, newCode());
      const outcomes = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          store.verify(phone, digest(phone, String(i).padStart(6, "0")), 5),
        ),
      );
      const left = outcomes.flatMap((o) => (o.kind === "wrong" ? [o.attemptsLeft] : []));
      expect(left.sort()).toEqual([0, 1, 2, 3, 4]);
      expect(outcomes.filter((o) => o.kind === "exhausted")).toHaveLength(25);
      expect(await store.verify(phone, digest(phone, "123456"), 5)).toMatchObject({ kind: "exhausted" });
    });

    it("keeps phones apart", async () => {
      const { store } = await makeStore();
      const a = uniquePhone();
      const b = uniquePhone();
      await store.put(a, digest(a, "123456"), LONG_TTL, newCode());
      await store.put(b, digest(b, "123456"), LONG_TTL, newCode());
      // A's digest is not B's code, even for the same digits: the phone is bound into the digest.
      expect(await store.verify(b, digest(a, "123456"), MAX)).toMatchObject({
        kind: "wrong",
        attemptsLeft: 2,
      });
      await store.discard(b, digest(a, "123456"));
      for (let i = 0; i < MAX; i++) await store.verify(a, digest(a, "999999"), MAX);
      expect(await store.verify(a, digest(a, "123456"), MAX)).toMatchObject({ kind: "exhausted" });
      expect(await store.verify(b, digest(b, "123456"), MAX)).toMatchObject({ kind: "ok" });
    });

    it("keys carry the {phone} hash tag and never the code", async (ctx) => {
      const under = await makeStore();
      if (!under.keys) return ctx.skip();
      const phone = uniquePhone();
      let code = "";
      // A code that happens to occur inside the phone number would make the check meaningless.
      do code = String(randomInt(1_000_000)).padStart(6, "0");
      while (phone.includes(code));
      await under.store.put(phone, digest(phone, code), LONG_TTL, newCode());
      await under.store.verify(phone, digest(phone, "x"), MAX);

      const keys = await under.keys();
      const mine = keys.filter((k) => k.includes(phone));
      expect(mine.length).toBeGreaterThan(0);
      for (const k of mine) expect(k).toContain(`{${phone}}`);
      for (const k of keys) expect(k).not.toContain(code);

      await under.store.verify(phone, digest(phone, code), MAX);
      // Only the verification's record stays (for its retention), and it holds no code either.
      expect((await under.keys()).filter((k) => k.includes(phone))).toEqual([`vers:{${phone}}`]);
    });

    describe("the per-phone failure lock", () => {
      const LOCK: FailureLock = { maxFailures: 4, lockSeconds: 300 };
      // Attempts enough that the shared count of a continued verification never ends these before the lock.
      const M = 10;
      const wrongs = async (store: OtpStore, phone: string, n: number) => {
        for (let i = 0; i < n; i++) await store.verify(phone, digest(phone, "999999"), M, LOCK);
      };

      it("counts wrong codes across resends and locks the phone at maxFailures, even for the right code", async () => {
        const { store } = await makeStore();
        const phone = uniquePhone();
        // Spread over two codes: the phone's count outlives them.
        await store.put(phone, digest(phone, "111111"), LONG_TTL, newCode(M));
        await wrongs(store, phone, 2);
        await store.put(phone, digest(phone, "222222"), LONG_TTL, newCode(M));
        await wrongs(store, phone, 1);
        expect(await store.lockedFor(phone)).toBe(0);
        expect(await store.verify(phone, digest(phone, "000000"), M, LOCK)).toMatchObject({
          kind: "wrong",
          attemptsLeft: M - 4,
          locked: true,
        });
        const locked = await store.verify(phone, digest(phone, "222222"), M, LOCK);
        expect(locked.kind).toBe("locked");
        const ms = locked.kind === "locked" ? locked.retryAfterMs : 0;
        expect(ms).toBeGreaterThan(290_000);
        expect(ms).toBeLessThanOrEqual(300_000);
        const left = await store.lockedFor(phone);
        expect(left).toBeGreaterThan(290_000);
        expect(left).toBeLessThanOrEqual(300_000);
        // A new code does not lift the lock.
        await store.put(phone, digest(phone, "333333"), LONG_TTL, newCode(M));
        expect((await store.verify(phone, digest(phone, "333333"), M, LOCK)).kind).toBe("locked");
      });

      it("is checked before the code: a locked phone spends no attempt and learns nothing", async () => {
        const { store } = await makeStore();
        const phone = uniquePhone();
        await store.put(phone, digest(phone, "111111"), LONG_TTL, newCode(M));
        await wrongs(store, phone, 2);
        await store.put(phone, digest(phone, "111111"), LONG_TTL, newCode(M));
        await wrongs(store, phone, 2);
        expect((await store.verify(phone, digest(phone, "111111"), M, LOCK)).kind).toBe("locked");
        // Without the lock check, the code is still there with its attempts untouched by the locked tries.
        expect(await store.verify(phone, digest(phone, "000000"), M)).toMatchObject({
          kind: "wrong",
          attemptsLeft: M - 5,
        });
        const never = uniquePhone();
        expect(await store.verify(never, digest(never, "111111"), M, LOCK)).toMatchObject({
          kind: "missing",
        });
      });

      it("a success clears the count", async () => {
        const { store } = await makeStore();
        const phone = uniquePhone();
        // Three wrong codes across a resend, then the right one: three more must not reach 4.
        for (let round = 0; round < 2; round++) {
          await store.put(phone, digest(phone, "111111"), LONG_TTL, newCode(M));
          await wrongs(store, phone, 2);
          await store.put(phone, digest(phone, "111111"), LONG_TTL, newCode(M));
          await wrongs(store, phone, 1);
          expect(await store.lockedFor(phone)).toBe(0);
          expect(await store.verify(phone, digest(phone, "111111"), M, LOCK)).toMatchObject({ kind: "ok" });
        }
      });

      it("stops the clients that failed on the phone, not one that never did (whose wrong try counts)", async () => {
        const { store } = await makeStore();
        const phone = uniquePhone();
        const guess = (client: string, code: string) =>
          store.verify(phone, digest(phone, code), 5, LOCK, client);
        await store.put(phone, digest(phone, "111111"), LONG_TTL, newCode());
        for (let i = 0; i < 4; i++) await guess("203.0.113.1", "999999");
        // Locked for the guesser (and for anyone unknown), open to a client that never failed here.
        expect((await guess("203.0.113.1", "111111")).kind).toBe("locked");
        expect(await store.lockedFor(phone, "203.0.113.1")).toBeGreaterThan(290_000);
        expect(await store.lockedFor(phone)).toBeGreaterThan(290_000);
        expect(await store.lockedFor(phone, "198.51.100.7")).toBe(0);
        // The per-code attempts still bind: this try is the code's fifth of 5.
        expect(await guess("198.51.100.7", "000000")).toMatchObject({ kind: "wrong", attemptsLeft: 0 });
        // Its wrong try made it a client that failed.
        expect((await guess("198.51.100.7", "111111")).kind).toBe("locked");
        expect(await store.lockedFor(phone, "198.51.100.7")).toBeGreaterThan(0);
        await store.put(phone, digest(phone, "222222"), LONG_TTL, newCode());
        expect(await guess("192.0.2.9", "222222")).toMatchObject({ kind: "ok" });
        // The owner's login lifts no lock: the guesser stays locked out.
        await store.put(phone, digest(phone, "333333"), LONG_TTL, newCode());
        expect((await guess("203.0.113.1", "333333")).kind).toBe("locked");
      });

      it("without a lock (or maxFailures 0) nothing is counted", async () => {
        const { store } = await makeStore();
        const phone = uniquePhone();
        for (let i = 0; i < 3; i++) {
          await store.put(phone, digest(phone, "111111"), LONG_TTL, newCode());
          for (let j = 0; j < MAX; j++) {
            await store.verify(
              phone,
              digest(phone, "999999"),
              MAX,
              i === 0 ? undefined : { maxFailures: 0, lockSeconds: 1 },
            );
          }
        }
        expect(await store.lockedFor(phone)).toBe(0);
        await store.put(phone, digest(phone, "111111"), LONG_TTL, newCode());
        expect(await store.verify(phone, digest(phone, "111111"), MAX, LOCK)).toMatchObject({ kind: "ok" });
      });

      it("refuses lock settings that are not whole numbers", async () => {
        const { store } = await makeStore();
        const phone = uniquePhone();
        for (const lock of [
          { maxFailures: -1, lockSeconds: 60 },
          { maxFailures: 1.5, lockSeconds: 60 },
          { maxFailures: 3, lockSeconds: 0 },
          { maxFailures: 3, lockSeconds: 2.5 },
        ]) {
          await expect(store.verify(phone, digest(phone, "1"), MAX, lock)).rejects.toThrow(RangeError);
        }
      });

      it.concurrent("the lock ends after lockSeconds", async ({ expect }) => {
        const { store, expire } = await makeStore();
        const phone = uniquePhone();
        const lock = { maxFailures: 2, lockSeconds: 1 };
        await store.put(phone, digest(phone, "111111"), 1, newCode());
        await store.verify(phone, digest(phone, "999999"), MAX, lock);
        await store.verify(phone, digest(phone, "999999"), MAX, lock);
        expect((await store.verify(phone, digest(phone, "111111"), MAX, lock)).kind).toBe("locked");
        await expire(phone, 1);
        expect(await store.lockedFor(phone)).toBe(0);
        await store.put(phone, digest(phone, "111111"), LONG_TTL, newCode());
        expect(await store.verify(phone, digest(phone, "111111"), MAX, lock)).toMatchObject({ kind: "ok" });
      });
    });

    it("property: a code verifies at most once, and only the right code verifies", async () => {
      const { store } = await makeStore();
      const op = fc.record({
        op: fc.constantFrom("put", "verify", "verify", "discard"),
        phone: fc.nat(1),
        code: fc.nat(2),
      });
      const scenario = fc.record({
        maxAttempts: fc.integer({ min: 1, max: 5 }),
        codes: fc.uniqueArray(fc.stringMatching(/^[0-9]{6}$/), { minLength: 3, maxLength: 3 }),
        ops: fc.array(op, { maxLength: 25 }),
      });
      await fc.assert(
        fc.asyncProperty(scenario, async ({ maxAttempts, codes, ops }) => {
          const phones = [uniquePhone(), uniquePhone()];
          // The model: what each phone holds (the current code and the late one a resend kept, one attempt count
          // for both), and how often each verification has verified.
          const model = new Map<string, { codes: string[]; attempts: number; verification: number }>();
          const oks: number[] = [];
          for (const { op, phone: p, code: c } of ops) {
            const phone = phones[p] as string;
            const code = codes[c] as string;
            const held = model.get(phone);
            if (op === "put") {
              await store.put(phone, digest(phone, code), LONG_TTL, newCode(maxAttempts));
              if (held && held.attempts < maxAttempts) held.codes = [code, held.codes[0] as string];
              else model.set(phone, { codes: [code], attempts: 0, verification: oks.push(0) - 1 });
            } else if (op === "discard") {
              await store.discard(phone, digest(phone, code));
              if (held?.codes[0] === code) {
                held.codes.shift();
                if (held.codes.length === 0) model.delete(phone);
              }
            } else {
              const outcome = await store.verify(phone, digest(phone, code), maxAttempts);
              let expected: VerifyOutcome["kind"];
              if (!held) expected = "missing";
              else if (++held.attempts > maxAttempts) expected = "exhausted";
              else if (held.codes.includes(code)) expected = "ok";
              else expected = "wrong";
              expect(outcome.kind).toBe(expected);
              if (outcome.kind === "wrong")
                expect(outcome.attemptsLeft).toBe(maxAttempts - (held?.attempts ?? 0));
              if (outcome.kind === "ok") {
                // The invariants themselves, beyond agreeing with the model.
                expect(held?.codes).toContain(code);
                if (held) oks[held.verification] = (oks[held.verification] ?? 0) + 1;
                model.delete(phone);
              }
            }
          }
          expect(oks.every((n) => n <= 1)).toBe(true);
        }),
        { numRuns: opts.numRuns },
      );
    });

    it("property: maxAttempts wrong codes kill the code for any maxAttempts", async () => {
      const { store } = await makeStore();
      const scenario = fc.record({
        maxAttempts: fc.integer({ min: 1, max: 10 }),
        codes: fc.uniqueArray(fc.stringMatching(/^[0-9]{6}$/), { minLength: 2, maxLength: 11 }),
      });
      await fc.assert(
        fc.asyncProperty(scenario, async ({ maxAttempts, codes }) => {
          const phone = uniquePhone();
          const [right = "", ...wrong] = codes;
          await store.put(phone, digest(phone, right), LONG_TTL, newCode());
          for (let i = 1; i <= maxAttempts; i++) {
            const guess = wrong[i % wrong.length] as string;
            expect(await store.verify(phone, digest(phone, guess), maxAttempts)).toMatchObject({
              kind: "wrong",
              attemptsLeft: maxAttempts - i,
            });
          }
          expect(await store.verify(phone, digest(phone, right), maxAttempts)).toMatchObject({
            kind: "exhausted",
          });
        }),
        { numRuns: opts.numRuns },
      );
    });
  });
}
