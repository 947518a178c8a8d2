import { createPrivateKey, generateKeyPairSync } from "node:crypto";
import fc from "fast-check";
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  decodeProtectedHeader,
  errors,
  importJWK,
  jwtVerify,
  SignJWT,
} from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { AccessTokens, CLOCK_TOLERANCE_SECONDS } from "../src/tokens/access-tokens.js";

const ISSUER = "https://auth.example.test";
const AUDIENCE = "example-app";
const TTL = 900;
const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const USER = { id: 42, phone: "+919876543210", role: "consumer" };

const user = fc.record({
  id: fc.maxSafeNat(),
  phone: fc.string({ unit: "binary", maxLength: 20 }),
  role: fc.string({ unit: "binary", maxLength: 20 }),
});

/** Rejects with a jose error, the one kind of failure callers map to "unauthenticated". */
async function expectRejected(promise: Promise<unknown>): Promise<void> {
  await expect(promise).rejects.toBeInstanceOf(errors.JOSEError);
}

describe("AccessTokens", () => {
  let clock = 1_700_000_000_123;
  let tokens: AccessTokens;
  let stranger: AccessTokens;

  beforeAll(async () => {
    tokens = await AccessTokens.create({
      issuer: ISSUER,
      audience: AUDIENCE,
      ttlSeconds: TTL,
      now: () => clock,
    });
    // Same issuer, audience and even kid: only the key differs.
    stranger = await AccessTokens.create({
      issuer: ISSUER,
      audience: AUDIENCE,
      ttlSeconds: TTL,
      keyId: tokens.keyId,
      now: () => clock,
    });
  });

  it("signs tokens that verify with every claim and the kid header", async () => {
    const { token, expiresIn } = await tokens.sign(USER);
    expect(expiresIn).toBe(TTL);
    expect(decodeProtectedHeader(token)).toEqual({ alg: "EdDSA", typ: "JWT", kid: tokens.keyId });
    const iat = Math.floor(clock / 1000);
    const claims = await tokens.verify(token);
    expect(claims).toEqual({
      iss: ISSUER,
      aud: AUDIENCE,
      sub: "42",
      phone: USER.phone,
      role: USER.role,
      iat,
      exp: iat + TTL,
      jti: expect.any(String),
    });
    expect((await tokens.verify((await tokens.sign(USER)).token)).jti).not.toBe(claims.jti);
  });

  it("round-trips any user's claims, whatever characters they hold", async () => {
    await fc.assert(
      fc.asyncProperty(user, async (u) => {
        const claims = await tokens.verify((await tokens.sign(u)).token);
        expect(claims).toMatchObject({ sub: String(u.id), phone: u.phone, role: u.role });
      }),
      { numRuns: 200 },
    );
  });

  it("verifies the way callers do: jose against the published JWKS", async () => {
    const { token } = await tokens.sign(USER);
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(tokens.jwks()), {
      algorithms: ["EdDSA"],
      issuer: ISSUER,
      audience: AUDIENCE,
      currentDate: new Date(clock),
    });
    expect(protectedHeader.kid).toBe(tokens.keyId);
    expect(payload).toMatchObject({ sub: "42", phone: USER.phone, role: USER.role });
    await expectRejected(
      jwtVerify((await stranger.sign(USER)).token, createLocalJWKSet(tokens.jwks()), {
        currentDate: new Date(clock),
      }),
    );
  });

  it("publishes only the public key, with kid, alg and use", async () => {
    const { keys } = tokens.jwks();
    expect(keys).toHaveLength(1);
    const [jwk] = keys;
    expect(jwk).toEqual({
      kty: "OKP",
      crv: "Ed25519",
      x: expect.any(String),
      kid: tokens.keyId,
      alg: "EdDSA",
      use: "sig",
    });
    expect(JSON.stringify(tokens.jwks())).not.toContain('"d"');
    if (jwk) jwk.kid = "changed by a caller";
    expect(tokens.jwks().keys[0]?.kid).toBe(tokens.keyId);
  });

  it("names a generated key by its RFC 7638 thumbprint and says it was generated", async () => {
    const [jwk] = tokens.jwks().keys;
    if (!jwk) throw new Error("no key");
    const { kty, crv, x } = jwk;
    if (!kty || !crv || !x) throw new Error("incomplete key");
    expect(tokens.keyId).toBe(await calculateJwkThumbprint({ kty, crv, x }));

    expect(tokens.generated).toBe(true);
  });

  it("uses a configured key, so tokens survive a restart", async () => {
    const pem = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" });
    const options = { issuer: ISSUER, audience: AUDIENCE, ttlSeconds: TTL, now: () => clock };
    const before = await AccessTokens.create({
      ...options,
      privateKey: createPrivateKey(pem),
      keyId: "2024-01",
    });
    const after = await AccessTokens.create({
      ...options,
      privateKey: createPrivateKey(pem),
      keyId: "2024-01",
    });
    expect(before.generated).toBe(false);
    const { token } = await before.sign(USER);
    expect(decodeProtectedHeader(token).kid).toBe("2024-01");
    expect((await after.verify(token)).sub).toBe("42");
  });

  it("refuses keys that are not Ed25519 private keys", async () => {
    const options = { issuer: ISSUER, audience: AUDIENCE, ttlSeconds: TTL };
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    const publicKey = generateKeyPairSync("ed25519").publicKey;
    await expect(AccessTokens.create({ ...options, privateKey: ec })).rejects.toThrow(TypeError);
    await expect(AccessTokens.create({ ...options, privateKey: publicKey })).rejects.toThrow(TypeError);
    await expect(AccessTokens.create({ ...options, ttlSeconds: 0 })).rejects.toThrow(RangeError);
  });

  it("never verifies a token with any one character of header, payload or signature changed", async () => {
    const { token } = await tokens.sign(USER);
    const segments = token.split(".");
    const tampering = fc
      .record({
        segment: fc.integer({ min: 0, max: 2 }),
        at: fc.nat(),
        char: fc.oneof(fc.constantFrom(...B64URL), fc.string({ unit: "binary", minLength: 1, maxLength: 1 })),
      })
      .filter(({ segment, at, char }) => {
        const s = segments[segment] ?? "";
        return s[at % s.length] !== char;
      });
    await fc.assert(
      fc.asyncProperty(tampering, async ({ segment, at, char }) => {
        const parts = [...segments];
        const s = parts[segment] ?? "";
        const i = at % s.length;
        parts[segment] = s.slice(0, i) + char + s.slice(i + 1);
        await expectRejected(tokens.verify(parts.join(".")));
      }),
      { numRuns: 1000 },
    );
  });

  it("never verifies a second spelling of the signature (unused bits of its last character)", async () => {
    // Node 20 decodes base64url leniently: jose alone would accept these as the same signature.
    const { token } = await tokens.sign(USER);
    const last = token.at(-1) ?? "";
    for (let bit = 1; bit < 16; bit++) {
      const other = B64URL[B64URL.indexOf(last) ^ bit];
      await expectRejected(tokens.verify(token.slice(0, -1) + other));
    }
  });

  it("never verifies a token signed by another key", async () => {
    await fc.assert(
      fc.asyncProperty(user, async (u) => {
        await expectRejected(tokens.verify((await stranger.sign(u)).token));
      }),
      { numRuns: 100 },
    );
  });

  it("verifies until exp (plus the bounded clock skew) and never after", async () => {
    const start = clock;
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1_600_000_000_000, max: 2_000_000_000_000 }),
          fc.oneof(
            fc.integer({ min: 0, max: 2 * TTL * 1000 }),
            fc.integer({ min: 0, max: 10 * 365 * 86_400_000 }),
          ),
          async (issuedAt, elapsedMs) => {
            clock = issuedAt;
            const { token } = await tokens.sign(USER);
            clock = issuedAt + elapsedMs;
            const expired =
              Math.floor(clock / 1000) >= Math.floor(issuedAt / 1000) + TTL + CLOCK_TOLERANCE_SECONDS;
            if (expired) await expectRejected(tokens.verify(token));
            else expect((await tokens.verify(token)).sub).toBe("42");
          },
        ),
        { numRuns: 300 },
      );
    } finally {
      clock = start;
    }
  });

  it("rejects tokens for another issuer or audience", async () => {
    const { token } = await tokens.sign(USER);
    const shared = generateKeyPairSync("ed25519").privateKey;
    const base = { privateKey: shared, ttlSeconds: TTL, now: () => clock };
    const sameKey = { issuer: ISSUER, audience: AUDIENCE };
    const otherIssuer = await AccessTokens.create({ ...base, ...sameKey, issuer: "https://evil.example" });
    const otherAudience = await AccessTokens.create({ ...base, ...sameKey, audience: "other-app" });
    const verifier = await AccessTokens.create({ ...base, ...sameKey });
    await expectRejected(verifier.verify((await otherIssuer.sign(USER)).token));
    await expectRejected(verifier.verify((await otherAudience.sign(USER)).token));
    expect((await verifier.verify((await verifier.sign(USER)).token)).sub).toBe("42");
    await expectRejected(otherIssuer.verify(token));
  });

  it("rejects unsigned and algorithm-confused tokens", async () => {
    const [jwk] = tokens.jwks().keys;
    if (!jwk?.x) throw new Error("no key");
    const [, payload] = (await tokens.sign(USER)).token.split(".");
    const none = Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url");
    await expectRejected(tokens.verify(`${none}.${payload}.`));
    // HS256 keyed with the public key bytes: the classic confusion attack.
    const secret = await importJWK({ kty: "oct", k: jwk.x }, "HS256");
    const hs = await new SignJWT({ phone: USER.phone, role: USER.role })
      .setProtectedHeader({ alg: "HS256", typ: "JWT", kid: tokens.keyId })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject("42")
      .setIssuedAt(Math.floor(clock / 1000))
      .setExpirationTime(Math.floor(clock / 1000) + TTL)
      .setJti("x")
      .sign(secret);
    await expectRejected(tokens.verify(hs));
  });

  it("rejects arbitrary strings without throwing synchronously", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: "binary", maxLength: 300 }), async (junk) => {
        await expectRejected(tokens.verify(junk));
      }),
    );
    await expectRejected(tokens.verify("a".repeat(100_000)));
  });
});
