import { AsyncLocalStorage } from "node:async_hooks";
import {
  codeMatched,
  type DeliveryReceipt,
  type FailureLock,
  type NewCode,
  type OtpStore,
  type PutResult,
  type SendAttempt,
  type StoredVerification,
  type VerificationStore,
  type VerifyOutcome,
} from "../login/ports.js";
import { isCluster, type RedisClient } from "../redis/client.js";
import { redisCall } from "../redis/errors.js";
import { type LuaScript, ScriptCheck, ScriptWrite } from "../redis/script-write.js";
import { checkLock } from "./lock.js";
import { parseRecord } from "./verification-record.js";

// A phone's codes are one hash, `otp:{<phone>}`: the current code's digest `h` and expiry `x` (ms), the
// previous code's `h2` and `x2` while a resend keeps it live, the shared attempt count `a`, and the id `v`
// of the verification both belong to. The phone's verification records are the hash `vers:{<phone>}`, one
// JSON field per id, so the scripts that check and cancel codes update their records in the same step. Its
// consecutive wrong codes are counted in `otpfail:{<phone>}`, each client's among them in
// `otpfail:{<phone>}:<client>`, and `otplock:{<phone>}` exists while it is locked. The braces are a Redis
// Cluster hash tag: all of a phone's keys land in the same slot, so one script may touch them together.
// Two indexes, each in a slot of its own, find a record from outside: `verid:{<id>}` -> phone, and
// `vermsg:{<provider>:<message id>}` -> "<phone> <id>" for delivery receipts.
const key = (phone: string) => `otp:{${phone}}`;
const recordsKey = (phone: string) => `vers:{${phone}}`;
const failKey = (phone: string) => `otpfail:{${phone}}`;
const clientFailKey = (phone: string, client: string) => `otpfail:{${phone}}:${client}`;
const lockKey = (phone: string) => `otplock:{${phone}}`;
const idKey = (id: string) => `verid:{${id}}`;
const messageKey = (provider: string, messageId: string) => `vermsg:{${provider}:${messageId}}`;

/** The lock and a client's failures on the phone, for the send decision to read in its own script. */
export function failureLockKeys(phone: string, client: string): readonly [string, string] {
  return [lockKey(phone), clientFailKey(phone, client)];
}

// Redis's clock, so every instance measures expiry from the same instant.
const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

// A pending verification with checks left is continued: its current code becomes the late one (kept until its
// own expiry) and the attempt count stays, so a resend never adds guesses. Otherwise a new verification starts
// afresh. Records whose retention has passed are dropped on the way; the records hash lives as long as the
// newest one needs.
// Returns {verification id, expiry ms}.
const PUT = `${NOW}
local exp = now + tonumber(ARGV[2]) * 1000
local keep = tonumber(ARGV[5]) * 1000
local cur = redis.call('HMGET', KEYS[1], 'h', 'a', 'v', 'x')
local id = ARGV[3]
local rec
if cur[1] and cur[3] and tonumber(cur[2] or '0') < tonumber(ARGV[4]) then
  local raw = redis.call('HGET', KEYS[2], cur[3])
  if raw then
    local r = cjson.decode(raw)
    if r.s == 'pending' then
      id = cur[3]
      rec = r
    end
  end
end
if rec then
  redis.call('HSET', KEYS[1], 'h2', cur[1], 'x2', cur[4] or exp, 'h', ARGV[1], 'x', exp)
  rec.x = exp
else
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'h', ARGV[1], 'a', 0, 'v', id, 'x', exp)
  rec = {c = now, x = exp, s = 'pending', n = 0, m = ARGV[6], t = {}}
end
redis.call('PEXPIREAT', KEYS[1], exp)
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  local r = cjson.decode(all[i + 1])
  if tonumber(r.x) + keep < now then redis.call('HDEL', KEYS[2], all[i]) end
end
redis.call('HSET', KEYS[2], id, cjson.encode(rec))
redis.call('PEXPIREAT', KEYS[2], exp + keep)
return {id, exp}
`;

const PUT_SCRIPT: LuaScript = { name: "otpPut", lua: PUT };

function parsePut(reply: unknown): PutResult {
  const [verificationId, expiresAtMs] = reply as [string, number];
  return { verificationId, expiresAtMs };
}

// The lock is checked before anything else, so a locked phone learns nothing, not even whether a code exists.
// The attempt is counted before anything is compared, so a burst of guesses cannot outrun the limit; a match
// deletes both codes in the same script, so one verification gives one "ok" however many verifies race. After
// the limit the key stays until its TTL, which is what tells "too many attempts" (-3) from "expired" (-2).
// The comparison visits every byte of both codes whatever it finds (digests are fixed-length, so the length
// check leaks nothing), so its timing does not reveal how much of a guess was right.
// A wrong code also counts against the phone (the count outlives resends, which only touch KEYS[1]); the
// count that reaches the limit turns into the lock. A match clears the count.
// The lock stops the clients that failed on the phone (KEYS[4] counts the asking client's wrong codes, kept
// as long as the phone's), and any client when ARGV[5] is not '1' (unknown). A client that never failed may
// still try: strangers' guesses must not lock the owner out. Its try is an attempt on the code like any other,
// and a wrong one makes it a client that failed.
// The verification record (KEYS[5]) follows: checks used, approved, or max_attempts_reached. ARGV[6], when
// not empty, names the only verification whose codes may match; one the phone never had is -5. ARGV[7], when
// not empty, is the code's digest under OTP_SECRET_PREVIOUS, a second candidate during a secret rotation.
// Returns {outcome, n, verification id, locked now}: n is attempts left for a wrong code, the lock's
// remaining ms for -4.
const VERIFY = `${NOW}
local maxFailures = tonumber(ARGV[3])
local known = ARGV[5] == '1'
if maxFailures > 0 then
  local locked = redis.call('PTTL', KEYS[3])
  if locked > 0 and (not known or tonumber(redis.call('GET', KEYS[4]) or '0') > 0) then
    return {-4, locked, '', 0}
  end
end
local wanted = ARGV[6]
if wanted ~= '' and redis.call('HEXISTS', KEYS[5], wanted) == 0 then return {-5, 0, '', 0} end
local cur = redis.call('HMGET', KEYS[1], 'h', 'v', 'h2', 'x2')
local stored = cur[1]
if not stored then return {-2, 0, '', 0} end
local vid = cur[2] or ''
if wanted ~= '' and vid ~= wanted then return {-2, 0, '', 0} end
local max = tonumber(ARGV[2])
local attempts = redis.call('HINCRBY', KEYS[1], 'a', 1)
local rec
local raw = vid ~= '' and redis.call('HGET', KEYS[5], vid)
if raw then
  rec = cjson.decode(raw)
  rec.n = math.min(attempts, max)
end
local function save()
  if rec then redis.call('HSET', KEYS[5], vid, cjson.encode(rec)) end
end
if attempts > max then return {-3, 0, vid, 0} end
local function differs(code, given)
  if #code ~= #given then return true end
  local diff = 0
  for i = 1, #code do
    diff = bit.bor(diff, bit.bxor(string.byte(code, i), string.byte(given, i)))
  end
  return diff ~= 0
end
local late = cur[3]
if late and tonumber(cur[4] or '0') <= now then late = nil end
local function differsFromAll(given)
  local wrong = differs(stored, given)
  if late then wrong = differs(late, given) and wrong end
  return wrong
end
-- Every candidate is compared with every live code whatever the others answered (the second candidate is the
-- digest under OTP_SECRET_PREVIOUS, '' without one), so the time taken tells neither which code matched nor
-- which secret it was stored under.
local wrong = differsFromAll(ARGV[1])
if ARGV[7] and ARGV[7] ~= '' then wrong = differsFromAll(ARGV[7]) and wrong end
if wrong then
  local lockedNow = 0
  if maxFailures > 0 then
    if known then
      redis.call('INCR', KEYS[4])
      redis.call('EXPIRE', KEYS[4], ARGV[4])
    end
    local failures = redis.call('INCR', KEYS[2])
    if failures >= maxFailures then
      redis.call('DEL', KEYS[2])
      redis.call('SET', KEYS[3], '1', 'EX', ARGV[4])
      lockedNow = 1
    else
      redis.call('EXPIRE', KEYS[2], ARGV[4])
    end
  end
  if rec and attempts >= max then rec.s = 'max_attempts_reached' end
  save()
  return {max - attempts, 0, vid, lockedNow}
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
if rec then rec.s = 'approved' end
save()
return {-1, 0, vid, 0}
`;

// Compare-and-delete: a newer code sent meanwhile must survive the cleanup of an older, unsent one. The
// previous code, which did go out, becomes the current one again; a verification left without a code never
// reached anyone: failed_to_send.
const DISCARD = `
local cur = redis.call('HMGET', KEYS[1], 'h', 'v', 'h2', 'x2')
if cur[1] ~= ARGV[1] then return 0 end
if cur[3] then
  redis.call('HDEL', KEYS[1], 'h2', 'x2')
  redis.call('HSET', KEYS[1], 'h', cur[3], 'x', cur[4])
  redis.call('PEXPIREAT', KEYS[1], cur[4])
  return 1
end
redis.call('DEL', KEYS[1])
local raw = cur[2] and redis.call('HGET', KEYS[2], cur[2])
if raw then
  local rec = cjson.decode(raw)
  if rec.s == 'pending' then
    rec.s = 'failed_to_send'
    redis.call('HSET', KEYS[2], cur[2], cjson.encode(rec))
  end
end
return 1
`;

// A pending verification (not past its expiry) becomes canceled and its codes go; any other is left alone.
// Returns the record after, or false for an id the phone does not have.
const CANCEL = `${NOW}
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw then return false end
local rec = cjson.decode(raw)
if rec.s == 'pending' and tonumber(rec.x) > now then
  rec.s = 'canceled'
  raw = cjson.encode(rec)
  redis.call('HSET', KEYS[2], ARGV[1], raw)
  if redis.call('HGET', KEYS[1], 'v') == ARGV[1] then redis.call('DEL', KEYS[1]) end
end
return raw
`;

// Appends a send attempt (JSON) to the record `id` in the records hash; 0 when there is no such record.
const APPEND_ATTEMPT = `
local function appendAttempt(records, id, attempt)
  local raw = redis.call('HGET', records, id)
  if not raw then return 0 end
  local rec = cjson.decode(raw)
  if type(rec.t) ~= 'table' then rec.t = {} end
  table.insert(rec.t, cjson.decode(attempt))
  redis.call('HSET', records, id, cjson.encode(rec))
  return 1
end
`;

// Appends a send attempt (ARGV[2], JSON) to the record ARGV[1].
const RECORD_SEND = `${APPEND_ATTEMPT}
return appendAttempt(KEYS[1], ARGV[1], ARGV[2])
`;

// RECORD_SEND for the sends of a batch, each with its id's and its message's index keys: on a single Redis,
// one command for every send recorded in a turn of the event loop, where a Redis Cluster needs three per send
// (the index keys hash to other slots). KEYS in threes per send: its records hash, its id's index key, its
// message's index key (the id's again when the provider gave no message id). ARGV in fives per send: the id,
// the attempt (JSON), the phone, the indexes' expiry (unix ms), '1' when there is a message id.
const RECORD_SENDS = `${APPEND_ATTEMPT}
for s = 0, #KEYS / 3 - 1 do
  local k, a = 3 * s, 5 * s
  local id, phone, keep = ARGV[a + 1], ARGV[a + 3], ARGV[a + 4]
  redis.call('SET', KEYS[k + 2], phone, 'PXAT', keep)
  if ARGV[a + 5] == '1' then redis.call('SET', KEYS[k + 3], phone .. ' ' .. id, 'PXAT', keep) end
  appendAttempt(KEYS[k + 1], id, ARGV[a + 2])
end
return 1
`;

/** Sends recorded by one call of RECORD_SENDS at most; a busier turn's are split over several calls. */
const MAX_SENDS_PER_CALL = 100;

/** A send record waiting for its turn's batch. */
interface QueuedSend {
  readonly keys: readonly [records: string, id: string, message: string];
  readonly args: readonly [
    id: string,
    attempt: string,
    phone: string,
    keepUntilMs: number,
    hasMessage: "1" | "0",
  ];
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

// Sets the delivery status (and error code) of the attempt with this message id; returns the record after.
const RECORD_RECEIPT = `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
local rec = cjson.decode(raw)
if type(rec.t) ~= 'table' then return raw end
for _, a in ipairs(rec.t) do
  if a.i == ARGV[2] and a.p == ARGV[3] then
    a.d = ARGV[4]
    a.e = ARGV[5]
  end
end
raw = cjson.encode(rec)
redis.call('HSET', KEYS[1], ARGV[1], raw)
return raw
`;

const OK = -1;
const MISSING = -2;
const EXHAUSTED = -3;
const LOCKED = -4;
const NOT_FOUND = -5;
const NO_LOCK: FailureLock = { maxFailures: 0, lockSeconds: 1 };

// `matched` is `codeMatched` of what parseVerify makes of the reply, in Lua.
const VERIFY_SCRIPT: LuaScript = { name: "otpVerify", lua: VERIFY, matched: `reply[1] == ${OK}` };

function parseVerify(reply: unknown): VerifyOutcome {
  const [result, n, vid, lockedNow] = reply as [number, number, string, number];
  const id = vid === "" ? undefined : vid;
  switch (result) {
    case OK:
      return { kind: "ok", verificationId: id };
    case MISSING:
      return { kind: "missing" };
    case EXHAUSTED:
      return { kind: "exhausted", verificationId: id };
    case LOCKED:
      return { kind: "locked", retryAfterMs: n };
    case NOT_FOUND:
      return { kind: "not_found" };
    default:
      return { kind: "wrong", attemptsLeft: result, verificationId: id, locked: lockedNow === 1 };
  }
}

/** The scripts as `defineCommand` installs them: each call is one EVALSHA (EVAL once after a SCRIPT FLUSH). */
interface OtpCommands {
  otpPut(
    key: string,
    recordsKey: string,
    digest: string,
    ttlSeconds: number,
    newId: string,
    maxAttempts: number,
    retentionSeconds: number,
    maskedPhone: string,
  ): Promise<[string, number]>;
  otpVerify(
    key: string,
    failKey: string,
    lockKey: string,
    clientFailKey: string,
    recordsKey: string,
    digest: string,
    maxAttempts: number,
    maxFailures: number,
    lockSeconds: number,
    known: "1" | "0",
    verificationId: string,
    previousDigest: string,
  ): Promise<[number, number, string, number]>;
  otpDiscard(key: string, recordsKey: string, digest: string): Promise<number>;
  otpCancel(key: string, recordsKey: string, id: string): Promise<string | null>;
  otpRecordSend(recordsKey: string, id: string, attempt: string): Promise<number>;
  otpRecordSends(numberOfKeys: number, ...keysThenArgs: (string | number)[]): Promise<number>;
  otpRecordReceipt(
    recordsKey: string,
    id: string,
    messageId: string,
    provider: string,
    status: string,
    errorCode: string,
  ): Promise<string | null>;
}

/**
 * The production `OtpStore` and `VerificationStore`: every operation on a phone's codes is one script, so one
 * round trip, and runs on Redis Cluster.
 */
export class RedisOtpStore implements OtpStore, VerificationStore {
  readonly #redis: RedisClient & OtpCommands;
  readonly #oneNode: boolean;
  /**
   * Single Redis: the send records of this turn of the event loop, written by one script call at its end.
   * Under load a turn carries the records of many requests (a record follows each answer and is not waited
   * on), and each call costs ioredis a command and Redis a script invocation. The write runs outside any
   * request's async context, as the audit log's does, so the bench's round-trip tracer does not count it.
   */
  #sends: QueuedSend[] = [];
  readonly #detached = AsyncLocalStorage.snapshot();

  constructor(redis: RedisClient) {
    redis.defineCommand(PUT_SCRIPT.name, { numberOfKeys: 2, lua: PUT_SCRIPT.lua });
    redis.defineCommand(VERIFY_SCRIPT.name, { numberOfKeys: 5, lua: VERIFY_SCRIPT.lua });
    redis.defineCommand("otpDiscard", { numberOfKeys: 2, lua: DISCARD });
    redis.defineCommand("otpCancel", { numberOfKeys: 2, lua: CANCEL });
    redis.defineCommand("otpRecordSend", { numberOfKeys: 1, lua: RECORD_SEND });
    // The key count varies with the batch: given per call.
    redis.defineCommand("otpRecordSends", { lua: RECORD_SENDS });
    redis.defineCommand("otpRecordReceipt", { numberOfKeys: 1, lua: RECORD_RECEIPT });
    this.#redis = redis as RedisClient & OtpCommands;
    this.#oneNode = !isCluster(redis);
  }

  async put(...put: Parameters<OtpStore["put"]>): Promise<PutResult> {
    return this.admittedPut(...put).run();
  }

  /** The put as a script the single-Redis send decision folds into its own (see ScriptWrite). */
  admittedPut(phone: string, digest: string, ttlSeconds: number, code: NewCode): ScriptWrite<PutResult> {
    // EXPIRE would reject a fraction and silently delete on 0: refuse both here, as the memory store does.
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
      throw new RangeError(`ttlSeconds must be a whole number >= 1, got ${ttlSeconds}`);
    }
    const keys = [key(phone), recordsKey(phone)] as const;
    const { verificationId, maxAttempts, retentionSeconds, maskedPhone } = code;
    const args = [digest, ttlSeconds, verificationId, maxAttempts, retentionSeconds, maskedPhone] as const;
    return new ScriptWrite(this.#redis, PUT_SCRIPT, keys, args, parsePut, () =>
      this.#redis.otpPut(...keys, ...args),
    );
  }

  async verify(...verify: Parameters<OtpStore["verify"]>): Promise<VerifyOutcome> {
    return this.admittedVerify(...verify).run();
  }

  /** The check as a script the single-Redis verify limit folds into its own (see ScriptWrite). */
  admittedVerify(
    phone: string,
    digest: string | readonly string[],
    maxAttempts: number,
    lock: FailureLock = NO_LOCK,
    client?: string,
    verificationId?: string,
  ): ScriptCheck<VerifyOutcome> {
    checkLock(lock);
    const [current = "", previous = "", ...more] = typeof digest === "string" ? [digest] : digest;
    if (more.length > 0)
      throw new RangeError("at most two digests: the current secret's and the previous one's");
    const keys = [
      key(phone),
      failKey(phone),
      lockKey(phone),
      // Same slot as the others even for an unknown client, whose key the script then leaves alone.
      clientFailKey(phone, client ?? ""),
      recordsKey(phone),
    ] as const;
    const args = [
      current,
      maxAttempts,
      lock.maxFailures,
      lock.lockSeconds,
      client === undefined ? "0" : "1",
      verificationId ?? "",
      previous,
    ] as const;
    return new ScriptCheck(
      [this.#redis, VERIFY_SCRIPT, keys, args, parseVerify, () => this.#redis.otpVerify(...keys, ...args)],
      codeMatched,
    );
  }

  async lockedFor(phone: string, client?: string): Promise<number> {
    if (client === undefined) return Math.max(0, await redisCall(this.#redis.pttl(lockKey(phone))));
    const [locked, failed] = await redisCall(
      Promise.all([this.#redis.pttl(lockKey(phone)), this.#redis.exists(clientFailKey(phone, client))]),
    );
    return failed === 1 ? Math.max(0, locked) : 0;
  }

  async discard(phone: string, digest: string): Promise<void> {
    await redisCall(this.#redis.otpDiscard(key(phone), recordsKey(phone), digest));
  }

  async get(id: string): Promise<StoredVerification | undefined> {
    const phone = await redisCall(this.#redis.get(idKey(id)));
    if (phone === null) return undefined;
    const raw = await redisCall(this.#redis.hget(recordsKey(phone), id));
    return raw === null ? undefined : parseRecord(id, phone, raw);
  }

  async cancel(id: string): Promise<StoredVerification | undefined> {
    const phone = await redisCall(this.#redis.get(idKey(id)));
    if (phone === null) return undefined;
    const raw = await redisCall(this.#redis.otpCancel(key(phone), recordsKey(phone), id));
    return raw === null ? undefined : parseRecord(id, phone, raw);
  }

  async recordSend(phone: string, id: string, attempt: SendAttempt, keepUntilMs: number): Promise<void> {
    const json = JSON.stringify({
      p: attempt.provider,
      i: attempt.messageId,
      t: attempt.sentAtMs,
      d: attempt.deliveryStatus,
      e: attempt.errorCode,
    });
    if (this.#oneNode) {
      const hasMessage = attempt.messageId !== "";
      const ids = idKey(id);
      return new Promise<void>((resolve, reject) => {
        this.#sends.push({
          keys: [recordsKey(phone), ids, hasMessage ? messageKey(attempt.provider, attempt.messageId) : ids],
          args: [id, json, phone, keepUntilMs, hasMessage ? "1" : "0"],
          resolve,
          reject,
        });
        if (this.#sends.length === 1) this.#detached(() => setImmediate(this.#recordSends));
      });
    }
    // Issued together: one write, one round trip.
    await redisCall(
      Promise.all([
        this.#redis.otpRecordSend(recordsKey(phone), id, json),
        this.#redis.set(idKey(id), phone, "PXAT", keepUntilMs),
        attempt.messageId === ""
          ? undefined
          : this.#redis.set(
              messageKey(attempt.provider, attempt.messageId),
              `${phone} ${id}`,
              "PXAT",
              keepUntilMs,
            ),
      ]),
    );
  }

  readonly #recordSends = (): void => {
    const queued = this.#sends;
    this.#sends = [];
    for (let i = 0; i < queued.length; i += MAX_SENDS_PER_CALL) {
      const batch = queued.slice(i, i + MAX_SENDS_PER_CALL);
      const keys = batch.flatMap((s) => s.keys);
      const args = batch.flatMap((s) => s.args);
      redisCall(this.#redis.otpRecordSends(keys.length, ...keys, ...args)).then(
        () => {
          for (const s of batch) s.resolve();
        },
        (err: unknown) => {
          for (const s of batch) s.reject(err);
        },
      );
    }
  };

  async recordReceipt(receipt: DeliveryReceipt): Promise<StoredVerification | undefined> {
    const found = await redisCall(this.#redis.get(messageKey(receipt.provider, receipt.messageId)));
    const [phone, id] = found?.split(" ") ?? [];
    if (phone === undefined || id === undefined) return undefined;
    const raw = await redisCall(
      this.#redis.otpRecordReceipt(
        recordsKey(phone),
        id,
        receipt.messageId,
        receipt.provider,
        receipt.status,
        receipt.errorCode,
      ),
    );
    return raw === null ? undefined : parseRecord(id, phone, raw);
  }
}
