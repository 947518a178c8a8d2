import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, knownVariables, loadConfig } from "../src/config.js";
import { EnvReader } from "../src/env-reader.js";

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
    expect(p).toMatch(/APP_NAME is required/);
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
      APP_NAME: "Otp Auth Test",
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

describe("verification settings", () => {
  it("reads TEST_PHONE_NUMBERS and the retention, naming bad entries without echoing a code", () => {
    const c = loadConfig({ TEST_PHONE_NUMBERS: "+919999900001:123456, +919999900002:654321" });
    expect([...c.otp.testNumbers]).toEqual([
      ["+919999900001", "123456"],
      ["+919999900002", "654321"],
    ]);
    expect(c.otp.retentionSeconds).toBe(86_400);
    const bad = problems({ TEST_PHONE_NUMBERS: "9999900001:123456,+919999900002:98765" });
    expect(bad).toHaveLength(2);
    expect(bad.join("\n")).not.toContain("98765");
  });

  it("refuses test numbers in production unless TEST_PHONE_NUMBERS_IN_PRODUCTION=true", () => {
    const prod = { NODE_ENV: "production", TEST_PHONE_NUMBERS: "+919999900001:123456" };
    expect(problems(prod).some((p) => p.startsWith("TEST_PHONE_NUMBERS is refused"))).toBe(true);
    expect(
      problems({ ...prod, TEST_PHONE_NUMBERS_IN_PRODUCTION: "true" }).some((p) =>
        p.startsWith("TEST_PHONE_NUMBERS"),
      ),
    ).toBe(false);
  });

  it("SMS_REROUTE_UNDELIVERED needs a fallback provider; AUDIT_TOKEN must be long", () => {
    expect(problems({ SMS_REROUTE_UNDELIVERED: "true" }).join("\n")).toMatch(/needs SMS_FALLBACK_PROVIDER/);
    expect(problems({ AUDIT_TOKEN: "short" }).join("\n")).toMatch(/AUDIT_TOKEN must be at least 32/);
  });
});

describe("secrets from files (*_FILE)", () => {
  const dir = mkdtempSync(join(tmpdir(), "otp-auth-secrets-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, content: string) => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };

  it("reads each secret from VAR_FILE, without the trailing newline", () => {
    const pem = ed25519Pem();
    const r = new EnvReader({
      OTP_SECRET_FILE: file("otp", `${"s".repeat(40)}\n`),
      JWT_PRIVATE_KEY_FILE: file("jwt", pem),
      TWILIO_AUTH_TOKEN_FILE: file("twilio", "tok\n"),
      MSG91_AUTH_KEY_FILE: file("msg91", "key\r\n"),
    });
    expect(r.secret("OTP_SECRET")).toBe("s".repeat(40));
    expect(r.secret("TWILIO_AUTH_TOKEN")).toBe("tok");
    expect(r.secret("MSG91_AUTH_KEY")).toBe("key");
    expect(r.secret("JWT_PRIVATE_KEY")).toBe(pem.replace(/\n$/, ""));
    expect(r.problems).toEqual([]);
  });

  it("loads a production configuration whose secrets are all files", () => {
    const c = loadConfig({
      NODE_ENV: "production",
      APP_NAME: "Example",
      REDIS_URL: "redis://127.0.0.1:6379",
      SMS_PROVIDER: "twilio",
      SMS_FALLBACK_PROVIDER: "msg91",
      TWILIO_ACCOUNT_SID: "AC00000000000000000000000000000000",
      TWILIO_AUTH_TOKEN_FILE: file("twilio2", "0123456789abcdef0123456789abcdef\n"),
      TWILIO_MESSAGING_SERVICE_SID: "MG00000000000000000000000000000000",
      MSG91_AUTH_KEY_FILE: file("msg91b", "msg91-key\n"),
      MSG91_TEMPLATE_ID: "tpl",
      OTP_SECRET_FILE: file("otp2", `${"x".repeat(48)}\n`),
      JWT_PRIVATE_KEY_FILE: file("jwt2", ed25519Pem()),
    });
    expect(c.otp.secret).toBe("x".repeat(48));
    expect(c.jwt.privateKey?.asymmetricKeyType).toBe("ed25519");
  });

  it("refuses both forms at once, an unreadable file and an empty one, naming the variable", () => {
    const r = new EnvReader({
      OTP_SECRET: "a".repeat(40),
      OTP_SECRET_FILE: file("both", "b".repeat(40)),
      TWILIO_AUTH_TOKEN_FILE: join(dir, "missing"),
      MSG91_AUTH_KEY_FILE: file("empty", "\n"),
    });
    expect(r.secret("OTP_SECRET")).toBeUndefined();
    expect(r.secret("TWILIO_AUTH_TOKEN")).toBeUndefined();
    expect(r.secret("MSG91_AUTH_KEY")).toBeUndefined();
    expect(r.problems).toEqual([
      "OTP_SECRET and OTP_SECRET_FILE are both set: set only one",
      `TWILIO_AUTH_TOKEN_FILE names a file that cannot be read (${join(dir, "missing")}: ENOENT)`,
      `MSG91_AUTH_KEY_FILE names an empty file (${join(dir, "empty")})`,
    ]);
  });

  it("says the file form exists when a required secret is missing", () => {
    expect(problems({ NODE_ENV: "production" }).join("\n")).toMatch(
      /OTP_SECRET is required when NODE_ENV=production .*\(or OTP_SECRET_FILE, a file holding it\)/,
    );
  });

  it("lists every variable the readers know, the file forms and every provider's included", () => {
    const names = knownVariables();
    for (const n of [
      "NODE_ENV",
      "PORT",
      "APP_NAME",
      "REDIS_URL",
      "TWILIO_ACCOUNT_SID",
      "MSG91_TEMPLATE_ID",
    ]) {
      expect(names).toContain(n);
    }
    for (const s of ["OTP_SECRET", "JWT_PRIVATE_KEY", "TWILIO_AUTH_TOKEN", "MSG91_AUTH_KEY"]) {
      expect(names).toContain(s);
      expect(names).toContain(`${s}_FILE`);
    }
  });
});
