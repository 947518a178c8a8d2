import { createPublicKey, generateKeyPairSync, type KeyObject, randomUUID, sign } from "node:crypto";
import {
  type CryptoKey,
  calculateJwkThumbprint,
  errors,
  exportJWK,
  importJWK,
  type JWK,
  jwtVerify,
} from "jose";
import { isCanonicalEdDsaJws, MAX_TOKEN_LENGTH } from "../../packages/client/src/token-shape.js";
import type { User } from "../login/model.js";
import type { TokenIssuer } from "../login/ports.js";

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
}

export interface AccessTokensOptions {
  /** An Ed25519 private key. Absent: a pair is generated, and `generated` tells the caller to warn. */
  readonly privateKey?: KeyObject | undefined;
  /** Absent: the RFC 7638 thumbprint of the public key, so a key always has the same id. */
  readonly keyId?: string | undefined;
  readonly issuer: string;
  readonly audience: string;
  readonly ttlSeconds: number;
  /** Milliseconds since the epoch; injectable so tests can issue and check tokens at any time. */
  readonly now?: () => number;
}

/**
 * Issues and checks EdDSA (Ed25519) JWT access tokens.
 *
 * Signing is a hand-rolled compact JWS over `crypto.sign`, about twice as fast as jose's `SignJWT` on this
 * login hot path; verification goes through jose, so what we emit is checked by the same code callers use.
 */
export class AccessTokens implements TokenIssuer {
  /** The `kid` in every token header and in the JWKS. */
  readonly keyId: string;
  /** True when no key was configured: tokens will not survive a restart. */
  readonly generated: boolean;

  private constructor(
    private readonly keys: { readonly private: KeyObject; readonly verify: CryptoKey; readonly jwk: JWK },
    private readonly claims: Pick<AccessTokensOptions, "issuer" | "audience" | "ttlSeconds">,
    private readonly now: () => number,
    /** base64url(header) and its trailing dot: the same for every token of this key. */
    private readonly headerPrefix: string,
    generated: boolean,
  ) {
    this.keyId = String(keys.jwk.kid);
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
    const { kty, crv, x } = await exportJWK(createPublicKey(privateKey));
    if (kty === undefined || crv === undefined || x === undefined)
      throw new Error("could not export the public key");
    const bare: JWK = { kty, crv, x };
    const kid = opts.keyId ?? (await calculateJwkThumbprint(bare));
    const jwk: JWK = { ...bare, kid, alg: "EdDSA", use: "sig" };
    const verify = await importJWK(jwk, "EdDSA");
    if (verify instanceof Uint8Array) throw new TypeError("expected an asymmetric verification key");
    const header = Buffer.from(JSON.stringify({ alg: "EdDSA", typ: "JWT", kid })).toString("base64url");
    return new AccessTokens(
      { private: privateKey, verify, jwk },
      { issuer: opts.issuer, audience: opts.audience, ttlSeconds: opts.ttlSeconds },
      opts.now ?? Date.now,
      `${header}.`,
      opts.privateKey === undefined,
    );
  }

  async sign(user: Pick<User, "id" | "phone" | "role">): Promise<{ token: string; expiresIn: number }> {
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
    };
    const signingInput = this.headerPrefix + Buffer.from(JSON.stringify(claims)).toString("base64url");
    const signature = sign(null, Buffer.from(signingInput), this.keys.private).toString("base64url");
    return { token: `${signingInput}.${signature}`, expiresIn: ttlSeconds };
  }

  /** Returns the claims of a token this service issued and that is still valid; throws a jose error otherwise. */
  async verify(token: string): Promise<AccessClaims> {
    if (token.length > MAX_TOKEN_LENGTH) throw new errors.JWTInvalid("token too long");
    if (!isCanonicalEdDsaJws(token)) throw new errors.JWTInvalid("malformed token");
    const { payload } = await jwtVerify(token, this.keys.verify, {
      algorithms: ["EdDSA"],
      typ: "JWT",
      issuer: this.claims.issuer,
      audience: this.claims.audience,
      requiredClaims: ["sub", "iat", "exp", "jti"],
      currentDate: new Date(this.now()),
    });
    const { iss, aud, sub, phone, role, iat, exp, jti } = payload;
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
    return { iss, aud, sub, phone, role, iat, exp, jti };
  }

  /** The public key set to publish; holds no private material. */
  jwks(): { keys: JWK[] } {
    return { keys: [{ ...this.keys.jwk }] };
  }
}
