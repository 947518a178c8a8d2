import type { AdmittedCheck, AdmittedWrite } from "../login/ports.js";
import { isCluster, type RedisClient } from "./client.js";
import { redisCall } from "./errors.js";

/** A store's Lua script, by a name unique among the service's scripts. */
export interface LuaScript {
  readonly name: string;
  readonly lua: string;
  /** For a check: a Lua expression over the script's `reply`, true when it matched (`AdmittedCheck.matched`). */
  readonly matched?: string;
}

/**
 * A store's script call as an `AdmittedWrite`. `run` makes the call on its own; a decision on the same client
 * may instead run `script.lua` inside its own script, with `keys` and `args`, and read the reply with `parse`
 * (send-decision.ts): the write then costs no command and no round trip of its own.
 */
export class ScriptWrite<T> implements AdmittedWrite<T> {
  constructor(
    readonly redis: RedisClient,
    readonly script: LuaScript,
    readonly keys: readonly string[],
    readonly args: readonly (string | number)[],
    readonly parse: (reply: unknown) => T,
    /** The same script called alone (the store's defined command). */
    private readonly call: () => Promise<unknown>,
  ) {}

  async run(): Promise<T> {
    return this.parse(await redisCall(this.call()));
  }
}

/**
 * A store's check as a script: a decision that folds it in tells a match by `script.matched`, in Lua, in the
 * same step; one that runs it on its own by `matched`. The store states both beside its script's replies.
 */
export class ScriptCheck<T> extends ScriptWrite<T> implements AdmittedCheck<T> {
  constructor(
    write: ConstructorParameters<typeof ScriptWrite<T>>,
    readonly matched: (outcome: T) => boolean,
  ) {
    super(...write);
  }

  /**
   * On a single Redis, a read that is a script on the same client joins this check as one script: it runs
   * right after the check, in the same step, so a decision that folds the check in folds the read in too and
   * the read costs no command of its own. Anything else: undefined (`alongside` runs both side by side).
   */
  beside<R>(read: AdmittedWrite<R>): AdmittedCheck<[T, R]> | undefined {
    const matched = this.script.matched;
    if (!(read instanceof ScriptWrite) || read.redis !== this.redis || isCluster(this.redis) || !matched)
      return undefined;
    const other = read as ScriptWrite<R>;
    const script = together(this.script, other.script, matched);
    const call = definedCommand(this.redis, script.name, () => script.lua);
    const keys = [...this.keys, ...other.keys];
    const args = [this.keys.length, this.args.length, ...this.args, ...other.args];
    return new ScriptCheck<[T, R]>(
      [
        this.redis,
        script,
        keys,
        args,
        (reply) => {
          const [checked, found] = reply as [unknown, unknown];
          return [this.parse(checked), other.parse(found)];
        },
        () => call(keys.length, ...keys, ...args),
      ],
      ([outcome]) => this.matched(outcome),
    );
  }
}

/**
 * The two scripts as one, each a function over its own share of KEYS and ARGV: ARGV[1] and ARGV[2] count the
 * check's keys and arguments, then come the check's arguments, then the read's. Replies {check's, read's}; an
 * error raised in the check ends the whole call before the read. Built once per pair: `beside` runs per verify.
 */
function together(check: LuaScript, read: LuaScript, matched: string): LuaScript {
  const name = `${check.name}_with_${read.name}`;
  let script = combined.get(name);
  if (!script) {
    script = {
      name,
      lua: `
local function check(KEYS, ARGV)
${check.lua}
end
local function read(KEYS, ARGV)
${read.lua}
end
local nk, na = tonumber(ARGV[1]), tonumber(ARGV[2])
local ck, rk, ca, ra = {}, {}, {}, {}
for i = 1, #KEYS do
  if i <= nk then ck[i] = KEYS[i] else rk[i - nk] = KEYS[i] end
end
for i = 3, #ARGV do
  if i - 2 <= na then ca[i - 2] = ARGV[i] else ra[i - 2 - na] = ARGV[i] end
end
return {check(ck, ca), read(rk, ra)}
`,
      // The check's own expression, over the first part of the reply.
      matched: `(function(reply) return ${matched} end)(reply[1])`,
    };
    combined.set(name, script);
  }
  return script;
}

/** Scripts are named uniquely among the service's, so a pair's name identifies its combination. */
const combined = new Map<string, LuaScript>();

export type ScriptCall = (numberOfKeys: number, ...keysAndArgs: (string | number)[]) => Promise<unknown>;

/** Commands defined on first use, once per client: their Lua is built only then. */
const defined = new WeakMap<RedisClient, Map<string, ScriptCall>>();

/**
 * A script as a command of `redis` (`defineCommand`, number of keys as its first argument), defined the first
 * time it is asked for: for scripts that combine others' Lua, known only when a call brings them.
 */
export function definedCommand(redis: RedisClient, name: string, lua: () => string): ScriptCall {
  let scripts = defined.get(redis);
  if (!scripts) {
    scripts = new Map();
    defined.set(redis, scripts);
  }
  let call = scripts.get(name);
  if (!call) {
    redis.defineCommand(name, { lua: lua() });
    const method = (redis as unknown as Record<string, ScriptCall | undefined>)[name];
    if (!method) throw new Error(`${name} was not defined`);
    call = method.bind(redis);
    scripts.set(name, call);
  }
  return call;
}
