import type { RedisClient } from "../redis/client.js";
import { redisCall } from "../redis/errors.js";
import type { Check } from "./checks.js";

/** Gives one point back on each check's counter, never below zero, creating no counter that is not there. */
export type Refund = (checks: readonly Check[]) => Promise<void>;

// Every counter in one call. A counter above zero exists within its window (the decision sets its TTL in the
// step that creates it), so a decrement keeps it there; an absent or zero counter is left as it is, which is
// what rate-limiter-flexible's clamped reward leaves too (it would create a zero).
// (The decision's own step does the same after a matched check: send-decision.ts.)
export const GIVE_BACK_EACH = `
local function giveBackEach(keys)
  for i = 1, #keys do
    if tonumber(redis.call('GET', keys[i]) or '0') > 0 then redis.call('DECR', keys[i]) end
  end
end
`;
const REFUND = `${GIVE_BACK_EACH}
giveBackEach(KEYS)
return #KEYS
`;

interface RefundCommands {
  rlRefund(numberOfKeys: number, ...keys: string[]): Promise<number>;
}

/**
 * On a single Redis, every counter a request gives back in one command: after a login, the client's send and
 * verify points; after an unsent code, the SMS counters it counted. (A Cluster and the embedded mode keep
 * `refund` of checks.ts, each limit's own reward: on a Cluster the counters live in different slots.)
 */
export function redisRefund(redis: RedisClient): Refund {
  redis.defineCommand("rlRefund", { lua: REFUND });
  const run = redis as RedisClient & RefundCommands;
  return async (checks) => {
    if (checks.length === 0) return;
    const keys = checks.map((c) => c.limit.storeKey(c.key));
    await redisCall(run.rlRefund(keys.length, ...keys));
  };
}
