import type { TokenRef } from "../login/model.js";
import type { RefreshRecord, RefreshStore, RotateOutcome } from "../login/ports.js";

interface TokenEntry {
  readonly userId: number;
  readonly family: string;
  readonly phone: string;
  readonly role: string;
  spent: boolean;
  /** Once spent: the successor's hash and when (ms), for the grace window. */
  next?: string;
  spentAt?: number;
  readonly expiresAt: number;
}

interface FamilyEntry {
  revoked: boolean;
  expiresAt: number;
}

// Expired entries are dropped when met, and by a full sweep once the writes since the last sweep reach the
// number of entries that sweep left: linear work per sweep, so constant amortized work per write, and memory
// stays within a small multiple of what is live.
const MIN_WRITES_BETWEEN_SWEEPS = 1024;

/**
 * Refresh tokens in process memory, for development and tests; the same rules as the Redis store. Each
 * operation runs without an `await` inside it, so it is atomic on the event loop.
 */
export class MemoryRefreshStore implements RefreshStore {
  private readonly tokens = new Map<string, TokenEntry>();
  private readonly families = new Map<string, FamilyEntry>();
  private writesUntilSweep = MIN_WRITES_BETWEEN_SWEEPS;
  private readonly now: () => number;

  /** `now` is in milliseconds since the epoch; inject one to move time in tests. */
  constructor(options: { now?: () => number } = {}) {
    this.now = options.now ?? Date.now;
  }

  /** Entries held, expired or not: lets tests check that memory does not grow without bound. */
  get size(): number {
    return this.tokens.size + this.families.size;
  }

  async create(record: RefreshRecord, ttlSeconds: number): Promise<void> {
    const expiresAt = this.expiry(ttlSeconds);
    const { userId, family, hash, phone, role } = record;
    this.tokens.set(hash, { userId, family, phone, role, spent: false, expiresAt });
    this.families.set(familyId(userId, family), { revoked: false, expiresAt });
    this.wrote();
  }

  async rotate(
    current: TokenRef,
    nextHash: string,
    ttlSeconds: number,
    graceSeconds: number,
  ): Promise<RotateOutcome> {
    const expiresAt = this.expiry(ttlSeconds);
    const graceMs = graceMillis(graceSeconds);
    if (nextHash === current.hash) throw new RangeError("the next token must differ from the current one");
    const token = this.liveToken(current);
    const family = this.liveFamily(current);
    if (!token || !family || family.revoked) return { kind: "invalid" };
    const { userId, family: familyName, phone, role } = token;
    const record = { userId, family: familyName, hash: nextHash, phone, role };
    if (token.spent) {
      const successor = this.liveToken({ userId, family: familyName, hash: nextHash });
      const withinGrace =
        token.next === nextHash && token.spentAt !== undefined && this.now() - token.spentAt < graceMs;
      if (withinGrace && successor && !successor.spent) return { kind: "ok", record, repeated: true };
      family.revoked = true;
      return { kind: "reused" };
    }
    token.spent = true;
    token.next = nextHash;
    token.spentAt = this.now();
    this.tokens.set(nextHash, { userId, family: familyName, phone, role, spent: false, expiresAt });
    family.expiresAt = expiresAt;
    this.wrote();
    return { kind: "ok", record, repeated: false };
  }

  async revokeFamily(current: TokenRef): Promise<boolean> {
    const family = this.liveToken(current) && this.liveFamily(current);
    if (!family) return false;
    family.revoked = true;
    return true;
  }

  private liveToken(ref: TokenRef): TokenEntry | undefined {
    const entry = this.tokens.get(ref.hash);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.tokens.delete(ref.hash);
      return undefined;
    }
    return entry.userId === ref.userId && entry.family === ref.family ? entry : undefined;
  }

  private liveFamily(ref: TokenRef): FamilyEntry | undefined {
    const id = familyId(ref.userId, ref.family);
    const entry = this.families.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.families.delete(id);
      return undefined;
    }
    return entry;
  }

  private expiry(ttlSeconds: number): number {
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) {
      throw new RangeError(`ttlSeconds must be a positive whole number, got ${ttlSeconds}`);
    }
    return this.now() + ttlSeconds * 1000;
  }

  private wrote(): void {
    if (--this.writesUntilSweep > 0) return;
    const now = this.now();
    for (const [hash, entry] of this.tokens) if (entry.expiresAt <= now) this.tokens.delete(hash);
    for (const [id, entry] of this.families) if (entry.expiresAt <= now) this.families.delete(id);
    this.writesUntilSweep = Math.max(MIN_WRITES_BETWEEN_SWEEPS, this.size);
  }
}

function familyId(userId: number, family: string): string {
  return `${userId}:${family}`;
}

function graceMillis(graceSeconds: number): number {
  if (!Number.isFinite(graceSeconds) || graceSeconds < 0) {
    throw new RangeError(`graceSeconds must be zero or more, got ${graceSeconds}`);
  }
  return Math.round(graceSeconds * 1000);
}
