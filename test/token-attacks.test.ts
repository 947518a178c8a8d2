import { generateKeyPairSync } from "node:crypto";
import { type Client, Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { importJWK, importPKCS8, type JWTHeaderParameters, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "../gen/auth/v1/auth_pb.js";
import {
  authInterceptor,
  createTokenVerifier,
  TokenVerificationError,
  type TokenVerifier,
} from "../packages/client/src/index.js";
import { accessTokenInvalid } from "../src/login/reasons.js";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";

const PEM = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
const OTHER_PEM = generateKeyPairSync("ed25519")
  .privateKey.export({ type: "pkcs8", format: "pem" })
  .toString();
const REFUSAL_TEXT = accessTokenInvalid().message;

describe("forged and misused tokens, through every entry", () => {
  let s: RunningApp;
  let genuine: { access: string; refresh: string };
  let forgeries: Record<string, string>;
  let verifier: TokenVerifier;
  let rpc: Record<string, Client<typeof AuthService>>;

  beforeAll(async () => {
    s = await startApp({ JWT_PRIVATE_KEY: PEM });
    const connect = createClient(
      AuthService,
      createConnectTransport({ baseUrl: s.baseUrl, httpVersion: "1.1" }),
    );
    rpc = {
      Connect: connect,
      gRPC: createClient(AuthService, createGrpcTransport({ baseUrl: s.baseUrl })),
      "gRPC-Web": createClient(
        AuthService,
        createGrpcWebTransport({ baseUrl: s.baseUrl, httpVersion: "1.1" }),
      ),
    };
    const phone = uniquePhone();
    await connect.sendOtp({ phone });
    const session = await connect.verifyOtp({ phone, otp: s.sms.lastCode(phone) });
    genuine = { access: session.accessToken, refresh: session.refreshToken };
    verifier = createTokenVerifier({ jwksUrl: `${s.baseUrl}/.well-known/jwks.json`, cooldownMs: 0 });

    const claims = JSON.parse(
      Buffer.from(genuine.access.split(".")[1] ?? "", "base64url").toString(),
    ) as Record<string, unknown>;
    const kid = s.app.accessTokens.keyId;
    const ours = await importPKCS8(PEM, "EdDSA");
    const now = Math.floor(Date.now() / 1000);
    const forge = async (
      o: {
        header?: Partial<JWTHeaderParameters>;
        iss?: string;
        aud?: string;
        exp?: number;
        nbf?: number;
        sub?: string;
        key?: Parameters<SignJWT["sign"]>[0];
      } = {},
    ) => {
      const jwt = new SignJWT({
        ...claims,
        sub: o.sub ?? String(claims.sub),
        iss: o.iss ?? "otp-auth",
        aud: o.aud ?? "otp-auth",
      })
        .setProtectedHeader({ alg: "EdDSA", typ: "JWT", kid, ...o.header } as JWTHeaderParameters)
        .setIssuedAt(now)
        .setExpirationTime(o.exp ?? now + 600);
      if (o.nbf !== undefined) jwt.setNotBefore(o.nbf);
      return jwt.sign(o.key ?? ours);
    };
    const [h, p, sig] = genuine.access.split(".") as [string, string, string];
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
    const x = String(s.app.accessTokens.jwks().keys[0]?.x);
    const swapped = (i: number) => (sig[i] === "A" ? "B" : "A");
    forgeries = {
      "alg none": `${b64({ alg: "none", typ: "JWT", kid })}.${p}.`,
      "alg none, signature kept": `${b64({ alg: "none", typ: "JWT", kid })}.${p}.${sig}`,
      "HS256 keyed with the public key (JWK x)": await forge({
        header: { alg: "HS256" },
        key: await importJWK({ kty: "oct", k: x }, "HS256"),
      }),
      "HS256 keyed with the PEM public key": await forge({
        header: { alg: "HS256" },
        key: new TextEncoder().encode(
          s.app.accessTokens.jwks().keys[0] ? JSON.stringify(s.app.accessTokens.jwks().keys[0]) : "",
        ),
      }),
      "unknown kid": await forge({ header: { kid: "not-a-key-of-ours" } }),
      "kid with a path": await forge({ header: { kid: "../../../../dev/null" } }),
      "kid with SQL": await forge({ header: { kid: "x' UNION SELECT 'secret' --" } }),
      "no kid": await forge({ header: { kid: undefined } as unknown as Partial<JWTHeaderParameters> }),
      "our kid, another key": await forge({ key: await importPKCS8(OTHER_PEM, "EdDSA") }),
      "wrong iss": await forge({ iss: "https://evil.example" }),
      "wrong aud": await forge({ aud: "someone-else" }),
      expired: await forge({ exp: now - 60 }),
      "not yet valid": await forge({ nbf: now + 120 }),
      "tampered payload (another user)": `${h}.${b64({ ...claims, sub: "999999" })}.${sig}`,
      "tampered signature": `${h}.${p}.${sig.slice(0, 10)}${swapped(10)}${sig.slice(11)}`,
      "a refresh token": genuine.refresh,
      empty: "",
      junk: "a.b.c",
    };
    // The forging itself is sound: with every claim right, our key's forgery is a token like any other.
    expect((await verifier.verify(await forge())).id).toBe(String(claims.sub));
  });
  afterAll(() => s?.close());

  const cases = () => Object.entries(forgeries);

  it("the genuine tokens work at every entry (the control)", async () => {
    expect((await verifier.verify(genuine.access)).phone).toMatch(/^\+/);
    for (const client of Object.values(rpc)) {
      const { sessions } = await client.listSessions(
        {},
        { headers: { authorization: `Bearer ${genuine.access}` } },
      );
      expect(sessions).toHaveLength(1);
    }
  });

  it("session calls refuse each with ACCESS_TOKEN_INVALID, one message for all, on every protocol", async () => {
    for (const [name, token] of cases()) {
      const res = await fetch(`${s.baseUrl}/api/v1/auth/sessions`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const body = (await res.json()) as Record<string, unknown>;
      expect([name, res.status, body.reason, body.message]).toEqual([
        name,
        401,
        "ACCESS_TOKEN_INVALID",
        REFUSAL_TEXT,
      ]);
      for (const [protocol, client] of Object.entries(rpc)) {
        for (const call of [
          () => client.listSessions({}, { headers: { authorization: `Bearer ${token}` } }),
          () => client.revokeAllSessions({}, { headers: { authorization: `Bearer ${token}` } }),
          () => client.revokeSession({ sessionId: "x" }, { headers: { authorization: `Bearer ${token}` } }),
        ]) {
          const err = await call().then(
            () => new ConnectError("accepted", Code.Unknown),
            (e: unknown) => ConnectError.from(e),
          );
          expect([name, protocol, err.code, err.metadata.get("x-error-reason"), err.rawMessage]).toEqual([
            name,
            protocol,
            Code.Unauthenticated,
            "ACCESS_TOKEN_INVALID",
            REFUSAL_TEXT,
          ]);
        }
      }
    }
    // The genuine session was not touched by any of it.
    const { sessions } = (await rpc.Connect?.listSessions(
      {},
      { headers: { authorization: `Bearer ${genuine.access}` } },
    )) ?? { sessions: [] };
    expect(sessions).toHaveLength(1);
  });

  it("refresh refuses every one (an access token too) with REFRESH_TOKEN_INVALID; logout answers OK and revokes nothing", async () => {
    for (const [name, token] of [...cases(), ["the access token", genuine.access] as const]) {
      if (token === genuine.refresh || token === "") continue;
      const res = await fetch(`${s.baseUrl}/api/v1/auth/refresh`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ refresh_token: token }),
      });
      expect([name, res.status, ((await res.json()) as { reason: string }).reason]).toEqual([
        name,
        401,
        "REFRESH_TOKEN_INVALID",
      ]);
      for (const client of Object.values(rpc)) {
        const err = await client.refreshToken({ refreshToken: token }).then(
          () => undefined,
          (e: unknown) => ConnectError.from(e),
        );
        expect([name, err?.metadata.get("x-error-reason")]).toEqual([name, "REFRESH_TOKEN_INVALID"]);
        await client.logout({ refreshToken: token });
      }
    }
    const next = await rpc.gRPC?.refreshToken({ refreshToken: genuine.refresh });
    expect(next?.refreshToken).toBeTruthy();
    genuine = { access: next?.accessToken ?? "", refresh: next?.refreshToken ?? "" };
  });

  it("createTokenVerifier refuses every one as invalid (a refresh token too)", async () => {
    for (const [name, token] of cases()) {
      const err = await verifier.verify(token).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect([name, err instanceof TokenVerificationError && err.kind]).toEqual([name, "invalid"]);
    }
  });

  it("authInterceptor refuses every one with Unauthenticated before the handler runs", async () => {
    let ran = 0;
    const guarded = createClient(
      AuthService,
      createRouterTransport(
        (router) => {
          router.service(AuthService, {
            async listSessions() {
              ran += 1;
              return { sessions: [] };
            },
          });
        },
        { router: { interceptors: [authInterceptor(verifier)] } },
      ),
    );
    for (const [name, token] of cases()) {
      const err = await guarded.listSessions({}, { headers: { authorization: `Bearer ${token}` } }).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect([name, err?.code]).toEqual([name, Code.Unauthenticated]);
    }
    expect(ran).toBe(0);
    await guarded.listSessions({}, { headers: { authorization: `Bearer ${genuine.access}` } });
    expect(ran).toBe(1);
  });
});
