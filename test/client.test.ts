import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AuthService,
  type AuthUser,
  authInterceptor,
  authUser,
  createAuthClient,
  createTokenVerifier,
  MAX_CLOCK_TOLERANCE_SECONDS,
  TokenVerificationError,
} from "../packages/client/src/index.js";
import { AccessTokens } from "../src/tokens/access-tokens.js";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";

/** A JWKS endpoint we control: which keys it publishes, whether it answers, and how often it was asked. */
async function startJwks(initial: AccessTokens[]) {
  const state = { keys: initial, extra: [] as JWK[], status: 200, hits: 0 };
  const server: Server = createServer((_req, res) => {
    state.hits += 1;
    res.writeHead(state.status, { "content-type": "application/json" });
    res.end(JSON.stringify({ keys: [...state.keys.flatMap((k) => k.jwks().keys), ...state.extra] }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    state,
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const claims = { issuer: "otp-auth", audience: "otp-auth", ttlSeconds: 900 };
const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** The 15 other spellings of a token's signature: its last character with some of the 4 unused bits set. */
function otherSpellings(token: string): string[] {
  const last = B64URL.indexOf(token.at(-1) ?? "");
  return Array.from({ length: 15 }, (_, i) => token.slice(0, -1) + B64URL[last ^ (i + 1)]);
}

/** A key of our own, published beside the service's, for tokens the service would never issue. */
async function handMadeKey(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: "EdDSA", use: "sig" };
  const now = Math.floor(Date.now() / 1000);
  const sign = (payload: Record<string, unknown>) =>
    new SignJWT(
      // Overrides last, and `undefined` drops a claim.
      JSON.parse(
        JSON.stringify({
          iss: "otp-auth",
          aud: "otp-auth",
          sub: "7",
          iat: now,
          exp: now + 900,
          phone: "+919876543210",
          role: "consumer",
          ...payload,
        }),
      ) as Record<string, unknown>,
    )
      .setProtectedHeader({ alg: "EdDSA", typ: "JWT", kid })
      .sign(privateKey);
  return { jwk, sign, now };
}
const user = { id: 42, phone: "+919876543210", role: "consumer" };

async function refusal(p: Promise<unknown>): Promise<TokenVerificationError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TokenVerificationError);
  return err as TokenVerificationError;
}

describe("createTokenVerifier", () => {
  let keyA: AccessTokens;
  let jwks: Awaited<ReturnType<typeof startJwks>>;
  beforeAll(async () => {
    keyA = await AccessTokens.create(claims);
    jwks = await startJwks([keyA]);
  });
  afterAll(() => jwks?.close());

  it("verifies a token against the remote key set and fetches that set once for many tokens", async () => {
    jwks.state.hits = 0;
    const verifier = createTokenVerifier({ jwksUrl: jwks.url });
    for (let i = 0; i < 20; i++) {
      const { token } = await keyA.sign({ ...user, id: i + 1 });
      const v = await verifier.verify(token);
      expect(v).toMatchObject({ id: String(i + 1), phone: user.phone, role: "consumer" });
      expect(v.expiresAt.getTime()).toBeGreaterThan(Date.now() + 800_000);
    }
    expect(jwks.state.hits).toBe(1);
  });

  it("refetches for an unknown key id, so a rotated signing key is picked up", async () => {
    const keyB = await AccessTokens.create(claims);
    jwks.state.keys = [keyA];
    const verifier = createTokenVerifier({ jwksUrl: jwks.url, cooldownMs: 0 });
    await verifier.verify((await keyA.sign(user)).token);
    jwks.state.keys = [keyA, keyB];
    const hits = jwks.state.hits;
    await expect(verifier.verify((await keyB.sign(user)).token)).resolves.toMatchObject({ id: "42" });
    expect(jwks.state.hits).toBe(hits + 1);
    jwks.state.keys = [keyA];
  });

  it("refuses tampered, expired, foreign and wrong-audience tokens as invalid", async () => {
    const verifier = createTokenVerifier({ jwksUrl: jwks.url });
    const { token } = await keyA.sign(user);
    const [h, p, s] = token.split(".") as [string, string, string];
    const forged = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(p, "base64url").toString()), role: "admin" }),
    ).toString("base64url");
    expect((await refusal(verifier.verify(`${h}.${forged}.${s}`))).kind).toBe("invalid");

    const past = await AccessTokens.create({ ...claims, now: () => Date.now() - 3_600_000 });
    jwks.state.keys = [keyA, past];
    const expired = await refusal(
      createTokenVerifier({ jwksUrl: jwks.url }).verify((await past.sign(user)).token),
    );
    expect(expired.kind).toBe("invalid");
    expect(expired.message).toMatch(/expired/);

    const foreign = await AccessTokens.create(claims); // never published
    expect((await refusal(verifier.verify((await foreign.sign(user)).token))).kind).toBe("invalid");

    const otherAudience = await AccessTokens.create({ ...claims, audience: "someone-else" });
    jwks.state.keys = [keyA, otherAudience];
    const fresh = createTokenVerifier({ jwksUrl: jwks.url });
    expect((await refusal(fresh.verify((await otherAudience.sign(user)).token))).kind).toBe("invalid");
    expect((await refusal(fresh.verify("not-a-jwt"))).kind).toBe("invalid");
    expect((await refusal(fresh.verify(""))).kind).toBe("invalid");
    jwks.state.keys = [keyA];
  });

  it("accepts only the canonical spelling of a signature, never the 15 that decode to the same bytes", async () => {
    const verifier = createTokenVerifier({ jwksUrl: jwks.url });
    const { token } = await keyA.sign(user);
    await expect(verifier.verify(token)).resolves.toMatchObject({ id: "42" });
    const others = otherSpellings(token);
    expect(new Set(others).size).toBe(15);
    for (const other of others) {
      // The same signature bytes: only the spelling check stands between this and a second valid token.
      expect(Buffer.from(other.split(".")[2] ?? "", "base64url")).toEqual(
        Buffer.from(token.split(".")[2] ?? "", "base64url"),
      );
      const err = await refusal(verifier.verify(other));
      expect(err.kind, other).toBe("invalid");
    }
  });

  it("checks iss, aud, exp and nbf within a bounded leeway, and only EdDSA", async () => {
    const made = await handMadeKey("hand-made");
    jwks.state.extra = [made.jwk];
    try {
      const verifier = createTokenVerifier({ jwksUrl: jwks.url, clockToleranceSeconds: 5 });
      await expect(verifier.verify(await made.sign({}))).resolves.toMatchObject({ id: "7" });
      const refused = async (token: string, why: RegExp) => {
        const err = await refusal(verifier.verify(token));
        expect(err.kind).toBe("invalid");
        expect(String((err.cause as Error | undefined)?.message ?? err.message)).toMatch(why);
      };
      await refused(await made.sign({ iss: "someone-else" }), /iss/);
      await refused(await made.sign({ aud: "someone-else" }), /aud/);
      await refused(await made.sign({ exp: made.now - 6 }), /exp/);
      await refused(await made.sign({ nbf: made.now + 60 }), /nbf/);
      // Within the leeway both ways: a few seconds of skew between us and the service is not an error.
      await expect(verifier.verify(await made.sign({ exp: made.now - 2 }))).resolves.toBeDefined();
      await expect(verifier.verify(await made.sign({ nbf: made.now + 2 }))).resolves.toBeDefined();
      const noIssuer = await made.sign({ iss: undefined });
      await refused(noIssuer, /iss/);
      // The header names EdDSA but the verifier never asks it: a token claiming another algorithm is refused.
      const [, p, sig] = (await made.sign({})).split(".") as [string, string, string];
      const hs = Buffer.from(JSON.stringify({ alg: "HS256", typ: "JWT", kid: "hand-made" })).toString(
        "base64url",
      );
      expect((await refusal(verifier.verify(`${hs}.${p}.${sig}`))).kind).toBe("invalid");
      const none = Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url");
      expect((await refusal(verifier.verify(`${none}.${p}.`))).kind).toBe("invalid");
    } finally {
      jwks.state.extra = [];
    }
  });

  it("refuses a clock tolerance that would keep expired tokens alive", () => {
    for (const clockToleranceSeconds of [MAX_CLOCK_TOLERANCE_SECONDS + 1, 3600, -1, Number.NaN]) {
      expect(() => createTokenVerifier({ jwksUrl: jwks.url, clockToleranceSeconds })).toThrow(RangeError);
    }
    expect(() =>
      createTokenVerifier({ jwksUrl: jwks.url, clockToleranceSeconds: MAX_CLOCK_TOLERANCE_SECONDS }),
    ).not.toThrow();
  });

  it("says unavailable, not invalid, when the key set cannot be fetched", async () => {
    const { token } = await keyA.sign(user);
    jwks.state.status = 500;
    try {
      const v = createTokenVerifier({ jwksUrl: jwks.url });
      expect((await refusal(v.verify(token))).kind).toBe("unavailable");
    } finally {
      jwks.state.status = 200;
    }
    const gone = await startJwks([keyA]);
    await gone.close();
    const v = createTokenVerifier({ jwksUrl: gone.url, timeoutMs: 2_000 });
    expect((await refusal(v.verify(token))).kind).toBe("unavailable");
  });
});

describe("authInterceptor", () => {
  let key: AccessTokens;
  let jwks: Awaited<ReturnType<typeof startJwks>>;
  beforeAll(async () => {
    key = await AccessTokens.create(claims);
    jwks = await startJwks([key]);
  });
  afterAll(() => jwks?.close());

  // An internal service behind the interceptor; it echoes the caller it was handed.
  const service = (verifier: ReturnType<typeof createTokenVerifier>) => {
    const seen: AuthUser[] = [];
    const transport = createRouterTransport(
      (router) => {
        router.service(AuthService, {
          sendOtp(_req, ctx) {
            const u = authUser(ctx);
            seen.push(u);
            return { message: "hello", phone: u.phone };
          },
        });
      },
      { router: { interceptors: [authInterceptor(verifier)] } },
    );
    return { client: createClient(AuthService, transport), seen };
  };

  it("puts the verified user into the handler context", async () => {
    const { client, seen } = service(createTokenVerifier({ jwksUrl: jwks.url }));
    const { token } = await key.sign(user);
    const res = await client.sendOtp({}, { headers: { authorization: `Bearer ${token}` } });
    expect(res.phone).toBe(user.phone);
    expect(seen).toEqual([{ id: "42", phone: user.phone, role: "consumer" }]);
  });

  it("refuses missing, malformed and bad tokens with Unauthenticated before the handler runs", async () => {
    const { client, seen } = service(createTokenVerifier({ jwksUrl: jwks.url }));
    const { token } = await key.sign(user);
    for (const authorization of [undefined, "", "Basic abc", `Bearer ${token}x`, `Bearer`, token]) {
      const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
      const err = await client.sendOtp({}, { headers }).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect(err?.code, `authorization: ${authorization}`).toBe(Code.Unauthenticated);
    }
    expect(seen).toEqual([]);
  });

  it("refuses the 15 non-canonical spellings of a valid token with Unauthenticated, and lets the canonical one in", async () => {
    const { client, seen } = service(createTokenVerifier({ jwksUrl: jwks.url }));
    const { token } = await key.sign(user);
    for (const other of otherSpellings(token)) {
      const err = await client.sendOtp({}, { headers: { authorization: `Bearer ${other}` } }).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect(err?.code, other).toBe(Code.Unauthenticated);
    }
    expect(seen).toEqual([]);
    await client.sendOtp({}, { headers: { authorization: `Bearer ${token}` } });
    expect(seen).toHaveLength(1);
  });

  it("answers Unavailable when the key set is unreachable", async () => {
    const gone = await startJwks([key]);
    await gone.close();
    const { client } = service(createTokenVerifier({ jwksUrl: gone.url, timeoutMs: 2_000 }));
    const { token } = await key.sign(user);
    const err = await client.sendOtp({}, { headers: { authorization: `Bearer ${token}` } }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(err?.code).toBe(Code.Unavailable);
  });
});

describe("createAuthClient against the real server", () => {
  let s: RunningApp;
  beforeAll(async () => {
    s = await startApp();
  });
  afterAll(() => s?.close());

  it.each(["grpc", "connect", "grpc-web"] as const)(
    "logs in over %s, and the token verifies via JWKS",
    async (protocol) => {
      const auth = createAuthClient({ baseUrl: s.baseUrl, protocol, timeoutMs: 10_000 });
      const phone = uniquePhone();
      const sent = await auth.sendOtp({ phone });
      expect(sent.phone).toBe(phone);
      const session = await auth.verifyOtp({ phone, otp: s.sms.lastCode(phone) });
      expect(session.user?.phone).toBe(phone);

      const verifier = createTokenVerifier({ jwksUrl: `${s.baseUrl}/.well-known/jwks.json` });
      const verified = await verifier.verify(session.accessToken);
      expect(verified).toMatchObject({ id: String(session.user?.id), phone, role: "consumer" });

      const err = await auth.verifyOtp({ phone, otp: "000000" }).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect(err?.code).toBe(Code.Unauthenticated);
    },
  );

  it("refuses an unknown protocol", () => {
    expect(() => createAuthClient({ baseUrl: s.baseUrl, protocol: "soap" as "grpc" })).toThrow(/protocol/);
  });
});
