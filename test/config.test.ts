import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.js";

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

const ed25519Pem = () =>
  generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();

describe("config", () => {
  it("starts in development with nothing set: in-memory store, development SMS, documented defaults", () => {
    const c = loadConfig({});
    expect(c.production).toBe(false);
    expect(c.port).toBe(8000);
    expect(c.redisUrl).toBeUndefined();
    expect(c.sms.provider).toBe("development");
    expect(c.defaultCountry).toBe("IN");
    expect(c.otp).toMatchObject({ length: 6, ttlSeconds: 600, maxAttempts: 5 });
    expect(c.jwt).toMatchObject({ accessTtlSeconds: 900, refreshTtlSeconds: 2_592_000 });
  });

  it("refuses production without Redis, a real SMS provider, OTP_SECRET and a signing key, naming each", () => {
    const p = problems({ NODE_ENV: "production" }).join("\n");
    expect(p).toMatch(/REDIS_URL is required/);
    expect(p).toMatch(/SMS_PROVIDER is required/);
    expect(p).toMatch(/OTP_SECRET is required/);
    expect(p).toMatch(/JWT_PRIVATE_KEY is required/);
  });

  it("names the SMS provider's missing credentials", () => {
    const p = problems({ SMS_PROVIDER: "twilio", SMS_FALLBACK_PROVIDER: "msg91" }).join("\n");
    expect(p).toMatch(/TWILIO_ACCOUNT_SID/);
    expect(p).toMatch(/TWILIO_AUTH_TOKEN/);
    expect(p).toMatch(/MSG91_AUTH_KEY/);
    expect(p).toMatch(/MSG91_TEMPLATE_ID/);
  });

  it("refuses the development SMS provider in production", () => {
    expect(problems({ NODE_ENV: "production", SMS_PROVIDER: "development" }).join("\n")).toMatch(
      /SMS_PROVIDER=development .* refused/,
    );
  });

  it("accepts a complete production configuration", () => {
    const c = loadConfig({
      NODE_ENV: "production",
      REDIS_URL: "redis://127.0.0.1:6379",
      SMS_PROVIDER: "twilio",
      TWILIO_ACCOUNT_SID: "AC00000000000000000000000000000000",
      TWILIO_AUTH_TOKEN: "0123456789abcdef0123456789abcdef",
      TWILIO_MESSAGING_SERVICE_SID: "MG00000000000000000000000000000000",
      OTP_SECRET: "x".repeat(48),
      JWT_PRIVATE_KEY: ed25519Pem().replace(/\n/g, "\\n"),
    });
    expect(c.production).toBe(true);
    expect(c.jwt.privateKey?.asymmetricKeyType).toBe("ed25519");
  });

  it.each([
    [{ OTP_LENGTH: "3" }, /OTP_LENGTH must be between 4 and 10/],
    [{ OTP_LENGTH: "11" }, /OTP_LENGTH must be between 4 and 10/],
    [{ OTP_TTL_SECONDS: "ten" }, /OTP_TTL_SECONDS must be a whole number/],
    [{ PORT: "70000" }, /PORT must be between/],
    [{ SMS_PROVIDER: "carrier-pigeon" }, /SMS_PROVIDER must be one of development, twilio, msg91/],
    [{ REDIS_URL: "localhost:6379" }, /REDIS_URL must start with redis:\/\//],
    [{ OTP_SECRET: "short" }, /OTP_SECRET must be at least 32 characters/],
    [{ JWT_PRIVATE_KEY: "not a key" }, /JWT_PRIVATE_KEY is not a PKCS8 PEM/],
    [{ DEFAULT_COUNTRY: "India" }, /DEFAULT_COUNTRY must be a two-letter/],
    [{ RATE_LIMIT_IP_POINTS: "-1" }, /RATE_LIMIT_IP_POINTS must be a whole number/],
    [{ RATE_LIMIT_IP_DURATION_SECONDS: "0" }, /RATE_LIMIT_IP_DURATION_SECONDS must be between 1 and/],
    [{ RATE_LIMIT_PHONE_LOCK_SECONDS: "0" }, /RATE_LIMIT_PHONE_LOCK_SECONDS must be between 1 and/],
    [{ SMS_MAX_PER_HOUR: "lots" }, /SMS_MAX_PER_HOUR must be a whole number/],
    [{ SMS_ALLOWED_COUNTRIES: "IN,India" }, /SMS_ALLOWED_COUNTRIES must list two-letter .* got "INDIA"/],
    [
      { TRUSTED_PROXIES: "10.0.0.0/8, proxy.internal" },
      /TRUSTED_PROXIES must list IP .* got "proxy.internal"/,
    ],
  ])("names the bad variable: %o", (env, message) => {
    expect(problems(env).join("\n")).toMatch(message);
  });

  it("refuses a signing key that is not Ed25519", () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({
      format: "pem",
      type: "pkcs8",
    });
    expect(problems({ JWT_PRIVATE_KEY: rsa.toString() }).join("\n")).toMatch(/must be an Ed25519 key/);
  });

  it("has the documented abuse-limit defaults", () => {
    const c = loadConfig({});
    expect(c.limits).toEqual({
      ipSend: { points: 5, durationSeconds: 900 },
      ipVerify: { points: 5, durationSeconds: 900 },
      phoneSend: { points: 5, durationSeconds: 600 },
      phoneCooldownSeconds: 30,
      phoneFailures: 10,
      phoneLockSeconds: 3600,
      smsPerPrefixPerHour: 20,
      smsPerCountryPerHour: 1000,
      smsPerHour: 5000,
      smsAllowedCountries: [],
      smsBlockedNumberTypes: ["PERSONAL_NUMBER", "PAGER", "UAN", "VOICEMAIL"],
      smsBlockedPrefixes: ["8816", "8818", "870", "883"],
    });
    expect(c.trustedProxies).toEqual([]);
  });

  it("reads the allow-list and trusted proxies as comma-separated lists", () => {
    const c = loadConfig({
      SMS_ALLOWED_COUNTRIES: " in, us ,",
      TRUSTED_PROXIES: "127.0.0.1, 10.0.0.0/8,::1",
    });
    expect(c.limits.smsAllowedCountries).toEqual(["IN", "US"]);
    expect(c.trustedProxies).toEqual(["127.0.0.1", "10.0.0.0/8", "::1"]);
  });

  it("reads the refresh reuse grace: 10 s by default, 0 turns it off, at most 300", () => {
    expect(loadConfig({}).jwt.refreshReuseGraceSeconds).toBe(10);
    expect(loadConfig({ REFRESH_REUSE_GRACE_SECONDS: "0" }).jwt.refreshReuseGraceSeconds).toBe(0);
    expect(problems({ REFRESH_REUSE_GRACE_SECONDS: "301" }).join("\n")).toMatch(
      /REFRESH_REUSE_GRACE_SECONDS/,
    );
  });

  it("reads METRICS_PORT, METRICS_HOST (HOST by default) and METRICS_TOKEN, refusing what would be ignored", () => {
    expect(loadConfig({})).toMatchObject({ metricsPort: undefined, metricsToken: undefined });
    expect(loadConfig({ HOST: "10.0.0.5", METRICS_PORT: "9464" })).toMatchObject({
      metricsPort: 9464,
      metricsHost: "10.0.0.5",
    });
    expect(loadConfig({ METRICS_PORT: "9464", METRICS_HOST: "127.0.0.1" }).metricsHost).toBe("127.0.0.1");
    expect(loadConfig({ METRICS_TOKEN: "x".repeat(16) }).metricsToken).toBe("x".repeat(16));
    expect(problems({ METRICS_PORT: "8000" }).join("\n")).toMatch(/METRICS_PORT must differ from PORT/);
    expect(problems({ METRICS_PORT: "70000" }).join("\n")).toMatch(/METRICS_PORT must be between/);
    expect(problems({ METRICS_HOST: "127.0.0.1" }).join("\n")).toMatch(
      /METRICS_HOST is set without METRICS_PORT/,
    );
    expect(problems({ METRICS_TOKEN: "short" }).join("\n")).toMatch(/METRICS_TOKEN must be at least 16/);
    expect(
      problems({ METRICS_ENABLED: "false", METRICS_PORT: "9464", METRICS_TOKEN: "x".repeat(16) }),
    ).toEqual([
      "METRICS_PORT is set but METRICS_ENABLED=false",
      "METRICS_TOKEN is set but METRICS_ENABLED=false",
    ]);
  });

  it("reads GRPC_FAST_PATH: on by default, false turns it off, anything else is refused", () => {
    expect(loadConfig({}).grpcFastPath).toBe(true);
    expect(loadConfig({ GRPC_FAST_PATH: "false" }).grpcFastPath).toBe(false);
    expect(problems({ GRPC_FAST_PATH: "fast" }).join("\n")).toMatch(/GRPC_FAST_PATH must be true or false/);
  });

  it("reports every problem at once", () => {
    expect(problems({ OTP_LENGTH: "2", PORT: "x", OTP_MAX_ATTEMPTS: "0" })).toHaveLength(3);
  });
});
