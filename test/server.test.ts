import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { createLocalJWKSet, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService, SendOtpRequestSchema, VerifyOtpRequestSchema } from "../gen/auth/v1/auth_pb.js";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { grpcJsClient } from "./support/grpc-client.js";
import { describeWithRedis } from "./support/redis.js";

const run = promisify(execFile);

interface TokenBody {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
  user: { id: number; phone: string };
}
interface ErrorBody {
  code: string;
  message: string;
  detail: string;
}
const json = async <T>(res: Response): Promise<T> => (await res.json()) as T;
describeWithRedis("the service on a real port (Redis-backed)", (redis) => {
  let s: RunningApp;
  beforeAll(async () => {
    s = await startApp({ REDIS_URL: redis.url });
  });
  afterAll(() => s?.close());

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${s.baseUrl}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });

  describe("REST /api/v1 (the seed's contract)", () => {
    it("send-otp and verify-otp answer in the seed's exact shapes", async () => {
      const phone = uniquePhone();
      const sent = await post("/api/v1/auth/send-otp", { phone });
      expect(sent.status).toBe(200);
      // The seed's shape, plus the verification id (issue 11): an added key breaks no seed client.
      expect(await sent.json()).toEqual({
        message: "OTP sent successfully",
        phone,
        expires_in_seconds: 600,
        verification_id: expect.stringMatching(/^VE[0-9a-f]{32}$/),
      });

      const verified = await post("/api/v1/auth/verify-otp", { phone, otp: s.sms.lastCode(phone) });
      expect(verified.status).toBe(200);
      const body = await json<TokenBody>(verified);
      expect(Object.keys(body).sort()).toEqual([
        "access_token",
        "expires_in",
        "refresh_token",
        "token_type",
        "user",
      ]);
      expect(body.token_type).toBe("bearer");
      expect(body.user).toEqual({
        id: expect.any(Number),
        phone,
        name: `User ${phone.slice(-4)}`,
        role: "consumer",
        is_phone_verified: true,
      });

      const refreshed = await post("/api/v1/auth/refresh", { refresh_token: body.refresh_token });
      expect(refreshed.status).toBe(200);
      const pair = await json<TokenBody>(refreshed);
      expect(pair).toMatchObject({ token_type: "bearer", expires_in: 900 });
      expect((await post("/api/v1/auth/logout", { refresh_token: pair.refresh_token })).status).toBe(200);
      const after = await post("/api/v1/auth/refresh", { refresh_token: pair.refresh_token });
      expect(after.status).toBe(401);
    });

    it("the access token verifies against the published JWKS, as a caller would check it", async () => {
      const phone = uniquePhone();
      await post("/api/v1/auth/send-otp", { phone });
      const { access_token, user } = await json<TokenBody>(
        await post("/api/v1/auth/verify-otp", { phone, otp: s.sms.lastCode(phone) }),
      );
      const jwksRes = await fetch(`${s.baseUrl}/.well-known/jwks.json`);
      expect(jwksRes.status).toBe(200);
      const jwks = await json<{ keys: { kid: string; kty: string }[] }>(jwksRes);
      expect(JSON.stringify(jwks)).not.toMatch(/"d"/);
      const { payload, protectedHeader } = await jwtVerify(access_token, createLocalJWKSet(jwks), {
        issuer: "otp-auth",
        audience: "otp-auth",
      });
      expect(protectedHeader).toMatchObject({ alg: "EdDSA", kid: jwks.keys[0]?.kid });
      expect(payload).toMatchObject({ sub: String(user.id), phone, role: "consumer" });
      expect(payload.jti).toBeTruthy();
    });

    it.each([
      ["malformed JSON", "/api/v1/auth/send-otp", "{not json", {}, 400, /not valid JSON/],
      ["a JSON array", "/api/v1/auth/send-otp", "[]", {}, 400, /must be a JSON object/],
      ["a missing field", "/api/v1/auth/verify-otp", { phone: "+919876543210" }, {}, 400, /otp is required/],
      [
        "a non-string field",
        "/api/v1/auth/send-otp",
        { phone: 919876543210 },
        {},
        400,
        /phone must be a string/,
      ],
      [
        "a wrong content type",
        "/api/v1/auth/send-otp",
        "phone=1",
        { "content-type": "application/x-www-form-urlencoded" },
        415,
        /content-type must be application\/json/,
      ],
      ["an oversized body", "/api/v1/auth/send-otp", { phone: "9".repeat(20_000) }, {}, 413, /larger than/],
      ["an invalid phone", "/api/v1/auth/send-otp", { phone: "12345" }, {}, 400, /not a valid number/],
      [
        "a wrong code",
        "/api/v1/auth/verify-otp",
        { phone: "+919876543210", otp: "123456" },
        {},
        401,
        /no active code/,
      ],
      [
        "an unknown refresh token",
        "/api/v1/auth/refresh",
        { refresh_token: "nope" },
        {},
        401,
        /refresh token is invalid/,
      ],
    ])("%s gets a clear 4xx, never a 500", async (_what, path, body, headers, status, message) => {
      const res = await post(path, body, headers);
      expect(res.status).toBe(status);
      const err = await json<ErrorBody>(res);
      expect(err.message).toMatch(message);
      expect(err.detail).toBe(err.message);
      expect(typeof err.code).toBe("string");
    });

    it("unknown paths and methods get 404 and 405", async () => {
      expect((await fetch(`${s.baseUrl}/api/v1/nope`, { method: "POST" })).status).toBe(404);
      const get = await fetch(`${s.baseUrl}/api/v1/auth/send-otp`);
      expect(get.status).toBe(405);
      expect(get.headers.get("allow")).toBe("POST");
    });
  });

  const transports = {
    "Connect JSON over HTTP/1.1": () => createConnectTransport({ baseUrl: s.baseUrl, httpVersion: "1.1" }),
    "Connect binary over HTTP/2": () =>
      createConnectTransport({ baseUrl: s.baseUrl, httpVersion: "2", useBinaryFormat: true }),
    "gRPC over HTTP/2": () => createGrpcTransport({ baseUrl: s.baseUrl }),
    "gRPC-Web over HTTP/1.1": () => createGrpcWebTransport({ baseUrl: s.baseUrl, httpVersion: "1.1" }),
  };
  for (const [name, transport] of Object.entries(transports)) {
    it(`logs in with the generated client: ${name}`, async () => {
      const client = createClient(AuthService, transport());
      const phone = uniquePhone();
      const sent = await client.sendOtp({ phone: phone.slice(3) });
      expect(sent).toMatchObject({
        message: "OTP sent successfully",
        phone,
        expiresInSeconds: 600,
        codeLength: 6,
      });
      const session = await client.verifyOtp({ phone, otp: s.sms.lastCode(phone) });
      expect(session.tokenType).toBe("bearer");
      expect(session.user).toMatchObject({ phone, role: "consumer", isPhoneVerified: true });
      const rotated = await client.refreshToken({ refreshToken: session.refreshToken });
      await client.logout({ refreshToken: rotated.refreshToken });
      const err = await client.refreshToken({ refreshToken: rotated.refreshToken }).catch((e: unknown) => e);
      expect(ConnectError.from(err).code).toBe(Code.Unauthenticated);
      const bad = await client.sendOtp({ phone: "abc" }).catch((e: unknown) => e);
      expect(ConnectError.from(bad).code).toBe(Code.InvalidArgument);
      expect(ConnectError.from(bad).rawMessage).toMatch(/may contain only digits/);
    });
  }

  it("serves a real @grpc/grpc-js client (schemas from gen/, no proto-loader)", async () => {
    const g = grpcJsClient(AuthService, `127.0.0.1:${s.port}`);
    try {
      const phone = uniquePhone();
      const sent = await g.call(AuthService.method.sendOtp, create(SendOtpRequestSchema, { phone }));
      expect(sent.phone).toBe(phone);
      const session = await g.call(
        AuthService.method.verifyOtp,
        create(VerifyOtpRequestSchema, { phone, otp: s.sms.lastCode(phone) }),
      );
      expect(session.user?.phone).toBe(phone);
      const err = await g
        .call(AuthService.method.verifyOtp, create(VerifyOtpRequestSchema, { phone, otp: "000000" }))
        .catch((e: { code: number; details: string }) => e);
      expect(err).toMatchObject({ code: GrpcStatus.UNAUTHENTICATED });
    } finally {
      g.close();
    }
  });

  it("answers `buf curl --protocol grpc` against the running server", async () => {
    const phone = uniquePhone();
    const { stdout } = await run(
      "npx",
      [
        "--no-install",
        "buf",
        "curl",
        "--protocol",
        "grpc",
        "--http2-prior-knowledge",
        "--schema",
        "proto",
        "-d",
        JSON.stringify({ phone }),
        `${s.baseUrl}/auth.v1.AuthService/SendOtp`,
      ],
      { timeout: 60_000 },
    );
    expect(JSON.parse(stdout)).toMatchObject({
      message: "OTP sent successfully",
      phone,
      expiresInSeconds: 600,
    });
  });
});
