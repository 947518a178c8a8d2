import { createPrivateKey, type KeyObject } from "node:crypto";
import { type EnvReader, IN_PRODUCTION } from "../env-reader.js";

export interface TokenConfig {
  /** Absent in development: a key pair is generated per process. */
  readonly privateKey: KeyObject | undefined;
  readonly keyId: string | undefined;
  readonly issuer: string;
  readonly audience: string;
  readonly accessTtlSeconds: number;
  readonly refreshTtlSeconds: number;
  /** A rotated refresh token presented again within this many seconds gets the same successor; 0: off. */
  readonly refreshReuseGraceSeconds: number;
}

/** JWT_*, ACCESS_TOKEN_TTL_SECONDS and REFRESH_TOKEN_TTL_SECONDS. */
export function readTokenConfig(r: EnvReader): TokenConfig {
  return {
    privateKey: readPrivateKey(r),
    keyId: r.optional("JWT_KEY_ID"),
    issuer: r.string("JWT_ISSUER", "otp-auth"),
    audience: r.string("JWT_AUDIENCE", "otp-auth"),
    accessTtlSeconds: r.int("ACCESS_TOKEN_TTL_SECONDS", 900, 1, 86_400),
    refreshTtlSeconds: r.int("REFRESH_TOKEN_TTL_SECONDS", 30 * 86_400, 1, 365 * 86_400),
    refreshReuseGraceSeconds: r.int("REFRESH_REUSE_GRACE_SECONDS", 10, 0, 300),
  };
}

function readPrivateKey(r: EnvReader): KeyObject | undefined {
  // Environments often carry PEM newlines as literal "\n".
  const pem = r
    .secret(
      "JWT_PRIVATE_KEY",
      r.production ? `${IN_PRODUCTION} (a PKCS8 PEM Ed25519 key; tokens must survive restarts)` : undefined,
    )
    ?.replace(/\\n/g, "\n");
  if (pem === undefined) return undefined;
  try {
    const key = createPrivateKey({ key: pem, format: "pem" });
    if (key.asymmetricKeyType !== "ed25519") {
      r.problems.push(
        `JWT_PRIVATE_KEY must be an Ed25519 key (EdDSA), got ${key.asymmetricKeyType ?? "unknown"}`,
      );
      return undefined;
    }
    return key;
  } catch {
    r.problems.push(
      "JWT_PRIVATE_KEY is not a PKCS8 PEM private key (try `openssl genpkey -algorithm ed25519`)",
    );
    return undefined;
  }
}
