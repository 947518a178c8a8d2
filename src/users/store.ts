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
   * Creates the user for this phone, or returns the existing one if another request created it first:
   * two concurrent first logins of one phone end with one user.
   */
  create(phone: string): Promise<User>;
}

/** The record a first login creates, so every store agrees on defaults. */
export function newUser(id: number, phone: string): User {
  return { id, phone, name: `User ${phone.slice(-4)}`, role: "consumer", isPhoneVerified: true };
}
