import type { AdmittedWrite } from "../login/ports.js";
import { phoneLocked } from "../login/reasons.js";
import type { RedisClient } from "../redis/client.js";
import { classifyRedisError, redisCall } from "../redis/errors.js";
import { definedCommand, type ScriptCall, ScriptWrite } from "../redis/script-write.js";
import { byLongestWait, type Check, type Refusal, refund } from "./checks.js";
import { GIVE_BACK_EACH, type Refund, redisRefund } from "./refund.js";

/**
 * One send, as the decision sees it. The client's own counters are checked first and are the only ones a
 * refused request may move; the SMS counters are read, and incremented only when every check passes, so a
 * refused request never spends (or creates) a counter of the phone, its prefix, its country or the budget.
 */
export interface SendAsk {
  /** Count requests (per IP): counted whether or not the request passes, since asking is what they count. */
  readonly requests: readonly Check[];
  /** Count codes that go out: moved only by a send that passes every check. */
  readonly sms: readonly Check[];
  /** The phone's failure lock, when the lock is on: refuses a client that has failed on this phone. */
  readonly lock?: { readonly phone: string; readonly client: string } | undefined;
  /** What an admitted send writes: a decision that can do it in its own step does, and says so (`written`). */
  readonly then?: AdmittedWrite<unknown> | undefined;
  /**
   * Counters to give a point back to when `then` is a check that matched. A decision that does `then` in its
   * own step and can read its match there does this too, and says so (`refunded`); otherwise the caller does.
   */
  readonly refundOnMatch?: readonly Check[] | undefined;
}

/** What a decision found: the refusals, longest wait first; none means every SMS counter was counted. */
export interface Decided {
  readonly refusals: Refusal[];
  /** Gives back what a passed send counted, when its code cannot be stored or sent. */
  giveBack(): Promise<void>;
  /**
   * When the decision admitted the send and did `then` itself: its result, or its error (what was counted is
   * then still counted, for the caller to give back).
   */
  readonly written?: { readonly value: unknown } | { readonly error: unknown } | undefined;
  /** The decision gave `refundOnMatch` back in its own step: `then` matched. */
  readonly refunded?: boolean | undefined;
}

/**
 * What an admitted request's write returned: the decision's own doing (its result or its error), or `then` run
 * now when the decision could not do it in its step.
 */
export async function writeOf<T>(written: Decided["written"], then: AdmittedWrite<T>): Promise<T> {
  if (!written) return then.run();
  if ("value" in written) return written.value as T;
  throw written.error;
}

/** Decides a send; a verify's request limit too (requests only, no SMS counters), so its check can fold in. */
export type SendDecision = (ask: SendAsk) => Promise<Decided>;

/** The OTP store's failure lock, as the Redis script reads it. */
export type LockKeys = (phone: string, client: string) => readonly [lock: string, clientFailures: string];

/** The OTP store's failure lock, as the in-memory decision asks it. */
export type LockedFor = (phone: string, client: string) => Promise<number>;

// The send decision in one step, so that what is read is what is counted (no refusal left to undo).
// KEYS: the request counters, then the SMS counters, then (when ARGV[2] is '1') the phone's lock and this
// client's failure count on the phone. ARGV: how many request counters, lock on ('1'/'0'), then each
// counter's points and window seconds, in KEYS order.
// Counters keep rate-limiter-flexible's layout (an integer whose TTL is its fixed window, started by the first
// hit), so its get and reward (the refunds) work on the same keys.
// Returns one wait (ms) per counter, then the lock's: all zeros means every counter was counted.
const DECIDE = `
local requests = tonumber(ARGV[1])
local lockOn = ARGV[2] == '1'
local counters = #KEYS - (lockOn and 2 or 0)
local waits = {}
for i = 1, counters + 1 do waits[i] = 0 end
local function points(i) return tonumber(ARGV[1 + 2 * i]) end
local function window(i) return tonumber(ARGV[2 + 2 * i]) end
local function ttl(i)
  local ms = redis.call('PTTL', KEYS[i])
  if ms == -1 then
    redis.call('EXPIRE', KEYS[i], window(i))
    ms = 1000 * window(i)
  end
  return ms
end
-- A counter's window starts with its first hit: INCR, and the expiry only when that made it 1. (SET NX EX then
-- INCR, rate-limiter-flexible's own way, is two commands on every hit; one here where the counter exists.)
local function incr(i)
  local n = redis.call('INCR', KEYS[i])
  if n == 1 then redis.call('EXPIRE', KEYS[i], window(i)) end
  return n
end
local refused = false
-- The client's own counters first: over them, nothing else is even read.
for i = 1, requests do
  if incr(i) > points(i) then
    waits[i] = ttl(i)
    refused = true
  end
end
if refused then return waits end
for i = requests + 1, counters do
  local n = tonumber(redis.call('GET', KEYS[i]) or '0')
  if n >= points(i) then
    waits[i] = ttl(i)
    refused = true
  end
end
if lockOn then
  local locked = redis.call('PTTL', KEYS[counters + 1])
  if locked > 0 and tonumber(redis.call('GET', KEYS[counters + 2]) or '0') > 0 then
    waits[counters + 1] = locked
    refused = true
  end
end
if refused then return waits end
for i = requests + 1, counters do incr(i) end
return waits
`;

/**
 * DECIDE, then a store's script when every wait is zero (the send or verify is admitted), in one script. Each
 * runs as a function whose KEYS and ARGV are its own share of the call's: KEYS are DECIDE's, then the counters
 * a match gives back, then the write's; ARGV[1], ARGV[2] and ARGV[3] count DECIDE's keys, the give-back's keys
 * and DECIDE's arguments, then come DECIDE's arguments, then the write's. Returns {waits} when refused,
 * {waits, 1, refunded, the write's reply} when admitted, {waits, 0, 0, the error} when admitted and the write
 * failed (caught, so the caller learns that the counters were counted and gives them back). Refused is any
 * positive wait, as `refusalsOf` reads it, so the write happens exactly when the caller sees no refusal.
 * `refunded` is 1 when the write is a check whose reply matched (`matchedLua`) and the give-back was done.
 */
function decideThen(writeLua: string, matchedLua: string | undefined): string {
  return `
local function decide(KEYS, ARGV)
${DECIDE}
end
local function write(KEYS, ARGV)
${writeLua}
end
local function matched(reply)
  return ${matchedLua ?? "false"}
end
${GIVE_BACK_EACH}
local nk, nr, na = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local dk, rk, wk, da, wa = {}, {}, {}, {}, {}
for i = 1, #KEYS do
  if i <= nk then dk[i] = KEYS[i] elseif i <= nk + nr then rk[i - nk] = KEYS[i] else wk[i - nk - nr] = KEYS[i] end
end
for i = 4, #ARGV do
  if i - 3 <= na then da[i - 3] = ARGV[i] else wa[i - 3 - na] = ARGV[i] end
end
local waits = decide(dk, da)
for i = 1, #waits do
  if waits[i] > 0 then return {waits} end
end
local ok, reply = pcall(write, wk, wa)
if not ok then return {waits, 0, 0, type(reply) == 'table' and reply.err or tostring(reply)} end
local refunded = 0
if nr > 0 and matched(reply) then
  giveBackEach(rk)
  refunded = 1
end
return {waits, 1, refunded, reply}
`;
}

/** The script as `defineCommand` installs it. */
interface DecideCommands {
  rlSendDecide(numberOfKeys: number, ...keysAndArgs: (string | number)[]): Promise<number[]>;
}

/**
 * The decision on Redis: one script call, so one command in the send's first round trip. An admitted send's
 * write that is a script on the same client (the code's put, `ScriptWrite`) runs inside that call
 * (`decideThen`): one command and one round trip for the decision and the put together. A give-back is one
 * command too (`redisRefund`), whatever the number of counters.
 */
export function redisSendDecision(
  redis: RedisClient,
  lockKeys: LockKeys,
  refundAll: Refund = redisRefund(redis),
): SendDecision {
  redis.defineCommand("rlSendDecide", { lua: DECIDE });
  const run = redis as RedisClient & DecideCommands;
  // One folded script per write script, defined the first time a write of it comes.
  const foldedCall = (write: ScriptWrite<unknown>): ScriptCall =>
    definedCommand(redis, `rlSendDecideThen_${write.script.name}`, () =>
      decideThen(write.script.lua, write.script.matched),
    );
  return async (ask) => {
    const checks = [...ask.requests, ...ask.sms];
    const keys = checks.map((c) => c.limit.storeKey(c.key));
    if (ask.lock) keys.push(...lockKeys(ask.lock.phone, ask.lock.client));
    const args: (string | number)[] = [ask.requests.length, ask.lock ? "1" : "0"];
    for (const c of checks) args.push(c.limit.spec.points, c.limit.spec.durationSeconds);
    const giveBack = () => refundAll(ask.sms);
    const then = ask.then instanceof ScriptWrite && ask.then.redis === redis ? ask.then : undefined;
    if (!then) {
      const waits = await redisCall(run.rlSendDecide(keys.length, ...keys, ...args));
      return { refusals: refusalsOf(checks, waits), giveBack };
    }
    // Only a check that can tell its match in Lua can give back in this step.
    const back = then.script.matched === undefined ? [] : (ask.refundOnMatch ?? []);
    const backKeys = back.map((c) => c.limit.storeKey(c.key));
    const [waits, ok, refunded, reply] = (await redisCall(
      foldedCall(then)(
        keys.length + backKeys.length + then.keys.length,
        ...keys,
        ...backKeys,
        ...then.keys,
        keys.length,
        backKeys.length,
        args.length,
        ...args,
        ...then.args,
      ),
    )) as [number[], 0 | 1 | undefined, unknown, unknown];
    const refusals = refusalsOf(checks, waits);
    if (refusals.length > 0) return { refusals, giveBack };
    if (ok !== 1)
      return { refusals, giveBack, written: { error: classifyRedisError(new Error(String(reply))) } };
    return { refusals, giveBack, written: { value: then.parse(reply) }, refunded: refunded === 1 };
  };
}

/**
 * The same decision in process memory, on rate-limiter-flexible's memory limiters. Decisions run one after
 * another, so no other send's counting falls between a decision's reads and its increments, as in the script.
 */
export function memorySendDecision(lockedFor: LockedFor): SendDecision {
  let tail: Promise<unknown> = Promise.resolve();
  return (ask) => {
    const run = tail.then(() => decideInMemory(ask, lockedFor));
    tail = run.catch(() => undefined);
    return run.then((refusals) => ({ refusals, giveBack: () => refund(ask.sms) }));
  };
}

async function decideInMemory(ask: SendAsk, lockedFor: LockedFor): Promise<Refusal[]> {
  const checks = [...ask.requests, ...ask.sms];
  const asked = await Promise.all(ask.requests.map((c) => c.limit.consume(c.key)));
  const waits = checks.map(() => 0);
  asked.forEach((r, i) => {
    if (!r.ok) waits[i] = r.retryAfterMs;
  });
  if (waits.some((ms) => ms > 0)) return refusalsOf(checks, [...waits, 0]);
  const [seen, lockedMs] = await Promise.all([
    Promise.all(ask.sms.map((c) => c.limit.peek(c.key))),
    ask.lock ? lockedFor(ask.lock.phone, ask.lock.client) : 0,
  ]);
  seen.forEach((s, i) => {
    const check = ask.sms[i] as Check;
    if (s.count >= check.limit.spec.points) waits[ask.requests.length + i] = s.msLeft;
  });
  waits.push(lockedMs);
  if (waits.some((ms) => ms > 0)) return refusalsOf(checks, waits);
  // Every SMS counter had room a moment ago and nothing has counted since: these all pass.
  await Promise.all(ask.sms.map((c) => c.limit.consume(c.key)));
  return [];
}

/** The checks whose wait is positive (and the lock, last), longest wait first. */
export function refusalsOf(checks: readonly Check[], waits: readonly number[]): Refusal[] {
  const refusals: Refusal[] = [];
  checks.forEach((c, i) => {
    const ms = waits[i] ?? 0;
    if (ms > 0) refusals.push({ limit: c.limit, refuse: c.refuse, retryAfterMs: ms });
  });
  const lockedMs = waits[checks.length] ?? 0;
  if (lockedMs > 0) refusals.push({ limit: undefined, refuse: phoneLocked, retryAfterMs: lockedMs });
  return byLongestWait(refusals);
}
