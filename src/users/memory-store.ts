import { newUser, type User } from "../login/model.js";
import type { AdmittedWrite, UserStore } from "../login/ports.js";

/**
 * The in-memory `UserStore`, for development and tests. `create` runs to completion without awaiting, so
 * concurrent first logins of one phone cannot both create.
 */
export class MemoryUserStore implements UserStore {
  readonly #users = new Map<string, User>();
  #seq = 0;

  async findByPhone(phone: string): Promise<User | undefined> {
    return this.#users.get(phone);
  }

  admittedFind(phone: string): AdmittedWrite<User | undefined> {
    return { run: () => this.findByPhone(phone) };
  }

  async reserveId(): Promise<number> {
    this.#seq += 1;
    return this.#seq;
  }

  async create(phone: string, reservedId?: number): Promise<User> {
    const existing = this.#users.get(phone);
    if (existing) return existing;
    // Synchronous from here on (no await), so concurrent first logins of one phone cannot both create.
    const id = reservedId ?? ++this.#seq;
    // Frozen because the same object is handed to every caller: none may change another's view of the user.
    const user = Object.freeze(newUser(id, phone));
    this.#users.set(phone, user);
    return user;
  }
}
