import fc from "fast-check";
import { expect, it } from "vitest";
import type { TokenRef } from "../src/login/model.js";
import type { RefreshRecord, RefreshStore, RotateOutcome } from "../src/login/ports.js";
import { mintRefreshToken } from "../src/login/refresh-token.js";

/** What a store implementation gives the shared suite. */
export interface RefreshStoreHarness {
  readonly store: RefreshStore;
  /** `n` stores over the same data, each on its own connection where there are connections, to race. */
  racers(n: number): RefreshStore[];
  /** The TTL the expiry test creates its token with. */
  readonly shortTtlSeconds: number;
  /** Resolves once a token created with `shortTtlSeconds` (and its family) has expired. */
  waitUntilExpired(ref: TokenRef): Promise<void>;
}

const TTL = 3600;
const PHONE = "+919876543210";
const ROLE = "consumer";

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
  const rotate = async (store: RefreshStore, current: TokenRef): Promise<[RotateOutcome, TokenRef]> => {
    const next = mintRefreshToken(current.userId, current.family).ref;
    return [await store.rotate(current, next.hash, TTL), next];
  };

  it("rotates a live token into the next one of its family, carrying the claims", async () => {
    const { store } = harness();
    const first = (await login(store)).ref;
    const [outcome, second] = await rotate(store, first);
    expect(outcome).toEqual({
      kind: "ok",
      record: { userId: first.userId, family: first.family, hash: second.hash, phone: PHONE, role: ROLE },
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

  it("lets exactly one of many concurrent rotations of one token succeed", async () => {
    const h = harness();
    const first = (await login(h.store)).ref;
    const results = await Promise.all(h.racers(8).map((store) => rotate(store, first)));
    const winners = results.filter(([outcome]) => outcome.kind === "ok");
    expect(winners).toHaveLength(1);
    expect(results.some(([outcome]) => outcome.kind === "reused")).toBe(true);
    // The race looks like a replay, so even the winner's token dies with the family.
    const [, winnerNext] = winners[0] ?? [];
    if (!winnerNext) throw new Error("no winner");
    expect((await rotate(h.store, winnerNext))[0]).toEqual({ kind: "invalid" });
  });

  it("matches a one-family model for any sequence of rotations, replays and revocations", async () => {
    const { store } = harness();
    const action = fc.record({ revoke: fc.boolean(), pick: fc.nat() });
    await fc.assert(
      fc.asyncProperty(fc.array(action, { maxLength: 12 }), async (actions) => {
        const issued = [(await login(store)).ref];
        let revoked = false;
        for (const { revoke, pick } of actions) {
          const index = pick % issued.length;
          const ref = issued[index];
          if (!ref) throw new Error("unreachable");
          if (revoke) {
            expect(await store.revokeFamily(ref)).toBe(true);
            revoked = true;
            continue;
          }
          const [outcome, next] = await rotate(store, ref);
          if (revoked) {
            expect(outcome).toEqual({ kind: "invalid" });
          } else if (index === issued.length - 1) {
            // Rotation spends every token but the newest.
            expect(outcome.kind).toBe("ok");
            issued.push(next);
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
