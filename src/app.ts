import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { Config } from "./config.js";
import { createHandler } from "./http/handler.js";
import { OnePortServer } from "./http/one-port.js";
import type { Logger } from "./log.js";
import { LoginService } from "./login/login-service.js";
import { MemoryOtpStore } from "./otp/memory-store.js";
import { RedisOtpStore } from "./otp/redis-store.js";
import { PhoneNormalizer } from "./phone/normalize.js";
import { connectRedis } from "./redis/connect.js";
import { DevelopmentSmsSender } from "./sms/development.js";
import type { SmsSender } from "./sms/sender.js";
import { AccessTokens } from "./tokens/access-tokens.js";
import { MemoryRefreshStore } from "./tokens/memory-refresh-store.js";
import { RedisRefreshStore } from "./tokens/redis-refresh-store.js";
import { MemoryUserStore } from "./users/memory-store.js";
import { RedisUserStore } from "./users/redis-store.js";
import { DevPage } from "./web/dev-page.js";

export interface App {
  readonly server: OnePortServer;
  readonly login: LoginService;
  readonly accessTokens: AccessTokens;
  readonly redis: Redis | undefined;
  close(): Promise<void>;
}

export interface AppOverrides {
  /** Replaces the configured SMS provider (tests capture codes this way). */
  readonly sms?: SmsSender;
}

/** Wires the service from validated config: stores, providers, the login core and the one-port server. */
export async function buildApp(config: Config, log: Logger, overrides: AppOverrides = {}): Promise<App> {
  const redis = config.redisUrl ? connectRedis(config.redisUrl) : undefined;
  if (!redis) {
    log.warn(
      "DEVELOPMENT MODE: no REDIS_URL, using the embedded in-memory store; codes, users and sessions vanish on restart",
    );
  }
  redis?.on("error", (err: Error) => log.warn({ err: err.message }, "redis connection error"));

  let codeSecret: Buffer;
  if (config.otp.secret) codeSecret = Buffer.from(config.otp.secret, "utf8");
  else {
    codeSecret = randomBytes(32);
    log.warn(
      "DEVELOPMENT MODE: no OTP_SECRET, generated one for this process; codes do not survive a restart",
    );
  }

  const accessTokens = await AccessTokens.create({
    privateKey: config.jwt.privateKey,
    keyId: config.jwt.keyId,
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    ttlSeconds: config.jwt.accessTtlSeconds,
  });
  if (accessTokens.generated) {
    log.warn(
      "DEVELOPMENT MODE: no JWT_PRIVATE_KEY, generated an Ed25519 key for this process; tokens die with it",
    );
  }

  const sms = overrides.sms ?? createSms(config, log);
  if (sms.name === "development")
    log.warn("DEVELOPMENT MODE: SMS_PROVIDER=development prints codes to the console");

  const minutes = Math.ceil(config.otp.ttlSeconds / 60);
  const login = new LoginService({
    settings: {
      codeLength: config.otp.length,
      codeTtlSeconds: config.otp.ttlSeconds,
      maxAttempts: config.otp.maxAttempts,
      codeSecret,
      refreshTtlSeconds: config.jwt.refreshTtlSeconds,
    },
    phones: new PhoneNormalizer(config.defaultCountry),
    codes: redis ? new RedisOtpStore(redis) : new MemoryOtpStore(),
    users: redis ? new RedisUserStore(redis) : new MemoryUserStore(),
    refreshTokens: redis ? new RedisRefreshStore(redis) : new MemoryRefreshStore(),
    accessTokens,
    sms,
    message: (code) =>
      `${code} is your ${config.appName} verification code. It expires in ${minutes} minutes.`,
    log,
  });

  const server = new OnePortServer(
    createHandler({
      login,
      accessTokens,
      log,
      cors: config.cors,
      devPage: config.production ? undefined : DevPage.locate(),
    }),
  );
  return {
    server,
    login,
    accessTokens,
    redis,
    async close() {
      await server.close();
      await redis?.quit().catch(() => redis.disconnect());
    },
  };
}

function createSms(config: Config, _log: Logger): SmsSender {
  if (config.sms.provider === "development") return new DevelopmentSmsSender(config.production);
  throw new Error(`SMS_PROVIDER=${config.sms.provider} is not available in this build`);
}
