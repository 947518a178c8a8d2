import type { FailureLock, OtpStore, VerifyOutcome } from "../login/ports.js";
import type { RedisClient } from "../redis/client.js";
import { redisCall } from "../redis/errors.js";
import { checkLock } from "./lock.js";

// A phone's code is one hash, `otp:{<phone>}`, with the digest in `h` and the attempt count in `a`. Its
// consecutive wrong codes are counted in `otpfail:{<phone>}`, each client's among them in
// `otpfail:{<phone>}:<client>`, and `otplock:{<phone>}` exists while it is locked. The braces are a Redis
// Cluster hash tag: all of a phone's keys land in the same slot, so one script may touch them together.
const key = (phone: string) => `otp:{${phone}}`;
const failKey = (phone: string) => `otpfail:{${phone}}`;
const clientFailKey = (phone: string, client: string) => `otpfail:{${phone}}:${client}`;
const lockKey = (phone: string) => `otplock:{${phone}}`;

/** The lock and a client's failures on the phone, for the send decision to read in its own script. */
export function failureLockKeys(phone: string, client: string): readonly [string, string] {
  return [lockKey(phone), clientFailKey(phone, client)];
}

// HSET overwrites both fields, the only ones the hash ever holds, so no DEL is needed to replace a code.
const PUT = `
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'a', 0)
redis.call('EXPIRE', KEYS[1], ARGV[2])
`;

// The lock is checked before anything else, so a locked phone learns nothing, not even whether a code exists.
// The attempt is counted before anything is compared, so a burst of guesses cannot outrun the limit; a match
// is deleted in the same script, so one code gives one "ok" however many verifies race. After the limit the
// key stays until its TTL, which is what tells "too many attempts" (-3) from "expired" (-2).
// The comparison visits every byte whatever it finds (digests are fixed-length, so the length check leaks
// nothing), so its timing does not reveal how much of a guess was right.
// A wrong code also counts against the phone (the count outlives resends, which only touch KEYS[1]); the
// count that reaches the limit turns into the lock. A match clears the count.
// The lock stops the clients that failed on the phone (KEYS[4] counts the asking client's wrong codes, kept
// as long as the phone's), and any client when ARGV[5] is not '1' (unknown). A client that never failed may
// still try: strangers' guesses must not lock the owner out. Its try is an attempt on the code like any other,
// and a wrong one makes it a client that failed.
// Returns {outcome, n}: n is attempts left for a wrong code, the lock's remaining ms for -4.
const VERIFY = `
local maxFailures = tonumber(ARGV[3])
local known = ARGV[5] == '1'
if maxFailures > 0 then
  local locked = redis.call('PTTL', KEYS[3])
  if locked > 0 and (not known or tonumber(redis.call('GET', KEYS[4]) or '0') > 0) then
    return {-4, locked}
  end
end
local stored = redis.call('HGET', KEYS[1], 'h')
if not stored then return {-2, 0} end
local max = tonumber(ARGV[2])
local attempts = redis.call('HINCRBY', KEYS[1], 'a', 1)
if attempts > max then return {-3, 0} end
local function differs(given)
  if #stored ~= #given then return true end
  local diff = 0
  for i = 1, #stored do
    diff = bit.bor(diff, bit.bxor(string.byte(stored, i), string.byte(given, i)))
  end
  return diff ~= 0
end
-- Both candidates are always compared (the second is the digest under OTP_SECRET_PREVIOUS, '' without one),
-- so the time taken does not tell which secret a code was stored under.
local wrong = differs(ARGV[1])
if ARGV[6] and ARGV[6] ~= '' then wrong = differs(ARGV[6]) and wrong end
if wrong then
  if maxFailures > 0 then
    if known then
      redis.call('INCR', KEYS[4])
      redis.call('EXPIRE', KEYS[4], ARGV[4])
    end
    local failures = redis.call('INCR', KEYS[2])
    if failures >= maxFailures then
      redis.call('DEL', KEYS[2])
      redis.call('SET', KEYS[3], '1', 'EX', ARGV[4])
    else
      redis.call('EXPIRE', KEYS[2], ARGV[4])
    end
  end
  return {max - attempts, 0}
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
return {-1, 0}
`;

// Compare-and-delete: a newer code sent meanwhile must survive the cleanup of an older, unsent one.
const DISCARD = `
if redis.call('HGET', KEYS[1], 'h') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`;

const OK = -1;
const MISSING = -2;
const EXHAUSTED = -3;
const LOCKED = -4;
const NO_LOCK: FailureLock = { maxFailures: 0, lockSeconds: 1 };

/** The scripts as `defineCommand` installs them: each call is one EVALSHA (EVAL once after a SCRIPT FLUSH). */
interface OtpCommands {
  otpPut(key: string, digest: string, ttlSeconds: number): Promise<unknown>;
  otpVerify(
    key: string,
    failKey: string,
    lockKey: string,
    clientFailKey: string,
    digest: string,
    maxAttempts: number,
    maxFailures: number,
    lockSeconds: number,
    known: "1" | "0",
    previousDigest: string,
  ): Promise<[number, number]>;
  otpDiscard(key: string, digest: string): Promise<number>;
}

/** The production `OtpStore`: every operation is one script, so one round trip, and runs on Redis Cluster. */
export class RedisOtpStore implements OtpStore {
  readonly #redis: RedisClient & OtpCommands;

  constructor(redis: RedisClient) {
    redis.defineCommand("otpPut", { numberOfKeys: 1, lua: PUT });
    redis.defineCommand("otpVerify", { numberOfKeys: 4, lua: VERIFY });
    redis.defineCommand("otpDiscard", { numberOfKeys: 1, lua: DISCARD });
    this.#redis = redis as RedisClient & OtpCommands;
  }

  async put(phone: string, digest: string, ttlSeconds: number): Promise<void> {
    // EXPIRE would reject a fraction and silently delete on 0: refuse both here, as the memory store does.
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
      throw new RangeError(`ttlSeconds must be a whole number >= 1, got ${ttlSeconds}`);
    }
    await redisCall(this.#redis.otpPut(key(phone), digest, ttlSeconds));
  }

  async verify(
    phone: string,
    digest: string | readonly string[],
    maxAttempts: number,
    lock: FailureLock = NO_LOCK,
    client?: string,
  ): Promise<VerifyOutcome> {
    checkLock(lock);
    const [current = "", previous = "", ...more] = typeof digest === "string" ? [digest] : digest;
    if (more.length > 0)
      throw new RangeError("at most two digests: the current secret's and the previous one's");
    const [result, n] = await redisCall(
      this.#redis.otpVerify(
        key(phone),
        failKey(phone),
        lockKey(phone),
        // Same slot as the others even for an unknown client, whose key the script then leaves alone.
        clientFailKey(phone, client ?? ""),
        current,
        maxAttempts,
        lock.maxFailures,
        lock.lockSeconds,
        client === undefined ? "0" : "1",
        previous,
      ),
    );
    switch (result) {
      case OK:
        return { kind: "ok" };
      case MISSING:
        return { kind: "missing" };
      case EXHAUSTED:
        return { kind: "exhausted" };
      case LOCKED:
        return { kind: "locked", retryAfterMs: n };
      default:
        return { kind: "wrong", attemptsLeft: result };
    }
  }

  async lockedFor(phone: string, client?: string): Promise<number> {
    if (client === undefined) return Math.max(0, await redisCall(this.#redis.pttl(lockKey(phone))));
    const [locked, failed] = await redisCall(
      Promise.all([this.#redis.pttl(lockKey(phone)), this.#redis.exists(clientFailKey(phone, client))]),
    );
    return failed === 1 ? Math.max(0, locked) : 0;
  }

  async discard(phone: string, digest: string): Promise<void> {
    await redisCall(this.#redis.otpDiscard(key(phone), digest));
  }
}
