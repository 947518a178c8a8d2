import { createPublicKey, generateKeyPairSync, type KeyObject, randomUUID, sign } from "node:crypto";
import {
  type CryptoKey,
  calculateJwkThumbprint,
  errors,
  exportJWK,
  importJWK,
  type JWK,
  type JWTHeaderParameters,
  jwtVerify,
} from "jose";
import { isCanonicalEdDsaJws, MAX_TOKEN_LENGTH } from "../../packages/client/src/token-shape.js";
import type { User } from "../login/model.js";
import type { AccessTokenVerifier, Caller, TokenIssuer } from "../login/ports.js";

/** The claims of an access token, as `verify` returns them. */
export interface AccessClaims {
  readonly iss: string;
  readonly aud: string;
  /** The user id, as a decimal string. */
  readonly sub: string;
  /** E.164. */
  readonly phone: string;
  readonly role: string;
  /** Seconds since the epoch. */
  readonly iat: number;
  readonly exp: number;
  readonly jti: string;
  /** The session (refresh family) the token was issued in; absent on tokens from before sessions. */
  readonly sid?: string;
}

/** A public key that still verifies tokens but signs none: the previous key after a rotation, or the next. */
export interface VerificationKey {
  /** An Ed25519 public key. */
  readonly key: KeyObject;
  /** Absent: its RFC 7638 thumbprint, as for the signing key. */
  readonly keyId?: string | undefined;
}

export interface AccessTokensOptions {
  /** An Ed25519 private key. Absent: a pair is generated, and `generated` tells the caller to warn. */
  readonly privateKey?: KeyObject | undefined;
  /** Absent: the RFC 7638 thumbprint of the public key, so a key always has the same id. */
  readonly keyId?: string | undefined;
  readonly issuer: string;
  readonly audience: string;
  readonly ttlSeconds: number;
  /**
   * Keys published in the JWKS and accepted by `verify` beside the signing key (JWT_PREVIOUS_PUBLIC_KEYS):
   * during a rotation, the next key before the swap and the previous one after it.
   */
  readonly verificationKeys?: readonly VerificationKey[] | undefined;
  /** Milliseconds since the epoch; injectable so tests can issue and check tokens at any time. */
  readonly now?: () => number;
}

// Instances' clocks differ a little; a bound this small keeps "expired" meaning expired.
export const CLOCK_TOLERANCE_SECONDS = 5;
const DECIMAL_ID = /^(0|[1-9][0-9]{0,15})$/;
const FAMILY_ID = /^[A-Za-z0-9_-]{22}$/;

/** A public key as published and as jose checks it. */
interface PublishedKey {
  readonly jwk: JWK;
  readonly verify: CryptoKey;
}

async function publish(key: KeyObject, keyId: string | undefined): Promise<PublishedKey> {
  const { kty, crv, x } = await exportJWK(key.type === "private" ? createPublicKey(key) : key);
  if (kty === undefined || crv === undefined || x === undefined)
    throw new Error("could not export the public key");
  const bare: JWK = { kty, crv, x };
  const kid = keyId ?? (await calculateJwkThumbprint(bare));
  const jwk: JWK = { ...bare, kid, alg: "EdDSA", use: "sig" };
  const verify = await importJWK(jwk, "EdDSA");
  if (verify instanceof Uint8Array) throw new TypeError("expected an asymmetric verification key");
  return { jwk, verify };
}

/**
 * Issues and checks EdDSA (Ed25519) JWT access tokens.
 *
 * Signing is a hand-rolled compact JWS over `crypto.sign`, about twice as fast as jose's `SignJWT` on this
 * login hot path; verification goes through jose, so what we emit is checked by the same code callers use.
 */
export class AccessTokens implements TokenIssuer, AccessTokenVerifier {
  /** The `kid` in every token header and in the JWKS. */
  readonly keyId: string;
  /** True when no key was configured: tokens will not survive a restart. */
  readonly generated: boolean;

  private constructor(
    private readonly keys: {
      readonly private: KeyObject;
      /** Every key `verify` accepts, by kid: the signing key's first. A Map, so no kid reaches a prototype. */
      readonly byKid: ReadonlyMap<string, PublishedKey>;
    },
    private readonly claims: Pick<AccessTokensOptions, "issuer" | "audience" | "ttlSeconds">,
    private readonly now: () => number,
    /** base64url(header) and its trailing dot: the same for every token of this key. */
    private readonly headerPrefix: string,
    generated: boolean,
  ) {
    const [first] = keys.byKid.keys();
    this.keyId = String(first);
    this.generated = generated;
  }

  static async create(opts: AccessTokensOptions): Promise<AccessTokens> {
    if (!Number.isSafeInteger(opts.ttlSeconds) || opts.ttlSeconds <= 0) {
      throw new RangeError(`ttlSeconds must be a positive whole number, got ${opts.ttlSeconds}`);
    }
    const privateKey = opts.privateKey ?? generateKeyPairSync("ed25519").privateKey;
    if (privateKey.type !== "private" || privateKey.asymmetricKeyType !== "ed25519") {
      throw new TypeError(
        `the JWT signing key must be an Ed25519 private key, got a ${privateKey.type} ${privateKey.asymmetricKeyType ?? ""} key`,
      );
    }
    const signing = await publish(privateKey, opts.keyId);
    const kid = String(signing.jwk.kid);
    const byKid = new Map<string, PublishedKey>([[kid, signing]]);
    for (const extra of opts.verificationKeys ?? []) {
      if (extra.key.type !== "public" || extra.key.asymmetricKeyType !== "ed25519") {
        throw new TypeError("a verification key must be an Ed25519 public key");
      }
      const published = await publish(extra.key, extra.keyId);
      const id = String(published.jwk.kid);
      if (byKid.has(id)) throw new TypeError(`two JWT keys have the kid "${id}"`);
      byKid.set(id, published);
    }
    const header = Buffer.from(JSON.stringify({ alg: "EdDSA", typ: "JWT", kid })).toString("base64url");
    return new AccessTokens(
      { private: privateKey, byKid },
      { issuer: opts.issuer, audience: opts.audience, ttlSeconds: opts.ttlSeconds },
      opts.now ?? Date.now,
      `${header}.`,
      opts.privateKey === undefined,
    );
  }

  async sign(
    user: Pick<User, "id" | "phone" | "role">,
    sessionId?: string,
  ): Promise<{ token: string; expiresIn: number }> {
    const iat = Math.floor(this.now() / 1000);
    const { issuer, audience, ttlSeconds } = this.claims;
    const claims: AccessClaims = {
      iss: issuer,
      aud: audience,
      sub: String(user.id),
      phone: user.phone,
      role: user.role,
      iat,
      exp: iat + ttlSeconds,
      jti: randomUUID(),
      ...(sessionId === undefined ? {} : { sid: sessionId }),
    };
    const signingInput = this.headerPrefix + Buffer.from(JSON.stringify(claims)).toString("base64url");
    const signature = sign(null, Buffer.from(signingInput), this.keys.private).toString("base64url");
    return { token: `${signingInput}.${signature}`, expiresIn: ttlSeconds };
  }

  /** Returns the claims of a token this service issued and that is still valid; throws a jose error otherwise. */
  async verify(token: string): Promise<AccessClaims> {
    if (token.length > MAX_TOKEN_LENGTH) throw new errors.JWTInvalid("token too long");
    if (!isCanonicalEdDsaJws(token)) throw new errors.JWTInvalid("malformed token");
    // The key is chosen by the header's kid among ours only, and the algorithm is pinned before any key is
    // used: "none", HS256 keyed with a public key, an unknown or crafted kid never reach a signature check.
    const keyFor = (header: JWTHeaderParameters): CryptoKey => {
      const found =
        header.alg === "EdDSA" && typeof header.kid === "string" && this.keys.byKid.get(header.kid);
      if (!found) throw new errors.JWKSNoMatchingKey();
      return found.verify;
    };
    const { payload } = await jwtVerify(token, keyFor, {
      algorithms: ["EdDSA"],
      typ: "JWT",
      issuer: this.claims.issuer,
      audience: this.claims.audience,
      requiredClaims: ["sub", "iat", "exp", "jti"],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      currentDate: new Date(this.now()),
    });
    const { iss, aud, sub, phone, role, iat, exp, jti, sid } = payload;
    if (
      typeof iss !== "string" ||
      typeof aud !== "string" ||
      typeof sub !== "string" ||
      typeof phone !== "string" ||
      typeof role !== "string" ||
      typeof iat !== "number" ||
      typeof exp !== "number" ||
      typeof jti !== "string"
    ) {
      throw new errors.JWTInvalid("token claims have unexpected types");
    }
    if (sid !== undefined && typeof sid !== "string") throw new errors.JWTInvalid("sid is not a string");
    return { iss, aud, sub, phone, role, iat, exp, jti, ...(sid === undefined ? {} : { sid }) };
  }

  /** The caller a valid token of a session names; undefined for any token that is not one. */
  async authenticate(token: string): Promise<Caller | undefined> {
    try {
      const { sub, sid } = await this.verify(token);
      if (sid === undefined || !FAMILY_ID.test(sid) || !DECIMAL_ID.test(sub)) return undefined;
      const userId = Number(sub);
      return Number.isSafeInteger(userId) ? { userId, sessionId: sid } : undefined;
    } catch (err) {
      if (err instanceof errors.JOSEError) return undefined;
      throw err;
    }
  }

  /** The public key set to publish, the signing key first; holds no private material. */
  jwks(): { keys: JWK[] } {
    return { keys: [...this.keys.byKid.values()].map((k) => ({ ...k.jwk })) };
  }
}
