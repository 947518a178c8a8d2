import { randomBytes, randomInt } from "node:crypto";
import type { Cluster } from "ioredis";
import { classifyRedisError, redisCall } from "../redis/errors.js";
import { byLongestWait, type Check, type Refusal } from "./checks.js";
import { type Decided, type LockKeys, refusalsOf, type SendAsk, type SendDecision } from "./send-decision.js";

// On a cluster one script cannot read counters of several slots, so the send decision is one script per slot:
//   1. the client's own counters (per IP), each in its own slot, counted as on one Redis; over them, stop;
//   2. then, in one round trip, one script per group of SMS counters that share a slot: the phone's group
//      (`{<phone>}`: cooldown, send window, and the OTP store's lock, with the code beside them), the prefix's
//      (`{<prefix>}`), and one shard each of the country's and the budget's counters. Each script checks its
//      counters and counts them only if all of them pass, so a group that refuses moved nothing;
//   3. when another group refused or failed, every group that may have counted gives its points back.
// A give-back undoes only what its own send counted: the counting script leaves a marker (`rl:op:{tag}:<id>`,
// same slot), and the give-back decrements only if it deletes that marker. It is queued behind the counting
// script on the same connection, so even a frozen master that runs both later, in order, ends where it began.

// KEYS: counters, then (ARGV[1] = '1') the phone's lock and this client's failures on it, then the marker.
// ARGV: lock on, marker TTL, then each counter's points and window. Returns one wait (ms) per counter, then
// the lock's: all zeros means every counter was counted.
const GROUP = `
local lockOn = ARGV[1] == '1'
local counters = #KEYS - 1 - (lockOn and 2 or 0)
local waits = {}
for i = 1, counters + 1 do waits[i] = 0 end
local refused = false
for i = 1, counters do
  local points = tonumber(ARGV[1 + 2 * i])
  if tonumber(redis.call('GET', KEYS[i]) or '0') >= points then
    local ms = redis.call('PTTL', KEYS[i])
    if ms < 0 then ms = 1000 * tonumber(ARGV[2 + 2 * i]) end
    waits[i] = ms
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
for i = 1, counters do
  redis.call('SET', KEYS[i], 0, 'EX', ARGV[2 + 2 * i], 'NX')
  redis.call('INCR', KEYS[i])
end
redis.call('SET', KEYS[#KEYS], '1', 'EX', ARGV[2])
return waits
`;

// KEYS: counters, then the marker. Gives one point back to each counter, never below zero, if and only if the
// marker was there (the send counted and nothing gave back yet).
const GIVE_BACK = `
if redis.call('DEL', KEYS[#KEYS]) == 0 then return 0 end
for i = 1, #KEYS - 1 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
return 1
`;

// One request counter (per IP), counted whether or not it passes, in rate-limiter-flexible's layout so its
// reward (the refund after a login) works on it. Returns the wait (ms), 0 when it passed.
const COUNT = `
redis.call('SET', KEYS[1], 0, 'EX', ARGV[2], 'NX')
if redis.call('INCR', KEYS[1]) <= tonumber(ARGV[1]) then return 0 end
local ms = redis.call('PTTL', KEYS[1])
if ms == -1 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  ms = 1000 * tonumber(ARGV[2])
end
return ms
`;

/** A give-back is needed at most for as long as a send may take; a frozen master runs it right after anyway. */
const MARKER_TTL_SECONDS = 300;
/** The most keys one group's script takes: every SMS counter, the lock's two keys and the marker. */
const MAX_KEYS = 10;
/** Shards one spread counter is tried on before a send is refused: a few, not all (a spent budget is cheap). */
const SHARD_TRIES = 3;

type Script = (...keysAndArgs: (string | number)[]) => Promise<unknown>;

/**
 * The scripts with their key count fixed per name (`rlClusterGroup5`): ioredis's auto-pipelining routes a
 * script by its first argument, which must then be a key, not a key count.
 */
function scripts(redis: Cluster) {
  // Defined up front: a pipeline ioredis has already opened knows only the scripts defined before it.
  for (let keys = 1; keys <= MAX_KEYS; keys++) {
    redis.defineCommand(`rlClusterGroup${keys}`, { numberOfKeys: keys, lua: GROUP });
    redis.defineCommand(`rlClusterGiveBack${keys}`, { numberOfKeys: keys, lua: GIVE_BACK });
  }
  redis.defineCommand("rlClusterCount1", { numberOfKeys: 1, lua: COUNT });
  const commands = redis as unknown as Record<string, Script>;
  const script = (base: string, keys: number): Script => {
    const command = commands[`${base}${keys}`];
    if (!command) throw new Error(`no ${base} script for ${keys} keys`);
    return command.bind(redis);
  };
  return {
    group: (keys: readonly string[], args: readonly (string | number)[]) =>
      script("rlClusterGroup", keys.length)(...keys, ...args).then(waitsOf),
    giveBack: (keys: readonly string[]) => script("rlClusterGiveBack", keys.length)(...keys),
    count: (key: string, points: number, windowSeconds: number) =>
      script("rlClusterCount", 1)(key, points, windowSeconds).then(Number),
  };
}

function waitsOf(reply: unknown): number[] {
  if (!Array.isArray(reply) || !reply.every((n) => typeof n === "number")) {
    throw new Error(`unexpected send decision reply: ${JSON.stringify(reply)}`);
  }
  return reply;
}

/** One group of SMS counters in one slot, as the scripts see it. */
interface Group {
  readonly tag: string;
  readonly checks: Check[];
  readonly keys: string[];
  readonly points: number[];
  lock: readonly [string, string] | undefined;
  /** For a spread counter's group: the shards it has been tried on, this one last. */
  readonly shard?: { readonly check: Check; readonly tried: readonly number[] };
}

/** The share of a spread limit's points one shard holds: the shares add up to the limit exactly. */
export function shardPoints(points: number, shards: number, shard: number): number {
  return Math.floor(points / shards) + (shard < points % shards ? 1 : 0);
}

/**
 * The send decision on a Redis Cluster. `shards` is how many keys a spread counter (a country's, the budget)
 * is split into: each send counts on one of them, at random, against its share of the points.
 */
export function clusterSendDecision(redis: Cluster, lockKeys: LockKeys, shards: number): SendDecision {
  if (!Number.isSafeInteger(shards) || shards < 1) throw new RangeError(`shards must be >= 1, got ${shards}`);
  const run = scripts(redis);

  return async (ask: SendAsk): Promise<Decided> => {
    const asked = await redisCall(
      Promise.all(
        ask.requests.map((c) =>
          run.count(c.limit.storeKey(c.key), c.limit.spec.points, c.limit.spec.durationSeconds),
        ),
      ),
    );
    const requestRefusals: Refusal[] = [];
    asked.forEach((ms, i) => {
      const c = ask.requests[i];
      if (c && ms > 0) requestRefusals.push({ limit: c.limit, refuse: c.refuse, retryAfterMs: ms });
    });
    if (requestRefusals.length > 0)
      return { refusals: byLongestWait(requestRefusals), giveBack: async () => {} };

    const id = randomBytes(9).toString("base64url");
    const marker = (g: Group) => `rl:op:{${g.tag}}:${id}`;
    const decide = (g: Group) => {
      const args = g.checks.flatMap((c, i) => [g.points[i] ?? 0, c.limit.spec.durationSeconds]);
      return run.group(
        [...g.keys, ...(g.lock ?? []), marker(g)],
        [g.lock ? "1" : "0", MARKER_TTL_SECONDS, ...args],
      );
    };
    const back = (which: readonly Group[]) =>
      Promise.allSettled(which.map((g) => run.giveBack([...g.keys, marker(g)])));

    const counted: Group[] = [];
    let refusals: Refusal[] = [];
    let failure: unknown;
    let wave = groupsOf(ask, lockKeys, shards);
    for (let attempt = 1; wave.length > 0; attempt++) {
      const settled = await Promise.allSettled(wave.map(decide));
      const refusing: Group[] = [];
      refusals = [];
      settled.forEach((s, i) => {
        const g = wave[i] as Group;
        if (s.status === "rejected") {
          // It may still run (a frozen master thaws): its give-back, queued behind it, undoes it then.
          counted.push(g);
          failure ??= s.reason;
          return;
        }
        const found = refusalsOf(g.checks, s.value);
        if (found.length === 0) counted.push(g);
        else {
          refusals.push(...found);
          refusing.push(g);
        }
      });
      // A spent shard is not a spent limit: a send refused only by shards tries other shards, a few times.
      wave =
        failure === undefined && attempt < SHARD_TRIES && refusing.every((g) => g.shard !== undefined)
          ? refusing.flatMap((g) => otherShard(g, shards))
          : [];
      if (wave.length < refusing.length) wave = [];
    }
    if (failure !== undefined) {
      // Not awaited: a give-back to a frozen master would hold the answer past the command timeout.
      void back(counted);
      throw classifyRedisError(failure);
    }
    if (refusals.length > 0) {
      await back(counted);
      return { refusals: byLongestWait(refusals), giveBack: async () => {} };
    }
    return {
      refusals,
      giveBack: async () => {
        const results = await back(counted);
        const failed = results.find((r) => r.status === "rejected");
        if (failed) throw classifyRedisError(failed.reason);
      },
    };
  };
}

/** The SMS counters by slot: each counter's key carries the hash tag of its group. */
function groupsOf(ask: SendAsk, lockKeys: LockKeys, shards: number): Group[] {
  const groups = new Map<string, Group>();
  const groupOf = (tag: string): Group => {
    let g = groups.get(tag);
    if (!g) {
      g = { tag, checks: [], keys: [], points: [], lock: undefined };
      groups.set(tag, g);
    }
    return g;
  };
  for (const c of ask.sms) {
    if (c.spread) {
      const g = shardGroup(c, [], shards);
      if (g) groups.set(g.tag, g);
      continue;
    }
    const g = groupOf(c.key);
    g.checks.push(c);
    g.keys.push(c.limit.storeKey(`{${c.key}}`));
    g.points.push(c.limit.spec.points);
  }
  if (ask.lock) {
    // The OTP store's lock keys carry the phone's hash tag: they join the phone's group.
    groupOf(ask.lock.phone).lock = lockKeys(ask.lock.phone, ask.lock.client);
  }
  return [...groups.values()];
}

/** A spread counter's group on a shard not tried yet, at random; undefined when every shard was tried. */
function shardGroup(c: Check, tried: readonly number[], shards: number): Group | undefined {
  // Never more shards than points: every shard must be able to admit at least one send.
  const n = Math.max(1, Math.min(shards, c.limit.spec.points));
  const left = Array.from({ length: n }, (_, i) => i).filter((i) => !tried.includes(i));
  const shard = left[randomInt(left.length || 1)];
  if (shard === undefined) return undefined;
  const tag = `${c.limit.name}:${c.key}:${shard}`;
  return {
    tag,
    checks: [c],
    keys: [c.limit.storeKey(`{${tag}}`)],
    points: [shardPoints(c.limit.spec.points, n, shard)],
    lock: undefined,
    shard: { check: c, tried: [...tried, shard] },
  };
}

function otherShard(g: Group, shards: number): Group[] {
  if (!g.shard) return [];
  const next = shardGroup(g.shard.check, g.shard.tried, shards);
  return next ? [next] : [];
}
