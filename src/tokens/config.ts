import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { type EnvReader, IN_PRODUCTION } from "../env-reader.js";
import type { VerificationKey } from "./access-tokens.js";

export interface TokenConfig {
  /** Absent in development: a key pair is generated per process. */
  readonly privateKey: KeyObject | undefined;
  readonly keyId: string | undefined;
  /** JWT_PREVIOUS_PUBLIC_KEYS: published and accepted beside the signing key, never used to sign. */
  readonly previousKeys: readonly VerificationKey[];
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
    previousKeys: readPreviousKeys(r),
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

const PEM_PUBLIC_KEY = /-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g;

/**
 * JWT_PREVIOUS_PUBLIC_KEYS: SPKI PEM Ed25519 public keys (`openssl pkey -pubout`), one after another, or a JWKS
 * JSON (`{"keys":[…]}`, e.g. the service's own /.well-known/jwks.json), whose `kid`s are kept. A PEM key's kid
 * is its RFC 7638 thumbprint, which is what the key had as the signing key unless JWT_KEY_ID named it.
 */
function readPreviousKeys(r: EnvReader): VerificationKey[] {
  const raw = r.optional("JWT_PREVIOUS_PUBLIC_KEYS")?.replace(/\\n/g, "\n").trim();
  if (!raw) return [];
  const problem = (what: string) => {
    r.problems.push(`JWT_PREVIOUS_PUBLIC_KEYS ${what}`);
    return [];
  };
  if (raw.startsWith("{")) {
    let keys: unknown;
    try {
      keys = (JSON.parse(raw) as { keys?: unknown }).keys;
    } catch {
      return problem("is neither PEM public keys nor a JWKS JSON");
    }
    if (!Array.isArray(keys)) return problem('is JSON without a "keys" array');
    const out: VerificationKey[] = [];
    for (const jwk of keys as unknown[]) {
      const j = (typeof jwk === "object" && jwk !== null ? jwk : {}) as Record<string, unknown>;
      if (j.kty !== "OKP" || j.crv !== "Ed25519" || typeof j.x !== "string" || "d" in j) {
        return problem("must hold only Ed25519 public keys (kty OKP, crv Ed25519, no private part)");
      }
      if (j.kid !== undefined && typeof j.kid !== "string") return problem("has a kid that is not a string");
      try {
        const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: j.x }, format: "jwk" });
        out.push({ key, keyId: j.kid });
      } catch {
        return problem("has a key that does not parse");
      }
    }
    return out;
  }
  const blocks = raw.match(PEM_PUBLIC_KEY) ?? [];
  if (blocks.length === 0 || raw.replace(PEM_PUBLIC_KEY, "").trim() !== "") {
    return problem("must be PEM public keys (BEGIN PUBLIC KEY) separated by blank lines, or a JWKS JSON");
  }
  const out: VerificationKey[] = [];
  for (const pem of blocks) {
    try {
      const key = createPublicKey({ key: pem, format: "pem" });
      if (key.asymmetricKeyType !== "ed25519") return problem("must hold Ed25519 keys only");
      out.push({ key });
    } catch {
      return problem("has a PEM block that is not a public key");
    }
  }
  return out;
}
