import { createHash, createHmac } from "node:crypto";
import type { TokenRef } from "./model.js";
import { randomBase64url } from "./random-pool.js";

// `<userId>.<family>.<secret>`: the user and family travel in the token so the store can find every key of
// one user (one Redis Cluster slot) without a lookup. Only `secret` must be unguessable.
const FAMILY_BYTES = 16;
const SECRET_BYTES = 32;
// 16 bytes are 22 base64url characters and 32 bytes are 43; the exact lengths plus the canonical round trip
// in `isCanonical` admit exactly one spelling of each value.
const TOKEN = /^(0|[1-9][0-9]{0,15})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;
const MAX_TOKEN_LENGTH = 16 + 1 + 22 + 1 + 43;
const FAMILY = /^[A-Za-z0-9_-]{22}$/;

/** A new refresh token for `userId`, in `family` when given (a rotation), else in a new family (a login). */
export function mintRefreshToken(userId: number, family?: string): { token: string; ref: TokenRef } {
  if (!Number.isSafeInteger(userId) || userId < 0) throw new RangeError(`invalid user id ${userId}`);
  if (family !== undefined && !(FAMILY.test(family) && isCanonical(family, FAMILY_BYTES))) {
    throw new TypeError("invalid refresh token family");
  }
  const fam = family ?? randomBase64url(FAMILY_BYTES);
  const token = `${userId}.${fam}.${randomBase64url(SECRET_BYTES)}`;
  return { token, ref: { userId, family: fam, hash: hashOf(token) } };
}

/**
 * The one token that rotating `token` yields: the same user and family, and a secret that is the HMAC of the
 * whole presented token under `key`. Deterministic so that a retry whose first answer was lost, or a second
 * tab refreshing at the same moment, is handed the very token the first rotation stored (the store's grace
 * window) instead of a second successor that would fork the family. Unguessable without `key`, so a spent
 * token found in a log does not reveal its successor. `token` must be one `parseRefreshToken` accepts.
 */
export function successorRefreshToken(token: string, key: Buffer): { token: string; ref: TokenRef } {
  if (key.length < SECRET_BYTES)
    throw new RangeError(`the successor key must be at least ${SECRET_BYTES} bytes`);
  const current = parseRefreshToken(token);
  if (!current) throw new TypeError("not a refresh token");
  const secret = createHmac("sha256", key).update(token).digest("base64url");
  const next = `${current.userId}.${current.family}.${secret}`;
  return { token: next, ref: { userId: current.userId, family: current.family, hash: hashOf(next) } };
}

/** What a presented token refers to, or undefined for anything that is not exactly a token we could mint. */
export function parseRefreshToken(token: string): TokenRef | undefined {
  if (typeof token !== "string" || token.length > MAX_TOKEN_LENGTH) return undefined;
  const m = TOKEN.exec(token);
  if (!m) return undefined;
  const [, id = "", family = "", secret = ""] = m;
  const userId = Number(id);
  if (!Number.isSafeInteger(userId)) return undefined;
  if (!isCanonical(family, FAMILY_BYTES) || !isCanonical(secret, SECRET_BYTES)) return undefined;
  return { userId, family, hash: hashOf(token) };
}

function hashOf(token: string): string {
  return createHash("sha256").update(token).digest("base64url");
}

/** Rejects spellings whose unused trailing bits are set, which decode to the same bytes as another. */
function isCanonical(part: string, bytes: number): boolean {
  const decoded = Buffer.from(part, "base64url");
  return decoded.length === bytes && decoded.toString("base64url") === part;
}
