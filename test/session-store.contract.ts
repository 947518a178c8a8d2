import { expect, it } from "vitest";
import type { RefreshStore, SessionStore } from "../src/login/ports.js";
import { mintRefreshToken } from "../src/login/refresh-token.js";

/** What a store implementation gives the shared suite. */
export interface SessionStoreHarness {
  readonly store: RefreshStore & SessionStore;
  /** The TTL the expiry test logs in with. */
  readonly shortTtlSeconds: number;
  /** Resolves once a family created with `shortTtlSeconds` has expired. */
  waitUntilExpired(userId: number, family: string): Promise<void>;
  /** Resolves once the store's clock has moved on by at least a millisecond. */
  tick(): Promise<void>;
}

const TTL = 3600;
const PHONE = "+919876543210";
const ROLE = "consumer";

/**
 * The behaviour every session store must have: sessions are refresh families, written in the same step as
 * their tokens, listed and revoked only within one user. Call inside a `describe`.
 */
export function sessionStoreContract(harness: () => SessionStoreHarness, firstUserId: number): void {
  let lastUserId = firstUserId;
  const login = async (userId: number, label = "phone", ip = "203.0.113.7", ttl = TTL) => {
    const { store } = harness();
    const minted = mintRefreshToken(userId);
    await store.create({ ...minted.ref, phone: PHONE, role: ROLE }, ttl, { ip, label });
    return minted.ref;
  };
  const rotate = async (ref: ReturnType<typeof mintRefreshToken>["ref"], ip?: string) => {
    const next = mintRefreshToken(ref.userId, ref.family).ref;
    const outcome = await harness().store.rotate(
      ref,
      next.hash,
      TTL,
      0,
      ip === undefined ? undefined : { ip },
    );
    return { outcome, next };
  };

  it("lists a login's session with its label and address, created and last used at once", async () => {
    const userId = ++lastUserId;
    const a = await login(userId, "Asha's phone", "198.51.100.1");
    const [session, ...rest] = await harness().store.list(userId);
    expect(rest).toEqual([]);
    expect(session).toMatchObject({ id: a.family, label: "Asha's phone", ip: "198.51.100.1" });
    expect(session?.createdAt).toBe(session?.lastUsedAt);
    expect(Math.abs((session?.createdAt ?? 0) - Date.now())).toBeLessThan(24 * 3600_000 * 365 * 10);
  });

  it("a refresh records its use (time and address) in the same step, and keeps the label", async () => {
    const h = harness();
    const userId = ++lastUserId;
    const a = await login(userId, "laptop", "198.51.100.1");
    const [before] = await h.store.list(userId);
    await h.tick();
    const { outcome, next } = await rotate(a, "198.51.100.99");
    expect(outcome.kind).toBe("ok");
    const [after] = await h.store.list(userId);
    expect(after).toMatchObject({ id: a.family, label: "laptop", ip: "198.51.100.99" });
    expect(after?.createdAt).toBe(before?.createdAt);
    expect(after?.lastUsedAt).toBeGreaterThan(before?.lastUsedAt ?? 0);
    // A use whose address is unknown keeps the last one known.
    expect((await rotate(next)).outcome.kind).toBe("ok");
    expect((await h.store.list(userId))[0]?.ip).toBe("198.51.100.99");
  });

  it("revokes one session: its tokens die, the others live on", async () => {
    const { store } = harness();
    const userId = ++lastUserId;
    const a = await login(userId, "a");
    const b = await login(userId, "b");
    expect(await store.revoke(userId, a.family, b.family)).toBe("revoked");
    expect((await store.list(userId)).map((s) => s.id)).toEqual([a.family]);
    expect((await rotate(b)).outcome).toEqual({ kind: "invalid" });
    expect((await rotate(a)).outcome.kind).toBe("ok");
    // Gone is gone: a second revoke finds nothing.
    expect(await store.revoke(userId, a.family, b.family)).toBe("not_found");
  });

  it("never finds another user's session, nor a made-up id", async () => {
    const { store } = harness();
    const alice = ++lastUserId;
    const bob = ++lastUserId;
    const a = await login(alice);
    const b = await login(bob);
    for (const id of [
      b.family,
      "x",
      "../../rtf:{u1}:*",
      "' OR 1=1 --",
      "",
      mintRefreshToken(alice).ref.family,
    ]) {
      expect(await store.revoke(alice, a.family, id), id).toBe("not_found");
    }
    expect(await store.revokeAll(alice, a.family, false)).toBe(1);
    expect((await store.list(bob)).map((s) => s.id)).toEqual([b.family]);
    expect((await rotate(b)).outcome.kind).toBe("ok");
  });

  it("revokes all others, then all, counting each; a revoked caller may revoke nothing", async () => {
    const { store } = harness();
    const userId = ++lastUserId;
    const me = await login(userId, "me");
    const others = [await login(userId, "x"), await login(userId, "y")];
    expect(await store.revokeAll(userId, me.family, true)).toBe(2);
    expect((await store.list(userId)).map((s) => s.id)).toEqual([me.family]);
    for (const o of others) expect((await rotate(o)).outcome).toEqual({ kind: "invalid" });
    expect(await store.revokeAll(userId, me.family, true)).toBe(0);
    const late = await login(userId, "z");
    expect(await store.revokeAll(userId, me.family, false)).toBe(2);
    expect(await store.list(userId)).toEqual([]);
    expect((await rotate(me)).outcome).toEqual({ kind: "invalid" });
    expect(await store.revokeAll(userId, me.family, false)).toBe("caller_revoked");
    expect(await store.revoke(userId, me.family, late.family)).toBe("caller_revoked");
  });

  it("a logout or a detected reuse ends the session in the listing too", async () => {
    const { store } = harness();
    const userId = ++lastUserId;
    const a = await login(userId, "a");
    const b = await login(userId, "b");
    expect(await store.revokeFamily(a)).toBe(true);
    const { next } = await rotate(b);
    expect((await rotate(b)).outcome).toEqual({ kind: "reused" });
    expect(await store.list(userId)).toEqual([]);
    expect((await rotate(next)).outcome).toEqual({ kind: "invalid" });
  });

  it("forgets a session when its family expires", async () => {
    const h = harness();
    const userId = ++lastUserId;
    const live = await login(userId, "live");
    const short = await login(userId, "short", "203.0.113.7", h.shortTtlSeconds);
    expect(await h.store.list(userId)).toHaveLength(2);
    await h.waitUntilExpired(userId, short.family);
    expect((await h.store.list(userId)).map((s) => s.id)).toEqual([live.family]);
    expect(await h.store.revoke(userId, live.family, short.family)).toBe("not_found");
  });
}
