import type { AdmittedWrite } from "../login/ports.js";
import type { RedisClient } from "./client.js";
import { redisCall } from "./errors.js";

/** A store's Lua script, by a name unique among the service's scripts. */
export interface LuaScript {
  readonly name: string;
  readonly lua: string;
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
