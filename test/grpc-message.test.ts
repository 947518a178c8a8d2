import { create } from "@bufbuild/protobuf";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService, SendOtpRequestSchema, VerifyOtpRequestSchema } from "../gen/auth/v1/auth_pb.js";
import { encodeGrpcMessage } from "../src/http/grpc-message.js";
import {
  accessTokenInvalid,
  countryNotAllowed,
  internalError,
  invalidOtpFormat,
  invalidPhone,
  type LoginError,
  otpAttemptsExhausted,
  otpCooldown,
  otpExpired,
  otpIncorrect,
  phoneLocked,
  type Reason,
  rateLimitIp,
  rateLimitPhone,
  refreshTokenInvalid,
  refreshTokenReused,
  sessionNotFound,
  smsBudgetExhausted,
  smsCountryLimit,
  smsInvalidNumber,
  smsPrefixLimit,
  smsUnavailable,
  smsUnreachableNumber,
  storeUnavailable,
  verificationNotFound,
} from "../src/login/reasons.js";
import { PhoneNormalizer } from "../src/phone/normalize.js";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { grpcJsClient } from "./support/grpc-client.js";
import { refusal } from "./support/refusal.js";

/** What the phone parser really answers for input a user may type: quotes, "+", parentheses, commas. */
async function parserRefusals(): Promise<LoginError[]> {
  const parser = new PhoneNormalizer("IN");
  const inputs = ["", "abc", "+1 (555) 01", "+91 22 2222 2222", "1".repeat(40), "+999 123"];
  return Promise.all(inputs.map((i) => refusal(Promise.resolve().then(() => parser.parse(i)))));
}

const quiet = { info: () => {}, warn: () => {}, error: () => {} };

/** Every refusal the kernel can answer over gRPC, with its real wording (REST-only reasons excluded). */
async function everyRefusal(): Promise<
  Record<Exclude<Reason, "MALFORMED_REQUEST" | "REQUEST_TOO_LARGE" | "NOT_FOUND">, LoginError[]>
> {
  return {
    INVALID_PHONE: [
      ...(await parserRefusals()),
      invalidPhone("phone +881612345678 is in the +8816 range, which codes are not sent to"),
      invalidPhone("phone +447700900123 is a personal number number; codes are sent to mobiles only"),
    ],
    INVALID_OTP_FORMAT: [invalidOtpFormat(6)],
    COUNTRY_NOT_ALLOWED: [countryNotAllowed("US"), countryNotAllowed("+800")],
    SMS_INVALID_NUMBER: [smsInvalidNumber("This phone number is not valid. Check it and try again.")],
    SMS_UNREACHABLE_NUMBER: [
      smsUnreachableNumber(
        "This number has blocked text messages from us (it replied STOP). Reply START to our last message, or use another number.",
      ),
    ],
    OTP_INCORRECT: [otpIncorrect(4), otpIncorrect(1), otpIncorrect(0)],
    OTP_EXPIRED: [otpExpired()],
    OTP_ATTEMPTS_EXHAUSTED: [otpAttemptsExhausted()],
    REFRESH_TOKEN_INVALID: [refreshTokenInvalid()],
    REFRESH_TOKEN_REUSED: [refreshTokenReused()],
    OTP_COOLDOWN: [otpCooldown(27_000)],
    PHONE_LOCKED: [phoneLocked(3_600_000)],
    RATE_LIMIT_IP: [rateLimitIp(900_000, "send"), rateLimitIp(1, "verify")],
    RATE_LIMIT_PHONE: [rateLimitPhone(600_000)],
    SMS_PREFIX_LIMIT: [smsPrefixLimit(3_599_000)],
    SMS_COUNTRY_LIMIT: [smsCountryLimit(90_000)],
    SMS_BUDGET_EXHAUSTED: [smsBudgetExhausted(42_000)],
    SMS_UNAVAILABLE: [smsUnavailable()],
    STORE_UNAVAILABLE: [storeUnavailable()],
    INTERNAL: [internalError(new Error("boom"), quiet)],
    ACCESS_TOKEN_INVALID: [accessTokenInvalid()],
    SESSION_NOT_FOUND: [sessionNotFound()],
    VERIFICATION_NOT_FOUND: [verificationNotFound()],
  };
}

describe("grpc-message: every refusal reaches a grpc-js caller as written", () => {
  let s: RunningApp;
  let g: ReturnType<typeof grpcJsClient<typeof AuthService>>;
  let connect: ReturnType<typeof createClient<typeof AuthService>>;
  beforeAll(async () => {
    s = await startApp();
    g = grpcJsClient(AuthService, `127.0.0.1:${s.port}`);
    connect = createClient(AuthService, createConnectTransport({ baseUrl: s.baseUrl, httpVersion: "1.1" }));
  });
  afterAll(async () => {
    g?.close();
    await s?.close();
  });

  it("the catalogue's refusals: grpc-js details, Connect rawMessage and the text are one", async () => {
    const all = await everyRefusal();
    const login = s.app.login;
    const real = login.sendOtp.bind(login);
    try {
      for (const [reason, refusals] of Object.entries(all)) {
        expect(refusals.length, reason).toBeGreaterThan(0);
        for (const r of refusals) {
          expect(r.reason).toBe(reason);
          login.sendOtp = () => Promise.reject(r);
          const viaGrpc = await g
            .call(AuthService.method.sendOtp, create(SendOtpRequestSchema, { phone: "x" }))
            .then(
              () => undefined,
              (e: grpc.ServiceError) => e,
            );
          const viaConnect = await connect.sendOtp({ phone: "x" }).then(
            () => undefined,
            (e: unknown) => ConnectError.from(e),
          );
          expect(viaConnect?.rawMessage, reason).toBe(r.message);
          expect(viaGrpc?.details, reason).toBe(r.message);
          expect(viaGrpc?.metadata.get("x-error-reason"), reason).toEqual([reason]);
        }
      }
    } finally {
      login.sendOtp = real;
    }
  });

  it("a wrong code over grpc-js, end to end: 'incorrect code; 4 attempts left'", async () => {
    const phone = uniquePhone();
    await g.call(AuthService.method.sendOtp, create(SendOtpRequestSchema, { phone }));
    const wrong = s.sms.lastCode(phone) === "000000" ? "111111" : "000000";
    const err = await g
      .call(AuthService.method.verifyOtp, create(VerifyOtpRequestSchema, { phone, otp: wrong }))
      .then(
        () => undefined,
        (e: grpc.ServiceError) => e,
      );
    expect(err?.details).toBe("incorrect code; 4 attempts left");
  });
});

describe("encodeGrpcMessage (the gRPC spec's percent-encoding)", () => {
  it("leaves printable ASCII as it is, '%' and everything else percent-encoded as UTF-8", () => {
    expect(encodeGrpcMessage('a; b, c+d/e:f "g" (h)')).toBe('a; b, c+d/e:f "g" (h)');
    expect(encodeGrpcMessage("100%")).toBe("100%25");
    expect(encodeGrpcMessage("tab\there")).toBe("tab%09here");
    expect(encodeGrpcMessage("café …")).toBe("caf%C3%A9 %E2%80%A6");
  });

  it("decodes back with decodeURI (grpc-js) and decodeURIComponent (connect) alike", () => {
    for (const text of ["incorrect code; 4 attempts left", "+91 98765, 50%", "é; ü / ?#&=$@"]) {
      expect(decodeURI(encodeGrpcMessage(text))).toBe(text);
      expect(decodeURIComponent(encodeGrpcMessage(text))).toBe(text);
    }
  });
});
