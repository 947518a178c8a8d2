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
import type { RedisClient } from "../redis/client.js";
import { redisCall } from "../redis/errors.js";

// Keys (all of one user share the `{u<id>}` hash tag, so every script touches one Redis Cluster slot):
//   rt:{u<id>}:<hash>     hash  family, phone, role, spent ("0" | "1"); once spent also next (the successor's
//                         hash) and spentAt (ms, Redis TIME); kept after it is spent so a replay is seen
//   rtf:{u<id>}:<family>  string "active" | "revoked"; its TTL is pushed out on every rotation, so it outlives
//                         every token of the family and a revocation holds for as long as any of them exists
//   rts:{u<id>}:<family>  hash  the family's session: created, used (ms, Redis TIME), ip (of the last use),
//                         label; same TTL as the family, deleted when the family is revoked
//   rtsl:{u<id>}          zset  the user's families with a session, scored by when each expires (ms); expired
//                         members are pruned on every login, and its TTL is pushed out to the latest of them
//
// The grace window is timed by Redis's own clock (TIME), not the caller's: every instance of the service then
// measures it from the same instant, and a skewed host clock cannot stretch or shrink it. Redis >= 5 replicates
// a script's effects rather than the script, so a script may read TIME before it writes.

const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

// Adds (or moves) a family in the user's index; the index lives at least as long as its newest member.
// Expects \`now\` and the TTL in seconds as \`ttl\`.
const INDEX = `
local function index(key, family)
  local expires = now + ttl * 1000
  redis.call('ZADD', key, string.format('%d', expires), family)
  if redis.call('PTTL', key) < ttl * 1000 then redis.call('PEXPIRE', key, ttl * 1000) end
end
`;

// KEYS: token, family, session, index. ARGV: family, phone, role, ttl, ip, label.
const CREATE = `${NOW}
local ttl = tonumber(ARGV[4])
${INDEX}
redis.call('HSET', KEYS[1], 'family', ARGV[1], 'phone', ARGV[2], 'role', ARGV[3], 'spent', '0')
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[2], 'active', 'EX', ARGV[4])
local at = string.format('%d', now)
redis.call('HSET', KEYS[3], 'created', at, 'used', at, 'ip', ARGV[5], 'label', ARGV[6])
redis.call('EXPIRE', KEYS[3], ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', string.format('%d', now))
index(KEYS[4], ARGV[1])
return 1
`;

// KEYS: current token, family, next token, session, index. ARGV: family, ttl, next token's hash, grace (ms),
// ip of this use ('' when unknown).
const ROTATE = `${NOW}
local ttl = tonumber(ARGV[2])
${INDEX}
local rec = redis.call('HMGET', KEYS[1], 'family', 'phone', 'role', 'spent', 'next', 'spentAt')
if not rec[1] or rec[1] ~= ARGV[1] then return {'invalid'} end
if redis.call('GET', KEYS[2]) ~= 'active' then return {'invalid'} end
if rec[4] ~= '0' then
  if rec[5] == ARGV[3] and now - tonumber(rec[6]) < tonumber(ARGV[4]) then
    local nxt = redis.call('HMGET', KEYS[3], 'family', 'spent', 'phone', 'role')
    if nxt[1] == ARGV[1] and nxt[2] == '0' then return {'repeated', nxt[3], nxt[4]} end
  end
  redis.call('SET', KEYS[2], 'revoked', 'KEEPTTL')
  redis.call('DEL', KEYS[4])
  redis.call('ZREM', KEYS[5], ARGV[1])
  return {'reused'}
end
local at = string.format('%d', now)
redis.call('HSET', KEYS[1], 'spent', '1', 'next', ARGV[3], 'spentAt', at)
redis.call('HSET', KEYS[3], 'family', rec[1], 'phone', rec[2], 'role', rec[3], 'spent', '0')
redis.call('EXPIRE', KEYS[3], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
-- A family from before sessions were kept gets its session on its first rotation.
redis.call('HSETNX', KEYS[4], 'created', at)
redis.call('HSET', KEYS[4], 'used', at)
if ARGV[5] ~= '' or redis.call('HEXISTS', KEYS[4], 'ip') == 0 then redis.call('HSET', KEYS[4], 'ip', ARGV[5]) end
redis.call('HSETNX', KEYS[4], 'label', '')
redis.call('EXPIRE', KEYS[4], ARGV[2])
index(KEYS[5], ARGV[1])
return {'ok', rec[2], rec[3]}
`;

// KEYS: token, family, session, index. ARGV: family.
const REVOKE = `
if redis.call('HGET', KEYS[1], 'family') ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('SET', KEYS[2], 'revoked', 'KEEPTTL')
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
return 1
`;

// The user's families that may still be live: the index, pruned of the expired first. KEYS: index.
const SESSION_FAMILIES = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
return redis.call('ZRANGE', KEYS[1], 0, -1)
`;

// Revokes the families named, if the caller's family is still active. A family the user does not have (never
// in the index: another user's, or made up) is left alone and not counted.
// KEYS: caller's family, index, then a family key and its session key per family. ARGV: the families.
const SESSION_REVOKE = `
if redis.call('GET', KEYS[1]) ~= 'active' then return -1 end
local n = 0
for i, family in ipairs(ARGV) do
  local fk = KEYS[1 + 2 * i]
  local sk = KEYS[2 + 2 * i]
  if redis.call('ZSCORE', KEYS[2], family) and redis.call('GET', fk) == 'active' then
    redis.call('SET', fk, 'revoked', 'KEEPTTL')
    n = n + 1
  end
  redis.call('DEL', sk)
  redis.call('ZREM', KEYS[2], family)
end
return n
`;

type Script = (...args: (string | number)[]) => Promise<unknown>;

/** The commands `defineCommand` adds; named per store so they cannot clash with other scripts on the client. */
interface RefreshScripts {
  refreshTokenCreate: Script;
  refreshTokenRotate: Script;
  refreshTokenRevoke: Script;
  sessionFamilies: Script;
  sessionRevoke: Script;
}

/**
 * Refresh tokens and their sessions in Redis: every token operation is one script, so one round trip and
 * atomic; a session's metadata is written by the same script as its family's token.
 */
export class RedisRefreshStore implements RefreshStore, SessionStore {
  private readonly scripts: RefreshScripts;

  constructor(private readonly redis: RedisClient) {
    redis.defineCommand("refreshTokenCreate", { numberOfKeys: 4, lua: CREATE });
    redis.defineCommand("refreshTokenRotate", { numberOfKeys: 5, lua: ROTATE });
    redis.defineCommand("refreshTokenRevoke", { numberOfKeys: 4, lua: REVOKE });
    redis.defineCommand("sessionFamilies", { numberOfKeys: 1, lua: SESSION_FAMILIES });
    // The number of keys varies with the families revoked: passed first on each call.
    redis.defineCommand("sessionRevoke", { lua: SESSION_REVOKE });
    // defineCommand adds methods the Redis type cannot know about.
    this.scripts = redis as unknown as RefreshScripts;
  }

  async create(record: RefreshRecord, ttlSeconds: number, session?: SessionStart): Promise<void> {
    checkTtl(ttlSeconds);
    await redisCall(
      this.scripts.refreshTokenCreate(
        tokenKey(record.userId, record.hash),
        familyKey(record.userId, record.family),
        sessionKey(record.userId, record.family),
        sessionIndexKey(record.userId),
        record.family,
        record.phone,
        record.role,
        ttlSeconds,
        session?.ip ?? "",
        session?.label ?? "",
      ),
    );
  }

  async rotate(
    current: TokenRef,
    nextHash: string,
    ttlSeconds: number,
    graceSeconds: number,
    use?: SessionUse,
  ): Promise<RotateOutcome> {
    checkTtl(ttlSeconds);
    const graceMs = graceMillis(graceSeconds);
    // The script would overwrite the spent record with a live one: a replay would then pass.
    if (nextHash === current.hash) throw new RangeError("the next token must differ from the current one");
    const reply = await redisCall(
      this.scripts.refreshTokenRotate(
        tokenKey(current.userId, current.hash),
        familyKey(current.userId, current.family),
        tokenKey(current.userId, nextHash),
        sessionKey(current.userId, current.family),
        sessionIndexKey(current.userId),
        current.family,
        ttlSeconds,
        nextHash,
        graceMs,
        use?.ip ?? "",
      ),
    );
    if (!Array.isArray(reply)) throw new Error(`unexpected rotate reply: ${String(reply)}`);
    const [kind, phone, role] = reply as unknown[];
    if (kind === "invalid" || kind === "reused") return { kind };
    if ((kind === "ok" || kind === "repeated") && typeof phone === "string" && typeof role === "string") {
      const { userId, family } = current;
      return {
        kind: "ok",
        record: { userId, family, hash: nextHash, phone, role },
        repeated: kind === "repeated",
      };
    }
    throw new Error(`unexpected rotate reply: ${JSON.stringify(reply)}`);
  }

  async revokeFamily(current: TokenRef): Promise<boolean> {
    const reply = await redisCall(
      this.scripts.refreshTokenRevoke(
        tokenKey(current.userId, current.hash),
        familyKey(current.userId, current.family),
        sessionKey(current.userId, current.family),
        sessionIndexKey(current.userId),
        current.family,
      ),
    );
    return reply === 1;
  }

  // ---- sessions ----------------------------------------------------------------------------------------

  async list(userId: number): Promise<SessionInfo[]> {
    const families = await this.#families(userId);
    if (families.length === 0) return [];
    // One pipeline: a session is live while its family is active and its record exists.
    const [states, records] = await redisCall(
      Promise.all([
        this.redis.mget(...families.map((f) => familyKey(userId, f))),
        Promise.all(families.map((f) => this.redis.hgetall(sessionKey(userId, f)))),
      ]),
    );
    const sessions: SessionInfo[] = [];
    families.forEach((id, i) => {
      const r = records[i];
      if (states[i] !== "active" || !r || r.created === undefined) return;
      const createdAt = Number(r.created);
      const lastUsedAt = Number(r.used ?? r.created);
      if (!Number.isSafeInteger(createdAt) || !Number.isSafeInteger(lastUsedAt)) {
        throw new Error(`malformed session record for user ${userId}`);
      }
      sessions.push({ id, label: r.label ?? "", ip: r.ip ?? "", createdAt, lastUsedAt });
    });
    return sessions;
  }

  async revoke(userId: number, caller: string, sessionId: string): Promise<SessionRevokeOutcome> {
    // Not a family id we could have minted: no key is built from it.
    if (!isFamilyId(sessionId)) {
      return (await this.#revoke(userId, caller, [])) === "caller_revoked" ? "caller_revoked" : "not_found";
    }
    const n = await this.#revoke(userId, caller, [sessionId]);
    if (n === "caller_revoked") return n;
    return n === 1 ? "revoked" : "not_found";
  }

  async revokeAll(userId: number, caller: string, keepCaller: boolean): Promise<number | "caller_revoked"> {
    // Two steps: the index is read, then its families revoked. A login between them is a session begun after
    // the request, and survives it.
    const families = (await this.#families(userId)).filter((f) => !(keepCaller && f === caller));
    // The caller's own last: its check must not see itself revoked by this very call.
    families.sort((a, b) => Number(a === caller) - Number(b === caller));
    return this.#revoke(userId, caller, families);
  }

  async #families(userId: number): Promise<string[]> {
    const reply = await redisCall(this.scripts.sessionFamilies(sessionIndexKey(userId)));
    if (!Array.isArray(reply) || !reply.every((f) => typeof f === "string")) {
      throw new Error("unexpected session index reply");
    }
    return reply as string[];
  }

  async #revoke(userId: number, caller: string, families: string[]): Promise<number | "caller_revoked"> {
    if (!isFamilyId(caller)) return "caller_revoked";
    const keys = [familyKey(userId, caller), sessionIndexKey(userId)];
    for (const f of families) keys.push(familyKey(userId, f), sessionKey(userId, f));
    const reply = await redisCall(this.scripts.sessionRevoke(keys.length, ...keys, ...families));
    if (typeof reply !== "number") throw new Error(`unexpected session revoke reply: ${String(reply)}`);
    return reply < 0 ? "caller_revoked" : reply;
  }
}

export function tokenKey(userId: number, hash: string): string {
  return `rt:{u${userId}}:${hash}`;
}

export function familyKey(userId: number, family: string): string {
  return `rtf:{u${userId}}:${family}`;
}

export function sessionKey(userId: number, family: string): string {
  return `rts:{u${userId}}:${family}`;
}

export function sessionIndexKey(userId: number): string {
  return `rtsl:{u${userId}}`;
}

/** Exactly the shape of a family id we mint (22 base64url characters); nothing else names a key. */
function isFamilyId(id: string): boolean {
  return /^[A-Za-z0-9_-]{22}$/.test(id);
}

function checkTtl(ttlSeconds: number): void {
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) {
    throw new RangeError(`ttlSeconds must be a positive whole number, got ${ttlSeconds}`);
  }
}

function graceMillis(graceSeconds: number): number {
  if (!Number.isFinite(graceSeconds) || graceSeconds < 0) {
    throw new RangeError(`graceSeconds must be zero or more, got ${graceSeconds}`);
  }
  return Math.round(graceSeconds * 1000);
}
