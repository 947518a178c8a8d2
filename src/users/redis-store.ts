import type { Redis } from "ioredis";
import { newUser, type User, type UserStore } from "./store.js";

// `user:{<phone>}` shares its hash tag with `otp:{<phone>}`, so both live in one Redis Cluster slot.
const userKey = (phone: string) => `user:{${phone}}`;
const SEQ_KEY = "user:seq";
const idKey = (id: number) => `user:id:${id}`;

// Create-if-absent and read back in one step: of two concurrent first logins, the second finds the first's
// record and returns it, so a phone never gets two users.
const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'phone', ARGV[2], 'name', ARGV[3], 'role', ARGV[4],
    'verified', ARGV[5], 'created_at', ARGV[6])
end
return redis.call('HGETALL', KEYS[1])
`;

interface UserCommands {
  userCreate(
    key: string,
    id: number,
    phone: string,
    name: string,
    role: string,
    verified: string,
    createdAt: string,
  ): Promise<string[]>;
}

/**
 * The production `UserStore`: a hash per user at `user:{<phone>}`, ids from the `user:seq` counter, and an
 * index `user:id:<id>` -> phone.
 */
export class RedisUserStore implements UserStore {
  readonly #redis: Redis & UserCommands;

  constructor(redis: Redis) {
    redis.defineCommand("userCreate", { numberOfKeys: 1, lua: CREATE });
    this.#redis = redis as Redis & UserCommands;
  }

  async findByPhone(phone: string): Promise<User | undefined> {
    return toUser(await this.#redis.hgetall(userKey(phone)));
  }

  async create(phone: string): Promise<User> {
    // The id is taken before knowing whether it is needed: a lost race wastes one counter value, which is
    // cheaper than a second round trip on every first login.
    const id = await this.#redis.incr(SEQ_KEY);
    const fresh = newUser(id, phone);
    // The index is in another slot, so it cannot join the script; sent together, both take one round trip.
    const [row] = await Promise.all([
      this.#redis.userCreate(
        userKey(phone),
        fresh.id,
        fresh.phone,
        fresh.name,
        fresh.role,
        fresh.isPhoneVerified ? "1" : "0",
        new Date().toISOString(),
      ),
      this.#redis.set(idKey(id), phone),
    ]);
    const user = toUser(pairs(row));
    if (!user) throw new Error(`user record for ${userKey(phone)} vanished while being created`);
    // Another request (or an earlier login) owns this phone: take back the index entry for the wasted id. A
    // crash just before this can still leave one behind, so readers of the index must check the id they find.
    if (user.id !== id) await this.#redis.del(idKey(id));
    return user;
  }
}

function pairs(flat: readonly string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]] = flat[i + 1];
  return fields;
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
