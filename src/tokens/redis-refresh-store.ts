import type { TokenRef } from "../login/model.js";
import type { RefreshRecord, RefreshStore, RotateOutcome } from "../login/ports.js";
import type { RedisClient } from "../redis/connect.js";
import { redisCall } from "../redis/errors.js";

// Keys (all of one user share the `{u<id>}` hash tag, so every script touches one Redis Cluster slot):
//   rt:{u<id>}:<hash>     hash  family, phone, role, spent ("0" | "1"); once spent also next (the successor's
//                         hash) and spentAt (ms, Redis TIME); kept after it is spent so a replay is seen
//   rtf:{u<id>}:<family>  string "active" | "revoked"; its TTL is pushed out on every rotation, so it outlives
//                         every token of the family and a revocation holds for as long as any of them exists
//
// The grace window is timed by Redis's own clock (TIME), not the caller's: every instance of the service then
// measures it from the same instant, and a skewed host clock cannot stretch or shrink it. Redis >= 5 replicates
// a script's effects rather than the script, so a script may read TIME before it writes.

const CREATE = `
redis.call('HSET', KEYS[1], 'family', ARGV[1], 'phone', ARGV[2], 'role', ARGV[3], 'spent', '0')
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[2], 'active', 'EX', ARGV[4])
return 1
`;

// KEYS: current token, family, next token. ARGV: family, ttl, next token's hash, grace (ms).
const ROTATE = `
local rec = redis.call('HMGET', KEYS[1], 'family', 'phone', 'role', 'spent', 'next', 'spentAt')
if not rec[1] or rec[1] ~= ARGV[1] then return {'invalid'} end
if redis.call('GET', KEYS[2]) ~= 'active' then return {'invalid'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if rec[4] ~= '0' then
  if rec[5] == ARGV[3] and now - tonumber(rec[6]) < tonumber(ARGV[4]) then
    local nxt = redis.call('HMGET', KEYS[3], 'family', 'spent', 'phone', 'role')
    if nxt[1] == ARGV[1] and nxt[2] == '0' then return {'repeated', nxt[3], nxt[4]} end
  end
  redis.call('SET', KEYS[2], 'revoked', 'KEEPTTL')
  return {'reused'}
end
redis.call('HSET', KEYS[1], 'spent', '1', 'next', ARGV[3], 'spentAt', string.format('%d', now))
redis.call('HSET', KEYS[3], 'family', rec[1], 'phone', rec[2], 'role', rec[3], 'spent', '0')
redis.call('EXPIRE', KEYS[3], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return {'ok', rec[2], rec[3]}
`;

// KEYS: token, family. ARGV: family.
const REVOKE = `
if redis.call('HGET', KEYS[1], 'family') ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('SET', KEYS[2], 'revoked', 'KEEPTTL')
return 1
`;

type Script = (...args: (string | number)[]) => Promise<unknown>;

/** The commands `defineCommand` adds; named per store so they cannot clash with other scripts on the client. */
interface RefreshScripts {
  refreshTokenCreate: Script;
  refreshTokenRotate: Script;
  refreshTokenRevoke: Script;
}

/** Refresh tokens in Redis: every operation is one script, so one round trip and atomic. */
export class RedisRefreshStore implements RefreshStore {
  private readonly scripts: RefreshScripts;

  constructor(redis: RedisClient) {
    redis.defineCommand("refreshTokenCreate", { numberOfKeys: 2, lua: CREATE });
    redis.defineCommand("refreshTokenRotate", { numberOfKeys: 3, lua: ROTATE });
    redis.defineCommand("refreshTokenRevoke", { numberOfKeys: 2, lua: REVOKE });
    // defineCommand adds methods the Redis type cannot know about.
    this.scripts = redis as unknown as RefreshScripts;
  }

  async create(record: RefreshRecord, ttlSeconds: number): Promise<void> {
    checkTtl(ttlSeconds);
    await redisCall(
      this.scripts.refreshTokenCreate(
        tokenKey(record.userId, record.hash),
        familyKey(record.userId, record.family),
        record.family,
        record.phone,
        record.role,
        ttlSeconds,
      ),
    );
  }

  async rotate(
    current: TokenRef,
    nextHash: string,
    ttlSeconds: number,
    graceSeconds: number,
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
        current.family,
        ttlSeconds,
        nextHash,
        graceMs,
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
        current.family,
      ),
    );
    return reply === 1;
  }
}

export function tokenKey(userId: number, hash: string): string {
  return `rt:{u${userId}}:${hash}`;
}

export function familyKey(userId: number, family: string): string {
  return `rtf:{u${userId}}:${family}`;
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
