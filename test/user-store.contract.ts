import { randomInt } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { UserStore } from "../src/login/ports.js";

/** One store to test. */
export interface UserStoreUnderTest {
  readonly store: UserStore;
}

export interface UserStoreContractOptions {
  /** Runs per fast-check property: a store behind a socket affords fewer than one in memory. */
  readonly numRuns: number;
  /** A store with no users at all, to check that ids start at 1; left out where none can be had. */
  readonly makeEmptyStore?: () => Promise<UserStore>;
}

// Random start, so reruns against a shared REDIS_URL never meet an earlier run's phones.
const phoneBase = randomInt(100_000_000, 800_000_000);
let phoneSeq = 0;
/** A phone number no other test uses. */
export function uniquePhone(): string {
  phoneSeq += 1;
  return `+918${phoneBase + phoneSeq}`;
}

/** The behaviour every `UserStore` must have, run for each implementation so they cannot drift apart. */
export function userStoreContract(
  name: string,
  makeStore: () => Promise<UserStoreUnderTest>,
  opts: UserStoreContractOptions,
): void {
  describe(`UserStore contract: ${name}`, () => {
    it("creates a verified consumer named after the last four digits", async () => {
      const { store } = await makeStore();
      const phone = uniquePhone();
      const user = await store.create(phone);
      expect(Number.isSafeInteger(user.id) && user.id >= 1).toBe(true);
      expect(user).toEqual({
        id: user.id,
        phone,
        name: `User ${phone.slice(-4)}`,
        role: "consumer",
        isPhoneVerified: true,
      });
      expect(await store.findByPhone(phone)).toEqual(user);
    });

    it("creates with a reserved id, and a reserved id that lost the race is not used", async () => {
      const { store } = await makeStore();
      const phone = uniquePhone();
      const id = await store.reserveId();
      const user = await store.create(phone, id);
      expect(user.id).toBe(id);
      const late = await store.reserveId();
      expect(late).not.toBe(id);
      expect(await store.create(phone, late)).toEqual(user);
      const other = uniquePhone();
      expect((await store.create(other)).id).not.toBe(id);
    });

    it("finds nobody for an unknown phone", async () => {
      const { store } = await makeStore();
      expect(await store.findByPhone(uniquePhone())).toBeUndefined();
      expect(await store.admittedFind(uniquePhone()).run()).toBeUndefined();
    });

    it("finds the same user as a read that can ride beside a check as by a lookup of its own", async () => {
      const { store } = await makeStore();
      const phone = uniquePhone();
      const user = await store.create(phone);
      expect(await store.admittedFind(phone).run()).toEqual(user);
      expect(await store.admittedFind(phone).run()).toEqual(await store.findByPhone(phone));
    });

    it("returns the existing user when the phone already has one", async () => {
      const { store } = await makeStore();
      const phone = uniquePhone();
      const first = await store.create(phone);
      expect(await store.create(phone)).toEqual(first);
      expect(await store.findByPhone(phone)).toEqual(first);
    });

    it("gives different phones distinct, increasing ids", async () => {
      const { store } = await makeStore();
      const ids: number[] = [];
      for (let i = 0; i < 5; i++) ids.push((await store.create(uniquePhone())).id);
      for (let i = 1; i < ids.length; i++) expect(ids[i]).toBeGreaterThan(ids[i - 1] as number);
    });

    it("concurrent first logins of one phone end with one user", async () => {
      const { store } = await makeStore();
      const phone = uniquePhone();
      const users = await Promise.all(Array.from({ length: 20 }, () => store.create(phone)));
      const first = users[0];
      for (const u of users) expect(u).toEqual(first);
      expect(await store.findByPhone(phone)).toEqual(first);
    });

    const { makeEmptyStore } = opts;
    it.skipIf(!makeEmptyStore)("numbers users from 1", async () => {
      if (!makeEmptyStore) return;
      const store = await makeEmptyStore();
      expect((await store.create(uniquePhone())).id).toBe(1);
      expect((await store.create(uniquePhone())).id).toBe(2);
    });

    it("property: any burst of concurrent creates gives one user per phone and one phone per id", async () => {
      const { store } = await makeStore();
      await fc.assert(
        fc.asyncProperty(fc.array(fc.nat(4), { minLength: 1, maxLength: 30 }), async (picks) => {
          const phones = Array.from({ length: 5 }, uniquePhone);
          const created = await Promise.all(picks.map((p) => store.create(phones[p] as string)));
          const idOf = new Map<string, number>();
          for (const user of created) {
            expect(idOf.get(user.phone) ?? user.id).toBe(user.id);
            idOf.set(user.phone, user.id);
          }
          expect(new Set(idOf.values()).size).toBe(idOf.size);
          for (const [phone, id] of idOf) expect((await store.findByPhone(phone))?.id).toBe(id);
        }),
        { numRuns: opts.numRuns },
      );
    });
  });
}
