// Imported by the exported client (src/client/) as well as the server: it must stay free of imports, so a
// service that only verifies tokens never loads Redis, pino or the SMS providers.

// Far above any token the service issues; refuses to parse megabytes of attacker input.
export const MAX_TOKEN_LENGTH = 4096;

const SEGMENT = /^[A-Za-z0-9_-]+$/;
// A 64-byte Ed25519 signature is 86 base64url characters; the last one carries 2 bits and 4 bits of
// padding. Node's base64 decoding ignores those padding bits, so without this check 16 different strings
// would verify as one token (and slip past anything that compares or caches token strings).
const CANONICAL_SIGNATURE = /^[A-Za-z0-9_-]{85}[AQgw]$/;

/**
 * Whether `token` has the one spelling of a compact EdDSA JWS: three unpadded base64url segments and an
 * Ed25519 signature whose spare bits are zero. Checked before any decoding; the signature is jose's to check.
 */
export function isCanonicalEdDsaJws(token: string): boolean {
  if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) return false;
  const parts = token.split(".");
  return (
    parts.length === 3 &&
    SEGMENT.test(parts[0] ?? "") &&
    SEGMENT.test(parts[1] ?? "") &&
    CANONICAL_SIGNATURE.test(parts[2] ?? "")
  );
}
