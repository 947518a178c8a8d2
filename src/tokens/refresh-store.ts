/**
 * A refresh token's server-side record. The token itself is never stored, only its SHA-256 (`hash`).
 * All tokens minted from one login share a `family`; rotation keeps the family, reuse or logout revokes it.
 */
export interface RefreshRecord {
  readonly userId: number;
  readonly family: string;
  readonly hash: string;
  /** Claims re-issued on refresh without another user lookup. */
  readonly phone: string;
  readonly role: string;
}

export type RotateOutcome =
  /** The old token was live: it is now spent and `next` is live in the same family. */
  | { readonly kind: "ok"; readonly record: RefreshRecord }
  /** Unknown, expired, or its family is revoked. */
  | { readonly kind: "invalid" }
  /** The old token had already been rotated: the whole family has now been revoked. */
  | { readonly kind: "reused" };

export interface RefreshStore {
  /** Starts a new family with its first token. */
  create(record: RefreshRecord, ttlSeconds: number): Promise<void>;
  /** Atomically spends `current` and stores `nextHash` in its family; detects reuse of a spent token. */
  rotate(current: TokenRef, nextHash: string, ttlSeconds: number): Promise<RotateOutcome>;
  /** Revokes the family of a known token. Returns false when the token was never issued (or has expired). */
  revokeFamily(current: TokenRef): Promise<boolean>;
}

/** What the token string itself tells: whose it is, which family, and the hash to look up. */
export interface TokenRef {
  readonly userId: number;
  readonly family: string;
  readonly hash: string;
}
