import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { TokenRef } from "../src/login/model.js";
import type { RefreshRecord, RefreshStore, RotateOutcome } from "../src/login/ports.js";
import { mintRefreshToken, parseRefreshToken, successorRefreshToken } from "../src/login/refresh-token.js";

/** What a store implementation gives the shared suite. */
export interface RefreshStoreHarness {
  readonly store: RefreshStore;
  /** `n` stores over the same data, each on its own connection where there are connections, to race. */
  racers(n: number): RefreshStore[];
  /** The TTL the expiry test creates its token with. */
  readonly shortTtlSeconds: number;
  /** Resolves once a token created with `shortTtlSeconds` (and its family) has expired. */
  waitUntilExpired(ref: TokenRef): Promise<void>;
  /** Resolves once, by the store's clock, `graceSeconds` have passed since `spent` was rotated. */
  waitPastGrace(spent: TokenRef, graceSeconds: number): Promise<void>;
}

const TTL = 3600;
const PHONE = "+919876543210";
const ROLE = "consumer";
// Long enough that no test within it can overrun it, even on a loaded machine.
const GRACE = 60;
const KEY = randomBytes(32);

/**
 * The behaviour every RefreshStore must have. Call inside a `describe`; `harness` is read inside each test so
 * it can be built in `beforeAll`.
 */
export function refreshStoreContract(harness: () => RefreshStoreHarness): void {
  // Each test works on its own user, so tests never see each other's families.
  let lastUserId = 1000;
  const login = async (store: RefreshStore, ttl = TTL) => {
    const userId = ++lastUserId;
    const { token, ref } = mintRefreshToken(userId);
    const record: RefreshRecord = { ...ref, phone: PHONE, role: ROLE };
    await store.create(record, ttl);
    return { token, ref };
  };
  /** A rotation into a random successor, with the grace off unless given: the behaviour before the grace. */
  const rotate = async (
    store: RefreshStore,
    current: TokenRef,
    grace = 0,
  ): Promise<[RotateOutcome, TokenRef]> => {
    const next = mintRefreshToken(current.userId, current.family).ref;
    return [await store.rotate(current, next.hash, TTL, grace), next];
  };
  /** A rotation as the login service does it: into the token's one successor, with a grace. */
  const refresh = async (store: RefreshStore, token: string, grace = GRACE) => {
    const current = parseRefreshToken(token);
    if (!current) throw new Error(`not a token: ${token}`);
    const next = successorRefreshToken(token, KEY);
    return { outcome: await store.rotate(current, next.ref.hash, TTL, grace), next };
  };

  it("rotates a live token into the next one of its family, carrying the claims", async () => {
    const { store } = harness();
    const first = (await login(store)).ref;
    const [outcome, second] = await rotate(store, first);
    expect(outcome).toEqual({
      kind: "ok",
      record: { userId: first.userId, family: first.family, hash: second.hash, phone: PHONE, role: ROLE },
      repeated: false,
    });
    const [again] = await rotate(store, second);
    expect(again.kind).toBe("ok");
  });

  it("treats a replayed token as theft: reused, then its whole family is invalid", async () => {
    const { store } = harness();
    const first = (await login(store)).ref;
    const [ok, second] = await rotate(store, first);
    expect(ok.kind).toBe("ok");
    expect((await rotate(store, first))[0]).toEqual({ kind: "reused" });
    expect((await rotate(store, second))[0]).toEqual({ kind: "invalid" });
    expect((await rotate(store, first))[0]).toEqual({ kind: "invalid" });
  });

  it("revokeFamily kills every token of the family, and only that family", async () => {
    const { store } = harness();
    const a = (await login(store)).ref;
    const [, b] = await rotate(store, a);
    const [, c] = await rotate(store, b);
    const otherDevice = mintRefreshToken(a.userId);
    await store.create({ ...otherDevice.ref, phone: PHONE, role: ROLE }, TTL);

    expect(await store.revokeFamily(c)).toBe(true);
    for (const ref of [a, b, c]) expect((await rotate(store, ref))[0]).toEqual({ kind: "invalid" });
    expect(await store.revokeFamily(c)).toBe(true);
    expect(await store.revokeFamily(a)).toBe(true);
    expect((await rotate(store, otherDevice.ref))[0].kind).toBe("ok");
  });

  it("knows nothing of tokens it never issued", async () => {
    const { store } = harness();
    const stranger = mintRefreshToken(++lastUserId).ref;
    expect((await rotate(store, stranger))[0]).toEqual({ kind: "invalid" });
    expect(await store.revokeFamily(stranger)).toBe(false);

    // A real hash presented with another user or family is not that token.
    const real = (await login(store)).ref;
    const otherFamily = mintRefreshToken(real.userId).ref.family;
    expect((await rotate(store, { ...real, family: otherFamily }))[0]).toEqual({ kind: "invalid" });
    expect((await rotate(store, { ...real, userId: real.userId + 1 }))[0]).toEqual({ kind: "invalid" });
    expect(await store.revokeFamily({ ...real, family: otherFamily })).toBe(false);
    // Knowing a user's family (it is in every token of it) without a live secret revokes nothing.
    const guessed = mintRefreshToken(real.userId, real.family).ref;
    expect(await store.revokeFamily(guessed)).toBe(false);
    expect((await rotate(store, guessed))[0]).toEqual({ kind: "invalid" });
    expect((await rotate(store, real))[0].kind).toBe("ok");
  });

  it("forgets tokens after their TTL", async () => {
    const h = harness();
    const expiring = (await login(h.store, h.shortTtlSeconds)).ref;
    await h.waitUntilExpired(expiring);
    expect((await rotate(h.store, expiring))[0]).toEqual({ kind: "invalid" });
    expect(await h.store.revokeFamily(expiring)).toBe(false);
  });

  it("with the grace off, lets exactly one of many concurrent rotations of one token succeed", async () => {
    const h = harness();
    const { token, ref: first } = await login(h.store);
    const results = await Promise.all(h.racers(8).map((store) => refresh(store, token, 0)));
    const winners = results.filter(({ outcome }) => outcome.kind === "ok");
    expect(winners).toHaveLength(1);
    expect(results.some(({ outcome }) => outcome.kind === "reused")).toBe(true);
    // The race looks like a replay, so even the winner's token dies with the family.
    const [winner] = winners;
    if (!winner) throw new Error("no winner");
    expect((await rotate(h.store, winner.next.ref))[0]).toEqual({ kind: "invalid" });
    expect((await rotate(h.store, first))[0]).toEqual({ kind: "invalid" });
  });

  describe("the reuse grace", () => {
    it("answers a retry within the grace with the same successor, and spends nothing more", async () => {
      const { store } = harness();
      const { token } = await login(store);
      const first = await refresh(store, token);
      const record = { ...first.next.ref, phone: PHONE, role: ROLE };
      expect(first.outcome).toEqual({ kind: "ok", record, repeated: false });
      for (let i = 0; i < 3; i++) {
        expect((await refresh(store, token)).outcome).toEqual({ kind: "ok", record, repeated: true });
      }
      // The successor is live and alone: it rotates once, and its family is intact.
      const second = await refresh(store, first.next.token);
      expect(second.outcome).toMatchObject({ kind: "ok", repeated: false });
      expect((await refresh(store, second.next.token)).outcome).toMatchObject({
        kind: "ok",
        repeated: false,
      });
    });

    it("after the grace, a spent token is a reuse again: the family is revoked", async () => {
      const h = harness();
      const { token, ref } = await login(h.store);
      const first = await refresh(h.store, token);
      expect(first.outcome.kind).toBe("ok");
      const short = 0.2;
      await h.waitPastGrace(ref, short);
      expect((await refresh(h.store, token, short)).outcome).toEqual({ kind: "reused" });
      expect((await refresh(h.store, first.next.token)).outcome).toEqual({ kind: "invalid" });
      expect((await refresh(h.store, token)).outcome).toEqual({ kind: "invalid" });
    });

    it("20 concurrent refreshes of one token all get the same successor; the family stays active", async () => {
      const h = harness();
      const { token } = await login(h.store);
      const results = await Promise.all(h.racers(20).map((store) => refresh(store, token)));
      const expected = { ...successorRefreshToken(token, KEY).ref, phone: PHONE, role: ROLE };
      for (const { outcome } of results) expect(outcome).toMatchObject({ kind: "ok", record: expected });
      expect(results.filter(({ outcome }) => outcome.kind === "ok" && !outcome.repeated)).toHaveLength(1);
      const next = results[0]?.next.token ?? "";
      expect((await refresh(h.store, next)).outcome).toMatchObject({ kind: "ok", repeated: false });
    });

    it("once the successor has been rotated itself, the old token is a true replay", async () => {
      const { store } = harness();
      const { token } = await login(store);
      const first = await refresh(store, token);
      const second = await refresh(store, first.next.token);
      expect(second.outcome.kind).toBe("ok");
      expect((await refresh(store, token)).outcome).toEqual({ kind: "reused" });
      expect((await refresh(store, second.next.token)).outcome).toEqual({ kind: "invalid" });
    });

    it("a spent token presented for another successor is a reuse, even within the grace", async () => {
      const { store } = harness();
      const { token, ref } = await login(store);
      const first = await refresh(store, token);
      expect((await rotate(store, ref, GRACE))[0]).toEqual({ kind: "reused" });
      expect((await refresh(store, first.next.token)).outcome).toEqual({ kind: "invalid" });
    });

    it("is off at 0: a retry revokes the family, as without the grace", async () => {
      const { store } = harness();
      const { token } = await login(store);
      const first = await refresh(store, token, 0);
      expect(first.outcome.kind).toBe("ok");
      expect((await refresh(store, token, 0)).outcome).toEqual({ kind: "reused" });
      expect((await refresh(store, first.next.token, 0)).outcome).toEqual({ kind: "invalid" });
    });

    it("refuses a negative or non-finite grace", async () => {
      const { store } = harness();
      const { ref } = await login(store);
      const next = mintRefreshToken(ref.userId, ref.family).ref.hash;
      for (const grace of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
        await expect(store.rotate(ref, next, TTL, grace)).rejects.toThrow(RangeError);
      }
    });
  });

  it("matches a one-family model for any sequence of refreshes, retries, replays and revocations", async () => {
    const { store } = harness();
    const action = fc.record({ revoke: fc.boolean(), pick: fc.nat() });
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(action, { maxLength: 12 }), async (graceOn, actions) => {
        const grace = graceOn ? GRACE : 0;
        const issued = [(await login(store)).token];
        let revoked = false;
        for (const { revoke, pick } of actions) {
          const index = pick % issued.length;
          const token = issued[index];
          if (!token) throw new Error("unreachable");
          if (revoke) {
            const ref = parseRefreshToken(token);
            if (!ref) throw new Error("unreachable");
            expect(await store.revokeFamily(ref)).toBe(true);
            revoked = true;
            continue;
          }
          const { outcome, next } = await refresh(store, token, grace);
          if (revoked) {
            expect(outcome).toEqual({ kind: "invalid" });
          } else if (index === issued.length - 1) {
            // Rotation spends every token but the newest.
            expect(outcome).toMatchObject({ kind: "ok", repeated: false });
            issued.push(next.token);
          } else if (graceOn && index === issued.length - 2) {
            // The newest's predecessor, with the newest unspent: a retry, answered with the newest.
            expect(outcome).toMatchObject({ kind: "ok", record: { hash: next.ref.hash }, repeated: true });
            expect(next.token).toBe(issued.at(-1));
          } else {
            expect(outcome).toEqual({ kind: "reused" });
            revoked = true;
          }
        }
      }),
      { numRuns: 60 },
    );
  });
}
