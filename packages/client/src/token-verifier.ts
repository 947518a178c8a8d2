import { createRemoteJWKSet, errors, type JWTVerifyGetKey, jwtVerify } from "jose";
import { isCanonicalEdDsaJws } from "./token-shape.js";

/** The caller an access token speaks for. */
export interface AuthUser {
  /** The user id as a decimal string (a uint64 on the wire). */
  readonly id: string;
  /** E.164. */
  readonly phone: string;
  readonly role: string;
}

export interface VerifiedToken extends AuthUser {
  /** When the token stops being accepted. */
  readonly expiresAt: Date;
}

export interface TokenVerifierOptions {
  /** The service's key set, e.g. `http://otp-auth.internal:8000/.well-known/jwks.json`. */
  readonly jwksUrl: string | URL;
  /** Must match the service's `JWT_ISSUER`; default `otp-auth`. */
  readonly issuer?: string;
  /** Must match the service's `JWT_AUDIENCE`; default `otp-auth`. */
  readonly audience?: string;
  /** How long a fetched key set is trusted without asking again; default 10 minutes. */
  readonly cacheMaxAgeMs?: number;
  /** The least time between two fetches, so unknown-`kid` tokens cannot make us hammer the JWKS; default 30 s. */
  readonly cooldownMs?: number;
  /** How long one JWKS fetch may take; default 5 s. */
  readonly timeoutMs?: number;
  /**
   * Leeway for `exp`/`nbf` between our clock and the service's; default 5 s, at most
   * `MAX_CLOCK_TOLERANCE_SECONDS` (a larger one would keep expired tokens alive).
   */
  readonly clockToleranceSeconds?: number;
}

/**
 * Why a token was refused. `unavailable` means the key set could not be fetched: the token may be fine, the
 * caller should answer "try again" (503), not "log in again" (401).
 */
export class TokenVerificationError extends Error {
  override readonly name = "TokenVerificationError";
  constructor(
    readonly kind: "invalid" | "unavailable",
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface TokenVerifier {
  /** The token's user and expiry; throws `TokenVerificationError` otherwise. */
  verify(token: string): Promise<VerifiedToken>;
}

/** The most clock skew `createTokenVerifier` tolerates: a minute, against 15-minute tokens. */
export const MAX_CLOCK_TOLERANCE_SECONDS = 60;

/**
 * Verifies access tokens locally, against the service's published keys, so internal services need no call to
 * otp-auth per request. The key set is fetched once and cached; a token with an unknown `kid` (a rotated key)
 * triggers one refetch, at most once per cooldown.
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const remote = createRemoteJWKSet(new URL(options.jwksUrl), {
    cacheMaxAge: options.cacheMaxAgeMs ?? 10 * 60_000,
    cooldownDuration: options.cooldownMs ?? 30_000,
    timeoutDuration: options.timeoutMs ?? 5_000,
  });
  // The service names its key in every token; without a kid jose would try whichever key fits, and a token
  // the service would refuse must not pass here.
  const jwks: JWTVerifyGetKey = (header, token) => {
    if (typeof header.kid !== "string") throw new errors.JWKSNoMatchingKey();
    return remote(header, token);
  };
  const issuer = options.issuer ?? "otp-auth";
  const audience = options.audience ?? "otp-auth";
  const clockTolerance = options.clockToleranceSeconds ?? 5;
  if (
    !Number.isFinite(clockTolerance) ||
    clockTolerance < 0 ||
    clockTolerance > MAX_CLOCK_TOLERANCE_SECONDS
  ) {
    throw new RangeError(
      `clockToleranceSeconds must be between 0 and ${MAX_CLOCK_TOLERANCE_SECONDS}, got ${clockTolerance}`,
    );
  }

  return {
    async verify(token) {
      // jose decodes base64url leniently: without this, 16 spellings of the signature verify as one token.
      if (!isCanonicalEdDsaJws(token)) {
        throw new TokenVerificationError("invalid", "malformed access token");
      }
      let payload: Awaited<ReturnType<typeof jwtVerify>>["payload"];
      try {
        // The algorithm is pinned before a key is looked up: "none" and HS256 (keyed with our public key) are
        // refused whatever the header says, and only a kid the key set publishes finds a key.
        ({ payload } = await jwtVerify(token, jwks, {
          // Pinned: the key set decides nothing about the algorithm, so no `none` or HMAC-with-the-public-key.
          algorithms: ["EdDSA"],
          typ: "JWT",
          issuer,
          audience,
          // jose checks `exp` and, when present, `nbf` against this leeway.
          clockTolerance,
          requiredClaims: ["iss", "aud", "sub", "exp"],
        }));
      } catch (err) {
        throw classify(err);
      }
      const { sub, phone, role, exp } = payload;
      if (typeof sub !== "string" || typeof phone !== "string" || typeof role !== "string") {
        throw new TokenVerificationError("invalid", "access token lacks sub, phone or role");
      }
      return { id: sub, phone, role, expiresAt: new Date((exp ?? 0) * 1000) };
    },
  };
}

function classify(err: unknown): TokenVerificationError {
  // Key-set trouble is ours (or the network's), not the caller's: they get "unavailable".
  // jose reports a non-200 or unparsable key set as its generic error.
  if (
    err instanceof errors.JWKSTimeout ||
    err instanceof errors.JWKSInvalid ||
    (err instanceof errors.JOSEError && err.code === "ERR_JOSE_GENERIC")
  ) {
    return new TokenVerificationError("unavailable", "the token key set could not be fetched", {
      cause: err,
    });
  }
  if (err instanceof errors.JWTExpired) {
    return new TokenVerificationError("invalid", "access token expired", { cause: err });
  }
  if (err instanceof errors.JOSEError) {
    return new TokenVerificationError("invalid", "access token is not valid", { cause: err });
  }
  // jose lets fetch failures (connection refused, non-200) through as plain errors.
  return new TokenVerificationError("unavailable", "the token key set could not be fetched", { cause: err });
}
