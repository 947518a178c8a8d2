export interface User {
  /** Numeric id from a counter; never reused. */
  readonly id: number;
  /** E.164. */
  readonly phone: string;
  readonly name: string;
  readonly role: string;
  readonly isPhoneVerified: boolean;
}

/** Users are identified by their verified phone number. */
export interface UserStore {
  findByPhone(phone: string): Promise<User | undefined>;
  /**
   * Reserves an id for a user about to be created. Usually answered without a round trip, so a first login
   * can store the session for the new id in the same round trip that creates the user.
   */
  reserveId(): Promise<number>;
  /**
   * Creates the user for this phone (with `reservedId` when given, else a fresh id), or returns the existing
   * one if another request created it first: two concurrent first logins of one phone end with one user, and
   * the loser's reserved id is simply never used.
   */
  create(phone: string, reservedId?: number): Promise<User>;
}

/** The record a first login creates, so every store agrees on defaults. */
export function newUser(id: number, phone: string): User {
  return { id, phone, name: `User ${phone.slice(-4)}`, role: "consumer", isPhoneVerified: true };
}
