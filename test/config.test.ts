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
    expect(c.redis).toBeUndefined();
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

  it("reads a Redis Cluster from its seed nodes, and exactly one of REDIS_URL / REDIS_CLUSTER_NODES", () => {
    const nodes = "redis://10.0.0.1:7000, rediss://app:s3cret@10.0.0.2:7001/0";
    expect(loadConfig({ REDIS_CLUSTER_NODES: nodes }).redis).toEqual({
      target: { kind: "cluster", nodes: ["redis://10.0.0.1:7000", "rediss://app:s3cret@10.0.0.2:7001/0"] },
      minReplicasAck: undefined,
      replicaAckTimeoutMs: 500,
    });
    expect(problems({ REDIS_URL: "redis://a:6379", REDIS_CLUSTER_NODES: nodes }).join("\n")).toMatch(
      /REDIS_URL and REDIS_CLUSTER_NODES are both set/,
    );
    expect(problems({ REDIS_CLUSTER_NODES: "redis://10.0.0.1:7000/2" }).join("\n")).toMatch(
      /REDIS_CLUSTER_NODES: .* names database 2, but a Redis Cluster has only database 0/,
    );
    expect(problems({ REDIS_CLUSTER_NODES: "10.0.0.1:7000" }).join("\n")).toMatch(
      /REDIS_CLUSTER_NODES must list redis:\/\/ or rediss:\/\/ URLs/,
    );
    expect(problems({ NODE_ENV: "production" }).join("\n")).toMatch(
      /REDIS_URL is required .*, or REDIS_CLUSTER_NODES/,
    );
    expect(problems({ NODE_ENV: "production", REDIS_CLUSTER_NODES: nodes }).join("\n")).not.toMatch(/REDIS/);
  });

  it("reads SMS_BUDGET_SHARDS for a cluster only", () => {
    const nodes = "redis://10.0.0.1:7000";
    expect(loadConfig({ REDIS_CLUSTER_NODES: nodes, SMS_BUDGET_SHARDS: "16" }).limits.smsBudgetShards).toBe(
      16,
    );
    expect(problems({ REDIS_URL: "redis://a:6379", SMS_BUDGET_SHARDS: "4" }).join("\n")).toMatch(
      /SMS_BUDGET_SHARDS=4 applies to a Redis Cluster only/,
    );
    expect(problems({ REDIS_CLUSTER_NODES: nodes, SMS_BUDGET_SHARDS: "0" }).join("\n")).toMatch(
      /SMS_BUDGET_SHARDS must be between 1/,
    );
  });

  it("reads how durable a new user must be: REDIS_MIN_REPLICAS_ACK and REDIS_REPLICA_ACK_TIMEOUT_MS", () => {
    const c = loadConfig({
      REDIS_URL: "redis://a:6379",
      REDIS_MIN_REPLICAS_ACK: "2",
      REDIS_REPLICA_ACK_TIMEOUT_MS: "250",
    });
    expect(c.redis).toMatchObject({ minReplicasAck: 2, replicaAckTimeoutMs: 250 });
    expect(problems({ REDIS_URL: "redis://a:6379", REDIS_MIN_REPLICAS_ACK: "many" }).join("\n")).toMatch(
      /REDIS_MIN_REPLICAS_ACK must be a whole number/,
    );
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
      smsBudgetShards: undefined,
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

  it("reports every problem at once", () => {
    expect(problems({ OTP_LENGTH: "2", PORT: "x", OTP_MAX_ATTEMPTS: "0" })).toHaveLength(3);
  });
});
