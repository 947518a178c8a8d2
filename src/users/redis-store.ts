import type { ChainableCommander } from "ioredis";
import { newUser, type User } from "../login/model.js";
import type { AdmittedWrite, UserStore } from "../login/ports.js";
import { isCluster, type RedisClient } from "../redis/client.js";
import { redisCall } from "../redis/errors.js";
import type { ReplicaAck } from "../redis/replica-ack.js";
import { type LuaScript, ScriptWrite } from "../redis/script-write.js";

// `user:{<phone>}` shares its hash tag with `otp:{<phone>}`, so both live in one Redis Cluster slot.
const userKey = (phone: string) => `user:{${phone}}`;
const SEQ_KEY = "user:seq";
const idKey = (id: number) => `user:id:${id}`;

// Create-if-absent and read back in one step: of two concurrent first logins, the second finds the first's
// record and returns it, so a phone never gets two users.
// With a second key (the id index, on a single Redis where another slot is no obstacle), the call that creates
// the user writes its index entry too: a lost race leaves none behind.
const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'phone', ARGV[2], 'name', ARGV[3], 'role', ARGV[4],
    'verified', ARGV[5], 'created_at', ARGV[6])
  if KEYS[2] then redis.call('SET', KEYS[2], ARGV[2]) end
end
return redis.call('HGETALL', KEYS[1])
`;

// The lookup as a script, so that it can join the verify decision's (`alongside`).
const FIND: LuaScript = { name: "userFind", lua: "return redis.call('HGETALL', KEYS[1])" };

type CreateArgs = readonly [
  key: string,
  id: number,
  phone: string,
  name: string,
  role: string,
  verified: string,
  createdAt: string,
];

interface UserCommands {
  userFind(key: string): Promise<string[]>;
  userCreate(...args: CreateArgs): Promise<string[]>;
  /** With the index entry's key second: a single Redis (see CREATE). */
  userCreateIndexed(key: string, index: string, ...rest: Tail<CreateArgs>): Promise<string[]>;
}

/** The create script as a pipeline (the durable path) offers it. */
interface PipelineCommands {
  userCreate(...args: CreateArgs): ChainableCommander;
}

type Tail<T extends readonly unknown[]> = T extends readonly [unknown, ...infer R] ? R : never;

/** Ids a process takes from `user:seq` at a time. */
export const USER_ID_BLOCK = 100;

/**
 * The production `UserStore`: a hash per user at `user:{<phone>}`, ids from the `user:seq` counter, and an
 * index `user:id:<id>` -> phone.
 *
 * Ids are reserved in blocks (`INCRBY user:seq <block>` once per block, then handed out here), so a first
 * login costs one round trip instead of an INCR followed by the create. The price: ids are unique and increase
 * within a process, but not across processes in creation order, and the unused rest of a block is skipped
 * when the process stops (gaps, never reuse). The first user of an empty store is still id 1, and a counter
 * left by one-at-a-time INCRs is simply continued.
 */
export class RedisUserStore implements UserStore {
  readonly #redis: RedisClient & UserCommands;
  /** A single Redis, no replicas to wait for: the create script writes the index entry itself. */
  readonly #single: boolean;
  #nextId = 0;
  #endId = 0;
  /** The next block, fetched ahead: [first id, end). */
  #spare: [number, number] | undefined;
  #fetching: Promise<void> | undefined;

  /**
   * @param durable when given, a new user is answered only once its record, its index entry and the block
   * of ids it came from have reached the replicas it asks for (`WAIT`), so a failover cannot forget the user
   * or hand its id out again.
   */
  constructor(
    redis: RedisClient,
    private readonly idBlock = USER_ID_BLOCK,
    private readonly durable?: ReplicaAck,
  ) {
    if (!Number.isSafeInteger(idBlock) || idBlock < 1) {
      throw new RangeError(`idBlock must be a whole number >= 1, got ${idBlock}`);
    }
    redis.defineCommand(FIND.name, { numberOfKeys: 1, lua: FIND.lua });
    redis.defineCommand("userCreate", { numberOfKeys: 1, lua: CREATE });
    redis.defineCommand("userCreateIndexed", { numberOfKeys: 2, lua: CREATE });
    durable?.define("userCreate", { numberOfKeys: 1, lua: CREATE });
    this.#redis = redis as RedisClient & UserCommands;
    // Replicas to wait for keep the two writes apart, each followed by its WAIT (as on a cluster).
    this.#single = !isCluster(redis) && !durable;
  }

  async findByPhone(phone: string): Promise<User | undefined> {
    return toUser(await redisCall(this.#redis.hgetall(userKey(phone))));
  }

  admittedFind(phone: string): AdmittedWrite<User | undefined> {
    const key = userKey(phone);
    return new ScriptWrite(this.#redis, FIND, [key], [], parseFound, () => this.#redis.userFind(key));
  }

  /**
   * From this process's block of ids. The next block is fetched in the background when half of the current one
   * is used, so a first login waits on `INCRBY` only at start-up, not every time a block runs out (when every
   * first login in flight would wait at once).
   */
  async reserveId(): Promise<number> {
    while (this.#nextId >= this.#endId) {
      if (this.#spare) this.#useSpare();
      else await this.#refill();
    }
    if (!this.#spare && !this.#fetching && this.#endId - this.#nextId <= this.idBlock / 2) {
      // Nobody waits on this one; if it fails, the next reservation simply tries again.
      this.#refill().catch(() => {});
    }
    return this.#nextId++;
  }

  async create(phone: string, reservedId?: number): Promise<User> {
    // The id is taken before knowing whether it is needed: a lost race wastes one id, which is cheaper than
    // a second round trip on every first login.
    const id = reservedId ?? (await this.reserveId());
    const fresh = newUser(id, phone);
    const args: CreateArgs = [
      userKey(phone),
      fresh.id,
      fresh.phone,
      fresh.name,
      fresh.role,
      fresh.isPhoneVerified ? "1" : "0",
      new Date().toISOString(),
    ];
    const user = parseFound(await (this.#single ? this.#createIndexed(args) : this.#createBeside(args)));
    if (!user) throw new Error(`user record for ${userKey(phone)} vanished while being created`);
    // Another request (or an earlier login) owns this phone: where the index was written beside the script,
    // take back its entry for the wasted id. A crash just before this can still leave one behind, so readers of
    // the index must check the id they find.
    if (user.id !== id && !this.#single) await redisCall(this.#redis.del(idKey(id)));
    return user;
  }

  /** A single Redis: the record and its index entry in one script call. */
  #createIndexed(args: CreateArgs): Promise<string[]> {
    const [key, id, ...rest] = args;
    return redisCall(this.#redis.userCreateIndexed(key, idKey(id), id, ...rest));
  }

  /**
   * A cluster (or replicas to wait for): the index is in another slot, so it cannot join the script; sent
   * together, both take one round trip. With replicas to wait for, each is followed by WAIT on its own master,
   * still side by side.
   */
  async #createBeside(args: CreateArgs): Promise<string[]> {
    const [, id, phone] = args;
    const [row] = await redisCall<[string[], unknown]>(
      this.durable
        ? Promise.all([
            this.durable
              .write((p) => (p as typeof p & PipelineCommands).userCreate(...args))
              .then(([created]) => created as string[]),
            this.durable.write((p) => p.set(idKey(id), phone)),
          ])
        : Promise.all([this.#redis.userCreate(...args), this.#redis.set(idKey(id), phone)]),
    );
    return row;
  }

  /** Fetches one block into `#spare`; concurrent callers share the one INCRBY. */
  #refill(): Promise<void> {
    this.#fetching ??= redisCall(this.#reserveBlock()).then(
      (top) => {
        this.#spare = [top - this.idBlock + 1, top + 1];
        this.#fetching = undefined;
      },
      (err: unknown) => {
        this.#fetching = undefined;
        throw err;
      },
    );
    return this.#fetching;
  }

  #reserveBlock(): Promise<number> {
    if (!this.durable) return this.#redis.incrby(SEQ_KEY, this.idBlock);
    // A block a failover forgot would be handed out again, to other phones: it is used only once replicated.
    return this.durable.write((p) => p.incrby(SEQ_KEY, this.idBlock)).then(([top]) => Number(top));
  }

  #useSpare(): void {
    if (!this.#spare) throw new Error("no user ids reserved");
    [this.#nextId, this.#endId] = this.#spare;
    this.#spare = undefined;
  }
}

function pairs(flat: readonly string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const [name, value] = [flat[i], flat[i + 1]];
    if (name !== undefined && value !== undefined) fields[name] = value;
  }
  return fields;
}

/** A script's HGETALL reply (a flat field/value list) as the user, if there is one. */
function parseFound(reply: unknown): User | undefined {
  return toUser(pairs(reply as string[]));
}

function toUser(fields: Record<string, string>): User | undefined {
  if (fields.id === undefined) return undefined;
  const id = Number(fields.id);
  if (!Number.isSafeInteger(id) || id < 1 || fields.phone === undefined) {
    throw new Error(`malformed user record (id "${fields.id}")`);
  }
  return {
    id,
    phone: fields.phone,
    name: fields.name ?? "",
    role: fields.role ?? "",
    isPhoneVerified: fields.verified === "1",
  };
}
