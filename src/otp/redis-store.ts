import type { Redis } from "ioredis";
import type { OtpStore, VerifyOutcome } from "./store.js";

// A phone's code is one hash, `otp:{<phone>}`, with the digest in `h` and the attempt count in `a`. The braces
// are a Redis Cluster hash tag: anything else ever kept for the phone under the same tag lands in the same
// slot, so a script may touch all of it.
const key = (phone: string) => `otp:{${phone}}`;

// HSET overwrites both fields, the only ones the hash ever holds, so no DEL is needed to replace a code.
const PUT = `
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'a', 0)
redis.call('EXPIRE', KEYS[1], ARGV[2])
`;

// The attempt is counted before anything is compared, so a burst of guesses cannot outrun the limit; a match
// is deleted in the same script, so one code gives one "ok" however many verifies race. After the limit the
// key stays until its TTL, which is what tells "too many attempts" (-3) from "expired" (-2).
// The comparison visits every byte whatever it finds (digests are fixed-length, so the length check leaks
// nothing), so its timing does not reveal how much of a guess was right.
const VERIFY = `
local stored = redis.call('HGET', KEYS[1], 'h')
if not stored then return -2 end
local max = tonumber(ARGV[2])
local attempts = redis.call('HINCRBY', KEYS[1], 'a', 1)
if attempts > max then return -3 end
local given = ARGV[1]
if #stored ~= #given then return max - attempts end
local diff = 0
for i = 1, #stored do
  diff = bit.bor(diff, bit.bxor(string.byte(stored, i), string.byte(given, i)))
end
if diff ~= 0 then return max - attempts end
redis.call('DEL', KEYS[1])
return -1
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

/** The scripts as `defineCommand` installs them: each call is one EVALSHA (EVAL once after a SCRIPT FLUSH). */
interface OtpCommands {
  otpPut(key: string, digest: string, ttlSeconds: number): Promise<unknown>;
  otpVerify(key: string, digest: string, maxAttempts: number): Promise<number>;
  otpDiscard(key: string, digest: string): Promise<number>;
}

/** The production `OtpStore`: every operation is one script, so one round trip, and runs on Redis Cluster. */
export class RedisOtpStore implements OtpStore {
  readonly #redis: Redis & OtpCommands;

  constructor(redis: Redis) {
    redis.defineCommand("otpPut", { numberOfKeys: 1, lua: PUT });
    redis.defineCommand("otpVerify", { numberOfKeys: 1, lua: VERIFY });
    redis.defineCommand("otpDiscard", { numberOfKeys: 1, lua: DISCARD });
    this.#redis = redis as Redis & OtpCommands;
  }

  async put(phone: string, digest: string, ttlSeconds: number): Promise<void> {
    // EXPIRE would reject a fraction and silently delete on 0: refuse both here, as the memory store does.
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
      throw new RangeError(`ttlSeconds must be a whole number >= 1, got ${ttlSeconds}`);
    }
    await this.#redis.otpPut(key(phone), digest, ttlSeconds);
  }

  async verify(phone: string, digest: string, maxAttempts: number): Promise<VerifyOutcome> {
    const result = await this.#redis.otpVerify(key(phone), digest, maxAttempts);
    switch (result) {
      case OK:
        return { kind: "ok" };
      case MISSING:
        return { kind: "missing" };
      case EXHAUSTED:
        return { kind: "exhausted" };
      default:
        return { kind: "wrong", attemptsLeft: result };
    }
  }

  async discard(phone: string, digest: string): Promise<void> {
    await this.#redis.otpDiscard(key(phone), digest);
  }
}
