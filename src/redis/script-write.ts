import type { AdmittedCheck, AdmittedWrite } from "../login/ports.js";
import type { RedisClient } from "./client.js";
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
}
