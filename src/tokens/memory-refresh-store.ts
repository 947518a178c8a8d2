import type { SessionInfo, TokenRef } from "../login/model.js";
import type {
  RefreshRecord,
  RefreshStore,
  RotateOutcome,
  SessionRevokeOutcome,
  SessionStart,
  SessionStore,
  SessionUse,
} from "../login/ports.js";

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
  /** The family's session, as the Redis store's `rts:` hash; dropped when the family is revoked. */
  session?: { readonly createdAt: number; lastUsedAt: number; ip: string; readonly label: string };
}

// Expired entries are dropped when met, and by a full sweep once the writes since the last sweep reach the
// number of entries that sweep left: linear work per sweep, so constant amortized work per write, and memory
// stays within a small multiple of what is live.
const MIN_WRITES_BETWEEN_SWEEPS = 1024;

/**
 * Refresh tokens and their sessions in process memory, for development and tests; the same rules as the Redis
 * store. Each operation runs without an `await` inside it, so it is atomic on the event loop.
 */
export class MemoryRefreshStore implements RefreshStore, SessionStore {
  private readonly tokens = new Map<string, TokenEntry>();
  private readonly families = new Map<string, FamilyEntry>();
  /** Each user's families, as the Redis store's `rtsl:` index; emptied as families expire or are revoked. */
  private readonly byUser = new Map<number, Set<string>>();
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

  async create(record: RefreshRecord, ttlSeconds: number, session?: SessionStart): Promise<void> {
    const expiresAt = this.expiry(ttlSeconds);
    const { userId, family, hash, phone, role } = record;
    const now = this.now();
    this.tokens.set(hash, { userId, family, phone, role, spent: false, expiresAt });
    this.families.set(familyId(userId, family), {
      revoked: false,
      expiresAt,
      session: { createdAt: now, lastUsedAt: now, ip: session?.ip ?? "", label: session?.label ?? "" },
    });
    this.index(userId).add(family);
    this.wrote();
  }

  async rotate(
    current: TokenRef,
    nextHash: string,
    ttlSeconds: number,
    graceSeconds: number,
    use?: SessionUse,
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
      this.revokeEntry(userId, familyName, family);
      return { kind: "reused" };
    }
    const now = this.now();
    token.spent = true;
    token.next = nextHash;
    token.spentAt = now;
    this.tokens.set(nextHash, { userId, family: familyName, phone, role, spent: false, expiresAt });
    family.expiresAt = expiresAt;
    family.session ??= { createdAt: now, lastUsedAt: now, ip: "", label: "" };
    family.session.lastUsedAt = now;
    if (use?.ip) family.session.ip = use.ip;
    this.index(userId).add(familyName);
    this.wrote();
    return { kind: "ok", record, repeated: false };
  }

  async revokeFamily(current: TokenRef): Promise<boolean> {
    const family = this.liveToken(current) && this.liveFamily(current);
    if (!family) return false;
    this.revokeEntry(current.userId, current.family, family);
    return true;
  }

  // ---- sessions ----------------------------------------------------------------------------------------

  async list(userId: number): Promise<SessionInfo[]> {
    const sessions: SessionInfo[] = [];
    for (const id of this.byUser.get(userId) ?? []) {
      const family = this.liveFamily({ userId, family: id, hash: "" });
      if (!family?.session || family.revoked) continue;
      const { createdAt, lastUsedAt, ip, label } = family.session;
      sessions.push({ id, label, ip, createdAt, lastUsedAt });
    }
    return sessions;
  }

  async revoke(userId: number, caller: string, sessionId: string): Promise<SessionRevokeOutcome> {
    if (!this.isActive(userId, caller)) return "caller_revoked";
    const family = this.byUser.get(userId)?.has(sessionId)
      ? this.liveFamily({ userId, family: sessionId, hash: "" })
      : undefined;
    if (!family || family.revoked) return "not_found";
    this.revokeEntry(userId, sessionId, family);
    return "revoked";
  }

  async revokeAll(userId: number, caller: string, keepCaller: boolean): Promise<number | "caller_revoked"> {
    if (!this.isActive(userId, caller)) return "caller_revoked";
    let n = 0;
    for (const id of [...(this.byUser.get(userId) ?? [])]) {
      if (keepCaller && id === caller) continue;
      const family = this.liveFamily({ userId, family: id, hash: "" });
      if (!family || family.revoked) continue;
      this.revokeEntry(userId, id, family);
      n += 1;
    }
    return n;
  }

  private isActive(userId: number, family: string): boolean {
    const entry = this.liveFamily({ userId, family, hash: "" });
    return entry !== undefined && !entry.revoked;
  }

  /** As the scripts do: the family stays, revoked, to catch replays; its session and index entry go. */
  private revokeEntry(userId: number, family: string, entry: FamilyEntry): void {
    entry.revoked = true;
    delete entry.session;
    this.unindex(userId, family);
  }

  private index(userId: number): Set<string> {
    let set = this.byUser.get(userId);
    if (!set) {
      set = new Set();
      this.byUser.set(userId, set);
    }
    return set;
  }

  private unindex(userId: number, family: string): void {
    const set = this.byUser.get(userId);
    set?.delete(family);
    if (set?.size === 0) this.byUser.delete(userId);
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
      this.unindex(ref.userId, ref.family);
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
    for (const [id, entry] of this.families) {
      if (entry.expiresAt > now) continue;
      this.families.delete(id);
      const [user = "", family = ""] = id.split(":");
      this.unindex(Number(user), family);
    }
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
