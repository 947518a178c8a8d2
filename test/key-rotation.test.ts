import { createPublicKey, generateKeyPairSync, randomBytes } from "node:crypto";
import { create, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { decodeProtectedHeader } from "jose";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "../gen/auth/v1/auth_pb.js";
import { createTokenVerifier, TokenVerificationError } from "../packages/client/src/index.js";
import { type App, buildApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { GENEROUS_LIMITS } from "./support/app.js";
import { CaptureSms, uniquePhone } from "./support/capture-sms.js";
import { grpcJsClient } from "./support/grpc-client.js";
import { describeWithRedis } from "./support/redis.js";

const pair = () => {
  const { privateKey } = generateKeyPairSync("ed25519");
  return {
    pem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicPem: createPublicKey(privateKey).export({ type: "spki", format: "pem" }).toString(),
  };
};

/**
 * The README's rotation procedure, walked against a live server restarted at each step on the same port (the
 * same Redis and OTP_SECRET, so sessions carry over), with one long-lived remote-JWKS verifier and one grpc-js
 * caller that keep using the tokens they hold.
 */
describeWithRedis("signing-key rotation, walked against a live server", (redis) => {
  const sms = new CaptureSms();
  const otpSecret = randomBytes(32).toString("base64");
  const [k1, k2] = [pair(), pair()];
  let app: App | undefined;
  let port = 0;
  let caller: ReturnType<typeof grpcJsClient<typeof AuthService>>;

  /** A deploy: the old instance stops, the new one starts on the same port with `env`. */
  const deploy = async (env: Record<string, string>) => {
    await app?.close();
    const config = loadConfig({
      NODE_ENV: "test",
      ...GENEROUS_LIMITS,
      REDIS_URL: redis.url,
      OTP_SECRET: otpSecret,
      ACCESS_TOKEN_TTL_SECONDS: "900",
      ...env,
    });
    app = await buildApp(config, pino({ level: "silent" }), { sms });
    port = (await app.server.listen(port, "127.0.0.1")).port;
    // The restart dropped the caller's connection; a real caller's channel reconnects the same way.
    if (caller) {
      await new Promise<void>((resolve, reject) =>
        caller.client.waitForReady(Date.now() + 5_000, (err) => (err ? reject(err) : resolve())),
      );
    }
  };
  const jwksKids = async () => {
    const res = await fetch(`http://127.0.0.1:${port}/.well-known/jwks.json`);
    return ((await res.json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
  };
  /** One unary call as a grpc-js caller makes it: a message built from the generated schema. */
  const rpc = <I extends DescMessage, O extends DescMessage>(
    method: { localName: string; input: I; output: O },
    init: MessageInitShape<I>,
    meta?: grpc.Metadata,
  ): Promise<MessageShape<O>> => caller.call(method, create(method.input, init), meta);
  const kidOf = (token: string) => String(decodeProtectedHeader(token).kid);
  const bearer = (token: string) => {
    const meta = new grpc.Metadata();
    meta.set("authorization", `Bearer ${token}`);
    return meta;
  };

  beforeAll(async () => {
    await deploy({ JWT_PRIVATE_KEY: k1.pem });
    caller = grpcJsClient(AuthService, `127.0.0.1:${port}`);
  });
  afterAll(async () => {
    caller?.close();
    await app?.close();
  });

  it("no caller sees a failure at any step, and a retired key's tokens are refused", async () => {
    // Long-lived like a real one, but with a short cache so the test need not wait the default 10 minutes.
    const cacheMaxAgeMs = 300;
    const verifier = createTokenVerifier({
      jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`,
      cacheMaxAgeMs,
    });
    const waitOutCache = () => new Promise((r) => setTimeout(r, cacheMaxAgeMs + 50));
    const held: string[] = [];
    /** Every access token handed out so far still works for the service and for the verifier. */
    const allStillWork = async () => {
      for (const token of held) {
        expect((await verifier.verify(token)).phone).toMatch(/^\+/);
        const listed = await rpc(AuthService.method.listSessions, {}, bearer(token));
        expect(listed.sessions.length).toBeGreaterThan(0);
      }
    };

    // Step 0: K1 signs; the caller logs in.
    const phone = uniquePhone();
    await rpc(AuthService.method.sendOtp, { phone });
    const login = await rpc(AuthService.method.verifyOtp, {
      phone,
      otp: sms.lastCode(phone),
      deviceName: "rotation walker",
    });
    const kid1 = kidOf(login.accessToken);
    const k1Jwks = await (await fetch(`http://127.0.0.1:${port}/.well-known/jwks.json`)).text();
    held.push(login.accessToken);
    let refresh = login.refreshToken;
    await allStillWork();

    // Step 1: publish the next key (K2) as a previous key; K1 still signs. Then wait out verifiers' caches.
    await deploy({ JWT_PRIVATE_KEY: k1.pem, JWT_PREVIOUS_PUBLIC_KEYS: k2.publicPem });
    const r1 = await rpc(AuthService.method.refreshToken, { refreshToken: refresh });
    expect(kidOf(r1.accessToken)).toBe(kid1);
    const [, kid2] = await jwksKids();
    expect(await jwksKids()).toEqual([kid1, kid2]);
    held.push(r1.accessToken);
    refresh = r1.refreshToken;
    await waitOutCache();
    await allStillWork();

    // Step 2: swap. K2 signs; K1 is published as previous (here as the JWKS JSON saved from step 0).
    await deploy({ JWT_PRIVATE_KEY: k2.pem, JWT_PREVIOUS_PUBLIC_KEYS: k1Jwks });
    expect(await jwksKids()).toEqual([kid2, kid1]);
    const r2 = await rpc(AuthService.method.refreshToken, { refreshToken: refresh });
    expect(kidOf(r2.accessToken)).toBe(kid2);
    held.push(r2.accessToken);
    refresh = r2.refreshToken;
    await allStillWork();

    // Step 3: after the access-token TTL, retire K1. Its tokens are refused; K2's and the session go on.
    await deploy({ JWT_PRIVATE_KEY: k2.pem });
    expect(await jwksKids()).toEqual([kid2]);
    const retired = held.filter((t) => kidOf(t) === kid1);
    expect(retired).toHaveLength(2);
    for (const token of retired) {
      const err = await rpc(AuthService.method.listSessions, {}, bearer(token)).then(
        () => undefined,
        (e: grpc.ServiceError) => e,
      );
      expect(err?.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(err?.metadata.get("x-error-reason")).toEqual(["ACCESS_TOKEN_INVALID"]);
      await waitOutCache();
      const refused = await verifier.verify(token).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(refused instanceof TokenVerificationError && refused.kind).toBe("invalid");
    }
    const r3 = await rpc(AuthService.method.refreshToken, { refreshToken: refresh });
    expect(kidOf(r3.accessToken)).toBe(kid2);
    expect((await verifier.verify(r3.accessToken)).phone).toBe(phone);
    expect((await verifier.verify(r2.accessToken)).phone).toBe(phone);
  });
});

describe("JWT_PREVIOUS_PUBLIC_KEYS", () => {
  const problems = (value: string) => {
    try {
      loadConfig({ JWT_PREVIOUS_PUBLIC_KEYS: value });
      return [];
    } catch (err) {
      return (err as { problems: string[] }).problems;
    }
  };

  it("takes PEM public keys separated by blank lines (or \\n escapes), or a JWKS keeping its kids", async () => {
    const [a, b] = [pair(), pair()];
    expect(
      loadConfig({ JWT_PREVIOUS_PUBLIC_KEYS: `${a.publicPem}\n${b.publicPem}` }).jwt.previousKeys,
    ).toHaveLength(2);
    expect(
      loadConfig({ JWT_PREVIOUS_PUBLIC_KEYS: a.publicPem.replaceAll("\n", "\\n") }).jwt.previousKeys,
    ).toHaveLength(1);
    const jwk = createPublicKey(b.publicPem).export({ format: "jwk" });
    const keys = loadConfig({
      JWT_PREVIOUS_PUBLIC_KEYS: JSON.stringify({ keys: [{ ...jwk, kid: "2025-01" }] }),
    }).jwt.previousKeys;
    expect(keys.map((k) => k.keyId)).toEqual(["2025-01"]);
  });

  it("refuses anything else, naming the variable, and never a private key", () => {
    const priv = generateKeyPairSync("ed25519").privateKey;
    for (const bad of [
      "not a key",
      priv.export({ type: "pkcs8", format: "pem" }).toString(),
      JSON.stringify({ keys: [priv.export({ format: "jwk" })] }),
      JSON.stringify({
        keys: [generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ format: "jwk" })],
      }),
      generateKeyPairSync("rsa", { modulusLength: 1024 })
        .publicKey.export({ type: "spki", format: "pem" })
        .toString(),
      "{nope",
    ]) {
      expect(problems(bad).join(" ")).toMatch(/JWT_PREVIOUS_PUBLIC_KEYS/);
    }
  });
});
